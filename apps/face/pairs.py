"""The LFW verification protocol (numpy only): `pairs.txt`, 10 folds of matched and
mismatched pairs; per fold, the threshold that is best on the other nine folds is
scored on it, and the accuracy is the mean over folds (with its standard deviation).

    10	300                      folds, pairs of each kind per fold
    Abel_Pacheco	1	4           a matched pair: two photos of one person
    Abdel_Madi_Shabneh	1	Dean_Barker	1   a mismatched pair

Photos are `<folder>/<Name>/<Name>_<number, 4 digits>.jpg`, as LFW ships them.
"""

from pathlib import Path

import numpy as np

from dlkit.errors import InvalidInputError


def read_pairs(path):
    """[(fold, photo_a, photo_b, same)] from a pairs.txt (photos as (name, number))."""
    path = Path(path)
    try:
        lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"{path}: cannot read the pairs file ({error})") from None
    try:
        folds, per_fold = (int(v) for v in lines[0][:2]) if len(lines[0]) >= 2 else (1, int(lines[0][0]))
    except (IndexError, ValueError):
        raise InvalidInputError(f"{path}:1: expected 'folds pairs_per_fold' (e.g. '10 300')") from None
    pairs, body = [], lines[1:]
    if len(body) != folds * 2 * per_fold:
        raise InvalidInputError(
            f"{path}: {len(body)} pair lines; '{folds} {per_fold}' promises {folds * 2 * per_fold}"
        )
    for number, parts in enumerate(body, 2):
        fold = (number - 2) // (2 * per_fold)
        try:
            if len(parts) == 3:
                pairs.append((fold, (parts[0], int(parts[1])), (parts[0], int(parts[2])), True))
            elif len(parts) == 4:
                pairs.append((fold, (parts[0], int(parts[1])), (parts[2], int(parts[3])), False))
            else:
                raise ValueError
        except ValueError:
            raise InvalidInputError(
                f"{path}:{number}: expected 'name n1 n2' or 'name1 n1 name2 n2'"
            ) from None
    return pairs


def photo_path(folder, photo):
    name, number = photo
    return Path(folder) / name / f"{name}_{number:04d}.jpg"


def best_threshold(distances, same):
    """The accept distance with the highest accuracy on these pairs (midpoints tried)."""
    candidates = np.unique(distances)
    cuts = np.concatenate(
        [[candidates[0] - 1e-6], (candidates[1:] + candidates[:-1]) / 2, [candidates[-1] + 1e-6]]
    )
    accuracy = [((distances <= cut) == same).mean() for cut in cuts]
    return float(cuts[int(np.argmax(accuracy))])


def ten_fold(distances, same, folds):
    """Accuracy per fold at the threshold chosen on the other folds; (mean, std, per fold,
    thresholds)."""
    distances, same, folds = np.asarray(distances), np.asarray(same, bool), np.asarray(folds)
    scores, thresholds = [], []
    for fold in np.unique(folds):
        train = folds != fold
        threshold = best_threshold(distances[train], same[train])
        test = ~train
        scores.append(float(((distances[test] <= threshold) == same[test]).mean()))
        thresholds.append(threshold)
    return float(np.mean(scores)), float(np.std(scores)), scores, thresholds
