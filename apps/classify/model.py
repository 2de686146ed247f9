"""Classify model: a pretrained backbone with a new head, trained in two stages."""

import keras
import numpy as np
from keras import layers

from dlkit.errors import DlkitError
from dlkit.metrics.classification import ClassificationEvaluator, misclassified
from dlkit.pretrained import build_backbone
from dlkit.transfer import apply_backbone, from_scratch, transfer_stages


def make_meta(config, source):
    """What a trained model needs to be used: labels, input spec and preprocessing."""
    size = config.image_size
    return {
        "app": "classify",
        "task": "image classification",
        "labels": list(source.labels),
        "input": {"name": "image", "shape": [size, size, 3], "dtype": "float32", "range": [0, 255]},
        "output": {"name": "probs", "shape": [len(source.labels)], "activation": "softmax"},
        "preprocessing": {"color": "RGB", "alpha": "composite on white", "resize": "bilinear (Pillow)"},
        "int8_input": "uint8",
    }


def build_model(config, meta, load_weights=True):
    """Image pixels in [0, 255] -> class probabilities.

    Transfer learning as in the course (dlkit.transfer): the backbone runs with
    `training=False`, so its BatchNorm layers stay in inference mode even when its top
    layers are unfrozen for fine-tuning. From scratch (`weights=none`) BatchNorm trains.
    `load_weights=False` builds the same network without reading pretrained weights
    (for callers that set all weights themselves).
    """
    size = config.image_size
    num_classes = len(meta["labels"])
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    inputs = keras.Input((size, size, 3), name="image")  # (batch, size, size, 3)
    x = layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)  # to [-1, 1]
    weights = config.weights if load_weights else "none"
    backbone = build_backbone(config.backbone, (size, size, 3), config.alpha, weights)
    if config.feature_layer:
        backbone = truncate(backbone, config.feature_layer)
    x = apply_backbone(backbone, x, from_scratch(config))  # (batch, s/32, s/32, channels)
    x = layers.GlobalAveragePooling2D(name="pool")(x)  # (batch, channels)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)  # (batch, classes)
    model = keras.Model(inputs, outputs, name=f"classify_{config.backbone}")
    compile_model(model, config, config.learning_rate)
    return model


def truncate(backbone, layer_name):
    """The backbone up to `layer_name` (its top layers can be too specific to transfer)."""
    names = [layer.name for layer in backbone.layers]
    if layer_name not in names:
        raise DlkitError(f"feature_layer {layer_name!r} is not a layer of {backbone.name}")
    return keras.Model(backbone.input, backbone.get_layer(layer_name).output, name=f"{backbone.name}_cut")


def compile_model(model, config, learning_rate):
    num_classes = model.output_shape[-1]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=min(config.top_k, num_classes), name="top_k"),
        ],
    )


def backbone_of(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise ValueError(f"model {model.name!r} has no backbone sub-model")


def training_stages(config, meta=None):
    """Head training with a frozen backbone, then fine-tuning of its top layers."""
    return transfer_stages(config, backbone_of, lambda model, rate: compile_model(model, config, rate))


def adapt_model(model, model_meta, config, meta, log=print):
    """Reuses a trained model for new data: same classes keep it whole; other classes
    keep its backbone and get a new head (the usual fine-tuning of a shipped model)."""
    if list(model_meta["labels"]) == list(meta["labels"]):
        compile_model(model, config, config.learning_rate)
        return model
    log(f"new classes {meta['labels']} (model had {model_meta['labels']}): keeping the backbone, new head")
    fresh = build_model(config, meta, load_weights=False)
    backbone_of(fresh).set_weights(backbone_of(model).get_weights())
    return fresh


def class_weights(config, loaded):
    """Inverse-frequency weights so small classes count as much as large ones (or None)."""
    if not config.balance_classes:
        return None
    counts = np.bincount(loaded.targets, minlength=int(loaded.targets.max()) + 1)
    return {i: float(len(loaded.targets) / (len(counts) * n)) for i, n in enumerate(counts) if n}


def evaluator(config, meta):
    """Accuracy, top-k, per-class precision/recall/F1 of [class probabilities] outputs,
    and each image's prediction for `annotate`."""
    return ClassificationEvaluator(meta["labels"], k=config.top_k, rows=True)


def annotate(report, split):
    """The misclassified images of the split (their paths), most confident first."""
    if "rows" in report and getattr(split, "paths", None) is not None:
        report["misclassified"] = misclassified(report, list(split.paths), key="path")
    return report


SHOWN_ERRORS = 16  # misclassified images drawn in misclassified.png


def plots(report, meta, out_dir, title=""):
    """The confusion matrix, misclassified.tsv (path, true class, predicted, confidence)
    and misclassified.png: the most confident mistakes, captioned."""
    from pathlib import Path

    from dlkit import io
    from dlkit.edge.image import load_image
    from dlkit.errors import InvalidInputError
    from dlkit.plots import confusion_matrix_plot, image_grid_plot

    out_dir = Path(out_dir)
    path = out_dir / "confusion_matrix.png"
    confusion_matrix_plot(
        report["confusion_matrix"], report["labels"], path, title=title or "confusion matrix"
    )
    written = [str(path)]
    errors = report.get("misclassified")
    if errors is None:  # a report written before it, or a split without file names
        return written
    io.write_tsv(out_dir / "misclassified.tsv", errors, ("path", "true", "predicted", "confidence"))
    written.append(str(out_dir / "misclassified.tsv"))
    images, captions = [], []
    for error in errors:
        if len(images) == SHOWN_ERRORS:
            break
        try:  # a TFDS example has a name, not a file
            images.append(load_image(error["path"], at_least=160))
        except (InvalidInputError, OSError):
            continue
        captions.append(
            f"{Path(error['path']).name}\n{error['true']} -> {error['predicted']} {error['confidence']:.2f}"
        )
    shown = f"{len(images)} most confident of {len(errors)} mistakes"
    drawn = image_grid_plot(images, captions, out_dir / "misclassified.png", title, shown)
    return written + ([str(drawn)] if drawn else [])
