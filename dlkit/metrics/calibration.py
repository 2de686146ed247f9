"""Calibration of a model's confidence, accumulated batch by batch (numpy only).

A model is calibrated when, of the answers it gives with confidence p, a fraction p is
right. The expected calibration error (ECE, Guo et al. 2017) bins the answers by
confidence and averages |accuracy - mean confidence| over the bins, weighted by their
size: 0 is perfect, 0.1 means the shown confidence is off by 10 points on average.
"""

import numpy as np


class Calibration:
    """Equal-width confidence bins: counts, summed confidence and hits per bin.

    Example:
        >>> calibration = Calibration()
        >>> calibration.update(probs.max(axis=1), probs.argmax(axis=1) == labels)
        >>> calibration.ece()
    """

    def __init__(self, bins=15):
        self.bins = bins
        self.count = np.zeros(bins, np.int64)
        self.confidence = np.zeros(bins)
        self.hits = np.zeros(bins)

    def update(self, confidence, correct):
        confidence = np.clip(np.asarray(confidence, np.float64).ravel(), 0.0, 1.0)
        correct = np.asarray(correct, bool).ravel()
        index = np.minimum((confidence * self.bins).astype(np.int64), self.bins - 1)
        self.count += np.bincount(index, minlength=self.bins)
        self.confidence += np.bincount(index, weights=confidence, minlength=self.bins)
        self.hits += np.bincount(index, weights=correct, minlength=self.bins)

    def ece(self):
        """The expected calibration error (nan before any update)."""
        total = self.count.sum()
        if not total:
            return float("nan")
        used = self.count > 0
        gap = np.abs(self.hits[used] - self.confidence[used])  # = count x |accuracy - confidence|
        return float(gap.sum() / total)

    def table(self):
        """[{"confidence", "accuracy", "count"}] of the non-empty bins, for a reliability plot."""
        return [
            {
                "confidence": float(self.confidence[i] / self.count[i]),
                "accuracy": float(self.hits[i] / self.count[i]),
                "count": int(self.count[i]),
            }
            for i in range(self.bins)
            if self.count[i]
        ]
