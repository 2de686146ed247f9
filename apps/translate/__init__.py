"""Translation with attention: human-readable dates to ISO, and sentences (seq2seq + beam search).

Data: by default, dates generated with Faker + Babel in 9 locales (the course's attention
model, character level). `--data bible` trains the sentence model on English-Spanish
Bible verses (Debian sword-text-kjv, sword-text-sparv); `--data pairs.tsv` takes any
`source<TAB>target` file (or `.csv`); `tfds:ted_hrlr_translate/pt_to_en` when online.

Example:
    dlkit translate predict "3 May 1979" "mercredi 1er mars 2023"
    dlkit translate train --data bible --set epochs=10
"""

from dlkit.app import App, Metric, Option
from dlkit.registry import register

# Export parity: exact match (date model, in points) or BLEU (sentences, already points).
EXACT_MATCH = Metric("exact_match")
BLEU = Metric("bleu", points=1.0)


@register
class TranslateApp(App):
    name = "translate"
    summary = (
        "Translation with attention: human-readable dates to ISO, and sentences (seq2seq + beam search)."
    )
    meta_keys = ("model", "source_vocab", "target_vocab")
    input_kind = "text"
    data_help = (
        "A TSV/CSV of source<TAB>target pairs, a folder of train.tsv (+ val.tsv, test.tsv), "
        "bible, tfds:NAME, or omit for the generated dates."
    )
    gate = EXACT_MATCH
    monitor = ("val_loss", "min")
    architecture = (
        "model",
        "lowercase",
        "input_length",
        "output_length",
        "embedding_dim",
        "encoder_units",
        "decoder_units",
        "attention_units",
        "tokenizer",
        "vocab_size",
        "max_tokens",
        "seq_embedding_dim",
        "seq_units",
    )
    quantizations = ("float32", "float16", "dynamic")  # full int8 is not supported
    provides = ("tokenizer",)
    predict_options = (
        Option("--beam-width", int, None, "Beam width for sentence models (1 = greedy).", min=1),
        Option("--plot", str, None, "Write an attention-map PNG per input to this folder.", "DIR"),
    )

    def meta_parts(self, meta):
        """Its source-side tokenizer: characters (date model) or WordPiece (sentences)."""
        kind = "char" if meta["model"] == "attention" else meta.get("tokenizer", "wordpiece")
        return {
            "tokenizer": {"tokenizer": kind, "vocab": meta["source_vocab"], "lowercase": meta["lowercase"]}
        }

    def gate_metric(self, meta):
        return EXACT_MATCH if meta["model"] == "attention" else BLEU

    def inherit_meta(self, meta, init_meta):
        return self.model.inherit_meta(meta, init_meta)

    def keras_runner(self, model, config, meta):
        return self.model.make_runner(model, config, meta)

    def tflite_runner(self, path, meta):
        return self.edge.tflite_runner(path, meta)

    def convert(self, model, config, meta, quantize, representative=None):
        return self.model.convert(model, config, meta, quantize, representative)

    def prepare_meta(self, meta, options):
        if options.get("beam_width"):
            meta["beam_width"] = options["beam_width"]
        return meta

    def input_warnings(self, raw, meta):
        unknown = self.edge.unknown_characters(raw, meta)
        return [f"unknown characters {''.join(unknown)!r} read as <unk>"] if unknown else []

    def finish(self, item, raw, result, context):
        if "calendar_date" in result:  # the date model
            result["from_input"] = self.edge.date_from_input(str(item), result["translation"])
            # A month written in a script the model never saw is guessed, however sure it looks.
            result["known_characters"] = not self.edge.unknown_characters(raw, context.meta)
        weights = result.pop("attention", None)
        if context.options.get("plot") and weights is not None:
            result["plot"] = self.edge.write_attention_plot(
                context.options["plot"], context.index, raw, result["translation"], weights
            )
        return result

    def write_sample_data(self, folder):
        return None  # Config.tiny() generates a few hundred dates offline

    def sample_inputs(self, folder):
        return ["3 May 1979", "mercredi 1er mars 2023"]
