"""The BERT encoder as a block function over Keras inputs, shared by the masked language
model and the apps that fine-tune its encoder (sentiment)."""

import keras
from keras import layers

from dlkit.layers.position_embedding import PositionEmbedding
from dlkit.layers.reversible_embedding import ReversibleEmbedding
from dlkit.layers.transformer_encoder import TransformerEncoder

LAYER_NORM_EPSILON = 1e-12  # BERT's
# The encoder's named inputs, in the order exported models take them.
ENCODER_INPUTS = ("token_ids", "segment_ids", "attention_mask")


def apply_bert_encoder(
    inputs, vocab_size, hidden_size, layers_count, heads, intermediate_size, max_positions, dropout=0.1
):
    """Token + segment + learned position embeddings, LayerNorm, dropout, then
    `layers_count` post-LayerNorm transformer blocks (`encoder_0`, `encoder_1`, ...).

    Layer names follow BERT checkpoints' structure, so dlkit.pretrained.bert ports one by
    name and another app's model copies the encoder by name.

    Args:
        inputs: (token_ids, segment_ids, attention_mask), Keras int32 inputs (batch, length).

    Returns:
        (hidden states (batch, length, hidden_size), the token embedding layer, whose
        `reverse=True` call is the tied output projection of an MLM head).
    """
    token_ids, segment_ids, attention_mask = inputs
    token_embedding = ReversibleEmbedding(
        vocab_size,
        hidden_size,
        embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        name="token_embedding",
    )
    x = token_embedding(token_ids)  # (batch, length, hidden)
    x = x + layers.Embedding(2, hidden_size, name="segment_embedding")(segment_ids)
    x = PositionEmbedding(max_positions, name="position_embedding")(x)
    x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="embedding_norm")(x)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    for k in range(layers_count):
        x = TransformerEncoder(heads, intermediate_size, dropout, LAYER_NORM_EPSILON, name=f"encoder_{k}")(
            x, padding_mask=attention_mask
        )
    return x, token_embedding


def encoder_inputs(length):
    return [keras.Input((length,), dtype="int32", name=name) for name in ENCODER_INPUTS]


def bert_encoder(config, vocab_size, length, dropout):
    """(inputs, hidden states, token embedding) of an encoder sized by an app config's
    fields `hidden_size`, `layers`, `heads`, `intermediate_size` and `max_positions`
    (the fields an mlm model hands to another app's run)."""
    inputs = encoder_inputs(length)
    hidden, token_embedding = apply_bert_encoder(
        inputs,
        vocab_size,
        config.hidden_size,
        config.layers,
        config.heads,
        config.intermediate_size,
        config.max_positions,
        dropout,
    )
    return inputs, hidden, token_embedding


def encoder_blocks(model):
    """The transformer blocks of a model built with `apply_bert_encoder`, in order."""
    blocks = {
        int(layer.name[len("encoder_") :]): layer
        for layer in model.layers
        if layer.name.startswith("encoder_") and layer.name[len("encoder_") :].isdigit()
    }
    return [blocks[k] for k in sorted(blocks)]


def encoder_view(model):
    """The BERT encoder inside a trained model, as a Keras model sharing its layers (the
    part another app's model copies by layer name): the three inputs -> hidden states."""
    inputs = [model.get_layer(name).output for name in ENCODER_INPUTS]
    return keras.Model(inputs, encoder_blocks(model)[-1].output, name="text_encoder")


def masked_mean(hidden, attention_mask):
    """The mean of the hidden states over the tokens (padding left out): (batch, width)."""
    from keras import ops

    return layers.GlobalAveragePooling1D(name="mean_pool")(hidden, mask=ops.cast(attention_mask, "bool"))
