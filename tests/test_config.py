import dataclasses
from dataclasses import dataclass

import pytest

from dlkit.config import (
    FRACTION,
    POSITIVE,
    PROBABILITY,
    Range,
    apply_overrides,
    from_dict,
    overrides_between,
    parse_value,
    to_dict,
)
from dlkit.errors import DlkitError
from dlkit.registry import app_names, get_app


@dataclass
class Example:
    epochs: int = 3
    rate: float = 0.1
    name: str = "a"
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    limit: int | None = None


def test_overrides_are_typed():
    config = apply_overrides(
        Example(), ["epochs=7", "rate=1e-3", "flag=yes", "sizes=3,4,5", "limit=none", "name=b"]
    )
    assert config == Example(epochs=7, rate=1e-3, name="b", flag=True, sizes=(3, 4, 5), limit=None)
    assert apply_overrides(Example(), ["limit=4"]).limit == 4


def test_overrides_between_is_the_inverse_of_apply_overrides():
    changed = Example(epochs=7, rate=1e-3, name="b c", flag=True, sizes=(3, 4, 5), limit=4)
    items = overrides_between(Example(), changed)
    assert items == ["epochs=7", "rate=0.001", "name=b c", "flag=true", "sizes=3,4,5", "limit=4"]
    assert apply_overrides(Example(), items) == changed
    assert overrides_between(changed, Example())[-1] == "limit=none"
    assert apply_overrides(changed, overrides_between(changed, Example())) == Example()
    assert overrides_between(Example(), Example()) == []
    for name in app_names():  # every app's fields, both ways between its full and tiny configs
        full, tiny = get_app(name).default_config(), get_app(name).default_config(tiny=True)
        assert apply_overrides(full, overrides_between(full, tiny)) == tiny, name
        assert apply_overrides(tiny, overrides_between(tiny, full)) == full, name


def test_dashes_map_to_underscores():
    @dataclass
    class WithUnderscore:
        batch_size: int = 1

    assert apply_overrides(WithUnderscore(), ["batch-size=9"]).batch_size == 9


@pytest.mark.parametrize(
    "item, message",
    [
        ("epochs=three", "epochs expects int"),
        ("nope=1", "unknown config key 'nope'"),
        ("flag=maybe", "flag expects bool"),
        ("epochs", "key=value"),
    ],
)
def test_bad_overrides_are_clear(item, message):
    with pytest.raises(DlkitError, match=message):
        apply_overrides(Example(), [item])


def test_dict_round_trip_restores_tuples_and_ignores_unknown_keys():
    values = to_dict(Example(sizes=(7,)))
    values["from_a_newer_version"] = 1
    assert from_dict(Example, values) == Example(sizes=(7,))


def test_a_field_missing_from_a_stored_config_takes_its_absent_value():
    """A field added with a default that changes training reads, in a config saved before
    it, as what that run did (`ABSENT`), and keeps the default everywhere else."""
    from typing import ClassVar

    from dlkit.apps.mlm.config import Config

    @dataclass
    class Newer(Example):
        ABSENT: ClassVar[dict] = {"name": "old"}

    assert from_dict(Newer, {"epochs": 5}) == Newer(epochs=5, name="old")
    assert from_dict(Newer, {"name": "b"}).name == "b"
    assert Newer().name == "a"
    assert from_dict(Config, {}).token_vectors == ""  # mlm runs from before the option
    assert from_dict(Config, to_dict(Config())).token_vectors == Config().token_vectors == "glove_6b_50d"


def test_dict_values_of_the_wrong_json_type_are_named():
    """A hand-edited config.json: a string, a bool or a null where a number, a flag or a
    text is declared is refused naming the field; an int where a float is declared, and
    null where None is allowed, are taken."""
    assert from_dict(Example, {"rate": 1, "limit": None}) == Example(rate=1, limit=None)
    assert from_dict(Example, {"limit": 5}).limit == 5
    for key, value in [("epochs", "3"), ("epochs", True), ("rate", "fast"), ("flag", 1), ("name", 2),
                       ("epochs", None), ("limit", "none")]:  # fmt: skip
        with pytest.raises(DlkitError, match=f"config field {key} holds"):
            from_dict(Example, {key: value})


def test_parse_value_float_and_str():
    assert parse_value("2.5", float) == 2.5
    assert parse_value("x", str) == "x"


def test_range_bounds_and_messages():
    assert Range(1).allows(1) and not Range(1).allows(0)
    assert not POSITIVE.allows(0.0) and POSITIVE.allows(1e-9)
    assert FRACTION.allows(0.0) and not FRACTION.allows(1.0)
    assert not PROBABILITY.allows(float("nan")) and not Range().allows(float("inf"))
    with pytest.raises(DlkitError, match=r"^batch_size must be >= 1, got 0$"):
        Range(1).check("batch_size", 0)
    with pytest.raises(DlkitError, match=r"val_split must be >= 0 and < 1, got 1.5"):
        FRACTION.check("val_split", 1.5)
    with pytest.raises(DlkitError, match=r"filters must be >= 1 \(each item\), got \(8, 0\)"):
        Range(1).check("filters", (8, 0))


def numeric_fields(config):
    return [
        field.name
        for field in dataclasses.fields(config)
        if isinstance(getattr(config, field.name), (int, float, tuple))
        and not isinstance(getattr(config, field.name), bool)
    ]


@pytest.mark.parametrize("name", app_names())
def test_every_app_config_refuses_out_of_range_numbers(name):
    """Defaults and the tiny config are valid; a negative, NaN or infinite value of any
    numeric field is a one-line DlkitError before any work starts."""
    app = get_app(name)
    config = app.default_config(False)
    app.default_config(True)
    fields = numeric_fields(config)
    assert {"batch_size", "epochs", "val_split"} <= set(fields)
    for field in fields:
        value = getattr(config, field)
        bad = ["-1"] if isinstance(value, (int, tuple)) else ["-1", "nan", "inf"]
        for raw in bad:
            with pytest.raises(DlkitError, match=f"^{field} must be"):
                apply_overrides(config, [f"{field}={raw}"])


@pytest.mark.parametrize(
    "items, message",
    [
        (["batch_size=0"], "batch_size must be >= 1"),
        (["epochs=0"], "epochs must be >= 1"),
        (["image_size=-5"], "image_size must be >= 32"),
        (["val_split=1.5"], "val_split must be >= 0 and < 1"),
        (["val_split=0.6", "test_split=0.5"], "val_split \\+ test_split must leave data to train on"),
        (["learning_rate=0"], "learning_rate must be > 0"),
        (["dropout=1"], "dropout must be >= 0 and < 1"),
    ],
)
def test_classify_ranges(items, message):
    with pytest.raises(DlkitError, match=message):
        apply_overrides(get_app("classify").default_config(False), items)


def test_app_specific_rules():
    with pytest.raises(DlkitError, match="zoom_min .* must not exceed zoom_max"):
        apply_overrides(get_app("detect").default_config(False), ["zoom_min=1.5", "zoom_max=1.2"])
    # translate: 0 means "the model's own default", so it stays allowed there
    assert apply_overrides(get_app("translate").default_config(False), ["epochs=0"]).epochs == 0
    with pytest.raises(DlkitError, match="decoder_filters must be >= 1"):
        apply_overrides(get_app("segment").default_config(False), ["decoder_filters=16,0"])
