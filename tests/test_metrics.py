import numpy as np
import pytest

from dlkit.metrics.calibration import Calibration
from dlkit.metrics.classification import (
    ClassificationEvaluator,
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


def test_wilson_interval_solves_its_defining_equation():
    from dlkit.metrics.intervals import wilson_interval

    for successes, total in ((81, 100), (1520, 1520), (0, 40), (700, 1000)):
        p = successes / total
        for bound in wilson_interval(successes, total):
            # |p - bound| = z * sqrt(bound (1 - bound) / n): the Wilson bounds' definition.
            assert abs(abs(p - bound) - 1.96 * np.sqrt(bound * (1 - bound) / total)) < 1e-9
    assert all(np.isnan(wilson_interval(0, 0)))
    assert wilson_interval(10000, 10000)[1] == 1.0 and wilson_interval(0, 10000)[0] == 0.0  # exactly


def scipy_paired_bootstrap(samples, statistic, rounds=8000):
    """scipy's 95% percentile-bootstrap interval of `statistic` over paired `samples`."""
    from scipy.stats import bootstrap

    return bootstrap(
        samples, statistic, paired=True, vectorized=False, n_resamples=rounds, method="percentile", rng=1
    ).confidence_interval


def test_cluster_bootstrap_agrees_with_scipy_resampling_the_groups():
    from dlkit.metrics.intervals import cluster_bootstrap_interval

    rng = np.random.default_rng(0)
    skill = rng.uniform(0.3, 1.0, 60)  # each object's chance of being named right
    sizes = rng.integers(3, 8, 60)  # views per object
    groups = np.repeat(np.arange(60), sizes)
    hits = rng.random(len(groups)) < skill[groups]
    ours = cluster_bootstrap_interval(hits, groups, rounds=8000)
    sums, counts = np.bincount(groups, weights=hits), np.bincount(groups)
    reference = scipy_paired_bootstrap((sums, counts), lambda s, n: s.sum() / n.sum())
    assert ours[0] < hits.mean() < ours[1]
    assert abs(ours[0] - reference.low) < 0.015 and abs(ours[1] - reference.high) < 0.015


def test_cluster_bootstrap_is_wider_when_views_repeat_one_outcome():
    """Five identical views of each of 40 objects carry the information of 40 trials,
    not 200: the interval matches the one of the 40 objects alone."""
    from dlkit.metrics.intervals import cluster_bootstrap_interval

    outcomes = np.arange(40) % 4 != 0  # 30 of 40 objects right
    alone = cluster_bootstrap_interval(outcomes, np.arange(40))
    views = cluster_bootstrap_interval(np.repeat(outcomes, 5), np.repeat(np.arange(40), 5))
    independent = cluster_bootstrap_interval(np.repeat(outcomes, 5), np.arange(200))
    assert np.allclose(alone, views, atol=0.02)
    assert views[1] - views[0] > 1.8 * (independent[1] - independent[0])
    assert all(np.isnan(cluster_bootstrap_interval([], [])))


def test_paired_cluster_difference_agrees_with_scipy_resampling_the_groups():
    """Two models on the views of 60 objects: the paired interval of their difference
    matches scipy's bootstrap over the objects' (difference of hits, views) pairs, and
    views that only repeat their object's outcome do not narrow it."""
    from dlkit.metrics.intervals import paired_cluster_difference

    rng = np.random.default_rng(1)
    sizes = rng.integers(3, 8, 60)
    groups = np.repeat(np.arange(60), sizes)
    a = rng.random(len(groups)) < rng.uniform(0.5, 1.0, 60)[groups]
    b = a.copy()
    b[rng.choice(len(b), 40, replace=False)] ^= True
    diff, ours = paired_cluster_difference(a, b, groups, rounds=8000)
    assert diff == pytest.approx(a.mean() - b.mean())
    sums, counts = np.bincount(groups, weights=a.astype(float) - b), np.bincount(groups)
    reference = scipy_paired_bootstrap((sums, counts), lambda s, n: s.sum() / n.sum())
    assert abs(ours[0] - reference.low) < 0.01 and abs(ours[1] - reference.high) < 0.01
    outcomes_a, outcomes_b = np.arange(40) % 4 != 0, np.arange(40) % 5 != 0
    alone = paired_cluster_difference(outcomes_a, outcomes_b, np.arange(40))[1]
    views = paired_cluster_difference(
        np.repeat(outcomes_a, 5), np.repeat(outcomes_b, 5), np.repeat(np.arange(40), 5)
    )[1]
    assert np.allclose(alone, views, atol=0.02)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_cluster_difference(a, b[:-1], groups)


def test_paired_difference_interval_agrees_with_scipy_and_is_narrower_than_unpaired():
    """Two models right on mostly the same examples: the paired interval matches scipy's
    paired percentile bootstrap and the normal approximation, and is far narrower than
    two independent accuracies' would be (the shared examples cancel)."""
    from dlkit.metrics.intervals import paired_difference_interval, wilson_interval

    rng = np.random.default_rng(0)
    a = rng.random(1500) < 0.75
    b = a.copy()
    b[rng.choice(1500, 60, replace=False)] ^= True  # they differ on 60 examples
    diff, ours = paired_difference_interval(a, b, rounds=8000)
    reference = scipy_paired_bootstrap((a.astype(float), b.astype(float)), lambda x, y: x.mean() - y.mean())
    assert diff == pytest.approx(a.mean() - b.mean())
    assert ours[0] <= diff <= ours[1]
    assert abs(ours[0] - reference.low) < 0.002 and abs(ours[1] - reference.high) < 0.002
    # The normal approximation's width from the per-example differences, and far below
    # the width two independent samples' accuracies would give their difference.
    width = ours[1] - ours[0]
    assert width == pytest.approx(2 * 1.96 * np.std(a - b.astype(float)) / np.sqrt(len(a)), rel=0.15)
    wa, wb = (np.diff(wilson_interval(int(x.sum()), len(x)))[0] for x in (a, b))
    assert width < 0.5 * np.hypot(wa, wb)
    assert paired_difference_interval(a, a) == (0.0, [0.0, 0.0])
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference_interval(a, b[:-1])


def test_poisson_interval_bounds_have_the_tail_probabilities():
    from scipy.stats import poisson

    from dlkit.metrics.intervals import poisson_interval

    for count, hours in ((0, 3.0), (1, 1.0), (9, 3.0), (120, 10.0)):
        low, high = poisson_interval(count, hours)
        assert low <= count / hours <= high
        # the upper rate makes `count` or fewer this unlikely; the lower makes `count` or more
        assert abs(poisson.cdf(count, high * hours) - 0.025) < 1e-9
        if count:
            assert abs(poisson.sf(count - 1, low * hours) - 0.025) < 1e-9
    assert poisson_interval(0, 3.0)[0] == 0.0


def test_ece_by_hand_and_in_any_batches():
    """Two bins: 0.9 confidence right 3 of 4 times (gap 0.15), 0.3 confidence right
    1 of 2 times (gap 0.2): ECE = 4/6 x 0.15 + 2/6 x 0.2."""
    confidence = np.array([0.9, 0.9, 0.9, 0.9, 0.3, 0.3])
    correct = np.array([1, 1, 1, 0, 1, 0], bool)
    whole, pieces = Calibration(bins=10), Calibration(bins=10)
    whole.update(confidence, correct)
    for start in range(0, 6, 4):
        pieces.update(confidence[start : start + 4], correct[start : start + 4])
    assert whole.ece() == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.2)
    assert pieces.ece() == pytest.approx(whole.ece())
    assert [row["count"] for row in whole.table()] == [2, 4]
    assert np.isnan(Calibration().ece())
    perfect = Calibration(bins=1)
    perfect.update([0.5, 0.5], [True, False])
    assert perfect.ece() == 0.0


def test_classification_report_has_the_ece_of_its_confidences():
    probs = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]])
    labels = np.array([0, 1, 1, 0])
    evaluator = ClassificationEvaluator(["a", "b"])
    evaluator.update([probs], labels)
    reference = Calibration()
    reference.update(probs.max(axis=1), probs.argmax(axis=1) == labels)
    assert evaluator.result()["ece"] == pytest.approx(reference.ece())


def test_splits_that_list_objects_get_an_interval_over_objects():
    """Through the engine: each split's `groups` reach the evaluator, apart and pooled; the
    interval resamples objects (the same name in two splits is two objects)."""
    from types import SimpleNamespace

    from dlkit.engine import score_splits
    from dlkit.metrics.intervals import cluster_bootstrap_interval, wilson_interval

    rng = np.random.default_rng(0)
    splits = {}
    for name in ("val", "test"):
        targets = rng.integers(0, 2, 60)
        splits[name] = SimpleNamespace(
            inputs=rng.uniform(size=(60, 2)), targets=targets, groups=[f"obj{k // 5}" for k in range(60)]
        )
    app = SimpleNamespace(
        evaluator=lambda config, meta: ClassificationEvaluator(["a", "b"]), annotate=lambda r, s: r
    )
    reports = score_splits(app, None, None, lambda inputs: [inputs], splits)
    hits = {name: np.argmax(split.inputs, 1) == split.targets for name, split in splits.items()}
    for name, split in splits.items():
        assert reports[name]["objects"] == 12
        assert reports[name]["accuracy_ci95"] == cluster_bootstrap_interval(hits[name], split.groups)
        assert reports[name]["accuracy_ci95_images"] == wilson_interval(int(hits[name].sum()), 60)
    # Numbered by split, as the evaluator keeps them apart.
    pooled_groups = [f"{k + 1}:{g}" for k, split in enumerate(splits.values()) for g in split.groups]
    assert reports["pooled"]["objects"] == 24
    assert reports["pooled"]["accuracy_ci95"] == cluster_bootstrap_interval(
        np.concatenate(list(hits.values())), pooled_groups
    )
    # A split without objects: the Wilson interval over examples, as before.
    plain = {"val": SimpleNamespace(inputs=splits["val"].inputs, targets=splits["val"].targets)}
    report = score_splits(app, None, None, lambda inputs: [inputs], plain)["val"]
    assert "objects" not in report and report["accuracy_ci95"] == wilson_interval(int(hits["val"].sum()), 60)
