"""Typed `key=value` overrides for the apps' `Config` dataclasses (no TensorFlow)."""

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import ClassVar

from dlkit.errors import DlkitError


@dataclass(frozen=True)
class Range:
    """The values a numeric config field may take: `low`/`high` bounds (None: open),
    each inclusive unless `low_open`/`high_open`. A tuple field's items are each checked.

    Example:
        >>> Range(1).check("batch_size", 0)
        Traceback (most recent call last):
        dlkit.errors.DlkitError: batch_size must be >= 1, got 0
    """

    low: float = None
    high: float = None
    low_open: bool = False
    high_open: bool = False

    def __str__(self):
        low = None if self.low is None else f"{'>' if self.low_open else '>='} {self.low}"
        high = None if self.high is None else f"{'<' if self.high_open else '<='} {self.high}"
        return " and ".join(part for part in (low, high) if part)

    def allows(self, value):
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or (value < self.high or (not self.high_open and value == self.high))

    def check(self, key, value):
        for item in value if isinstance(value, tuple) else (value,):
            if not self.allows(item):
                shown = f"{value!r}" if isinstance(value, tuple) else f"{item}"
                raise DlkitError(
                    f"{key} must be {self}{' (each item)' if isinstance(value, tuple) else ''}, got {shown}"
                )


AT_LEAST_ONE = Range(1)
IMAGE_DATA = Range(1, 2)  # versions of the offline image data (dlkit.data.tuxpaint.VERSIONS)
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1, high_open=True)  # a share of something that must leave a rest
PROBABILITY = Range(0, 1)
NON_NEGATIVE = Range(0)  # every number without a declared range
# Held-out data an app makes or draws (generated validation and test sets, the split of
# user data without one, fixed masks) comes from this seed, not the run's `seed`: models
# trained with different seeds are scored on the same examples, and a run fine-tuned
# from another (`--init`) on the same data never validates on what the first trained on.
# 42, the default seed, keeps what the shipped models were scored on.
HELD_OUT_SEED = 42


def check_config(config):
    """Raises DlkitError for the first field of `config` outside its range.

    A field's range comes from the `LIMITS` dicts of its class and the classes it extends
    (the most derived wins); a number without one must be >= 0 and finite. Booleans and
    strings are the apps' own to check.
    """
    limits = {}
    for cls in reversed(type(config).__mro__):
        limits.update(vars(cls).get("LIMITS", {}))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        numbers = value if isinstance(value, tuple) else (value,)
        if not numbers or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            continue
        limits.get(field.name, NON_NEGATIVE).check(field.name, value)


@dataclass
class TrainConfig:
    """The fields every app's `Config` has; an app's `Config` extends it (and may change
    the defaults). Every field can be set with `--set key=value`.

    Args:
        batch_size: int. Examples per training step.
        epochs: int. Training epochs (for transfer learning: the head stage).
        learning_rate: float.
        patience: int. Early stopping after this many epochs without improvement of the
            app's monitored metric (the one best-checkpoint watches); 0 = off.
        max_drop: float. Export fails when the TFLite model's gate metric drops more
            points than this below the Keras model's.
        val_split: float. Fraction held out for validation where the data has no split.
        test_split: float. Likewise for the test split.
        seed: int. Seed for Python, numpy and TensorFlow.
        ema: float. Decay of an exponential moving average of the weights, updated every
            step (`dlkit.callbacks.WeightAverage`); validation, the best checkpoint and the
            saved model use the average. 0 = off; 0.999 averages about the last thousand
            steps (Ultralytics' and timm's models train with one).
    """

    LIMITS: ClassVar[dict] = {
        "batch_size": AT_LEAST_ONE,
        "ema": Range(0, 1, high_open=True),
        "epochs": AT_LEAST_ONE,
        "learning_rate": POSITIVE,
        "val_split": FRACTION,
        "test_split": FRACTION,
    }

    batch_size: int = 32
    epochs: int = 10
    learning_rate: float = 1e-3
    patience: int = 0
    max_drop: float = 1.0
    val_split: float = 0.15
    test_split: float = 0.15
    seed: int = 42
    ema: float = 0.0

    def __post_init__(self):
        check_config(self)
        if self.val_split + self.test_split >= 1:
            raise DlkitError(
                f"val_split + test_split must leave data to train on, got {self.val_split} + {self.test_split}"
            )


@dataclass
class TransferConfig(TrainConfig):
    """TrainConfig plus the transfer-learning recipe's fields (dlkit.transfer).

    Args:
        image_size: int. Square input size in pixels.
        backbone: str. A name of `dlkit.pretrained` (mobilenet_v2, efficientnet_lite0-2).
        alpha: float. Backbone width multiplier.
        weights: str. Backbone weights: dlkit (shipped, offline), imagenet, none (from
            scratch) or a file path.
        fine_tune_epochs: int. Epochs of the second stage (0 = head only).
        fine_tune_layers: int. Top backbone layers unfrozen in the second stage.
        fine_tune_learning_rate: float.
    """

    LIMITS: ClassVar[dict] = {
        "image_size": Range(32),
        "alpha": POSITIVE,
        "fine_tune_learning_rate": POSITIVE,
    }

    image_size: int = 160
    backbone: str = "mobilenet_v2"
    alpha: float = 1.0
    weights: str = "dlkit"
    fine_tune_epochs: int = 8
    fine_tune_layers: int = 30
    fine_tune_learning_rate: float = 3e-5


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, values: dict):
    """Builds `cls` from a dict, ignoring keys it does not know (older or newer runs).

    A field the dict lacks takes its default, or, when `cls.ABSENT` names it, the value
    runs saved before the field existed were trained with: a field added with a default
    that changes what training does (mlm's `token_vectors`) would otherwise rewrite what
    an older run's config says it did."""
    names = {f.name for f in dataclasses.fields(cls)}
    known = {k: _coerce_json(cls, k, v) for k, v in values.items() if k in names}
    absent = {k: v for k, v in getattr(cls, "ABSENT", {}).items() if k not in known}
    return cls(**absent, **known)


def apply_overrides(config, overrides):
    """Returns a copy of `config` with `key=value` strings applied, type-checked.

    Args:
        config: a dataclass instance.
        overrides: iterable of strings such as `"epochs=3"` or `"image_size=224"`.

    Raises:
        DlkitError: for an unknown key or a value of the wrong type.
    """
    types_by_name = _field_types(type(config))
    changes = {}
    for item in overrides:
        if "=" not in item:
            raise DlkitError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in types_by_name:
            allowed = ", ".join(sorted(types_by_name))
            raise DlkitError(f"unknown config key {key!r}; allowed: {allowed}")
        changes[key] = parse_value(raw.strip(), types_by_name[key], key)
    return dataclasses.replace(config, **changes)


def overrides_between(base, config):
    """The `key=value` strings that `apply_overrides` turns `base` into `config` with (its
    inverse): the fields that differ, in field order, each value written as `--set` reads
    it (tuples comma-separated, None as `none`, booleans as `true`/`false`)."""

    def written(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "none"
        if isinstance(value, (tuple, list)):
            return ",".join(written(item) for item in value)
        return str(value)

    return [
        f"{field.name}={written(getattr(config, field.name))}"
        for field in dataclasses.fields(config)
        if getattr(config, field.name) != getattr(base, field.name)
    ]


def parse_value(raw: str, annotation, key: str = "value"):
    """Parses `raw` as `annotation` (bool, int, float, str, Optional[...], tuple[...])."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in {"none", "null"} and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(raw, inner[0], key)
    if origin is tuple:
        item_type = args[0] if args else str
        parts = [p for p in raw.replace(" ", "").split(",") if p]
        return tuple(parse_value(p, item_type, key) for p in parts)
    try:
        if annotation is bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError
        if annotation is int:
            return int(raw)
        if annotation is float:
            return float(raw)
    except ValueError:
        raise DlkitError(
            f"{key} expects {getattr(annotation, '__name__', annotation)}, got {raw!r}"
        ) from None
    return raw


def _field_types(cls):
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce_json(cls, key, value):
    # JSON turns tuples into lists; give the dataclass back the type it declares.
    annotation = _field_types(cls)[key]
    if typing.get_origin(annotation) is tuple and isinstance(value, list):
        return tuple(value)
    if not _holds(annotation, value):  # a hand-edited file: named here, not deep in training
        raise DlkitError(
            f"config field {key} holds {value!r}, not {getattr(annotation, '__name__', annotation)}"
        )
    return value


def _holds(annotation, value):
    """Whether a JSON `value` is of the scalar type `annotation` declares (others pass)."""
    if annotation is bool or annotation is str:
        return isinstance(value, annotation)
    if annotation in (int, float):
        return isinstance(value, int if annotation is int else (int, float)) and not isinstance(value, bool)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(
            value is None if a is type(None) else _holds(a, value) for a in typing.get_args(annotation)
        )
    return True
