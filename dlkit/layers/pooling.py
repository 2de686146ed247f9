"""Average pooling that an int8 TFLite graph keeps inside LiteRT's XNNPACK delegate."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="dlkit")
class ConvAveragePooling2D(layers.Layer):
    """`AveragePooling2D` with valid padding, computed as a depthwise convolution whose
    kernel is the constant 1 / (pool height x pool width): the same numbers, and no weights.

    Exported to int8, `AveragePooling2D` becomes AVERAGE_POOL_2D, which LiteRT's XNNPACK
    delegate takes in float only: each one runs on the builtin kernels and cuts the
    delegated graph into partitions. This layer becomes DEPTHWISE_CONV_2D (its constant
    kernel quantized exactly: one value per channel), which the delegate runs.

    Args:
        pool_size: int or (int, int).
        strides: int or (int, int); defaults to `pool_size`.
    """

    def __init__(self, pool_size=2, strides=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size)
        self.strides = _pair(strides if strides is not None else pool_size)

    def call(self, x):
        height, width = self.pool_size
        kernel = ops.full((height, width, x.shape[-1], 1), 1.0 / (height * width), dtype=x.dtype)
        return ops.depthwise_conv(x, kernel, strides=self.strides, padding="valid")

    def compute_output_shape(self, input_shape):
        batch, rows, cols, channels = input_shape
        out = [
            None if size is None else (size - pool) // stride + 1
            for size, pool, stride in zip((rows, cols), self.pool_size, self.strides)
        ]
        return (batch, *out, channels)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides)}


def _pair(value):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"expected a positive int or two, got {value!r}")
    return pair
