import numpy as np
import pytest

from dlkit.metrics.classification import (
    classification_report,
    confusion_matrix,
    precision_recall_f1,
    top_k_accuracy,
)


def test_top_k_matches_keras():
    import keras

    rng = np.random.default_rng(1)
    probs = rng.random((50, 7)).astype(np.float32)
    y_true = rng.integers(0, 7, 50)
    for k in (1, 2, 5):
        metric = keras.metrics.SparseTopKCategoricalAccuracy(k=k)
        metric.update_state(y_true, probs)
        assert top_k_accuracy(y_true, probs, k) == pytest.approx(float(metric.result()), abs=1e-6)


def test_confusion_matrix_and_scores_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    matrix = confusion_matrix(y_true, y_pred, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    precision, recall, f1, support = precision_recall_f1(matrix)
    np.testing.assert_allclose(precision, [1.0, 0.5, 0.5])
    np.testing.assert_allclose(recall, [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(f1, [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 / 1.5])
    assert support.tolist() == [3, 2, 1]


def test_undefined_precision_is_zero():
    precision, recall, f1, _ = precision_recall_f1(np.array([[0, 1], [0, 1]]))
    assert precision[0] == 0 and recall[0] == 0 and f1[0] == 0


def test_report_fields():
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.3, 0.6]])
    report = classification_report([0, 1, 2, 1], probs, ["a", "b", "c"], k=2)
    assert report["accuracy"] == 0.75
    assert report["top_2_accuracy"] == 1.0
    assert report["per_class"]["b"]["recall"] == 0.5
    assert report["confusion_matrix"][1] == [0, 1, 1]
