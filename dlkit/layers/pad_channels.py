"""Zero channels appended to a feature map (the identity shortcut of a widening residual
block, as in the original ResNet's option A)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="dlkit")
class PadChannels(layers.Layer):
    """(batch, h, w, c) -> (batch, h, w, c + extra), the new channels zero (TFLite PAD).

    Args:
        extra: int. Channels appended.
    """

    def __init__(self, extra, **kwargs):
        super().__init__(**kwargs)
        self.extra = int(extra)

    def call(self, x):
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.extra]])

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] + self.extra
        return (*input_shape[:-1], channels)

    def get_config(self):
        return {**super().get_config(), "extra": self.extra}
