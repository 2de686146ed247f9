"""Typed `key=value` overrides for the apps' `Config` dataclasses (no TensorFlow)."""

import dataclasses
import types
import typing

from dlkit.errors import DlkitError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, values: dict):
    """Builds `cls` from a dict, ignoring keys it does not know (older or newer runs)."""
    names = {f.name for f in dataclasses.fields(cls)}
    known = {k: _coerce_json(cls, k, v) for k, v in values.items() if k in names}
    return cls(**known)


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
    return value
