"""Stable held-out splits of user data, by a hash of each file's name.

Each file's split depends on its own name only: adding files to a folder never moves the
others between training and held-out splits, so a model fine-tuned on the grown folder
is not validated on images an earlier run trained on.
"""

import hashlib

SPLITS = ("train", "val", "test")


def name_value(name, salt=""):
    """A number in [0, 1) fixed by `name` (and `salt`)."""
    return int.from_bytes(hashlib.sha1((salt + name).encode()).digest()[:8], "big") / 2**64


def hash_split(items, name_of, val_fraction=0.15, test_fraction=0.15):
    """{"train", "val", "test"} lists of `items` (in their order), each item's split from
    `name_value(name_of(item))`: test below `test_fraction`, then val, then train.

    Small folders: training keeps at least one item (the one of largest value), and a
    held-out split with a fraction above 0 that no value falls in takes the item nearest
    its range from the largest split that can spare one (training first on a tie).
    """
    values = [name_value(name_of(item)) for item in items]
    ranges = {"test": (0.0, test_fraction), "val": (test_fraction, test_fraction + val_fraction)}
    chosen = [
        "test" if v < test_fraction else "val" if v < test_fraction + val_fraction else "train"
        for v in values
    ]
    if items and "train" not in chosen:
        chosen[max(range(len(items)), key=values.__getitem__)] = "train"
    for split, (low, high) in ranges.items():
        if high <= low or split in chosen:
            continue
        counts = {name: chosen.count(name) for name in SPLITS if name != split}
        donor = max(counts, key=lambda name: (counts[name], name == "train"))
        if counts[donor] > 1:
            middle = (low + high) / 2
            candidates = [k for k, name in enumerate(chosen) if name == donor]
            chosen[min(candidates, key=lambda k: abs(values[k] - middle))] = split
    return {split: [item for item, name in zip(items, chosen) if name == split] for split in SPLITS}
