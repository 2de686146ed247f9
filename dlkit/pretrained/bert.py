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

# (Keras layer, weight attribute, checkpoint name) of the embeddings.
EMBEDDINGS = (
    ("token_embedding", "embeddings", "embeddings.word_embeddings.weight"),
    ("segment_embedding", "embeddings", "embeddings.token_type_embeddings.weight"),
    ("position_embedding", "embeddings", "embeddings.position_embeddings.weight"),
    ("embedding_norm", "gamma", "embeddings.LayerNorm.weight"),
    ("embedding_norm", "beta", "embeddings.LayerNorm.bias"),
)
# Per encoder block: (sublayer path in dlkit's TransformerEncoder, checkpoint name under
# `encoder.layer.{k}.`), for the dense layers and the LayerNorms.
BLOCK_DENSE = (
    ("attention.query", "attention.self.query"),
    ("attention.key", "attention.self.key"),
    ("attention.value", "attention.self.value"),
    ("attention.output_dense", "attention.output.dense"),
    ("intermediate", "intermediate.dense"),
    ("output_dense", "output.dense"),
)
BLOCK_NORMS = (("attention_norm", "attention.output.LayerNorm"), ("output_norm", "output.LayerNorm"))
# Checkpoint settings dlkit's encoder (dlkit.layers.bert) is built for; a tensor's shape
# cannot tell another activation or position scheme.
EXPECTED_SETTINGS = {"hidden_act": "gelu", "position_embedding_type": "absolute", "type_vocab_size": 2}


def check_settings(name, settings):
    """Raises DlkitError, naming the setting, when checkpoint `name`'s JSON `settings`
    describe an encoder dlkit's cannot run (a setting it omits takes BERT's default)."""
    for key, value in EXPECTED_SETTINGS.items():
        if settings.get(key, value) != value:
            raise DlkitError(f"{name}: {key} is {settings[key]!r}; dlkit's encoder needs {value!r}")


def assignments(model, weights, prefix=""):
    """[(Keras variable, array)] for every encoder weight of `model`, checked against the
    checkpoint's names and shapes (DlkitError naming the first problem)."""
    from dlkit.layers.bert import encoder_blocks

    blocks = encoder_blocks(model)
    if not blocks or "token_embedding" not in {layer.name for layer in model.layers}:
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

    for layer_name, attribute, name in EMBEDDINGS:
        variable = getattr(model.get_layer(layer_name), attribute)
        rows = variable.shape[0] if layer_name == "position_embedding" else None
        take(variable, name, rows=rows)
    stored = {int(key.split(".")[2]) for key in weights if key.startswith(prefix + "encoder.layer.")}
    if len(stored) != len(blocks):
        raise DlkitError(
            f"the checkpoint is not the expected architecture: {len(stored)} layers, the model has {len(blocks)}"
        )
    for k, block in enumerate(blocks):
        base = f"encoder.layer.{k}."
        for path, name in BLOCK_DENSE:
            dense = block
            for part in path.split("."):
                dense = getattr(dense, part)
            take(dense.kernel, base + name + ".weight", transpose=True)
            take(dense.bias, base + name + ".bias")
        for attribute, name in BLOCK_NORMS:
            norm = getattr(block, attribute)
            take(norm.gamma, base + name + ".weight")
            take(norm.beta, base + name + ".bias")
    return pairs


def port_bert(model, weights, prefix=""):
    """Loads checkpoint `weights` (name -> array) into the encoder of `model`; returns the
    number of tensors set. Nothing is assigned unless every tensor fits."""
    pairs = assignments(model, weights, prefix)
    for variable, value in pairs:
        variable.assign(value)
    return len(pairs)


def start_from_word_vectors(model, vocab, name_or_path, seed=0):
    """Sets the token embedding of a model built with `apply_bert_encoder` to
    `dlkit.pretrained.text.token_vector_table` of its vocabulary; returns how many rows
    came from a word vector."""
    from dlkit.pretrained.text import token_vector_table

    layer = model.get_layer("token_embedding")
    table, found = token_vector_table(vocab, name_or_path, layer.embeddings.shape[1], seed=seed)
    layer.embeddings.assign(table)
    return found


def sentence_encoder(name="minilm_l6", length=128):
    """(Keras model, vocabulary) of the pretrained encoder `name` (dlkit.pretrained.text)
    as sentence-transformers runs it: (token_ids, segment_ids, attention_mask) of length
    `length` -> the L2-normalised mean of the last block's token states (batch, width)."""
    import keras
    from keras import layers

    from dlkit.layers.bert import apply_bert_encoder, encoder_inputs, masked_mean
    from dlkit.pretrained.text import load_text_encoder

    weights, vocab, settings = load_text_encoder(name)
    check_settings(name, settings)
    inputs = encoder_inputs(length)
    hidden, _ = apply_bert_encoder(
        inputs,
        len(vocab),
        settings["hidden_size"],
        settings["num_hidden_layers"],
        settings["num_attention_heads"],
        settings["intermediate_size"],
        length,
        dropout=0.0,
    )
    pooled = masked_mean(hidden, inputs[2])
    embedding = layers.UnitNormalization(name="unit_norm")(pooled)
    model = keras.Model(inputs, embedding, name=f"{name}_sentences")
    port_bert(model, weights)
    return model, vocab
