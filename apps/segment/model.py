"""Segment model: a U-Net whose contracting path is a pretrained backbone (or the paper's
double-convolution blocks) and whose expanding path is transposed-convolution blocks
joined with the skips; per-pixel class probabilities."""

import dataclasses
from pathlib import Path

import keras
import numpy as np
from keras import layers

from dlkit.data.masks import VOID
from dlkit.errors import DlkitError
from dlkit.layers.unet import LabelMap, apply_conv_block, apply_up_block
from dlkit.losses import DiceCrossEntropy
from dlkit.metrics.segmentation import SegmentationEvaluator
from dlkit.pretrained import build_backbone
from dlkit.pretrained.efficientnet_lite import stride_features
from dlkit.transfer import apply_backbone, from_scratch, transfer_stages

# Backbone layers whose outputs are the skips (strides 2, 4, 8, 16) and the bottom (32):
# the expansion activations before each downsampling block, as in the TensorFlow U-Net
# tutorial over MobileNetV2.
SKIPS = {
    "mobilenet_v2": (
        "block_1_expand_relu",
        "block_3_expand_relu",
        "block_6_expand_relu",
        "block_13_expand_relu",
        "block_16_project",
    ),
    # The same places in EfficientNet-Lite0, -Lite1 and -Lite2 (blocks numbered through);
    # the bottom is the last activation, what the classifier's head reads.
    **{f"efficientnet_lite{variant}": tuple(stride_features(variant).values()) for variant in (0, 1, 2)},
}
ENCODERS = ("backbone", "unet")


def make_meta(config, source):
    """Labels (background first) and the input/output spec."""
    size = config.image_size
    if len(source.labels) < 2:
        raise DlkitError(f"{source.description}: needs the background and at least one class")
    return {
        "app": "segment",
        "task": "semantic segmentation",
        "labels": list(source.labels),
        "input": {"name": "image", "shape": [size, size, 3], "dtype": "float32", "range": [0, 255]},
        "output": {"name": "probs", "shape": [size, size, len(source.labels)], "activation": "softmax"},
        "preprocessing": {"color": "RGB", "resize": "bilinear (Pillow); masks nearest"},
        "int8_input": "uint8",
    }


def build_model(config, meta, load_weights=True):
    """Pixels (b, S, S, 3) in [0, 255] -> class probabilities (b, S, S, classes)."""
    size, classes = config.image_size, len(meta["labels"])
    if config.encoder not in ENCODERS:
        raise DlkitError(f"encoder must be one of {', '.join(ENCODERS)}, got {config.encoder!r}")
    if size % 32:
        raise DlkitError(f"image_size must be a multiple of 32 (the U-Net halves it 5 times), got {size}")
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)  # to [-1, 1]
    if config.encoder == "unet":
        skips = []
        for level, filters in enumerate(config.encoder_filters):
            x = apply_conv_block(x, filters, name=f"down{level + 1}")  # (b, S / 2^level, ...)
            skips.append(x)
            x = layers.MaxPooling2D(name=f"pool{level + 1}")(x)
        x = apply_conv_block(x, 2 * config.encoder_filters[-1], name="bottom")
        head = layers.Conv2D(classes, 1, name="logits")
    else:
        if config.backbone not in SKIPS:
            raise DlkitError(f"segment supports backbones {', '.join(SKIPS)}, got {config.backbone!r}")
        weights = config.weights if load_weights else "none"
        backbone = build_backbone(config.backbone, (size, size, 3), config.alpha, weights)
        encoder = keras.Model(
            backbone.input,
            [backbone.get_layer(name).output for name in SKIPS[config.backbone]],
            name="encoder",
        )
        *skips, x = apply_backbone(encoder, x, from_scratch(config))  # skips at S/2..S/16; x at S/32
        # The last up block ends at stride 2: a transposed convolution gives full resolution.
        head = layers.Conv2DTranspose(classes, 3, strides=2, padding="same", name="logits")
    if len(config.decoder_filters) != len(skips):
        raise DlkitError(
            f"decoder_filters needs {len(skips)} values (one per skip), got {config.decoder_filters}"
        )
    for index, (skip, filters) in enumerate(zip(reversed(skips), config.decoder_filters)):
        x = apply_up_block(x, skip if config.skips else None, filters, name=f"up{index + 1}")
    outputs = layers.Softmax(name="probs")(head(x))  # (b, S, S, classes)
    model = keras.Model(inputs, outputs, name=f"unet_{config.encoder}")
    compile_model(model, config, config.learning_rate)
    return model


def compile_model(model, config, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=DiceCrossEntropy(ce_weight=config.ce_weight, dice_weight=config.dice_weight),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy")],
    )


def backbone_of(model):
    return model.get_layer("encoder")


def training_stages(config, meta=None):
    """Backbone encoder: the transfer recipe (head, then top layers). The paper's encoder
    trains from scratch in one stage."""
    compile_at = lambda model, rate: compile_model(model, config, rate)  # noqa: E731
    if config.encoder == "unet":
        return transfer_stages(dataclasses.replace(config, weights="none"), lambda model: model, compile_at)
    return transfer_stages(config, backbone_of, compile_at)


def adapt_model(model, model_meta, config, meta, log=print):
    """Same classes: continue training. Other classes: keep everything but the last layer."""
    if list(model_meta["labels"]) == list(meta["labels"]):
        compile_model(model, config, config.learning_rate)
        return model
    log(f"new classes {meta['labels']} (model had {model_meta['labels']}): new output layer")
    fresh = build_model(config, meta, load_weights=False)
    for layer in fresh.layers:
        if layer.weights and layer.name != "logits":
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return fresh


def evaluator(config, meta):
    """Per-class IoU and Dice, mean IoU, foreground IoU, pixel accuracy."""
    return SegmentationEvaluator(meta["labels"])


def recording(run, found):
    """`run` that also appends each batch's label maps ((b, h, w) uint8, the argmax of its
    class scores) to the list `found` (tools that score two models pairwise keep what each
    found)."""

    def call(inputs):
        outputs = run(inputs)
        found.append(np.argmax(outputs[0], axis=-1).astype(np.uint8))
        return outputs

    return call


def inference_model(model, config, meta):
    """The training model, or with `meta["argmax"]` (export --argmax) the same network
    ending in a per-pixel ArgMax: (batch, S, S) int32 class ids (TFLite ARG_MAX)."""
    if not meta.get("argmax"):
        return model
    labels = LabelMap(name="label_map")(model.output)
    return keras.Model(model.input, labels, name=f"{model.name}_argmax")


class SampleOverlays(keras.callbacks.Callback):
    """After every epoch, `samples/epoch_NNN.png` in the run: a few fixed validation
    images, each as image | true classes | predicted classes (tinted), so a run can be
    watched as it learns."""

    def __init__(self, folder, images, masks):
        super().__init__()
        self.folder, self.images, self.masks = Path(folder), np.asarray(images), np.asarray(masks)

    def on_epoch_end(self, epoch, logs=None):
        from PIL import Image

        from dlkit import io
        from dlkit.apps.segment.edge import overlay

        predicted = np.argmax(self.model.predict(self.images.astype(np.float32), verbose=0), axis=-1)
        rows = [
            np.concatenate([image, np.asarray(overlay(image, np.where(mask == VOID, 0, mask))),
                            np.asarray(overlay(image, guess.astype(np.uint8)))], axis=1)
            for image, mask, guess in zip(self.images, self.masks, predicted)
        ]  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        with io.atomic_path(self.folder / f"epoch_{epoch + 1:03d}.png") as tmp:
            Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")


def training_callbacks(config, meta, run_dir, val_split, count=4):
    """Sample overlays of the first `count` validation images after every epoch."""
    return [SampleOverlays(Path(run_dir) / "samples", val_split.inputs[:count], val_split.targets[:count])]
