"""Sentiment of short texts with word vectors: GloVe-initialised Bi-LSTM (and the averaging
baseline), compared with VADER and a TF-IDF logistic regression.

Data: by default the 10,605 movie-review sentences rated by people in the VADER paper
(from the vadersentiment source distribution), binary polarity from the mean rating (or
five classes with `--set classes=five`); `--data tweets|amazon|nyt` scores the same
archive's other rated sets; a CSV/TSV/JSONL file (columns `text` and `label`, or set
`text_column`/`label_column`) or a folder of train/val/test files; `tfds:imdb_reviews`
when online.

Example:
    dlkit sentiment predict "not the best film of the year, but worth it"
    dlkit sentiment predict --file sentences.txt --json
    dlkit sentiment train --data reviews.csv --set model=lstm
"""

from dlkit.app import App, Metric
from dlkit.registry import register


@register
class SentimentApp(App):
    name = "sentiment"
    summary = (
        "Sentiment of short texts: GloVe Bi-LSTM, or a fine-tuned BERT encoder, against VADER and TF-IDF."
    )
    input_kind = "text"
    data_help = (
        "A CSV/TSV/JSONL of text,label rows, a folder of train/val/test files, tweets|amazon|nyt, "
        "tfds:NAME, or omit for the rated movie-review sentences."
    )
    gate = Metric("accuracy")
    monitor = ("val_accuracy", "max")
    architecture = (
        "model",
        "vectors",
        "lowercase",
        "max_length",
        "units",
        "lstm_layers",
        "max_tokens",
        "vocab_size",
        "hidden_size",
        "layers",
        "heads",
        "intermediate_size",
        "max_positions",
    )
    quantizations = ("float32", "float16", "dynamic")  # the LSTM loops do not take full int8
    inherits = ("text_encoder",)  # from an mlm model, or --init minilm

    def inherit_config(self, config, parts):
        """A pretrained text encoder calls for the encoder model."""
        import dataclasses

        from dlkit.console import log

        if "text_encoder" in parts and config.model != "encoder":
            log(f"model=encoder (not {config.model}): the --init model gives a text encoder")
            config = dataclasses.replace(config, model="encoder")
        return config

    def parts(self, model, meta):
        if meta.get("model") != "encoder":
            return {}
        from dlkit.layers.bert import encoder_view

        return {"text_encoder": encoder_view(model)}

    def inherit_meta(self, meta, init_meta):
        return self.model.inherit_meta(meta, init_meta)

    def assets(self, model, config, meta):
        """The vocabulary, one word per line: the TFLite graph takes word ids."""
        from dlkit.app import Asset

        return {"vocab": Asset("vocab.txt", "\n".join(meta["vocab"]).encode("utf-8"), into="vocab")}

    def convert(self, model, config, meta, quantize, representative=None):
        return self.model.convert(model, config, meta, quantize, representative)

    def annotate(self, report, split):
        return self.model.annotate(report, split)

    def peers(self, config, meta, source, split):
        return self.model.peers(config, meta, source, split)

    def input_warnings(self, raw, meta):
        return self.edge.input_warnings(raw, meta)

    def plots(self, report, meta, out_dir, title=""):
        return self.model.plots(report, meta, out_dir, title)

    def write_sample_data(self, folder):
        return str(self.data.write_sample_folder(folder))

    def sample_inputs(self, folder):
        return ["a wonderful film , really moving .", "a dull , tedious script ."]
