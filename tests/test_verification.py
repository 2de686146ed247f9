"""Verification and identification metrics against brute-force pair counting and
scikit-learn."""

import numpy as np
import pytest

from dlkit.metrics.verification import (
    VerificationEvaluator,
    equal_error,
    pair_distances,
    rank1,
    roc_auc,
    tar_at_far,
    threshold_at_far,
    verification_report,
    worst_pairs,
)


def people(seed, count=6, photos=4, spread=0.35, size=8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, size))
    embeddings = np.repeat(centres, photos, 0) + spread * rng.normal(size=(count * photos, size))
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True), np.repeat(np.arange(count), photos)


def test_pairs_are_every_distinct_pair():
    embeddings, identities = people(0)
    distances, genuine = pair_distances(embeddings, identities)
    n = len(identities)
    assert len(distances) == n * (n - 1) // 2
    i, j = 3, 17
    index = sum(n - 1 - k for k in range(i)) + (j - i - 1)
    assert distances[index] == pytest.approx(np.linalg.norm(embeddings[i] - embeddings[j]))
    assert genuine.sum() == 6 * (4 * 3 // 2)


@pytest.mark.parametrize("seed", range(3))
def test_auc_and_roc_match_scikit_learn(seed):
    from sklearn.metrics import roc_auc_score, roc_curve

    embeddings, identities = people(seed, spread=0.8)
    distances, genuine = pair_distances(embeddings, identities)
    assert roc_auc(distances, genuine) == pytest.approx(roc_auc_score(genuine, -distances))
    far, tar, _ = roc_curve(genuine, -distances)
    for target in (0.01, 0.05, 0.2):
        expected = tar[far <= target].max()
        assert tar_at_far(distances, genuine, target)[0] == pytest.approx(expected)


def test_ties_count_half():
    distances = np.array([0.5, 0.5, 0.5, 0.5])
    genuine = np.array([True, False, True, False])
    assert roc_auc(distances, genuine) == 0.5


def test_threshold_at_far_accepts_at_most_that_share_of_impostors():
    embeddings, identities = people(1, count=10, spread=0.9)
    distances, genuine = pair_distances(embeddings, identities)
    for target in (0.001, 0.01, 0.1):
        threshold = threshold_at_far(distances, genuine, target)
        assert (distances[~genuine] <= threshold).mean() <= target
        # The next larger distance would pass the target: the threshold is the largest allowed.
        larger = np.sort(distances[distances > threshold])
        if len(larger):
            assert (distances[~genuine] <= larger[0]).mean() > target


def test_equal_error_rate_on_a_hand_made_case():
    # Genuine at 1, 2, 3, 6; impostors at 4, 5, 7, 8: at threshold 3 FRR = 1/4, FAR = 0;
    # at 4 FRR = 1/4, FAR = 1/4: the rates cross at 0.25.
    distances = np.array([1, 2, 3, 6, 4, 5, 7, 8], float)
    genuine = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    eer, threshold = equal_error(distances, genuine)
    assert eer == pytest.approx(0.25)
    assert 3 <= threshold <= 4


def test_rank1_is_nearest_other_image():
    embeddings = np.array([[0.0], [0.1], [1.0], [1.05], [5.0]])
    identities = np.array([0, 0, 1, 0, 2])  # image 3 of person 0 sits next to person 1's only image
    correct, probes = rank1(embeddings, identities)
    assert probes == 3  # people 1 and 2 have one image each: no probes
    assert correct == 2  # images 0 and 1 find each other; image 3's nearest is image 2 (person 1)


def test_report_and_evaluator_agree():
    embeddings, identities = people(2)
    evaluator = VerificationEvaluator(threshold=0.8)
    for start in range(0, len(identities), 5):
        evaluator.update([embeddings[start : start + 5]], identities[start : start + 5])
    report = evaluator.result()
    direct = verification_report(embeddings, identities, threshold=0.8)
    assert report["roc_auc"] == direct["roc_auc"] and report["threshold"] == 0.8
    distances, genuine = pair_distances(embeddings, identities)
    assert report["accuracy"] == pytest.approx(((distances <= 0.8) == genuine).mean())
    low, high = report["roc_auc_ci95"]
    assert low <= report["roc_auc"] <= high
    assert len(report["projection"]["points"]) == len(identities)
    assert report["rank1_probes"] == len(identities)


def test_worst_pairs_are_the_surest_mistakes_first():
    # Two people on a line: 0 and 1 are one person 2.0 apart; 2 and 3 the other, 0.2
    # apart; 1 and 2 are 0.5 apart but different people. At threshold 1.0 the mistakes
    # are the pair (0, 1) rejected and the pair (1, 2) accepted.
    embeddings = np.array([[0.0], [2.0], [2.5], [2.7]])
    identities = np.array([0, 0, 1, 1])
    pairs = worst_pairs(embeddings, identities, threshold=1.0)
    assert [(p["first"], p["second"], p["same"]) for p in pairs] == [
        (0, 1, True),
        (1, 2, False),
        (1, 3, False),
    ]
    assert [p["distance"] for p in pairs] == pytest.approx([2.0, 0.5, 0.7])
    assert len(worst_pairs(embeddings, identities, threshold=1.0, count=1)) == 2  # one of each kind
    assert worst_pairs(embeddings, identities, threshold=0.1) == [
        {"first": 0, "second": 1, "same": True, "distance": pytest.approx(2.0)},
        {"first": 2, "second": 3, "same": True, "distance": pytest.approx(0.2)},
    ]
    evaluator = VerificationEvaluator(threshold=1.0)
    evaluator.update([embeddings], identities)
    handed = evaluator.result()["rows"]["worst_pairs"]  # the evaluator keeps float32 embeddings
    assert [(p["first"], p["second"], p["same"]) for p in handed] == [
        (0, 1, True),
        (1, 2, False),
        (1, 3, False),
    ]
    assert [p["distance"] for p in handed] == pytest.approx([2.0, 0.5, 0.7])


def test_intervals_of_a_few_images_skip_resamples_without_both_kinds_of_pair():
    # Four images of two people: many resamples hold one image drawn four times (no pair)
    # or pairs of one kind only; those are skipped, not scored (they raised IndexError).
    embeddings, identities = np.array([[0.0], [0.3], [2.0], [2.2]]), np.array([0, 0, 1, 1])
    report = verification_report(embeddings, identities, threshold=1.0)
    low, high = report["eer_ci95"]
    assert 0 <= low <= high <= 1 and report["accuracy"] == 1.0
