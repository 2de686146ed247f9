"""The Faker + Babel date generator: determinism, disjoint splits, formats people type."""

from datetime import date

import pytest

pytest.importorskip("babel")
pytest.importorskip("faker")

from dlkit.apps.translate import dates  # noqa: E402


def test_generator_is_deterministic_per_seed():
    assert dates.generate("train", 300, seed=3) == dates.generate("train", 300, seed=3)
    assert dates.generate("train", 300, seed=3) != dates.generate("train", 300, seed=4)


def test_splits_use_disjoint_days_and_held_out_combinations():
    train = dates.generate("train", 3000, seed=0)
    test = dates.generate("test", 1500, seed=0)
    assert not {iso for _, iso in train} & {iso for _, iso in test}
    for _, iso in train[:200]:
        assert dates.split_of(date.fromisoformat(iso)) == "train"
    train_combos = {(loc, pat) for *_, loc, pat in dates.generate("train", 3000, seed=0, with_source=True)}
    test_combos = {(loc, pat) for *_, loc, pat in dates.generate("test", 3000, seed=0, with_source=True)}
    assert not train_combos & dates.HELD_OUT
    assert len(test_combos & dates.HELD_OUT) >= 3


def test_targets_are_iso_and_inputs_fit():
    pairs = dates.generate("val", 500, seed=1, max_length=40)
    for text, iso in pairs:
        assert len(text) <= 40 and text == text.strip()
        day = date.fromisoformat(iso)
        assert dates.FIRST <= day <= dates.LAST


def test_full_year_never_uses_the_week_year():
    import random

    assert dates.full_year("M/d/yy") == "M/d/yyyy"
    assert dates.full_year("d 'de' MMMM 'de' y") == "d 'de' MMMM 'de' yyyy"
    rng = random.Random(0)
    # 31 Dec 2012 is in week 1 of 2013: a `YYYY` pattern would print 2013.
    texts = {dates.render(date(2012, 12, 31), "en_GB", p, rng) for p in dates.patterns_for("en_GB")}
    assert all("2013" not in t for t in texts) and all("2012" in t for t in texts)


def test_ordinals_and_month_first_rule():
    import random

    assert [dates.ordinal(d, "en") for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "23rd",
    ]
    assert dates.ordinal(1, "fr") == "1er" and dates.ordinal(2, "fr") == "2"
    rng = random.Random(0)
    assert dates.render(date(1979, 5, 3), "en_US", "MMMM {o}, yyyy", rng).lower() == "may 3rd, 1979"
    assert dates.is_month_first("M/d/yyyy") and not dates.is_month_first("MMM d yyyy")
    # Month-first numeric dates are generated only when unambiguous (day > 12).
    for text, iso in dates.generate("train", 4000, seed=2, locales=("en_US",)):
        parts = text.split("/")
        if len(parts) == 3 and len(parts[2]) == 4 and int(parts[0]) == int(iso[5:7]) != int(iso[8:]):
            assert int(iso[8:]) > 12
