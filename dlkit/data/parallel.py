"""Parallel text: TSV/CSV files of (source, target) strings, read with skip-and-report."""

import csv
import hashlib
from pathlib import Path

from dlkit.errors import InvalidInputError


def read_pairs(path, skipped=None):
    """Reads `source<TAB>target` (`.tsv`/`.txt`) or `source,target` (`.csv`) rows.

    A header row `source, target` (or `input, output`) is skipped. Malformed rows (not
    two columns, an empty side) are left out and reported in `skipped` with their line
    number.

    Raises:
        InvalidInputError: the file is missing, not UTF-8, or holds no valid pair.
    """
    path = Path(path)
    skipped = [] if skipped is None else skipped
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    pairs = []
    for number, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), start=1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if number == 1 and [c.strip().lower() for c in row[:2]] in (
            ["source", "target"],
            ["input", "output"],
        ):
            continue
        if len(row) != 2:
            skipped.append(f"{path.name}:{number}: expected 2 columns, found {len(row)}")
            continue
        source, target = row[0].strip(), row[1].strip()
        if not source or not target:
            skipped.append(f"{path.name}:{number}: empty {'source' if not source else 'target'}")
            continue
        pairs.append((source, target))
    if not pairs:
        raise InvalidInputError(f"{path}: no valid (source, target) rows")
    return pairs


def hash_split(pairs, val_split, test_split):
    """Splits pairs by a hash of the source text (identical sources share a split)."""
    splits = {"train": [], "val": [], "test": []}
    for pair in pairs:
        value = int.from_bytes(hashlib.sha1(pair[0].encode()).digest()[:4], "big") / 2**32
        name = "test" if value < test_split else "val" if value < test_split + val_split else "train"
        splits[name].append(pair)
    return splits
