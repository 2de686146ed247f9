"""Segmentation scores accumulated batch by batch: per-class IoU and Dice, mean IoU,
pixel accuracy and foreground IoU from one confusion matrix, the boundary F-score and the
calibration of the pixel probabilities (numpy only)."""

import numpy as np

from dlkit.metrics.calibration import Calibration
from dlkit.metrics.intervals import paired_bootstrap


class SegmentationEvaluator:
    """A dlkit Evaluator for per-pixel labels; class 0 is the background.

    `update` adds a batch to a (classes x classes) confusion matrix, so a split of any
    size is scored in the memory of one batch.

    Args:
        labels: list of str, one per class, background first.

    Example:
        >>> evaluator = SegmentationEvaluator(["background", "cat"])
        >>> evaluator.update([probs], masks)   # probs (b, h, w, 2) or labels (b, h, w)
        >>> evaluator.result()["miou"]
    """

    def __init__(self, labels):
        self.labels = list(labels)
        self.num_classes = len(self.labels)
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)
        self.per_image = []
        self.images = 0
        self.boundary_f = []  # per image: mean boundary F-score over its classes
        self.calibration = Calibration()  # of the pixels' top probabilities (none from label maps)

    def update(self, outputs, targets):
        """outputs: [(b, h, w, classes) scores] or [(b, h, w) labels]; targets: (b, h, w)."""
        predicted = np.asarray(outputs[0])
        confidence = None
        if predicted.ndim == 4:
            confidence = predicted.max(axis=-1)
            predicted = np.argmax(predicted, axis=-1)
        truth = np.asarray(targets).astype(np.int64)
        if predicted.shape != truth.shape:
            raise ValueError(f"predicted labels {predicted.shape} and masks {truth.shape} differ in shape")
        k = self.num_classes
        for i, (true_map, predicted_map) in enumerate(zip(truth, predicted)):
            valid = true_map < k  # void (255) pixels are not scored
            if confidence is not None:
                self.calibration.update(confidence[i][valid], predicted_map[valid] == true_map[valid])
            index = true_map[valid] * k + predicted_map[valid].astype(np.int64)
            matrix = np.bincount(index, minlength=k * k).reshape(k, k)
            self.per_image.append(matrix)  # (k, k) per image: what the bootstrap resamples
            self.matrix += matrix
            self.boundary_f.append(boundary_f_score(true_map, predicted_map, k))
        self.images += len(truth)

    def result(self, bootstrap=1000, seed=0):
        """The scores, with 95% intervals for mean IoU and foreground IoU from `bootstrap`
        resamplings of the images (0: no intervals)."""
        report = scores(self.matrix)
        report["images"] = int(self.images)
        scored = [f for f in self.boundary_f if not np.isnan(f)]
        report["boundary_f"] = float(np.mean(scored)) if scored else float("nan")
        report["ece"] = self.calibration.ece()  # nan when the model gives label maps only
        report["per_class"] = {
            label: {**report["per_class"][i], "pixels": int(self.matrix[i].sum())}
            for i, label in enumerate(self.labels)
        }
        if bootstrap and len(self.per_image) > 1:
            stacked = np.stack(self.per_image)  # (images, k, k)
            rng = np.random.default_rng(seed)
            samples = [
                scores(stacked[rng.integers(0, len(stacked), len(stacked))].sum(0)) for _ in range(bootstrap)
            ]
            for key in ("miou", "foreground_iou"):
                values = [sample[key] for sample in samples if not np.isnan(sample[key])]
                if values:
                    report[f"{key}_ci95"] = [
                        float(np.percentile(values, 2.5)),
                        float(np.percentile(values, 97.5)),
                    ]
        report["confusion_matrix"] = self.matrix.tolist()
        report["rows"] = {"worst": self.worst()}  # for an app's `annotate`, never kept
        return report

    def worst(self, count=16):
        """The `count` images with the lowest foreground IoU (ties in image order), worst
        first: [{"index", "foreground_iou", "miou"}], images without objects left out."""
        rows = []
        for index, matrix in enumerate(self.per_image):
            scored = scores(matrix)
            if not np.isnan(scored["foreground_iou"]):
                rows.append(
                    {"index": index, "foreground_iou": scored["foreground_iou"], "miou": scored["miou"]}
                )
        return sorted(rows, key=lambda row: row["foreground_iou"])[:count]


def iou_difference(first, second, bootstrap=1000, seed=0):
    """Mean IoU and foreground IoU of `first` minus `second`, two SegmentationEvaluators
    updated with the same images in the same order, with paired 95% intervals: each
    resampling of the images scores both, so what the images share cancels out.

    Returns:
        dict: miou, foreground_iou (first minus second) and their _ci95.
    """
    if len(first.per_image) != len(second.per_image):
        raise ValueError(f"{len(first.per_image)} and {len(second.per_image)} images: not the same images")
    keys = ("miou", "foreground_iou")
    a, b = np.stack(first.per_image), np.stack(second.per_image)

    def difference(images):
        one, other = scores(a[images].sum(0)), scores(b[images].sum(0))
        return [one[key] - other[key] for key in keys]

    return paired_bootstrap(difference, len(a), keys, bootstrap, seed)


def scores(confusion):
    """Mean IoU and Dice, pixel accuracy, foreground IoU and per-class IoU/Dice (a list)
    of a (classes x classes) confusion matrix; class 0 is the background."""
    matrix = np.asarray(confusion).astype(np.float64)
    hits = np.diag(matrix)
    truth, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    union = truth + predicted - hits
    present = union > 0  # classes absent from both do not count in the mean
    iou = np.divide(hits, union, out=np.full_like(hits, np.nan), where=present)
    dice = np.divide(2 * hits, truth + predicted, out=np.full_like(hits, np.nan), where=present)
    background_hits = matrix[0, 0]
    foreground = matrix[1:, 1:].sum()  # object pixels called any object class
    fg_union = matrix.sum() - background_hits
    total = matrix.sum()
    return {
        "miou": float(np.nanmean(iou)) if present.any() else float("nan"),
        "mean_dice": float(np.nanmean(dice)) if present.any() else float("nan"),
        "pixel_accuracy": float(hits.sum() / total) if total else float("nan"),
        "foreground_iou": float(foreground / fg_union) if fg_union else float("nan"),
        "per_class": [{"iou": _num(iou[i]), "dice": _num(dice[i])} for i in range(len(hits))],
    }


def _num(value):
    return None if np.isnan(value) else float(value)


BOUNDARY_TOLERANCE = 2  # pixels


def boundary(mask):
    """The pixels of a boolean mask that touch a pixel outside it (4-neighbourhood); the
    image border does not count as outside."""
    padded = np.pad(mask, 1, mode="edge")
    inner = padded[1:-1, 1:-1]
    eroded = inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~eroded


def dilate(mask, radius):
    """`mask` grown by `radius` pixels in every direction (a square neighbourhood)."""
    grown = mask.copy()
    for _ in range(radius):
        padded = np.pad(grown, 1)
        grown = np.zeros_like(grown)
        for dy in range(3):
            for dx in range(3):
                grown |= padded[dy : dy + grown.shape[0], dx : dx + grown.shape[1]]
    return grown


def boundary_f_score(truth, predicted, num_classes, tolerance=BOUNDARY_TOLERANCE):
    """The boundary F-score of one label map (Csurka et al., 2013): per class, precision is
    the share of predicted boundary pixels within `tolerance` pixels of a true boundary
    pixel, recall the converse; F = 2PR / (P + R), averaged over the classes whose
    boundary appears in the truth or the prediction (nan if none). Void pixels (>=
    num_classes) belong to no class."""
    values = []
    for c in range(num_classes):
        true_edge, predicted_edge = boundary(truth == c), boundary(predicted == c)
        if not true_edge.any() and not predicted_edge.any():
            continue
        if not true_edge.any() or not predicted_edge.any():
            values.append(0.0)
            continue
        precision = float((predicted_edge & dilate(true_edge, tolerance)).sum() / predicted_edge.sum())
        recall = float((true_edge & dilate(predicted_edge, tolerance)).sum() / true_edge.sum())
        values.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(values)) if values else float("nan")
