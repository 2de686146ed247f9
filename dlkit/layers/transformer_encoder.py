"""Multi-head self-attention and the post-LayerNorm transformer encoder block of BERT."""

import math

import keras
from keras import layers, ops

# Added to the scores of padding positions before the softmax: BERT's -10000 rather than
# -inf, so a fully padded row stays finite and int8 calibration sees a bounded range.
MASKED_SCORE = -10000.0


@keras.saving.register_keras_serializable(package="dlkit")
class MultiHeadSelfAttention(layers.Layer):
    """`softmax(Q K^T / sqrt(d) + mask) V` over `heads` heads, then an output projection.

    Q, K, V and the output are dense layers of the full width (kernels (width, width)),
    named `query`, `key`, `value`, `output`, as BERT checkpoints store them.

    Args:
        heads: int. Attention heads; the width must divide by it.

    Call args:
        x: (batch, length, width).
        padding_mask: optional (batch, length), 1/True for tokens, 0/False for padding;
            no position attends to padding.
        return_attention_scores: bool. Also return the weights (batch, heads, length, length).
    """

    def __init__(self, heads, **kwargs):
        super().__init__(**kwargs)
        self.heads = heads

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.heads:
            raise ValueError(f"width {width} does not divide into {self.heads} heads")
        self.head_size = width // self.heads
        self.query = layers.Dense(width, name="query")
        self.key = layers.Dense(width, name="key")
        self.value = layers.Dense(width, name="value")
        self.output_dense = layers.Dense(width, name="output")
        for dense in (self.query, self.key, self.value, self.output_dense):
            dense.build(input_shape)

    def _heads(self, x):
        length = ops.shape(x)[1]
        x = ops.reshape(x, (-1, length, self.heads, self.head_size))
        return ops.transpose(x, (0, 2, 1, 3))  # (batch, heads, length, head_size)

    def call(self, x, padding_mask=None, return_attention_scores=False):
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.head_size)
        if padding_mask is not None:  # (batch, length) -> (batch, 1, 1, length)
            keep = ops.cast(padding_mask, scores.dtype)[:, None, None, :]
            scores = scores + (1.0 - keep) * MASKED_SCORE
        weights = ops.softmax(scores, axis=-1)  # (batch, heads, length, length)
        context = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))  # (batch, length, heads, head_size)
        context = ops.reshape(context, (-1, ops.shape(x)[1], self.heads * self.head_size))
        out = self.output_dense(context)  # (batch, length, width)
        return (out, weights) if return_attention_scores else out

    def compute_output_spec(self, x, padding_mask=None, return_attention_scores=False):
        out = keras.KerasTensor(x.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return out
        return out, keras.KerasTensor(
            (x.shape[0], self.heads, x.shape[1], x.shape[1]), dtype=self.compute_dtype
        )

    def get_config(self):
        return {**super().get_config(), "heads": self.heads}


@keras.saving.register_keras_serializable(package="dlkit")
class TransformerEncoder(layers.Layer):
    """One BERT encoder block (post-LayerNorm):
    `h = LN(x + Dropout(Attention(x)))`, `out = LN(h + Dropout(W2 gelu(W1 h)))`.

    Args:
        heads: int. Attention heads.
        intermediate_size: int. Width of the GELU feed-forward layer.
        dropout: float. After the attention and the feed-forward outputs.
        epsilon: float. LayerNormalization epsilon (BERT: 1e-12).

    Call args:
        x: (batch, length, width).
        padding_mask: optional (batch, length), 1 for tokens, 0 for padding.
    """

    def __init__(self, heads, intermediate_size, dropout=0.1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.heads = heads
        self.intermediate_size = intermediate_size
        self.dropout = dropout
        self.epsilon = epsilon

    def build(self, input_shape):
        width = input_shape[-1]
        self.attention = MultiHeadSelfAttention(self.heads, name="attention")
        self.attention_norm = layers.LayerNormalization(epsilon=self.epsilon, name="attention_norm")
        self.intermediate = layers.Dense(self.intermediate_size, activation="gelu", name="intermediate")
        self.output_dense = layers.Dense(width, name="output")
        self.output_norm = layers.LayerNormalization(epsilon=self.epsilon, name="output_norm")
        self.attention_dropout = layers.Dropout(self.dropout)
        self.output_dropout = layers.Dropout(self.dropout)
        self.attention.build(input_shape)
        self.attention_norm.build(input_shape)
        self.intermediate.build(input_shape)
        self.output_dense.build((*input_shape[:-1], self.intermediate_size))
        self.output_norm.build(input_shape)

    def call(self, x, padding_mask=None, training=None):
        attended = self.attention(x, padding_mask=padding_mask)
        h = self.attention_norm(x + self.attention_dropout(attended, training=training))
        ffn = self.output_dense(self.intermediate(h))  # (batch, length, width)
        return self.output_norm(h + self.output_dropout(ffn, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "heads": self.heads,
            "intermediate_size": self.intermediate_size,
            "dropout": self.dropout,
            "epsilon": self.epsilon,
        }
