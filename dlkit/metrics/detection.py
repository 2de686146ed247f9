"""COCO-style detection metrics in numpy: AP per class at IoU 0.50:0.95, mAP@0.5,
mAP@0.5:0.95 and precision-recall curves, following pycocotools' matching and
101-point interpolation (checked against pycocotools in the tests)."""

import numpy as np

from dlkit.edge.boxes import iou

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
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    hits = np.asarray(hits, bool)[order]
    tp = np.cumsum(hits)
    fp = np.cumsum(~hits)
    recall = tp / num_gt
    precision = tp / np.maximum(tp + fp, np.spacing(1))
    envelope = precision.copy()
    for i in range(len(envelope) - 1, 0, -1):
        envelope[i - 1] = max(envelope[i - 1], envelope[i])
    indices = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.array([envelope[i] if i < len(envelope) else 0.0 for i in indices])
    return float(sampled.mean()), sampled


def coco_map(predictions, ground_truth, num_classes, max_detections=100):
    """COCO-style mAP.

    Args:
        predictions: list per image of (boxes (n, 4) xyxy, scores (n,), classes (n,)).
        ground_truth: list per image of (boxes (m, 4) xyxy, classes (m,)).
        num_classes: int.
        max_detections: int. Detections kept per image and class (COCO's maxDets).

    Returns:
        dict: map50, map50_95, ap (classes x IoU thresholds, NaN where a class has no
        ground truth), and per-class interpolated precision-recall curves at IoU 0.5.
    """
    ap = np.full((num_classes, len(IOU_THRESHOLDS)), np.nan)
    curves = {}
    for cls in range(num_classes):
        num_gt = sum(int(np.sum(np.asarray(g[1]) == cls)) for g in ground_truth)
        if num_gt == 0:
            continue
        all_hits = [[] for _ in IOU_THRESHOLDS]
        all_scores = []
        for (p_boxes, p_scores, p_classes), (g_boxes, g_classes) in zip(predictions, ground_truth):
            mine = np.asarray(p_classes) == cls
            boxes, scores = np.asarray(p_boxes)[mine].reshape(-1, 4), np.asarray(p_scores)[mine]
            order = np.argsort(-scores, kind="mergesort")[:max_detections]
            boxes, scores = boxes[order], scores[order]
            gt = np.asarray(g_boxes).reshape(-1, 4)[np.asarray(g_classes) == cls]
            all_scores.append(scores)
            for t, threshold in enumerate(IOU_THRESHOLDS):
                all_hits[t].append(_match(boxes, gt, threshold))
        scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
        for t in range(len(IOU_THRESHOLDS)):
            hits = np.concatenate(all_hits[t]) if all_hits[t] else np.zeros(0, bool)
            ap[cls, t], sampled = average_precision(hits, scores, num_gt)
            if t == 0:
                curves[cls] = {
                    "recall": RECALL_POINTS.round(2).tolist(),
                    "precision": sampled.round(4).tolist(),
                }
    valid = ~np.isnan(ap[:, 0])
    return {
        "map50": float(np.mean(ap[valid, 0])) if valid.any() else 0.0,
        "map50_95": float(np.mean(ap[valid])) if valid.any() else 0.0,
        "ap": ap,
        "curves": curves,
    }


def class_agnostic_map(predictions, ground_truth, max_detections=100):
    """`coco_map` with every box of one class: how well boxes are found and placed,
    whatever class they are given. Set beside the class-aware mAP, it separates
    localisation errors from classification errors.

    Returns:
        dict: map50, map50_95.
    """
    one = [(b, s, np.zeros(len(np.asarray(s)), np.int64)) for b, s, _ in predictions]
    truth = [(b, np.zeros(len(np.asarray(c)), np.int64)) for b, c in ground_truth]
    result = coco_map(one, truth, 1, max_detections)
    return {"map50": result["map50"], "map50_95": result["map50_95"]}
