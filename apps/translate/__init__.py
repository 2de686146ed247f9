"""Translation with attention: human-readable dates to ISO, and sentences (seq2seq + beam search).

Data: by default, dates generated with Faker + Babel in 9 locales (the course's attention
model, character level). `--data bible` trains the sentence model on English-Spanish
Bible verses (Debian sword-text-kjv, sword-text-sparv); `--data pairs.tsv` takes any
`source<TAB>target` file (or `.csv`); `tfds:ted_hrlr_translate/pt_to_en` when online.

Example:
    dlkit translate predict "3 May 1979" "mercredi 1er mars 2023"
    dlkit translate train --data bible --set epochs=10
"""

DATA_HELP = (
    "A TSV/CSV of source<TAB>target pairs, a folder of train.tsv (+ val.tsv, test.tsv), "
    "bible, tfds:NAME, or omit for the generated dates."
)
