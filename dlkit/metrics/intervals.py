"""Confidence intervals for reported proportions (accuracy, recall): numpy only."""

import numpy as np


def wilson_interval(successes, total, z=1.96):
    """The 95% Wilson score interval of a proportion `successes / total`, [low, high]
    ([nan, nan] for no trials): the bounds p' with |p - p'| = z sqrt(p' (1 - p') / n)."""
    if not total:
        return [float("nan"), float("nan")]
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    # at p = 0 or 1 the bound on that side is exactly 0 or 1 (rounding leaves 1 - 1e-16)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= total else min(1.0, centre + half)
    return [float(low), float(high)]


def poisson_interval(count, exposure=1.0, confidence=0.95):
    """The exact (Garwood) interval of a Poisson rate `count / exposure`, [low, high]:
    e.g. false accepts per hour from `count` events in `exposure` hours."""
    from scipy.stats import chi2

    if exposure <= 0:
        return [float("nan"), float("nan")]
    tail = (1 - confidence) / 2
    low = chi2.ppf(tail, 2 * count) / 2 if count else 0.0
    high = chi2.ppf(1 - tail, 2 * count + 2) / 2
    return [float(low / exposure), float(high / exposure)]


def cluster_bootstrap_interval(hits, groups, rounds=2000, seed=0):
    """The 95% percentile-bootstrap interval of a proportion whose trials come in groups
    (several views of one object): the groups are resampled with replacement, not the
    trials, so correlated views do not narrow the interval. [low, high].

    Args:
        hits: (n,) bool or 0/1. One trial each.
        groups: (n,) hashable. The group of each trial.
        rounds: int. Resamplings.
        seed: int.
    """
    hits = np.asarray(hits, dtype=np.float64)
    if not len(hits):
        return [float("nan"), float("nan")]
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    sums = np.bincount(index, weights=hits)  # (groups,) hits per group
    sizes = np.bincount(index).astype(np.float64)  # (groups,) trials per group
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sums), (rounds, len(sums)))  # (rounds, groups)
    samples = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    return np.percentile(samples, [2.5, 97.5]).tolist()


def paired_cluster_difference(hits_a, hits_b, groups, rounds=2000, seed=0):
    """Two models' proportions on the same trials in groups (several views of one object):
    mean(a) - mean(b) and its 95% percentile-bootstrap interval, the groups resampled with
    replacement and both models scored on each resampling. (difference, [low, high]).

    Example:
        >>> paired_cluster_difference([1, 1, 0, 1], [1, 0, 0, 0], ["x", "x", "y", "y"])[0]
        0.5
    """
    a, b = np.asarray(hits_a, np.float64), np.asarray(hits_b, np.float64)
    if a.shape != b.shape or a.shape != (len(groups),) or not len(a):
        raise ValueError(
            f"paired trials need equal lengths, not {a.shape}, {b.shape} and {len(groups)} groups"
        )
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    sums = np.bincount(index, weights=a - b)  # (groups,) difference of hits per group
    sizes = np.bincount(index).astype(np.float64)
    picks = np.random.default_rng(seed).integers(0, len(sums), (rounds, len(sums)))
    samples = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    return float((a - b).mean()), np.percentile(samples, [2.5, 97.5]).tolist()


def paired_difference_interval(a, b, rounds=2000, seed=0):
    """The mean of a - b over paired trials (two models right or not on the same
    examples) and its 95% percentile-bootstrap interval, the pairs resampled together:
    (difference, [low, high])."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired trials need two equal-length 1-D arrays, not {a.shape} and {b.shape}")
    picks = np.random.default_rng(seed).integers(0, len(a), size=(rounds, len(a)))
    diffs = (a - b)[picks].mean(axis=1)
    return float((a - b).mean()), [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]


def paired_bootstrap(difference, count, keys, rounds=1000, seed=0):
    """Differences of two models scored on the same `count` images, with paired 95%
    percentile-bootstrap intervals: `difference(images)` (indices into the images,
    repeats allowed) gives one difference per name in `keys`, and each resampling of the
    images scores both models, so what the images share cancels out.

    Returns:
        dict: {key: difference on all images, f"{key}_ci95": [low, high]}.
    """
    rng = np.random.default_rng(seed)
    samples = np.array(
        [difference(rng.integers(0, count, count)) for _ in range(rounds)], np.float64
    ).reshape(-1, len(keys))
    result = dict(zip(keys, (float(v) for v in difference(np.arange(count)))))
    for column, key in enumerate(keys):
        result[f"{key}_ci95"] = np.nanpercentile(samples[:, column], [2.5, 97.5]).tolist()
    return result
