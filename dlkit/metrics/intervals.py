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
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


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
