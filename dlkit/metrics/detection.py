"""COCO-style detection metrics in numpy: AP per class at IoU 0.50:0.95, mAP@0.5,
mAP@0.5:0.95 and precision-recall curves, following pycocotools' matching and
101-point interpolation (checked against pycocotools in the tests); and the confusion
matrix with a background class that Ultralytics' validation draws."""

import numpy as np

from dlkit.edge.boxes import iou
from dlkit.metrics.intervals import paired_bootstrap

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def _match(det_boxes, gt_boxes, threshold):
    """pycocotools' greedy matching: detections in score order take the unmatched ground
    truth with the highest IoU >= threshold. Returns a bool per detection."""
    matched_gt = np.zeros(len(gt_boxes), bool)
    hits = np.zeros(len(det_boxes), bool)
    if not len(gt_boxes) or not len(det_boxes):
        return hits
    overlaps = iou(det_boxes, gt_boxes)
    for d in range(len(det_boxes)):
        best, best_iou = -1, min(threshold, 1 - 1e-10)
        for g in range(len(gt_boxes)):
            if matched_gt[g] or overlaps[d, g] < best_iou:
                continue
            best, best_iou = g, overlaps[d, g]
        if best >= 0:
            matched_gt[best] = True
            hits[d] = True
    return hits


def average_precision(hits, scores, num_gt):
    """(AP, interpolated precision at the 101 recall points) for one class and IoU threshold.

    Args:
        hits: bool per detection (all images), in the image order they were collected.
        scores: float per detection.
        num_gt: int. Ground-truth boxes of the class.
    """
    ap, sampled = _average_precisions(np.asarray(hits, bool)[None], scores, num_gt)
    return float(ap[0]), sampled[0]


def _average_precisions(hits, scores, num_gt):
    """`average_precision` at several IoU thresholds at once: hits (thresholds, n) ->
    (AP (thresholds,), interpolated precision (thresholds, 101)). One sort of the scores
    serves every threshold."""
    hits = np.asarray(hits, bool)
    if not hits.shape[1]:
        return np.zeros(len(hits)), np.zeros((len(hits), len(RECALL_POINTS)))
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    hits = hits[:, order]
    tp = np.cumsum(hits, axis=1)
    fp = np.cumsum(~hits, axis=1)
    recall = tp / num_gt
    precision = tp / np.maximum(tp + fp, np.spacing(1))
    # best precision at this recall or more
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    # Each row's first recall >= each point (a search per row: shifting the rows apart to
    # search once would round recalls and points differently, and move ties).
    length = hits.shape[1]
    indices = np.stack([np.searchsorted(row, RECALL_POINTS, side="left") for row in recall])
    sampled = np.where(
        indices < length, np.take_along_axis(envelope, np.minimum(indices, length - 1), axis=1), 0.0
    )
    return sampled.mean(axis=1), sampled


def matches(predictions, ground_truth, num_classes, max_detections=100):
    """Each image's detections matched to its ground truth, once: per class, a list per
    image of (scores (n,), hits (IoU thresholds, n) bool, number of ground-truth boxes). AP over
    any selection of images (`average_precisions`) needs no matching again."""
    table = [[] for _ in range(num_classes)]
    for (p_boxes, p_scores, p_classes), (g_boxes, g_classes) in zip(predictions, ground_truth):
        p_boxes, p_scores, p_classes = (np.asarray(v) for v in (p_boxes, p_scores, p_classes))
        g_boxes, g_classes = np.asarray(g_boxes).reshape(-1, 4), np.asarray(g_classes)
        for cls in range(num_classes):
            mine = p_classes == cls
            boxes, scores = p_boxes.reshape(-1, 4)[mine], p_scores[mine]
            order = np.argsort(-scores, kind="mergesort")[:max_detections]
            boxes, scores = boxes[order], scores[order]
            gt = g_boxes[g_classes == cls]
            hits = np.stack([_match(boxes, gt, t) for t in IOU_THRESHOLDS]).reshape(len(IOU_THRESHOLDS), -1)
            table[cls].append((scores, hits, len(gt)))
    return table


def average_precisions(table, images=None):
    """(AP (classes x IoU thresholds), NaN where a class has no ground truth; the
    interpolated precision at IoU 0.5 per class) over `images` (indices into the
    images, repeats allowed; default all)."""
    num_classes = len(table)
    ap = np.full((num_classes, len(IOU_THRESHOLDS)), np.nan)
    curves = {}
    for cls in range(num_classes):
        rows = table[cls] if images is None else [table[cls][i] for i in images]
        num_gt = sum(row[2] for row in rows)
        if num_gt == 0:
            continue
        scores = np.concatenate([row[0] for row in rows])  # rows: num_gt > 0
        hits = np.concatenate([row[1] for row in rows], axis=1)
        ap[cls], sampled = _average_precisions(hits, scores, num_gt)
        curves[cls] = sampled[0]
    return ap, curves


def _means(ap):
    valid = ~np.isnan(ap[:, 0])
    if not valid.any():
        return 0.0, 0.0
    return float(np.mean(ap[valid, 0])), float(np.mean(ap[valid]))


def coco_map(predictions, ground_truth, num_classes, max_detections=100, bootstrap=0, seed=0):
    """COCO-style mAP.

    Args:
        predictions: list per image of (boxes (n, 4) xyxy, scores (n,), classes (n,)).
        ground_truth: list per image of (boxes (m, 4) xyxy, classes (m,)).
        num_classes: int.
        max_detections: int. Detections kept per image and class (COCO's maxDets).
        bootstrap: int. Resamplings of the images for 95% intervals (0: none).

    Returns:
        dict: map50, map50_95, ap (classes x IoU thresholds, NaN where a class has no
        ground truth), per-class interpolated precision-recall curves at IoU 0.5, and
        with `bootstrap`, map50_ci95 and map50_95_ci95 ([low, high]: the images are
        resampled, as objects in one image are not independent).
    """
    table = matches(predictions, ground_truth, num_classes, max_detections)
    ap, curves = average_precisions(table)
    map50, map50_95 = _means(ap)
    result = {
        "map50": map50,
        "map50_95": map50_95,
        "ap": ap,
        "curves": {
            cls: {"recall": RECALL_POINTS.round(2).tolist(), "precision": sampled.round(4).tolist()}
            for cls, sampled in curves.items()
        },
    }
    if bootstrap and len(ground_truth) > 1:
        rng = np.random.default_rng(seed)
        samples = np.array(
            [
                _means(average_precisions(table, rng.integers(0, len(ground_truth), len(ground_truth)))[0])
                for _ in range(bootstrap)
            ]
        )
        for column, key in enumerate(("map50", "map50_95")):
            result[f"{key}_ci95"] = np.percentile(samples[:, column], [2.5, 97.5]).tolist()
    return result


def map_difference(first, second, ground_truth, num_classes, max_detections=100, bootstrap=1000, seed=0):
    """mAP of `first` minus mAP of `second` on the same images, with a paired 95% interval:
    each resampling of the images scores both, so what the images share cancels out.

    Returns:
        dict: map50, map50_95 (first minus second) and their _ci95.
    """
    tables = [matches(p, ground_truth, num_classes, max_detections) for p in (first, second)]

    def difference(images):
        one, other = (_means(average_precisions(table, images)[0]) for table in tables)
        return np.subtract(one, other)

    return paired_bootstrap(difference, len(ground_truth), ("map50", "map50_95"), bootstrap, seed)


def class_agnostic_map(predictions, ground_truth, max_detections=100, bootstrap=0, seed=0):
    """`coco_map` with every box of one class: how well boxes are found and placed,
    whatever class they are given. Set beside the class-aware mAP, it separates
    localisation errors from classification errors.

    Returns:
        dict: map50, map50_95 (and their _ci95 with `bootstrap`).
    """
    one = [(b, s, np.zeros(len(np.asarray(s)), np.int64)) for b, s, _ in predictions]
    truth = [(b, np.zeros(len(np.asarray(c)), np.int64)) for b, c in ground_truth]
    result = coco_map(one, truth, 1, max_detections, bootstrap, seed)
    return {k: v for k, v in result.items() if k.startswith("map")}


def confusion_matrix(predictions, ground_truth, num_classes, conf=0.25, iou_threshold=0.45, per_image=False):
    """Which class each true box was given, with a background class, as Ultralytics'
    validation counts it: detections scoring above `conf` are paired with true boxes of
    any class by IoU above `iou_threshold`, the highest IoU first, each box in one pair at
    most (Ultralytics first keeps each detection's best box only, which can leave a box
    unpaired that a detection's second-best overlap would have found). A paired box counts at (its true class, the detection's class); a true box left
    unpaired is missed (true class, background); a detection left unpaired is a false
    positive (background, its class).

    Args:
        predictions: list per image of (boxes (n, 4) xyxy, scores (n,), classes (n,)).
        ground_truth: list per image of (boxes (m, 4) xyxy, classes (m,)).
        num_classes: int.

    Returns:
        (num_classes + 1, num_classes + 1) int64: rows true, columns predicted, the last
        row and column background (its own cell stays 0: background found nowhere is not
        counted). With `per_image`, one such matrix per image: (images, k + 1, k + 1).
    """
    matrices = np.zeros((len(ground_truth), num_classes + 1, num_classes + 1), np.int64)
    background = num_classes
    for matrix, (p_boxes, p_scores, p_classes), (g_boxes, g_classes) in zip(
        matrices, predictions, ground_truth
    ):
        kept = np.asarray(p_scores).reshape(-1) > conf
        p_boxes = np.asarray(p_boxes).reshape(-1, 4)[kept]
        p_classes = np.asarray(p_classes).reshape(-1)[kept].astype(np.int64)
        g_boxes = np.asarray(g_boxes).reshape(-1, 4)
        g_classes = np.asarray(g_classes).reshape(-1).astype(np.int64)
        overlaps = iou(g_boxes, p_boxes)
        truth_of = np.full(len(p_boxes), -1)
        found = np.zeros(len(g_boxes), bool)
        pairs = np.argwhere(overlaps > iou_threshold)
        for g, d in pairs[np.argsort(-overlaps[tuple(pairs.T)], kind="stable")]:
            if not found[g] and truth_of[d] < 0:
                found[g], truth_of[d] = True, g
        for d, g in enumerate(truth_of):
            if g >= 0:
                matrix[g_classes[g], p_classes[d]] += 1
            else:
                matrix[background, p_classes[d]] += 1
        np.add.at(matrix[:, background], g_classes[~found], 1)
    return matrices if per_image else matrices.sum(0)


def box_counts(matrices):
    """The boxes a confusion matrix (`confusion_matrix`, one or several stacked: (..., k + 1,
    k + 1)) adds up to: {"right", "wrong_class", "missed", "false_positives"}, each an int
    array over the leading axes (a 0-d array for one matrix)."""
    matrices = np.asarray(matrices)
    named = matrices[..., :-1, :-1]
    right = np.trace(named, axis1=-2, axis2=-1)
    return {
        "right": right,
        "wrong_class": named.sum(axis=(-2, -1)) - right,
        "missed": matrices[..., :-1, -1].sum(-1),
        "false_positives": matrices[..., -1, :-1].sum(-1),
    }


SHARES = ("right_share", "wrong_class_share", "missed_share", "false_positive_share")


def confusion_shares(matrices, bootstrap=1000, seed=0):
    """From per-image confusion matrices (`confusion_matrix(..., per_image=True)`): the
    shares of the true boxes named right, named wrong and missed, and the share of the
    detections that are false positives, each with a 95% interval from resampling the
    images (the boxes of one image are not independent).

    Returns:
        dict: {name: share, f"{name}_ci95": [low, high]} for each name in SHARES; a share
        of nothing (no true boxes, no detections) is NaN, without an interval.
    """
    matrices = np.asarray(matrices)

    def shares(matrix):
        counts = box_counts(matrix)
        of_boxes = (counts["right"], counts["wrong_class"], counts["missed"])
        boxes, detections = sum(of_boxes), counts["right"] + counts["wrong_class"] + counts["false_positives"]
        false_positives = counts["false_positives"] / detections if detections else np.nan
        return [count / boxes if boxes else np.nan for count in of_boxes] + [false_positives]

    result = dict(zip(SHARES, (float(v) for v in shares(matrices.sum(0)))))
    if bootstrap and len(matrices) > 1:
        rng = np.random.default_rng(seed)
        samples = np.array(
            [shares(matrices[rng.integers(0, len(matrices), len(matrices))].sum(0)) for _ in range(bootstrap)]
        )
        for column, name in enumerate(SHARES):
            if not np.isnan(samples[:, column]).all():  # no boxes (or detections) at all: no share
                result[f"{name}_ci95"] = np.nanpercentile(samples[:, column], [2.5, 97.5]).tolist()
    return result
