"""U-Net blocks (Ronneberger et al. 2015) as functions that name every sublayer.

`apply_conv_block` is the paper's double 3x3 convolution; `apply_up_block` doubles the
resolution with a transposed convolution and joins the skip connection of the same
resolution from the contracting path. A U-Net is a contracting path (a pretrained
backbone's features, or `apply_conv_block` + pooling from scratch) followed by one up
block per skip. `LabelMap` ends an exported network in a per-pixel ArgMax.
"""

import keras
from keras import layers


def apply_conv_block(x, filters, *, name, kernel_size=3):
    """Two (convolution, BatchNorm, ReLU): (b, h, w, c) -> (b, h, w, filters)."""
    for index in (1, 2):
        x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv{index}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{index}")(x)
        x = layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


def apply_up_block(x, skip, filters, *, name):
    """Upsamples `x` (b, h, w, c) by 2 with a 3x3 transposed convolution, concatenates
    `skip` (b, 2h, 2w, s) and applies a conv block: -> (b, 2h, 2w, filters). Without a
    skip (`skip=None`) it only upsamples and convolves (the no-skip baseline)."""
    x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"{name}_up")(x)  # (b, 2h, 2w, f)
    if skip is not None:
        x = layers.Concatenate(name=f"{name}_concat")([x, skip])  # (b, 2h, 2w, f + s)
    return apply_conv_block(x, filters, name=name)


@keras.saving.register_keras_serializable(package="dlkit")
class LabelMap(keras.layers.Layer):
    """Per-pixel class ids: (batch, h, w, classes) scores -> (batch, h, w) int32, the
    ArgMax over the last axis (TFLite ARG_MAX, so a device gets a label map).

    `tf.argmax`, not `keras.ops.argmax`: Keras's version adds a BitwiseAnd that TFLite's
    builtin ops lack.
    """

    def call(self, scores):
        import tensorflow as tf

        return tf.argmax(scores, axis=-1, output_type=tf.int32)

    def compute_output_spec(self, scores):
        return keras.KerasTensor(scores.shape[:-1], dtype="int32")
