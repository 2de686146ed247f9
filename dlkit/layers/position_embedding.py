"""Learned position embeddings, added to a sequence of vectors."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="dlkit")
class PositionEmbedding(layers.Layer):
    """Adds a learned vector per position: `x[:, t] + positions[t]`.

    The table holds `max_positions` rows; a sequence may be shorter (it uses the first
    rows), so an encoder pretrained on long sequences fine-tunes on short ones.

    Args:
        max_positions: int. Longest sequence the table covers.
        initializer: str or initializer for the table (BERT: truncated normal, 0.02).

    Call args:
        x: (batch, length, width), length <= max_positions.
    """

    def __init__(self, max_positions, initializer="truncated_normal", **kwargs):
        super().__init__(**kwargs)
        self.max_positions = max_positions
        self.initializer = initializer

    def build(self, input_shape):
        length, width = input_shape[-2], input_shape[-1]
        if length is not None and length > self.max_positions:
            raise ValueError(f"sequences of {length} positions; the table covers {self.max_positions}")
        init = self.initializer
        if init == "truncated_normal":
            init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.max_positions, width), initializer=init
        )

    def call(self, x):
        length = ops.shape(x)[-2]
        return x + ops.cast(self.embeddings[:length], x.dtype)  # (batch, length, width)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_positions": self.max_positions, "initializer": self.initializer}
