"""Classification scores in numpy: top-k accuracy, confusion matrix, precision/recall/F1."""

import numpy as np

from dlkit.metrics.calibration import Calibration
from dlkit.metrics.intervals import cluster_bootstrap_interval, wilson_interval


def top_k_accuracy(y_true, probs, k=1):
    """Fraction of rows whose true class is among the `k` highest scores.

    Ties are broken by class index, as `keras.ops.in_top_k` does for distinct scores.

    Args:
        y_true: (n,) int. True class ids.
        probs: (n, classes) float. Scores.
        k: int.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    if len(y_true) == 0:
        return float("nan")
    k = min(k, probs.shape[1])
    # (n, k): indices of the k best scores per row.
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == y_true[:, None], axis=1)))


def confusion_matrix(y_true, y_pred, num_classes):
    """(num_classes, num_classes) counts; rows are true classes, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def precision_recall_f1(matrix):
    """Per-class precision, recall, F1 and support from a confusion matrix (0 where undefined)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return precision, recall, f1, support.astype(np.int64)


def classification_report(y_true, probs, labels, k=3):
    """All scores in one JSON-ready dict (one batch of a ClassificationEvaluator).

    Args:
        y_true: (n,) int.
        probs: (n, classes) float.
        labels: list of str, one per class.
        k: int. For top-k accuracy.
    """
    evaluator = ClassificationEvaluator(labels, k)
    evaluator.update([probs], y_true)
    return evaluator.result()


class ClassificationEvaluator:
    """Accumulates a confusion matrix and top-k hits batch by batch (a dlkit Evaluator).

    When a scored split lists the object each example shows (`split.groups`: several
    views of one object), `accuracy_ci95` is a bootstrap over objects, not examples (views
    of one object are not independent trials), `accuracy_ci95_images` keeps the Wilson
    interval over examples, and `objects` counts them.

    Args:
        labels: list of str, one per class.
        k: int. For top-k accuracy.
        rows: bool. Also keep every row's predicted class and confidence (`report["rows"]`),
            which an app's `annotate` turns into the misclassified inputs (`misclassified`).
    """

    def __init__(self, labels, k=3, rows=False):
        self.labels = list(labels)
        self.k = min(k, len(self.labels))
        self.matrix = np.zeros((len(self.labels), len(self.labels)), dtype=np.int64)
        self.top_k_hits = 0
        self.calibration = Calibration()
        self.hits, self.groups, self.grouped, self.parts = [], [], False, 0
        self.rows = {"predicted": [], "confidence": [], "truth": []} if rows else None

    def begin(self, split):
        """Takes the split's object of each example, if it lists them; groups of different
        splits stay apart (a pooled evaluator sees several splits)."""
        groups = getattr(split, "groups", None)
        self.grouped |= groups is not None
        self.parts += 1
        names = groups if groups is not None else range(len(split.targets))
        self.groups += [f"{self.parts}:{name}" for name in names]

    def update(self, outputs, targets):
        """outputs: [(batch, classes) probabilities]; targets: (batch,) class ids."""
        probs = np.asarray(outputs[0])
        y_true = np.asarray(targets).astype(np.int64)
        y_pred = np.argmax(probs, axis=1)
        self.matrix += confusion_matrix(y_true, y_pred, len(self.labels))
        self.calibration.update(probs.max(axis=1), y_pred == y_true)
        self.hits.append(y_pred == y_true)
        top = np.argsort(-probs, axis=1, kind="stable")[:, : self.k]  # (batch, k)
        self.top_k_hits += int(np.sum(np.any(top == y_true[:, None], axis=1)))
        if self.rows is not None:
            self.rows["predicted"] += y_pred.tolist()
            self.rows["confidence"] += probs.max(axis=1).tolist()
            self.rows["truth"] += y_true.tolist()

    def result(self):
        matrix = self.matrix
        total = int(matrix.sum())
        precision, recall, f1, support = precision_recall_f1(matrix)
        present = support > 0
        nan = float("nan")
        images = wilson_interval(int(np.trace(matrix)), total)
        objects = {}
        if self.grouped and len(self.groups) == total:  # every scored example has its object
            hits = np.concatenate(self.hits) if self.hits else np.zeros(0, bool)
            objects = {
                "objects": len(set(self.groups)),
                "accuracy_ci95": cluster_bootstrap_interval(hits, self.groups),
                "accuracy_ci95_images": images,
            }
        return {
            "count": total,
            "accuracy": float(np.trace(matrix) / total) if total else nan,
            "accuracy_ci95": images,
            **objects,
            f"top_{self.k}_accuracy": self.top_k_hits / total if total else nan,
            "ece": self.calibration.ece(),  # how far the shown confidence is from the hit rate
            "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
            "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "per_class": {
                label: {
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                    "support": int(support[i]),
                }
                for i, label in enumerate(self.labels)
            },
            "confusion_matrix": matrix.tolist(),
            "labels": list(self.labels),
            **({"rows": self.rows} if self.rows is not None else {}),
        }


def misclassified(report, names, key="input", keep=None):
    """The rows a model got wrong, most confident first, from a report kept with `rows`
    (which this takes out of it): a list of {key: the input's name, "true", "predicted",
    "confidence"}; `names` names each row in order (paths, texts). At most `keep`."""
    rows, labels = report.pop("rows"), report["labels"]
    predicted, truth = np.array(rows["predicted"], int), np.array(rows["truth"], int)
    confidence = np.array(rows["confidence"], float)
    wrong = np.flatnonzero(predicted != truth)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:keep]
    return [
        {
            key: names[i],
            "true": labels[truth[i]],
            "predicted": labels[predicted[i]],
            "confidence": float(confidence[i]),
        }
        for i in wrong
    ]
