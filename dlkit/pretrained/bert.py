"""Ports a BERT checkpoint (tensor names of Hugging Face `BertModel`, e.g. MiniLM-L6 from
dlkit.pretrained.text) into the Keras encoder of dlkit.layers.bert, by layer name.

PyTorch stores a dense kernel as (out, in); Keras as (in, out): kernels are transposed.
Position embeddings are cut to the model's table. Every tensor's shape is checked first,
so a checkpoint of another architecture is refused in one line, before any weight moves.

Example:
    >>> weights, vocab, config = load_text_encoder("minilm_l6")
    >>> port_bert(model, weights)          # model built with apply_bert_encoder
"""

import numpy as np

from dlkit.errors import DlkitError

# (Keras layer, attribute path, checkpoint name, transpose) per block; "{k}" is the block.
EMBEDDINGS = (
    ("token_embedding", "embeddings", "embeddings.word_embeddings.weight", False),
    ("segment_embedding", "embeddings", "embeddings.token_type_embeddings.weight", False),
    ("position_embedding", "embeddings", "embeddings.position_embeddings.weight", False),
    ("embedding_norm", "gamma", "embeddings.LayerNorm.weight", False),
    ("embedding_norm", "beta", "embeddings.LayerNorm.bias", False),
)
BLOCK = (
    ("attention.query", "self.query"),
    ("attention.key", "self.key"),
    ("attention.value", "self.value"),
    ("attention.output_dense", "output.dense"),
    ("intermediate", "../intermediate.dense"),
    ("output_dense", "../output.dense"),
)
BLOCK_NORMS = (("attention_norm", "output.LayerNorm"), ("output_norm", "../output.LayerNorm"))


def _checkpoint_name(k, relative):
    base = f"encoder.layer.{k}.attention."
    return f"encoder.layer.{k}.{relative[3:]}" if relative.startswith("../") else base + relative


def assignments(model, weights, prefix=""):
    """[(Keras variable, array)] for every encoder weight of `model`, checked against the
    checkpoint's names and shapes (DlkitError naming the first problem)."""
    names = {layer.name for layer in model.layers}
    blocks = sorted(int(n.split("_")[1]) for n in names if n.startswith("encoder_") and n[8:].isdigit())
    if not blocks or "token_embedding" not in names:
        raise DlkitError("the model has no BERT encoder (token_embedding, encoder_0, ...) to port into")
    pairs = []

    def take(variable, name, transpose=False, rows=None):
        key = prefix + name
        if key not in weights:
            raise DlkitError(f"the checkpoint is not the expected architecture: it has no tensor {key}")
        value = np.asarray(weights[key], np.float32)
        value = value.T if transpose else value
        if rows is not None:
            if value.shape[0] < rows:
                raise DlkitError(f"{key}: {value.shape[0]} positions, the model needs {rows}")
            value = value[:rows]
        if tuple(value.shape) != tuple(variable.shape):
            raise DlkitError(
                f"the checkpoint is not the expected architecture: {key} has shape {tuple(value.shape)}, "
                f"the model's {variable.path} {tuple(variable.shape)}"
            )
        pairs.append((variable, value))

    for layer_name, attribute, name, transpose in EMBEDDINGS:
        variable = getattr(model.get_layer(layer_name), attribute)
        rows = variable.shape[0] if layer_name == "position_embedding" else None
        take(variable, name, transpose, rows)
    stored = {int(key.split(".")[2]) for key in weights if key.startswith(prefix + "encoder.layer.")}
    if len(stored) != len(blocks):
        raise DlkitError(
            f"the checkpoint is not the expected architecture: {len(stored)} layers, the model has {len(blocks)}"
        )
    for k in blocks:
        block = model.get_layer(f"encoder_{k}")
        for path, relative in BLOCK:
            dense = block
            for part in path.split("."):
                dense = getattr(dense, part)
            take(dense.kernel, _checkpoint_name(k, relative) + ".weight", transpose=True)
            take(dense.bias, _checkpoint_name(k, relative) + ".bias")
        for attribute, relative in BLOCK_NORMS:
            norm = getattr(block, attribute)
            take(norm.gamma, _checkpoint_name(k, relative) + ".weight")
            take(norm.beta, _checkpoint_name(k, relative) + ".bias")
    return pairs


def port_bert(model, weights, prefix=""):
    """Loads checkpoint `weights` (name -> array) into the encoder of `model`; returns the
    number of tensors set. Nothing is assigned unless every tensor fits."""
    pairs = assignments(model, weights, prefix)
    for variable, value in pairs:
        variable.assign(value)
    return len(pairs)
