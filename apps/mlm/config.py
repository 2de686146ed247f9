"""Configuration of the masked language model app (no TensorFlow import)."""

from dataclasses import dataclass
from typing import ClassVar

from dlkit.config import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, TrainConfig


@dataclass
class Config(TrainConfig):
    """Training and export settings; every field can be set with `--set key=value`.

    A BERT-style encoder (token + learned position + segment embeddings, `layers`
    post-LayerNorm transformer blocks) with a masked-language-model head whose output
    projection is the token embedding itself (tied). Text is lowercased and stripped of
    accents (`lowercase`), split into WordPiece tokens with a vocabulary of about
    `vocab_size` learnt from the training documents (tensorflow-text), packed into
    sequences of `max_length` tokens, and 15% of the ordinary tokens are selected per
    sequence each epoch (80% of them become [MASK], 10% a random token, 10% stay).
    `next_sentence` adds BERT's next-sentence objective over sentence pairs. `distill`
    names a pretrained text encoder (`minilm_l6`) whose sentence embedding of each
    sequence's text the encoder learns to give too, beside the masked tokens (a linear map
    of its mean-pooled token states, cosine loss weighted by `distill_weight`).
    `token_vectors` starts the token embedding from word vectors (GloVe) instead of at
    random.
    """

    LIMITS: ClassVar[dict] = {
        **dict.fromkeys(
            (
                "vocab_size",
                "max_length",
                "max_predictions",
                "hidden_size",
                "layers",
                "heads",
                "intermediate_size",
                "max_positions",
                "steps_per_epoch",
            ),
            AT_LEAST_ONE,
        ),
        **dict.fromkeys(("dropout", "mask_rate"), FRACTION),
        "max_documents": NON_NEGATIVE,
        "eval_sequences": NON_NEGATIVE,
        "warmup_steps": AT_LEAST_ONE,
        "weight_decay": FRACTION,
        "learning_rate": POSITIVE,
        "distill_weight": NON_NEGATIVE,
    }
    # What a stored config without the field means (dlkit.config.from_dict): runs saved
    # before `token_vectors` existed started from a random token embedding.
    ABSENT: ClassVar[dict] = {"token_vectors": ""}

    corpus: str = "python_docs,docstrings,fortunes,bible"  # offline sources (apps/mlm/corpus.py)
    max_documents: int = 0  # read at most this many documents, spread over the corpus (0 = all)
    vocab_size: int = 8000  # WordPiece target size, reserved tokens included
    vocab_file: str = ""  # an existing BERT vocab.txt instead of learning one
    lowercase: bool = True  # lowercase and strip accents (BERT "uncased")
    max_length: int = 128  # tokens per sequence, [CLS] and [SEP] included
    max_predictions: int = 20  # masked positions scored per sequence (15% of 128 is 19)
    mask_rate: float = 0.15
    # Next-sentence prediction, as in the original BERT: sequences are pairs [CLS] A [SEP]
    # B [SEP] with segment ids, B the true continuation half the time, and a two-way
    # softmax on a tanh pooler over [CLS] trains beside the masked tokens.
    next_sentence: bool = False
    # Distillation, as DistilBERT adds a teacher's signal to the masked tokens: the mean of
    # the encoder's token states, through a linear map (`distill` head), learns the
    # teacher's L2-normalised mean-pooled sentence embedding of the same text (computed
    # once per corpus into the cache). "" = masked tokens only.
    distill: str = ""
    distill_weight: float = 5.0
    # Word vectors (`glove_6b_50d` or a GloVe .txt file) the token embedding starts from:
    # tokens that are whole words get their vector, mapped to `hidden_size`
    # (dlkit.pretrained.text.token_vector_table). "" = a random start, as BERT's. From
    # GloVe, the 10-epoch recipe's held-out masked-token accuracy is 0.212 against 0.147.
    token_vectors: str = "glove_6b_50d"
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 1024
    max_positions: int = 128  # learned position embeddings (>= max_length)
    dropout: float = 0.1
    val_split: float = 0.05  # of the documents
    test_split: float = 0.05
    eval_sequences: int = 2000  # held-out sequences scored per split (0 = all)
    batch_size: int = 32
    epochs: int = 18  # the shipped model: 18 epochs of 400 steps (47 minutes on 2 cores)
    steps_per_epoch: int = 400  # batches per epoch (masks are drawn afresh every epoch)
    learning_rate: float = 5e-4
    warmup_steps: int = 300
    weight_decay: float = 0.01
    patience: int = 0
    max_drop: float = 1.0  # export fails when masked-token accuracy drops more (points)

    @classmethod
    def tiny(cls):
        """Seconds, not minutes: a small sample of the corpus, a two-layer encoder of width 16."""
        return cls(
            max_documents=60,
            vocab_size=120,
            max_length=24,
            max_predictions=4,
            hidden_size=16,
            layers=2,
            heads=2,
            intermediate_size=32,
            max_positions=32,
            eval_sequences=0,
            batch_size=8,
            epochs=2,
            steps_per_epoch=4,
            warmup_steps=2,
            max_drop=100.0,
        )
