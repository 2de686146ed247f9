"""Face verification and identification metrics from embeddings with identities (numpy).

Every pair of distinct images is a trial: genuine when both show one person, impostor
otherwise; a pair is accepted when the Euclidean distance of its embeddings is at most
the threshold. ROC AUC is the probability that a genuine pair is closer than an
impostor pair (ties count half); TAR at a FAR is the genuine acceptance at the largest
threshold that accepts at most that fraction of impostors; the EER is where the false
accepts and false rejects are equal. Rank-1 identification leaves each image out and
asks whether its nearest other image shows the same person.

Pairs share images, so they are not independent: the 95% intervals of AUC and EER
resample images (a bootstrap), not pairs.
"""

import numpy as np

from dlkit.engine import Evaluator
from dlkit.metrics.intervals import wilson_interval

FARS = (1e-2, 1e-3)
BOOTSTRAP = 200
CURVE_POINTS = 200
PROJECTED = 2000  # images kept for the 2-D projection plot


def pair_distances(embeddings, identities):
    """(distances, genuine) over the pairs i < j."""
    embeddings = np.asarray(embeddings, np.float64)
    squares = (embeddings**2).sum(1)
    squared = np.maximum(squares[:, None] - 2 * embeddings @ embeddings.T + squares[None, :], 0)
    upper = np.triu_indices(len(embeddings), 1)
    identities = np.asarray(identities)
    return np.sqrt(squared[upper]), identities[upper[0]] == identities[upper[1]]


def roc_auc(distances, genuine):
    """P(genuine distance < impostor distance), ties half (the Mann-Whitney U statistic)."""
    from scipy.stats import rankdata

    positives, negatives = int(genuine.sum()), int((~genuine).sum())
    if not positives or not negatives:
        return float("nan")
    ranks = rankdata(-distances)  # the closest pair gets the highest rank
    return float((ranks[genuine].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def roc_curve(distances, genuine):
    """(thresholds, far, tar): accepting pairs at distance <= threshold, for every
    distinct distance in increasing order."""
    order = np.argsort(distances, kind="stable")
    d, g = distances[order], genuine[order]
    last = np.r_[d[1:] != d[:-1], True]  # the last pair of each run of equal distances
    tar = np.cumsum(g)[last] / max(int(g.sum()), 1)
    far = np.cumsum(~g)[last] / max(int((~g).sum()), 1)
    return d[last], far, tar


def tar_at_far(distances, genuine, far_target):
    """(TAR, threshold) at the largest threshold whose FAR is at most `far_target`."""
    thresholds, far, tar = roc_curve(distances, genuine)
    allowed = far <= far_target
    if not allowed.any():
        return 0.0, float(thresholds[0]) - 1e-9
    index = np.flatnonzero(allowed)[-1]
    return float(tar[index]), float(thresholds[index])


def threshold_at_far(distances, genuine, far_target):
    """The distance threshold that accepts at most `far_target` of the impostor pairs."""
    return tar_at_far(distances, genuine, far_target)[1]


def equal_error(distances, genuine):
    """(EER, threshold): where FAR and FRR = 1 - TAR cross (linearly interpolated)."""
    thresholds, far, tar = roc_curve(distances, genuine)
    frr = 1 - tar
    gap = far - frr  # rises from about -1 to +1 with the threshold
    index = int(np.searchsorted(gap, 0.0))
    if index == 0:
        return float(far[0] + frr[0]) / 2, float(thresholds[0])
    if index >= len(gap):
        return float(far[-1] + frr[-1]) / 2, float(thresholds[-1])
    a, b = gap[index - 1], gap[index]
    t = -a / (b - a) if b != a else 0.0
    eer = far[index - 1] + t * (far[index] - far[index - 1])
    threshold = thresholds[index - 1] + t * (thresholds[index] - thresholds[index - 1])
    return float(eer), float(threshold)


def rank1(embeddings, identities):
    """(correct, probes): nearest-other-image identification over the images whose
    person has at least two images."""
    embeddings = np.asarray(embeddings, np.float64)
    identities = np.asarray(identities)
    squares = (embeddings**2).sum(1)
    squared = squares[:, None] - 2 * embeddings @ embeddings.T + squares[None, :]
    np.fill_diagonal(squared, np.inf)
    counts = {identity: int((identities == identity).sum()) for identity in np.unique(identities)}
    probes = np.array([counts[identity] > 1 for identity in identities])
    nearest = squared.argmin(1)
    correct = identities[nearest] == identities
    return int(correct[probes].sum()), int(probes.sum())


def bootstrap_interval(embeddings, identities, statistic, rounds=BOOTSTRAP, seed=0):
    """95% percentile interval of `statistic(distances, genuine)` over image resamples."""
    rng = np.random.default_rng(seed)
    count = len(embeddings)
    values = []
    for _ in range(rounds):
        pick = np.sort(rng.integers(0, count, count))
        distances, genuine = pair_distances(embeddings[pick], identities[pick])
        first, second = np.triu_indices(count, 1)
        keep = pick[first] != pick[second]  # an image drawn twice is not a pair
        if not genuine[keep].any() or genuine[keep].all():
            continue  # a resample of a few images can hold no pair of one kind: nothing to score
        value = statistic(distances[keep], genuine[keep])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return [float("nan"), float("nan")]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def verification_report(embeddings, identities, threshold=None, names=None):
    """Every figure above for embeddings (n, d) of people `identities` (n,).

    Args:
        threshold: float or None. The accept distance of `accuracy`; None: the EER's.
        names: list or None. Person names by identity id (for the projection plot).
    """
    embeddings = np.asarray(embeddings, np.float64)
    identities = np.asarray(identities)
    distances, genuine = pair_distances(embeddings, identities)
    genuine_pairs, impostor_pairs = int(genuine.sum()), int((~genuine).sum())
    report = {
        "images": len(embeddings),
        "identities": len(np.unique(identities)),
        "genuine_pairs": genuine_pairs,
        "impostor_pairs": impostor_pairs,
    }
    correct, probes = rank1(embeddings, identities)
    report["rank1"] = correct / probes if probes else float("nan")
    report["rank1_ci95"] = wilson_interval(correct, probes)
    report["rank1_probes"] = probes
    if not genuine_pairs or not impostor_pairs:
        report["roc_auc"] = float("nan")
        return report
    eer, eer_threshold = equal_error(distances, genuine)
    report["roc_auc"] = roc_auc(distances, genuine)
    report["roc_auc_ci95"] = bootstrap_interval(embeddings, identities, roc_auc)
    report["eer"] = eer
    report["eer_ci95"] = bootstrap_interval(embeddings, identities, lambda d, g: equal_error(d, g)[0])
    report["eer_threshold"] = eer_threshold
    for far in FARS:
        tar, at = tar_at_far(distances, genuine, far)
        key = f"tar_at_far_{far:.0e}".replace("-0", "-")
        report[key] = tar
        report[f"{key}_ci95"] = wilson_interval(round(tar * genuine_pairs), genuine_pairs)
        report[f"{key}_threshold"] = at
        report[f"{key}_impostor_pairs"] = impostor_pairs  # FARs below 1/this are not measurable
    chosen = eer_threshold if threshold is None else float(threshold)
    decisions = (distances <= chosen) == genuine
    report["threshold"] = chosen
    report["threshold_source"] = "eer" if threshold is None else "model"
    report["accuracy"] = float(decisions.mean())
    report["accuracy_ci95"] = wilson_interval(int(decisions.sum()), len(decisions))
    report["far"] = float((distances[~genuine] <= chosen).mean())
    report["frr"] = float((distances[genuine] > chosen).mean())
    thresholds, far, tar = roc_curve(distances, genuine)
    step = max(1, len(far) // CURVE_POINTS)
    report["roc"] = {"far": far[::step].tolist() + [1.0], "tar": tar[::step].tolist() + [1.0]}
    report["distances"] = {
        "genuine": np.percentile(distances[genuine], [0, 50, 100]).tolist(),
        "impostor": np.percentile(distances[~genuine], [0, 50, 100]).tolist(),
    }
    keep = slice(0, PROJECTED)
    report["projection"] = {
        "points": project_2d(embeddings[keep]).round(4).tolist(),
        "identities": [str(names[i]) if names is not None else str(i) for i in identities[keep]],
    }
    return report


def worst_pairs(embeddings, identities, threshold, count=8):
    """The pairs decided wrong at `threshold`, the surest mistakes first: up to `count`
    pairs of one person rejected (the largest distance first), then up to `count` pairs of
    two people accepted (the smallest first). [{"first", "second" (indices, first <
    second), "same" (one person), "distance"}]."""
    distances, genuine = pair_distances(embeddings, identities)
    first, second = np.triu_indices(len(embeddings), 1)
    rejected = np.flatnonzero(genuine & (distances > threshold))
    rejected = rejected[np.argsort(-distances[rejected], kind="stable")][:count]
    accepted = np.flatnonzero(~genuine & (distances <= threshold))
    accepted = accepted[np.argsort(distances[accepted], kind="stable")][:count]
    return [
        {
            "first": int(first[k]),
            "second": int(second[k]),
            "same": bool(genuine[k]),
            "distance": float(distances[k]),
        }
        for k in (*rejected, *accepted)
    ]


def project_2d(embeddings):
    """The first two principal components of the embeddings (n, 2)."""
    centred = embeddings - embeddings.mean(0)
    if len(centred) < 2:
        return np.zeros((len(centred), 2))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    return np.pad(points, ((0, 0), (0, 2 - points.shape[1])))


class VerificationEvaluator(Evaluator):
    """Collects embeddings and identities batch by batch; `result` scores all pairs.

    Args:
        threshold: float or None. The model's accept distance (None: the EER's).
        names: list or None. Person names by identity id.
    """

    def __init__(self, threshold=None, names=None):
        self.threshold, self.names = threshold, names
        self.embeddings, self.identities = [], []

    def update(self, outputs, targets):
        self.embeddings.append(np.asarray(outputs[0], np.float32))
        self.identities.append(np.asarray(targets).reshape(-1))

    def result(self):
        if not self.embeddings:
            return {"images": 0, "roc_auc": float("nan")}
        embeddings, identities = np.concatenate(self.embeddings), np.concatenate(self.identities)
        report = verification_report(embeddings, identities, self.threshold, self.names)
        if "threshold" in report:  # for an app's `annotate`, never kept
            report["rows"] = {"worst_pairs": worst_pairs(embeddings, identities, report["threshold"])}
        return report
