"""YOLO losses: the anchor-based one (CIoU box term, objectness BCE with an ignore
threshold, class CE) and the anchor-free one (task-aligned assignment, CIoU, distribution
focal loss, class BCE)."""

import math

import keras
from keras import ops

from dlkit.layers.yolo import anchor_table, decode, decode_distances, point_table


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


def task_aligned_assignment(
    scores, boxes, points, gt_boxes, gt_classes, gt_valid, top_k=10, alpha=0.5, beta=6.0
):
    """YOLOv8's task-aligned assigner (Feng et al., 2021, TOOD), batched, without gradient.

    For every true box, the cell centres inside it are ranked by the alignment
    `s^alpha * u^beta` (s: the predicted score of the box's class there, u: the IoU of the
    predicted box there with it); the `top_k` best become its positives. A cell claimed
    by several boxes keeps the one its predicted box overlaps most. A positive's soft
    class target is its alignment scaled so that each true box's best positive gets that
    box's best IoU.

    Args:
        scores: (b, P, C) predicted class probabilities.
        boxes: (b, P, 4) predicted normalised xyxy boxes.
        points: (P, 2) cell centres.
        gt_boxes: (b, M, 4); gt_classes: (b, M) int; gt_valid: (b, M) 1 for real rows.

    Returns:
        (target boxes (b, P, 4), target scores (b, P, C), positive mask (b, P) float).
    """
    scores, boxes = ops.stop_gradient(scores), ops.stop_gradient(boxes)
    dtype = boxes.dtype
    classes = scores.shape[-1]
    onehot = ops.one_hot(ops.cast(gt_classes, "int32"), classes, dtype=dtype)  # (b, M, C)
    s = ops.einsum("bmc,bpc->bmp", onehot, scores)
    u = ops.transpose(pairwise_iou(boxes, gt_boxes), (0, 2, 1))  # (b, M, P)
    x, y = points[None, None, :, 0], points[None, None, :, 1]
    g = gt_boxes[:, :, None, :]
    inside = (x > g[..., 0]) & (x < g[..., 2]) & (y > g[..., 1]) & (y < g[..., 3])
    inside = ops.cast(inside, dtype) * gt_valid[:, :, None]
    align = ops.power(s, alpha) * ops.power(u, beta) * inside
    kth = ops.top_k(align, min(top_k, align.shape[-1]))[0][..., -1:]
    positive = ops.cast((align >= kth) & (align > 0), dtype)  # (b, M, P)
    claimed = ops.sum(positive, axis=1, keepdims=True)
    best = ops.one_hot(ops.argmax(u * inside, axis=1), gt_boxes.shape[1], axis=1, dtype=dtype)
    positive = ops.where(claimed > 1, best, positive)
    foreground = ops.cast(ops.sum(positive, axis=1) > 0, dtype)  # (b, P)
    assigned = ops.transpose(positive, (0, 2, 1))  # (b, P, M): one 1 per foreground cell
    target_boxes = ops.matmul(assigned, gt_boxes)
    aligned = align * positive
    top_align = ops.max(aligned, axis=-1, keepdims=True)
    top_iou = ops.max(u * positive, axis=-1, keepdims=True)
    strength = ops.max(aligned * top_iou / (top_align + 1e-9), axis=1)  # (b, P)
    target_scores = ops.matmul(assigned, onehot) * strength[..., None]
    return target_boxes, target_scores, foreground


def distribution_focal_loss(logits, targets, reg_max):
    """DFL (Li et al., 2020): logits (..., 4, reg_max), target distances (..., 4) in
    bins -> (...,) the cross-entropy to the two bins around each target, weighted by
    nearness, averaged over the four sides."""
    targets = ops.clip(targets, 0.0, reg_max - 1 - 0.01)
    left = ops.floor(targets)
    weight_left = left + 1 - targets
    log_probs = ops.log_softmax(logits, axis=-1)
    index = ops.cast(left, "int32")
    pick = lambda i: ops.sum(log_probs * ops.one_hot(i, reg_max, dtype=logits.dtype), axis=-1)  # noqa: E731
    loss = -(weight_left * pick(index) + (1 - weight_left) * pick(index + 1))
    return ops.mean(loss, axis=-1)


@keras.saving.register_keras_serializable(package="dlkit")
class TaskAlignedLoss(keras.losses.Loss):
    """The anchor-free YOLO loss (YOLOv8's): task-aligned assignment, then
    `box_weight * CIoU loss + class_weight * BCE + dfl_weight * DFL`, the box and DFL terms
    weighted per cell by its soft class target, all divided by the batch's total soft
    target (per image: by its mean over the batch).

    `y_true` is (b, M, 6): the image's boxes `[x0, y0, x1, y1, 1, class]`, zero rows
    padding. `y_pred` is the raw (b, P, 4 * reg_max + C) output: per cell, the box sides'
    bin logits, then the class logits (cells ordered as `point_table`).
    """

    def __init__(
        self,
        grids,
        reg_max=16,
        box_weight=7.5,
        class_weight=0.5,
        dfl_weight=1.5,
        top_k=10,
        name="task_aligned_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.grids = [int(g) for g in grids]
        self.reg_max, self.top_k = int(reg_max), int(top_k)
        self.box_weight, self.class_weight = float(box_weight), float(class_weight)
        self.dfl_weight = float(dfl_weight)
        self.table = point_table(self.grids)

    def terms(self, y_true, y_pred):
        """Per image: box (1 - CIoU), class BCE and DFL sums, and the soft target total."""
        table = ops.convert_to_tensor(self.table)
        y_true = ops.cast(y_true, y_pred.dtype)
        count = self.table.shape[0]
        box_logits, class_logits = y_pred[..., : 4 * self.reg_max], y_pred[..., 4 * self.reg_max :]
        boxes = decode_distances(box_logits, self.table, self.reg_max)
        target_boxes, target_scores, _ = task_aligned_assignment(
            ops.sigmoid(class_logits),
            boxes,
            table[:, :2],
            y_true[..., :4],
            y_true[..., 5],
            y_true[..., 4],
            top_k=self.top_k,
        )
        weight = ops.sum(target_scores, axis=-1)  # (b, P), 0 off the foreground cells
        bce = ops.softplus(class_logits) - class_logits * target_scores
        cls = ops.sum(bce, axis=(1, 2))
        box = ops.sum(weight * (1.0 - ciou(boxes, target_boxes)), axis=1)
        centre, grid = table[:, 0:2], table[:, 2:3]
        sides = (
            ops.concatenate([centre - target_boxes[..., :2], target_boxes[..., 2:] - centre], axis=-1) * grid
        )
        logits = ops.reshape(box_logits, (-1, count, 4, self.reg_max))
        dfl = ops.sum(weight * distribution_focal_loss(logits, sides, self.reg_max), axis=1)
        return box, cls, dfl, ops.sum(weight, axis=1)

    def call(self, y_true, y_pred):
        box, cls, dfl, total = self.terms(y_true, y_pred)
        norm = ops.maximum(ops.mean(total), 1.0)
        return (self.box_weight * box + self.class_weight * cls + self.dfl_weight * dfl) / norm

    def get_config(self):
        return {
            **super().get_config(),
            "grids": self.grids,
            "reg_max": self.reg_max,
            "box_weight": self.box_weight,
            "class_weight": self.class_weight,
            "dfl_weight": self.dfl_weight,
            "top_k": self.top_k,
        }
