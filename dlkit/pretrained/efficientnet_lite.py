"""EfficientNet-Lite0, -Lite1 and -Lite2 in Keras (Tan & Le 2019, "lite" variant for mobile).

Lite differs from EfficientNet-B0: no squeeze-and-excitation, ReLU6 instead of swish,
and a fixed stem and head, all to quantize well and run on mobile accelerators. Layer
names follow `apply_<block>` naming so TFLite graphs and weight files stay readable.

The larger variants scale Lite0's stages as the reference `efficientnet_lite_builder`
does: filters by a width coefficient rounded to multiples of 8, repeats by a depth
coefficient rounded up, except the first and last stages, whose repeats stay, as do the
stem (32 filters) and the head (1280).
"""

import math

import keras
from keras import layers

# (kernel, repeats, filters_in, filters_out, expand_ratio, strides) per stage.
LITE0_STAGES = (
    (3, 1, 32, 16, 1, 1),
    (3, 2, 16, 24, 6, 2),
    (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2),
    (5, 3, 80, 112, 6, 1),
    (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
)
BN_EPSILON = 1e-3
# (width, depth, native resolution) per variant, from `efficientnet_lite_builder`.
LITE_SCALING = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260)}


def round_filters(filters, width, divisor=8):
    """A stage's filters scaled by `width`, to the nearest multiple of `divisor` (never
    more than 10% below the scaled value).

    Example:
        >>> round_filters(112, 1.1), round_filters(192, 1.1)
        (120, 208)
    """
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def lite_stages(variant):
    """Lite0's stage table scaled for `variant` (0, 1 or 2)."""
    width, depth, _ = LITE_SCALING[variant]
    last = len(LITE0_STAGES) - 1
    return tuple(
        (
            kernel,
            repeats if i in (0, last) else math.ceil(depth * repeats),
            round_filters(filters_in, width),
            round_filters(filters_out, width),
            expand,
            strides,
        )
        for i, (kernel, repeats, filters_in, filters_out, expand, strides) in enumerate(LITE0_STAGES)
    )


def stride_features(variant):
    """{stride: layer name} of the richest tensor at strides 2, 4, 8 and 16 (the expansion
    of the first block of the next, strided stage) and 32 (the last activation): what a
    detector's pyramid or a U-Net's skips read.

    Example:
        >>> stride_features(0)
        {2: 'block1_expand_relu', 4: 'block3_expand_relu', 8: 'block5_expand_relu', 16: 'block11_expand_relu', 32: 'top_relu'}
    """
    names, index, stride = {}, 0, 2
    for _, repeats, *_, strides in lite_stages(variant):
        if strides == 2:
            names[stride] = f"block{index}_expand_relu"
            stride *= 2
        index += repeats
    names[32] = "top_relu"
    return names


def apply_conv_bn(x, filters, kernel_size, strides=1, activation=True, *, name):
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if activation else x


def apply_mbconv(x, filters_in, filters_out, expand_ratio, kernel_size, strides, *, name):
    """Inverted residual block without squeeze-excitation (the Lite variant)."""
    inputs = x
    if expand_ratio != 1:
        x = apply_conv_bn(x, filters_in * expand_ratio, 1, name=f"{name}_expand")
    x = layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_dw_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = apply_conv_bn(x, filters_out, 1, activation=False, name=f"{name}_project")
    if strides == 1 and filters_in == filters_out:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def EfficientNetLite(variant, input_shape=(224, 224, 3), include_top=False, classes=1000, name=None):
    """EfficientNet-Lite`variant` mapping images in [-1, 1] to features (or ImageNet logits).

    Args:
        variant: int. 0, 1 or 2.
        input_shape: tuple. (height, width, 3).
        include_top: bool. Add pooling, dropout and the `classes`-way dense layer.
        classes: int. Size of the top layer.
        name: str. The model's name; `efficientnet_lite<variant>` when None.

    Example:
        >>> backbone = EfficientNetLite(2, (160, 160, 3))
        >>> backbone.output_shape, len(lite_stages(2)), sum(s[1] for s in lite_stages(2))
        ((None, 5, 5, 1280), 7, 21)
    """
    inputs = keras.Input(input_shape, name="image")
    x = apply_conv_bn(inputs, 32, 3, strides=2, name="stem")  # (batch, h/2, w/2, 32)
    index = 0
    for kernel, repeats, filters_in, filters_out, expand, strides in lite_stages(variant):
        for repeat in range(repeats):
            x = apply_mbconv(
                x,
                filters_in if repeat == 0 else filters_out,
                filters_out,
                expand,
                kernel,
                strides if repeat == 0 else 1,
                name=f"block{index}",
            )
            index += 1
    x = apply_conv_bn(x, 1280, 1, name="top")  # (batch, h/32, w/32, 1280)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(classes, name="predictions")(x)
    return keras.Model(inputs, x, name=name or f"efficientnet_lite{variant}")


def EfficientNetLite0(input_shape=(224, 224, 3), include_top=False, classes=1000, name="efficientnet_lite0"):
    """EfficientNet-Lite0 (see `EfficientNetLite`).

    Example:
        >>> EfficientNetLite0((160, 160, 3)).output_shape
        (None, 5, 5, 1280)
    """
    return EfficientNetLite(0, input_shape, include_top, classes, name)


def EfficientNetLite1(input_shape=(240, 240, 3), include_top=False, classes=1000, name="efficientnet_lite1"):
    """EfficientNet-Lite1 (see `EfficientNetLite`): Lite0 with 21 blocks instead of 16."""
    return EfficientNetLite(1, input_shape, include_top, classes, name)


def EfficientNetLite2(input_shape=(260, 260, 3), include_top=False, classes=1000, name="efficientnet_lite2"):
    """EfficientNet-Lite2 (see `EfficientNetLite`): Lite1 about 10% wider."""
    return EfficientNetLite(2, input_shape, include_top, classes, name)


def torch_state_to_keras(model, state):
    """Copies an EfficientNet-PyTorch-style state dict (numpy arrays) into `model`.

    Key mapping: `_conv_stem`/`_bn0` -> stem, `_blocks.N._expand_conv`/`_bn0` -> expand,
    `_depthwise_conv`/`_bn1` -> dw, `_project_conv`/`_bn2` -> project, `_conv_head`/`_bn1`
    -> top, `_fc` -> predictions. Convolutions go from (out, in, kh, kw) to (kh, kw, in, out).
    """

    def conv(key):
        return state[f"{key}.weight"].transpose(2, 3, 1, 0)

    def depthwise(key):
        return state[f"{key}.weight"].transpose(2, 3, 0, 1)

    def bn(key):
        return [state[f"{key}.{p}"] for p in ("weight", "bias", "running_mean", "running_var")]

    assign = {
        "stem_conv": [conv("_conv_stem")],
        "stem_bn": bn("_bn0"),
        "top_conv": [conv("_conv_head")],
        "top_bn": bn("_bn1"),
    }
    index = 0
    while f"_blocks.{index}._depthwise_conv.weight" in state:
        prefix = f"_blocks.{index}"
        if f"{prefix}._expand_conv.weight" in state:
            assign[f"block{index}_expand_conv"] = [conv(f"{prefix}._expand_conv")]
            assign[f"block{index}_expand_bn"] = bn(f"{prefix}._bn0")
        assign[f"block{index}_dw_conv"] = [depthwise(f"{prefix}._depthwise_conv")]
        assign[f"block{index}_dw_bn"] = bn(f"{prefix}._bn1")
        assign[f"block{index}_project_conv"] = [conv(f"{prefix}._project_conv")]
        assign[f"block{index}_project_bn"] = bn(f"{prefix}._bn2")
        index += 1
    if "_fc.weight" in state:
        assign["predictions"] = [state["_fc.weight"].T, state["_fc.bias"]]
    names = {layer.name for layer in model.layers if layer.weights}
    for layer_name, weights in assign.items():
        if layer_name in names:
            model.get_layer(layer_name).set_weights(weights)
            names.discard(layer_name)
    if names:
        raise ValueError(f"layers without weights in the state dict: {sorted(names)[:5]}")
    return model
