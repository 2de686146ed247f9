"""Detect model: MobileNetV2 (or EfficientNet-Lite0) features at strides 16 and 32 (and 8
with `levels=3`), a small feature pyramid and YOLO heads; decode and NMS are layers of the
exported model."""

import keras
import numpy as np
from keras import layers

from dlkit.engine import Evaluator
from dlkit.errors import DlkitError
from dlkit.layers import AnchorFreeDecode, YOLODecode, YOLOPostprocess
from dlkit.losses import TaskAlignedLoss, YOLOLoss
from dlkit.pretrained import build_backbone
from dlkit.pretrained.efficientnet_lite import stride_features
from dlkit.transfer import apply_backbone, from_scratch, transfer_stages

# Backbone layers whose outputs feed the heads (strides 8, 16 and 32): the expansion of
# the first block of the next stride (the richest tensor at each stride) and the last
# activation.
FEATURES = {
    "mobilenet_v2": ("block_6_expand_relu", "block_13_expand_relu", "out_relu"),
    **{
        f"efficientnet_lite{variant}": tuple(stride_features(variant)[stride] for stride in (8, 16, 32))
        for variant in (0, 1, 2)
    },
}
STRIDES = (8, 16, 32)
HEADS = ("p3", "p4", "p5")  # one per stride


def levels_of(count):
    """(strides, head names) of a model with `count` levels: the coarsest ones."""
    if count not in (2, 3):
        raise DlkitError(f"detect has 2 or 3 levels (strides 16, 32 and 8), got {count}")
    return STRIDES[-count:], HEADS[-count:]


def postprocess_layers(meta):
    """The first layers of the exported graph after the network: an int8 model keeps them,
    and everything after them (concatenation, NMS), in float."""
    return tuple(f"decode_{name}" for name in levels_of(len(meta["grids"]))[1])


def make_meta(config, source):
    """Labels, anchors (k-means on the training boxes, sorted by area, small ones to the
    fine grid) and the input/output spec."""
    from dlkit.data.anchors import kmeans_anchors

    boxes = [r.boxes for r in source.records.get("train", []) if len(r.boxes)]
    if not boxes:
        raise DlkitError(f"{source.description}: the training split has no boxes")
    boxes = np.concatenate(boxes)
    strides, _ = levels_of(config.levels)
    grids = [config.image_size // s for s in strides]
    if config.head == "anchor_free":
        per_scale = [[] for _ in strides]  # no anchor shapes: every cell predicts distances
    else:
        k = config.anchors_per_scale * len(strides)
        if len(boxes) < k:
            raise DlkitError(
                f"{source.description}: {len(boxes)} training boxes, need at least {k} for the anchors"
            )
        anchors = kmeans_anchors(boxes[:, 2:] - boxes[:, :2], k, seed=config.seed)
        per_scale = [
            anchors[i * config.anchors_per_scale : (i + 1) * config.anchors_per_scale].tolist()
            for i in range(len(strides))
        ]
    size = config.image_size
    return {
        "app": "detect",
        "task": "object detection",
        "labels": list(source.labels),
        "num_classes": len(source.labels),  # what the head predicts: checked against labels on load
        "head": {"type": config.head, "reg_max": config.reg_max},
        "grids": grids,
        "anchors": per_scale,
        "input": {"name": "image", "shape": [size, size, 3], "dtype": "float32", "range": [0, 255]},
        "outputs": [
            {"name": "boxes", "shape": [config.max_detections, 4], "format": "xyxy normalised"},
            {"name": "scores", "shape": [config.max_detections]},
            {"name": "classes", "shape": [config.max_detections]},
            {"name": "num_detections", "shape": []},
        ],
        "preprocessing": {"color": "RGB", "resize": "bilinear (Pillow), no letterbox"},
        "int8_input": "uint8",
    }


def build_model(config, meta, load_weights=True):
    """Training model: pixels (b, S, S, 3) in [0, 255] -> raw head output (b, A, 5 + C)."""
    size, classes = config.image_size, len(meta["labels"])
    if config.backbone not in FEATURES:
        raise DlkitError(f"detect supports backbones {', '.join(FEATURES)}, got {config.backbone!r}")
    weights = config.weights if load_weights else "none"
    backbone = build_backbone(config.backbone, (size, size, 3), config.alpha, weights)
    _, heads = levels_of(len(meta["grids"]))
    names = FEATURES[config.backbone][-len(heads) :]
    features = keras.Model(
        backbone.input, [backbone.get_layer(name).output for name in names], name="backbone"
    )
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)
    c = apply_backbone(features, x, from_scratch(config))
    width = config.head_channels
    # Top-down pyramid: each finer level adds its lateral to the coarser one upsampled.
    # (The stride-16 step keeps its first names, fpn_add and fpn_up, so trained two-level
    # files load.)
    p = [_conv(c[-1], width, 1, "lateral5")]
    for level, suffix in ((4, ""), (3, "3"))[: len(heads) - 1]:
        lateral = _conv(c[-1 - len(p)], width, 1, f"lateral{level}")
        upsampled = layers.UpSampling2D(name=f"fpn_up{suffix}")(p[0])
        p.insert(0, layers.Add(name=f"fpn_add{suffix}")([lateral, upsampled]))
    raws = []
    anchor_free = head_type(meta) == "anchor_free"
    for name, level, grid in zip(heads, p, meta["grids"]):
        # The stride-8 head works on 4x the cells of the stride-16 one: half as wide.
        head_width = width // 2 if name == "p3" else width
        if anchor_free:
            raws.append(_predict_distances(level, head_width, name, grid, meta["head"]["reg_max"], classes))
            continue
        h = _conv(level, head_width, 3, f"{name}_head1")
        h = _conv(h, head_width, 3, f"{name}_head2")
        raws.append(_predict(h, name, grid, config.anchors_per_scale, classes))
    raw = layers.Concatenate(axis=1, name="raw")(raws)
    model = keras.Model(inputs, raw, name=f"yolo_{config.backbone}")
    compile_model(model, config, meta, config.learning_rate)
    return model


def _conv(x, filters, kernel, name):
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


# Per-anchor fields of the raw output, each from its own 1x1 convolution: one tensor (and
# one int8 scale) per field, so small box offsets do not share a scale with logits.
FIELDS = (("xy", 2), ("wh", 2), ("obj", 1), ("cls", None))


def _predict(h, name, grid, anchors, classes, prior=0.01):
    """Raw (b, S * S * anchors, 5 + C) of one scale. Objectness starts at probability
    `prior` so the many empty anchors do not swamp the first steps (RetinaNet's
    initialisation)."""
    parts = []
    for field, width in FIELDS:
        width = width or classes
        bias = -np.log((1 - prior) / prior) if field == "obj" else 0.0
        out = layers.Conv2D(
            anchors * width, 1, name=f"{name}_{field}", bias_initializer=keras.initializers.Constant(bias)
        )(h)
        parts.append(layers.Reshape((grid * grid * anchors, width), name=f"{name}_{field}_flat")(out))
    return layers.Concatenate(axis=-1, name=f"{name}_raw")(parts)


def head_type(meta):
    """ "anchors" or "anchor_free" (models saved before the choice have anchors)."""
    return meta.get("head", {}).get("type", "anchors")


def _predict_distances(level, width, name, grid, reg_max, classes, prior=0.01):
    """Raw (b, S * S, 4 * reg_max + C) of one scale of the anchor-free head: YOLOv8's
    decoupled branches, two 3x3 convolutions each, for the box sides' bin logits and for
    the class logits (which start at probability `prior`)."""
    parts = []
    for field, filters in (("box", 4 * reg_max), ("cls", classes)):
        h = _conv(level, width, 3, f"{name}_{field}1")
        h = _conv(h, width, 3, f"{name}_{field}2")
        bias = -np.log((1 - prior) / prior) if field == "cls" else 0.0
        out = layers.Conv2D(
            filters, 1, name=f"{name}_{field}", bias_initializer=keras.initializers.Constant(bias)
        )(h)
        parts.append(layers.Reshape((grid * grid, filters), name=f"{name}_{field}_flat")(out))
    return layers.Concatenate(axis=-1, name=f"{name}_raw")(parts)


def make_loss(config, meta):
    if head_type(meta) == "anchor_free":
        return TaskAlignedLoss(
            meta["grids"],
            reg_max=meta["head"]["reg_max"],
            box_weight=config.box_weight or 7.5,
            class_weight=config.class_weight or 0.5,
            dfl_weight=config.dfl_weight,
        )
    return YOLOLoss(
        meta["grids"],
        meta["anchors"],
        box_weight=config.box_weight or 5.0,
        noobj_weight=config.noobj_weight,
        class_weight=config.class_weight or 1.0,
        ignore_threshold=config.ignore_threshold,
    )


def compile_model(model, config, meta, learning_rate):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=10.0), loss=make_loss(config, meta))


def backbone_of(model):
    return model.get_layer("backbone")


def training_stages(config, meta=None):
    """Head with a frozen backbone, then the top `fine_tune_layers` backbone layers, each
    stage's rate decayed by a cosine (the head's to a tenth, fine-tuning's to 0)."""
    return transfer_stages(
        config, backbone_of, lambda model, rate: compile_model(model, config, meta, rate), cosine=True
    )


def inference_model(model, config, meta):
    """The exported graph: pixels -> boxes (b, N, 4), scores (b, N), classes (b, N),
    num_detections (b,), with decode and class-aware NMS inside. Each scale is decoded
    from its per-field predictions (not the concatenated raw output), so an int8 model
    quantizes box offsets, sizes, objectness and class logits each on its own scale."""
    decoded = []
    anchor_free = head_type(meta) == "anchor_free"
    for index, name in enumerate(levels_of(len(meta["grids"]))[1]):
        grids = [meta["grids"][index]]
        if anchor_free:
            fields = [model.get_layer(f"{name}_{field}_flat").output for field in ("box", "cls")]
            decode = AnchorFreeDecode(grids, meta["head"]["reg_max"], name=f"decode_{name}")
        else:
            fields = [model.get_layer(f"{name}_{field}_flat").output for field, _ in FIELDS]
            decode = YOLODecode(grids, [meta["anchors"][index]], name=f"decode_{name}")
        decoded.append(decode(fields))
    boxes, objectness, class_probs = (
        layers.Concatenate(axis=1, name=f"all_{part}")([d[i] for d in decoded])
        for i, part in enumerate(("boxes", "objectness", "classes"))
    )
    outputs = YOLOPostprocess(
        max_detections=config.max_detections,
        iou_threshold=config.iou_threshold,
        score_threshold=config.score_threshold,
        name="nms",
    )(boxes, objectness, class_probs)
    return keras.Model(model.inputs, list(outputs), name=f"{model.name}_nms")


def adapt_model(model, model_meta, config, meta, log=print):
    """Same classes: continue training. Other classes: keep everything but the class
    predictions (the anchors are the model's own, see `DetectApp.inherit_meta`)."""
    if list(model_meta["labels"]) == list(meta["labels"]):
        compile_model(model, config, meta, config.learning_rate)
        return model
    log(f"new classes {meta['labels']} (model had {model_meta['labels']}): new class predictions")
    fresh = build_model(config, meta, load_weights=False)
    for layer in fresh.layers:
        if layer.weights and not layer.name.endswith("_cls"):
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return fresh


def convert(model, config, meta, quantize, representative=None, float_layers=None):
    """TFLite with decode + NMS inside; int8 quantizes the network and keeps decode and
    NMS in float (builtin ops both). Quantized, the decode's chain of 8-bit steps (exp of
    the size logits, scores near 0) cost 4.5 points of val mAP@0.5; in float, 0.6.
    `float_layers=()` quantizes them too (docs/detect.md compares the two); None keeps the
    decode layers in float."""
    from dlkit.export.tflite import convert as convert_keras

    if float_layers is None:
        float_layers = postprocess_layers(meta)
    return convert_keras(
        inference_model(model, config, meta),
        quantize,
        representative,
        batch_size=1,
        int8_input=meta.get("int8_input") if quantize == "int8" else None,
        float_layers=float_layers,
        composites=True,  # the NMS in the graph
    )


def predictions(outputs):
    """Model outputs -> list per image of (boxes, scores, classes) for the valid rows."""
    boxes, scores, classes, counts = outputs
    result = []
    for b, s, c, n in zip(boxes, scores, classes, np.asarray(counts).reshape(-1)):
        n = int(n)
        result.append((np.asarray(b[:n]), np.asarray(s[:n]), np.rint(np.asarray(c[:n])).astype(np.int64)))
    return result


def recording(run, found):
    """`run` that also appends each image's (boxes, scores, classes) to the list `found`
    (tools that score two models pairwise keep what each found)."""

    def call(inputs):
        outputs = run(inputs)
        found.extend(predictions(outputs))
        return outputs

    return call


BOOTSTRAP = 1000  # resamplings of the images for the 95% intervals of the mAPs


CONFUSION_CONF, CONFUSION_IOU = 0.25, 0.45  # Ultralytics' validation confusion matrix


class DetectionEvaluator(Evaluator):
    """COCO-style mAP@0.5, mAP@0.5:0.95, AP per class, the class-agnostic mAPs
    (localisation alone), and the confusion matrix with a background class (detections
    above score 0.25 paired at IoU 0.45, as Ultralytics' validation draws it), with each
    class's precision and recall there. Keeps each image's valid detections, never the
    padded outputs."""

    def __init__(self, labels):
        self.labels = list(labels)
        self.found, self.truth = [], []

    def update(self, outputs, targets):
        self.found += predictions(outputs)
        self.truth += list(targets)

    def result(self):
        from dlkit.metrics.detection import class_agnostic_map, coco_map, confusion_matrix

        found, truth, labels = self.found, self.truth, self.labels
        result = coco_map(found, truth, len(labels), bootstrap=BOOTSTRAP)
        agnostic = class_agnostic_map(found, truth, bootstrap=BOOTSTRAP)
        ap = result["ap"]
        per_image = confusion_matrix(found, truth, len(labels), CONFUSION_CONF, CONFUSION_IOU, per_image=True)
        matrix = per_image.sum(0)
        intervals = {k: v for k, v in result.items() if k.endswith("_ci95")}
        intervals.update({f"class_agnostic_{k}": v for k, v in agnostic.items() if k.endswith("_ci95")})
        return {
            "map50": result["map50"],
            "map50_95": result["map50_95"],
            "class_agnostic_map50": agnostic["map50"],
            "class_agnostic_map50_95": agnostic["map50_95"],
            **intervals,  # 95%, from resampling the images
            "images": int(len(truth)),
            "boxes": int(sum(len(t[1]) for t in truth)),
            "per_class": {
                label: {
                    "ap50": _num(ap[i, 0]),
                    "ap50_95": _num(np.nanmean(ap[i]) if not np.isnan(ap[i, 0]) else np.nan),
                    # at the confusion matrix's score and IoU, as Ultralytics prints P and R
                    "precision": _share(matrix[i, i], matrix[:, i].sum()),
                    "recall": _share(matrix[i, i], matrix[i].sum()),
                }
                for i, label in enumerate(labels)
            },
            "curves": {labels[k]: v for k, v in result["curves"].items()},
            "confusion": _confusion(per_image, labels),
            "rows": {"worst": worst_images(per_image, found, truth, labels)},  # for annotate only
        }


def _confusion(per_image, labels):
    """The confusion matrix with its labels, the box counts it adds up to, and their
    shares with 95% intervals from resampling the images."""
    from dlkit.metrics.detection import box_counts, confusion_shares

    matrix = per_image.sum(0)
    return {
        "score_above": CONFUSION_CONF,
        "iou_above": CONFUSION_IOU,
        **{name: int(count) for name, count in box_counts(matrix).items()},
        **{
            k: _num(v) if isinstance(v, float) else v
            for k, v in confusion_shares(per_image, BOOTSTRAP).items()
        },
        "labels": [*labels, "background"],
        "matrix": matrix.tolist(),
    }


WORST = 16  # images with the most errors that evaluate lists and draws


def worst_images(per_image, found, truth, labels, count=WORST):
    """The `count` images with the most errors at the confusion matrix's threshold (boxes
    named wrong, missed and false positives; ties in image order), each with its counts,
    its detections above the threshold and its true boxes (normalised xyxy): a list of
    dicts with the image's `index` in the split."""
    from dlkit.metrics.detection import box_counts

    counts = box_counts(per_image)
    errors = counts["wrong_class"] + counts["missed"] + counts["false_positives"]
    worst = []
    for i in np.argsort(-errors, kind="stable")[:count]:
        if not errors[i]:
            break
        boxes, scores, classes = found[i]
        kept = np.asarray(scores) > CONFUSION_CONF
        worst.append(
            {
                "index": int(i),
                **{name: int(values[i]) for name, values in counts.items()},
                "found": [
                    {"label": labels[int(c)], "score": float(s), "box": [float(v) for v in b]}
                    for b, s, c in zip(
                        np.asarray(boxes)[kept], np.asarray(scores)[kept], np.asarray(classes)[kept]
                    )
                ],
                "truth": [
                    {"label": labels[int(c)], "box": [float(v) for v in b]}
                    for b, c in zip(np.asarray(truth[i][0]).reshape(-1, 4), np.asarray(truth[i][1]))
                ],
            }
        )
    return worst


def _share(part, whole):
    return float(part / whole) if whole else None


def evaluator(config, meta):
    return DetectionEvaluator(meta["labels"])


def _num(value):
    return None if np.isnan(value) else float(value)


def plots(report, meta, out_dir, title=""):
    """Precision-recall curves per class at IoU 0.5, the images with the most errors
    (their true boxes in white, the detections in their class's colour), and the
    confusion matrix with its background row (false positives) and column (missed
    boxes)."""
    from dlkit.plots import confusion_matrix_plot, precision_recall_plot

    path = f"{out_dir}/precision_recall.png"
    precision_recall_plot(
        report["curves"], path, title=title or "precision-recall (IoU 0.5)", per_class=report["per_class"]
    )
    paths = [path]
    drawn = report.get("worst_images") and _draw_worst(
        report["worst_images"], (meta or {}).get("labels"), f"{out_dir}/worst_images.png", title
    )
    if drawn:
        paths.append(drawn)
    if "confusion" in report:  # reports written before it have none
        confusion = report["confusion"]
        paths.append(
            confusion_matrix_plot(
                confusion["matrix"],
                confusion["labels"],
                f"{out_dir}/confusion_matrix.png",
                title=f"{title or 'boxes'}: score > {confusion['score_above']:g}, IoU > {confusion['iou_above']:g}",
            )
        )
    return paths


def _draw_worst(worst, labels, path, title=""):
    """worst_images.png: each image with its true boxes (white) and detections drawn in
    the colours predict gives the model's `labels`; None when no image can be read."""
    from pathlib import Path

    from PIL import ImageDraw

    from dlkit.apps.detect.edge import draw, to_pixels
    from dlkit.edge.image import load_image
    from dlkit.errors import InvalidInputError
    from dlkit.plots import image_grid_plot

    labels = list(labels or sorted({box["label"] for row in worst for box in row["found"] + row["truth"]}))
    images, captions = [], []
    for row in worst:
        try:
            image = load_image(row["path"], at_least=320)
        except (InvalidInputError, OSError):
            continue
        height, width = image.shape[:2]
        canvas = draw(
            image, to_pixels({"detections": [dict(d) for d in row["found"]]}, width, height), labels
        )
        pen = ImageDraw.Draw(canvas)
        for box in to_pixels({"detections": [dict(t) for t in row["truth"]]}, width, height)["detections"]:
            pen.rectangle(
                box["box_pixels"], outline=(255, 255, 255), width=max(1, round(max(width, height) / 400))
            )
        images.append(np.asarray(canvas))
        counts = ", ".join(
            f"{row[key]} {name}"
            for key, name in (
                ("missed", "missed"),
                ("wrong_class", "named wrong"),
                ("false_positives", "false"),
            )
            if row[key]
        )
        captions.append(f"{Path(row['path']).name}\n{counts}")
    return image_grid_plot(
        images, captions, path, title, "most errors: true boxes white, detections coloured"
    )
