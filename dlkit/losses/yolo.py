"""The YOLO loss: CIoU box term, objectness BCE with an ignore threshold, class CE."""

import math

import keras
from keras import ops

from dlkit.layers.yolo import anchor_table, decode


def ciou(a, b, eps=1e-7):
    """Complete IoU of matching xyxy boxes (..., 4): IoU - centre distance / enclosing
    diagonal - aspect-ratio term (Zheng et al., 2020)."""
    aw, ah = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1]
    bw, bh = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    iw = ops.maximum(ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0]), 0.0)
    ih = ops.maximum(ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = iw * ih
    union = aw * ah + bw * bh - inter + eps
    iou = inter / union
    cw = ops.maximum(a[..., 2], b[..., 2]) - ops.minimum(a[..., 0], b[..., 0])
    ch = ops.maximum(a[..., 3], b[..., 3]) - ops.minimum(a[..., 1], b[..., 1])
    diagonal = cw**2 + ch**2 + eps
    centre = (
        (a[..., 0] + a[..., 2] - b[..., 0] - b[..., 2]) ** 2
        + (a[..., 1] + a[..., 3] - b[..., 1] - b[..., 3]) ** 2
    ) / 4
    v = (4 / math.pi**2) * (ops.arctan(bw / (bh + eps)) - ops.arctan(aw / (ah + eps))) ** 2
    alpha = ops.stop_gradient(v / (1 - iou + v + eps))
    return iou - centre / diagonal - alpha * v


def pairwise_iou(a, b):
    """(b, A, 4) x (b, M, 4) -> (b, A, M)."""
    a, b = a[:, :, None, :], b[:, None, :, :]
    iw = ops.maximum(ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0]), 0.0)
    ih = ops.maximum(ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter + 1e-7)


@keras.saving.register_keras_serializable(package="dlkit")
class YOLOLoss(keras.losses.Loss):
    """YOLO loss over the raw head output.

    `y_true` is (b, A + M, 6): the first A rows hold, per anchor, the assigned box
    `[cx, cy, w, h, 1, class]` (zeros where no object is assigned); the last M rows list
    the image's boxes `[x0, y0, x1, y1, 1, class]` (zero rows are padding), used for the
    ignore rule. `y_pred` is the raw (b, A, 5 + C) output.

    Per image: `box_weight * sum_pos (1 - CIoU) + sum_pos BCE(obj, 1) + noobj_weight *
    sum_{neg, not ignored} BCE(obj, 0) + class_weight * sum_pos CE(class)`. As in the
    course, an anchor without an object contributes only its objectness term; a negative
    anchor whose prediction already overlaps a true box by more than `ignore_threshold`
    contributes nothing.
    """

    def __init__(
        self,
        grids,
        anchors,
        box_weight=5.0,
        noobj_weight=1.0,
        class_weight=1.0,
        ignore_threshold=0.5,
        name="yolo_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.grids = [int(g) for g in grids]
        self.anchors = [[[float(v) for v in a] for a in scale] for scale in anchors]
        self.table = anchor_table(self.grids, self.anchors)
        self.box_weight, self.noobj_weight = float(box_weight), float(noobj_weight)
        self.class_weight, self.ignore_threshold = float(class_weight), float(ignore_threshold)

    def terms(self, y_true, y_pred):
        """The four terms per image: box, objectness (positives), no-object, class."""
        count = self.table.shape[0]
        y_true = ops.cast(y_true, y_pred.dtype)
        assigned, listed = y_true[:, :count], y_true[:, count:]
        positive = assigned[..., 4]  # (b, A)
        boxes, obj_logits, class_logits = decode(y_pred, self.table)
        half = assigned[..., 2:4] / 2
        true_boxes = ops.concatenate([assigned[..., :2] - half, assigned[..., :2] + half], axis=-1)
        box = ops.sum(positive * (1.0 - ciou(boxes, true_boxes)), axis=1)

        best = ops.max(pairwise_iou(boxes, listed[..., :4]) * listed[:, None, :, 4], axis=-1)  # (b, A)
        ignore = ops.cast(best > self.ignore_threshold, y_pred.dtype)
        negative = (1.0 - positive) * (1.0 - ignore)
        bce_pos = ops.softplus(-obj_logits)  # -log sigmoid(z)
        bce_neg = ops.softplus(obj_logits)  # -log (1 - sigmoid(z))
        obj = ops.sum(positive * bce_pos, axis=1)
        noobj = ops.sum(negative * bce_neg, axis=1)

        labels = ops.cast(assigned[..., 5], "int32")
        log_probs = ops.log_softmax(class_logits, axis=-1)
        picked = ops.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
        cls = ops.sum(positive * -picked, axis=1)
        return box, obj, noobj, cls

    def call(self, y_true, y_pred):
        box, obj, noobj, cls = self.terms(y_true, y_pred)
        return self.box_weight * box + obj + self.noobj_weight * noobj + self.class_weight * cls

    def get_config(self):
        return {
            **super().get_config(),
            "grids": self.grids,
            "anchors": self.anchors,
            "box_weight": self.box_weight,
            "noobj_weight": self.noobj_weight,
            "class_weight": self.class_weight,
            "ignore_threshold": self.ignore_threshold,
        }
