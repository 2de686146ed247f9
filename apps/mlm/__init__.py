"""BERT-style masked language model: WordPiece (tensorflow-text), 80/10/10 masking, a small
encoder pretrained here, fill-mask on device; its encoder fine-tunes for sentiment.

Data: by default the offline corpus (the Python documentation, the standard library's
docstrings, fortunes and the King James Bible, from Debian packages), held out by
document; a text file or a folder of text files (paragraphs separated by blank lines);
`tfds:NAME` with a `text` feature when online.

Example:
    dlkit mlm fill "The [MASK] returns a list."
    dlkit mlm train --set layers=4 --set hidden_size=256
    dlkit sentiment train --init runs/mlm/train
"""

from dlkit.app import App, Metric, Option
from dlkit.registry import register


@register
class MaskedLMApp(App):
    name = "mlm"
    summary = (
        "BERT-style masked language model: WordPiece, a small encoder pretrained here, fill-mask on device."
    )
    input_kind = "text"
    data_help = "A text file or a folder of text files, tfds:NAME, or omit for the offline corpus."
    meta_keys = ("special_ids", "max_length", "max_predictions")
    gate = Metric("masked_accuracy")
    monitor = ("val_loss", "min")  # masked tokens, plus next-sentence pairs when trained
    architecture = (
        "vocab_size",
        "vocab_file",
        "lowercase",
        "max_length",
        "max_predictions",
        "hidden_size",
        "layers",
        "heads",
        "intermediate_size",
        "max_positions",
        "next_sentence",
        "distill",
    )
    quantizations = ("float32", "float16", "dynamic", "int8")
    gptq = True  # top-1 agreement with Keras 99.00% instead of 98.84% (docs/mlm.md)
    provides = ("text_encoder",)  # its weights, with the vocabulary it reads
    predict_options = (Option("--top-k", int, 5, "Candidates shown per [MASK].", min=1),)

    def presets(self):
        return {"minilm": lambda: self.model.pretrained_model_dir("minilm_l6")}

    def assets(self, model, config, meta):
        """The WordPiece vocabulary, one token per line (the graph takes token ids)."""
        from dlkit.app import Asset

        return {"vocab": Asset("vocab.txt", "\n".join(meta["vocab"]).encode("utf-8"), into="vocab")}

    def inherit_meta(self, meta, init_meta):
        return self.model.inherit_meta(meta, init_meta)

    def inference_model(self, model, config, meta):
        return self.model.inference_model(model, config, meta)

    def parts(self, model, meta):
        from dlkit.layers.bert import encoder_view

        return {"text_encoder": encoder_view(model)}

    def meta_parts(self, meta):
        return {
            "text_encoder": {
                "tokenizer": "bert_wordpiece",
                "vocab": meta["vocab"],
                "lowercase": meta["lowercase"],
                "special_ids": meta["special_ids"],
            }
        }

    def peers(self, config, meta, source, split):
        return self.model.peers(config, meta, source, split)

    def input_warnings(self, raw, meta):
        return self.edge.input_warnings(raw, meta)

    def finish(self, item, raw, result, context):
        return self.edge.fill(raw, result, context.meta)

    def register_cli(self, group):
        from dlkit.cli import predict_command

        fill = predict_command(self)
        fill.help = "Fill each [MASK] of the texts (the same as predict)."
        group.add_command(fill, name="fill")

    def write_sample_data(self, folder):
        return str(self.data.write_sample_folder(folder))

    def sample_inputs(self, folder):
        return [
            "In the beginning God created the [MASK] and the earth.",
            "The function returns a [MASK] of the items.",
        ]
