"""Box utilities in numpy (on device and in evaluation): formats, IoU, NMS, box fusion,
YOLO anchors.

Boxes are `(x0, y0, x1, y1)` unless a name says otherwise (`cxcywh`).
"""

import numpy as np


def cxcywh_to_xyxy(boxes):
    boxes = np.asarray(boxes, np.float32)
    half = boxes[..., 2:4] / 2
    return np.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def xyxy_to_cxcywh(boxes):
    boxes = np.asarray(boxes, np.float32)
    return np.concatenate([(boxes[..., :2] + boxes[..., 2:4]) / 2, boxes[..., 2:4] - boxes[..., :2]], axis=-1)


def area(boxes):
    boxes = np.asarray(boxes, np.float64)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def iou(a, b):
    """Pairwise IoU: (n, 4) x (m, 4) -> (n, m)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes, scores, iou_threshold=0.5, score_threshold=-np.inf, max_output=100):
    """Greedy non-maximum suppression; returns kept indices, best score first.

    Same rule as `tf.image.non_max_suppression`: a box is dropped when its IoU with an
    already kept box is above `iou_threshold`.
    """
    boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > score_threshold]
    keep = []
    for i in order:
        if len(keep) == max_output:
            break
        if keep and np.max(iou(boxes[i : i + 1], boxes[keep])[0]) > iou_threshold:
            continue
        keep.append(int(i))
    return np.array(keep, np.int64)


def class_aware_nms(boxes, scores, classes, iou_threshold=0.5, score_threshold=0.0, max_output=100):
    """NMS within each class: boxes of different classes never suppress each other.

    Each class is suppressed on its own (not by shifting classes apart, which loses tiny
    boxes to rounding); the kept boxes are merged best score first, ties by index.
    """
    boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)
    classes = np.asarray(classes)
    keep = []
    for value in np.unique(classes):
        members = np.flatnonzero(classes == value)
        kept = nms(boxes[members], scores[members], iou_threshold, score_threshold, max_output)
        keep += members[kept].tolist()
    keep = sorted(keep, key=lambda i: (-scores[i], i))[:max_output]
    return np.array(keep, np.int64)


def weighted_box_fusion(boxes, scores, classes, views=1, iou_threshold=0.55, max_output=100):
    """Fuses the detections of several predictions of one image (test-time augmentation,
    an ensemble) into one set: weighted box fusion (Solovyev et al., 2021), with the
    `ensemble-boxes` package's rule (`conf_type="avg"`).

    Best score first, each box joins the fused box of its class it overlaps most, when that
    IoU is above `iou_threshold`, or starts a new one. A fused box is the score-weighted
    mean of its members; its score is their mean score times min(members, views) / views,
    so a box that only some of the `views` predictions found is discounted.

    Returns:
        (boxes (n, 4), scores (n,), classes (n,)), best score first, n <= max_output.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores, classes = np.asarray(scores, np.float64).reshape(-1), np.asarray(classes).reshape(-1)
    fused, members = [], []  # fused[k]: (class, box); members[k]: indices
    for i in np.argsort(-scores, kind="stable"):
        same = [k for k, (value, _) in enumerate(fused) if value == classes[i]]
        overlaps = iou(boxes[i], np.array([fused[k][1] for k in same])).reshape(-1) if same else []
        best = int(np.argmax(overlaps)) if len(overlaps) else -1
        if best >= 0 and overlaps[best] > iou_threshold:
            k = same[best]
            members[k].append(i)
            weights = scores[members[k]]
            fused[k] = (classes[i], weights @ boxes[members[k]] / max(weights.sum(), 1e-12))
        else:
            fused.append((classes[i], boxes[i]))
            members.append([i])
    out_scores = np.array([scores[m].sum() / max(views, len(m)) for m in members])
    order = np.argsort(-out_scores, kind="stable")[:max_output]
    out_boxes = np.array([fused[k][1] for k in order]).reshape(-1, 4)
    return out_boxes, out_scores[order], np.array([fused[k][0] for k in order], classes.dtype)


def shape_iou(wh, anchors):
    """IoU of boxes and anchors as if centred on one point: (n, 2) x (k, 2) -> (n, k)."""
    wh, anchors = np.asarray(wh, np.float64).reshape(-1, 2), np.asarray(anchors, np.float64).reshape(-1, 2)
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = np.prod(wh, axis=1)[:, None] + np.prod(anchors, axis=1)[None, :] - inter
    return inter / np.maximum(union, 1e-12)


def encode_box(box, anchor, grid):
    """A normalised cxcywh box -> (cell row, cell col, tx, ty, tw, th) for an S x S grid:
    the inverse of `bx = (sigmoid(tx) + cx) / S`, `bw = anchor_w * exp(tw)`."""
    cx, cy, w, h = (float(v) for v in box)
    col, row = min(int(cx * grid), grid - 1), min(int(cy * grid), grid - 1)
    fx = np.clip(cx * grid - col, 1e-6, 1 - 1e-6)
    fy = np.clip(cy * grid - row, 1e-6, 1 - 1e-6)
    return (
        row,
        col,
        np.log(fx / (1 - fx)),
        np.log(fy / (1 - fy)),
        np.log(w / anchor[0]),
        np.log(h / anchor[1]),
    )


def decode_box(row, col, t, anchor, grid):
    """(tx, ty, tw, th) at a cell -> normalised cxcywh box."""
    sigmoid = 1 / (1 + np.exp(-np.asarray(t[:2], np.float64)))
    return np.array(
        [
            (sigmoid[0] + col) / grid,
            (sigmoid[1] + row) / grid,
            anchor[0] * np.exp(t[2]),
            anchor[1] * np.exp(t[3]),
        ]
    )
