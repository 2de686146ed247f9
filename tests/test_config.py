from dataclasses import dataclass

import pytest

from dlkit.config import apply_overrides, from_dict, parse_value, to_dict
from dlkit.errors import DlkitError


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


def test_parse_value_float_and_str():
    assert parse_value("2.5", float) == 2.5
    assert parse_value("x", str) == "x"
