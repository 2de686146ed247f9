"""YOLO layers: box decoding (grid offsets, anchors, sigmoid/exp; or anchor-free
distances from a distribution over bins) and in-graph NMS.

Anchor layout shared by the layers, `dlkit.losses.YOLOLoss` and the target encoder: the
model's raw output is (batch, A, 5 + C), A = sum over scales of S * S * B, ordered by
scale (finest grid first), then row, column, anchor.
"""

import keras
import numpy as np
from keras import layers, ops


def anchor_table(grids, anchors):
    """(A, 5) float32 rows `[col, row, anchor_w, anchor_h, grid]` in the output order.

    Args:
        grids: list of int, grid sides per scale (e.g. [16, 8] for strides 16 and 32 at 256 px).
        anchors: list per scale of [w, h] pairs (normalised to the image).
    """
    rows = []
    for grid, scale_anchors in zip(grids, anchors):
        for row in range(grid):
            for col in range(grid):
                for w, h in scale_anchors:
                    rows.append([col, row, w, h, grid])
    return np.array(rows, np.float32)


def decode(raw, table):
    """raw (b, A, 5 + C) -> boxes xyxy (b, A, 4), objectness logits (b, A), class logits.

    `bx = (sigmoid(tx) + cx) / S`, `bw = anchor_w * exp(tw)` (exp clipped to stay finite).
    """
    return decode_fields(raw[..., 0:2], raw[..., 2:4], raw[..., 4], raw[..., 5:], table)


def decode_fields(xy, wh, obj, classes, table):
    """`decode` on the raw output split by field: xy (b, A, 2), wh (b, A, 2), obj (b, A)
    or (b, A, 1), class logits (b, A, C)."""
    table = ops.convert_to_tensor(table)
    offsets, grid, anchor = table[:, 0:2], table[:, 4:5], table[:, 2:4]
    centre = (ops.sigmoid(xy) + offsets) / grid
    size = anchor * ops.exp(ops.clip(wh, -8.0, 4.0))
    boxes = ops.concatenate([centre - size / 2, centre + size / 2], axis=-1)
    if len(obj.shape) == 3:
        obj = obj[..., 0]
    return boxes, obj, classes


@keras.saving.register_keras_serializable(package="dlkit")
class YOLODecode(layers.Layer):
    """Raw head output (b, A, 5 + C) -> boxes (b, A, 4) normalised xyxy, objectness
    probability (b, A), class probabilities (b, A, C).

    The input may also be the raw output split by field, `[xy, wh, obj, classes]`: an
    int8 model then keeps one quantization scale per field (box offsets, size logits,
    objectness and class logits have very different ranges)."""

    def __init__(self, grids, anchors, **kwargs):
        super().__init__(**kwargs)
        self.grids = [int(g) for g in grids]
        self.anchors = [[[float(v) for v in a] for a in scale] for scale in anchors]
        self.table = anchor_table(self.grids, self.anchors)

    def call(self, raw):
        if isinstance(raw, (list, tuple)):
            boxes, objectness, classes = decode_fields(*raw, self.table)
        else:
            boxes, objectness, classes = decode(raw, self.table)
        return boxes, ops.sigmoid(objectness), ops.softmax(classes, axis=-1)

    def compute_output_spec(self, raw):
        if isinstance(raw, (list, tuple)):
            batch, count, classes = raw[3].shape
        else:
            batch, count, width = raw.shape
            classes = width - 5
        return (
            keras.KerasTensor((batch, count, 4), dtype=self.compute_dtype),
            keras.KerasTensor((batch, count), dtype=self.compute_dtype),
            keras.KerasTensor((batch, count, classes), dtype=self.compute_dtype),
        )

    def get_config(self):
        return {**super().get_config(), "grids": self.grids, "anchors": self.anchors}


def point_table(grids):
    """(P, 3) float32 rows `[cx, cy, grid]` of an anchor-free head: each cell's centre,
    normalised to the image, in the output order (finest grid first, then row, column)."""
    rows = []
    for grid in grids:
        centres = (np.arange(grid, dtype=np.float32) + 0.5) / grid
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        rows.append(np.stack([cx.ravel(), cy.ravel(), np.full(grid * grid, grid, np.float32)], axis=1))
    return np.concatenate(rows).astype(np.float32)


def decode_distances(box_logits, table, reg_max):
    """Anchor-free box decode (YOLOv8's distribution focal loss head): box_logits (b, P,
    4 * reg_max) -> normalised xyxy boxes (b, P, 4).

    Each side's distance from the cell centre (left, top, right, bottom, in cells) is the
    expectation of a softmax over `reg_max` bins 0, 1, ..., reg_max - 1; one cell is
    1 / grid of the image."""
    table = ops.convert_to_tensor(table)
    logits = ops.reshape(box_logits, (-1, table.shape[0], 4, reg_max))
    bins = ops.arange(reg_max, dtype=logits.dtype)
    distances = ops.sum(ops.softmax(logits, axis=-1) * bins, axis=-1) / table[:, 2:3]  # (b, P, 4)
    centre = table[:, 0:2]
    return ops.concatenate([centre - distances[..., 0:2], centre + distances[..., 2:4]], axis=-1)


@keras.saving.register_keras_serializable(package="dlkit")
class AnchorFreeDecode(layers.Layer):
    """`[box logits (b, P, 4 * reg_max), class logits (b, P, C)]` of an anchor-free head ->
    boxes (b, P, 4) normalised xyxy, objectness (b, P) (all ones: the class scores carry
    the confidence), class probabilities (b, P, C) (independent sigmoids, as trained)."""

    def __init__(self, grids, reg_max=16, **kwargs):
        super().__init__(**kwargs)
        self.grids = [int(g) for g in grids]
        self.reg_max = int(reg_max)
        self.table = point_table(self.grids)

    def call(self, fields):
        box_logits, class_logits = fields
        boxes = decode_distances(box_logits, self.table, self.reg_max)
        return boxes, ops.ones_like(class_logits[..., 0]), ops.sigmoid(class_logits)

    def compute_output_spec(self, fields):
        batch, count, classes = fields[1].shape
        return (
            keras.KerasTensor((batch, count, 4), dtype=self.compute_dtype),
            keras.KerasTensor((batch, count), dtype=self.compute_dtype),
            keras.KerasTensor((batch, count, classes), dtype=self.compute_dtype),
        )

    def get_config(self):
        return {**super().get_config(), "grids": self.grids, "reg_max": self.reg_max}


@keras.saving.register_keras_serializable(package="dlkit")
class YOLOPostprocess(layers.Layer):
    """Score threshold + class-aware NMS with fixed-size outputs, inside the graph.

    score = objectness * class probability (best class per box). The `pre_nms` best
    boxes go through one `tf.image.non_max_suppression_padded` per class (the TFLite
    builtin NON_MAX_SUPPRESSION_V4), so two classes never suppress each other; the best
    `max_detections` of all classes are kept. One NMS per class rather than the usual
    offset trick (boxes shifted by `class * 2` into one NMS call): in an int8 model the
    shifted coordinates would share one quantization scale over [0, 2 * classes + 1],
    too coarse for the IoUs NMS compares.

    Returns:
        boxes (b, N, 4) xyxy in [0, 1], scores (b, N), classes (b, N) float, and
        num_detections (b,) int32; rows past num_detections are zero.
    """

    def __init__(self, max_detections=50, iou_threshold=0.5, score_threshold=0.05, pre_nms=300, **kwargs):
        super().__init__(**kwargs)
        self.max_detections = int(max_detections)
        self.iou_threshold = float(iou_threshold)
        self.score_threshold = float(score_threshold)
        self.pre_nms = int(pre_nms)

    def call(self, boxes, objectness, class_probs):
        import tensorflow as tf

        num_classes = class_probs.shape[-1]
        scores_all = objectness[..., None] * class_probs
        scores = tf.reduce_max(scores_all, axis=-1)  # (b, A)
        # Class ids stay integers until the output: an int8 model would quantize a float
        # tensor of ids, and `class == c` would then miss.
        classes = tf.argmax(scores_all, axis=-1, output_type=tf.int32)
        boxes = tf.clip_by_value(boxes, 0.0, 1.0)
        k = min(self.pre_nms, boxes.shape[1]) if boxes.shape[1] else self.pre_nms
        n = self.max_detections

        def one_image(args):
            image_boxes, image_scores, image_classes = args
            top_scores, top = tf.math.top_k(image_scores, k=k)
            top_boxes = tf.gather(image_boxes, top)
            top_classes = tf.gather(image_classes, top)
            picked, picked_scores = [], []
            for c in range(num_classes):
                class_scores = tf.where(tf.equal(top_classes, c), top_scores, tf.zeros_like(top_scores))
                selected, valid = tf.image.non_max_suppression_padded(
                    top_boxes,
                    class_scores,
                    max_output_size=n,
                    iou_threshold=self.iou_threshold,
                    score_threshold=self.score_threshold,
                    pad_to_max_output_size=True,
                )
                live = tf.range(n) < valid
                picked.append(selected)
                picked_scores.append(tf.where(live, tf.gather(class_scores, selected), tf.zeros([n])))
            candidates = tf.concat(picked, axis=0) if num_classes > 1 else picked[0]
            candidate_scores = tf.concat(picked_scores, axis=0) if num_classes > 1 else picked_scores[0]
            best_scores, best = tf.math.top_k(candidate_scores, k=n)
            chosen = tf.gather(candidates, best)
            live = best_scores > 0.0
            keep = tf.cast(live, tf.float32)
            return (
                tf.gather(top_boxes, chosen) * keep[:, None],
                best_scores * keep,
                tf.cast(tf.gather(top_classes, chosen) * tf.cast(live, tf.int32), tf.float32),
                tf.reduce_sum(tf.cast(live, tf.int32)),
            )

        if boxes.shape[0] is not None:
            # A static batch (the exported graph): unrolled, so TFLite gets plain NMS ops
            # and no WHILE loop (int8 calibration crashes on NMS inside a loop).
            per_image = [one_image((boxes[i], scores[i], classes[i])) for i in range(boxes.shape[0])]
            return tuple(tf.stack(parts) for parts in zip(*per_image))
        return tf.map_fn(
            one_image,
            (boxes, scores, classes),
            fn_output_signature=(
                tf.TensorSpec((self.max_detections, 4), tf.float32),
                tf.TensorSpec((self.max_detections,), tf.float32),
                tf.TensorSpec((self.max_detections,), tf.float32),
                tf.TensorSpec((), tf.int32),
            ),
        )

    def compute_output_spec(self, boxes, objectness, class_probs):
        batch, n = boxes.shape[0], self.max_detections
        return (
            keras.KerasTensor((batch, n, 4)),
            keras.KerasTensor((batch, n)),
            keras.KerasTensor((batch, n)),
            keras.KerasTensor((batch,), dtype="int32"),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "max_detections": self.max_detections,
            "iou_threshold": self.iou_threshold,
            "score_threshold": self.score_threshold,
            "pre_nms": self.pre_nms,
        }
