"""The app registry: every app declares itself once with `@register` (no TensorFlow).

Like timm's model registry, an unknown name fails loudly with the list of known ones,
and tests parametrized over `app_names()` cover a new app as soon as it registers.
"""

import importlib

from dlkit.errors import DlkitError

# The packages that hold apps; each declares one `App` subclass with `@register`.
APP_PACKAGES = (
    "dlkit.apps.classify",
    "dlkit.apps.detect",
    "dlkit.apps.face",
    "dlkit.apps.mlm",
    "dlkit.apps.segment",
    "dlkit.apps.sentiment",
    "dlkit.apps.translate",
    "dlkit.apps.trigger",
)

_REGISTRY = {}


def register(cls):
    """Class decorator: adds an `App` subclass to the registry under `cls.name`."""
    from dlkit.app import INPUT_KINDS

    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.input_kind not in INPUT_KINDS:
        raise ValueError(f"{cls.__name__}.input_kind must be one of {INPUT_KINDS}, got {cls.input_kind!r}")
    known = _REGISTRY.get(cls.name)
    if known is not None and type(known) is not cls and known.package != cls.__module__:
        raise ValueError(f"app name {cls.name!r} is registered twice ({known.package}, {cls.__module__})")
    _REGISTRY[cls.name] = cls()
    return cls


def _load():
    for package in APP_PACKAGES:
        importlib.import_module(package)


def app_names():
    """The names of every registered app, sorted."""
    _load()
    return sorted(_REGISTRY)


def get_app(name):
    """The registered app called `name` (DlkitError with the known names otherwise)."""
    _load()
    if name not in _REGISTRY:
        raise DlkitError(f"unknown app {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def presets():
    """Every pretrained model offered by name to `train --init` ({name: builder}); two
    apps offering one name is a DlkitError naming both."""
    found, owner = {}, {}
    for name in app_names():
        for preset, build in _REGISTRY[name].presets().items():
            if preset in found:
                raise DlkitError(f"--init {preset} is offered by two apps: {owner[preset]} and {name}")
            found[preset], owner[preset] = build, name
    return found
