"""Stable splits by file name: a file's split is its own, small folders still hold out."""

import hashlib

import pytest

from dlkit.data.splits import hash_split, name_value


def test_name_value_is_the_sha1_of_the_name_as_a_fraction():
    digest = hashlib.sha1(b"saltcat.jpg").digest()
    assert name_value("cat.jpg", "salt") == int.from_bytes(digest[:8], "big") / 2**64
    assert 0 <= name_value("") < 1


def test_each_file_keeps_its_split_as_the_folder_grows():
    names = [f"photo_{k:04d}.png" for k in range(2000)]
    small, large = hash_split(names[:300], str), hash_split(names, str)
    for split in ("train", "val", "test"):
        assert small[split] == [n for n in large[split] if n in set(names[:300])]
    assert len(large["val"]) == pytest.approx(300, abs=60) and len(large["test"]) == pytest.approx(
        300, abs=60
    )
    assert sorted(sum(large.values(), [])) == names


@pytest.mark.parametrize("count", [1, 2, 3, 4, 6])
def test_small_folders_hold_out_one_each_while_training_keeps_one(count):
    for folder in range(300):  # many small folders: names whose values fall anywhere
        names = [f"folder{folder}_x{k}" for k in range(count)]
        split = hash_split(names, str)
        assert split["train"] and sorted(sum(split.values(), [])) == names
        if count >= 3:
            assert split["val"] and split["test"]
        elif count == 2:
            assert len(split["train"]) == 1


def test_a_zero_fraction_holds_nothing_out():
    split = hash_split([f"x{k}" for k in range(50)], str, val_fraction=0.2, test_fraction=0.0)
    assert split["test"] == [] and 0 < len(split["val"]) < 50
