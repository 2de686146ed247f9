"""Gathers the hidden states at given positions (the masked tokens of an MLM batch)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="dlkit")
class MaskedPositions(layers.Layer):
    """`hidden[b, positions[b, p]]` for every row `b` and slot `p`.

    Written as a one-hot matrix product rather than a gather: it converts to builtin
    TFLite ops (ONE_HOT, BATCH_MATMUL) that quantize, and it costs length x slots x width.

    Call args:
        hidden: (batch, length, width).
        positions: int (batch, slots), each in [0, length).

    Returns:
        (batch, slots, width).
    """

    def call(self, hidden, positions):
        length = ops.shape(hidden)[1]
        pick = ops.one_hot(ops.cast(positions, "int32"), length, dtype=hidden.dtype)  # (batch, slots, length)
        return ops.matmul(pick, hidden)

    def compute_output_spec(self, hidden, positions):
        return keras.KerasTensor(
            (hidden.shape[0], positions.shape[1], hidden.shape[2]), dtype=self.compute_dtype
        )
