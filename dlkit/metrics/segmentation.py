"""Segmentation scores accumulated batch by batch: per-class IoU and Dice, mean IoU,
pixel accuracy and foreground IoU, from one confusion matrix (numpy only)."""

import numpy as np


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
        self.images = 0

    def update(self, outputs, targets):
        """outputs: [(b, h, w, classes) scores] or [(b, h, w) labels]; targets: (b, h, w)."""
        predicted = np.asarray(outputs[0])
        if predicted.ndim == 4:
            predicted = np.argmax(predicted, axis=-1)
        truth = np.asarray(targets).astype(np.int64)
        if predicted.shape != truth.shape:
            raise ValueError(f"predicted labels {predicted.shape} and masks {truth.shape} differ in shape")
        k = self.num_classes
        index = truth.reshape(-1) * k + predicted.reshape(-1).astype(np.int64)
        self.matrix += np.bincount(index, minlength=k * k).reshape(k, k)
        self.images += len(truth)

    def result(self):
        matrix = self.matrix.astype(np.float64)
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
            "images": int(self.images),
            "per_class": {
                label: {"iou": _num(iou[i]), "dice": _num(dice[i]), "pixels": int(truth[i])}
                for i, label in enumerate(self.labels)
            },
            "confusion_matrix": self.matrix.tolist(),
        }


def _num(value):
    return None if np.isnan(value) else float(value)
