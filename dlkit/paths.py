"""Where shipped models, caches and runs live (no TensorFlow)."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def saved_models_dir() -> Path:
    """The shipped models: `$DLKIT_SAVED_MODELS`, else the `dlkit.models` package folder,
    which is `saved_models/` of a checkout (or an editable install) and the installed
    package data of a wheel (the edge bundles: TFLite models and their model.json)."""
    if "DLKIT_SAVED_MODELS" in os.environ:
        return Path(os.environ["DLKIT_SAVED_MODELS"])
    import importlib.util

    try:
        spec = importlib.util.find_spec("dlkit.models")
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return REPO_ROOT / "saved_models"


def cache_dir() -> Path:
    """Prepared datasets: `$DLKIT_CACHE`, else `~/.cache/dlkit`."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dlkit"
    return Path(os.environ.get("DLKIT_CACHE", default))


def data_dir() -> Path:
    """What a user keeps between runs (a face gallery): `$DLKIT_DATA`, else
    `~/.local/share/dlkit`."""
    default = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "dlkit"
    return Path(os.environ.get("DLKIT_DATA", default))


def shipped_model_dir(app: str) -> Path:
    return saved_models_dir() / app


def default_model(app: str) -> Path:
    """The shipped model of `app`, used when no `--model` is given."""
    from dlkit.errors import DlkitError

    path = shipped_model_dir(app)
    if not path.exists():
        raise DlkitError(
            f"no {app} model ships in {saved_models_dir()} yet: give --model "
            f"(a run directory, a .keras or .tflite file, or 'last' after `dlkit {app} train`)"
        )
    return path


def next_numbered_dir(base, stem):
    """`base/stem`, then `stem2`, `stem3`...: the first that does not exist yet (the way
    Ultralytics numbers `runs/detect/train`, `train2`)."""
    from dlkit.errors import DlkitError

    base = Path(base)
    for index in range(1, 10_000):
        candidate = base / (stem if index == 1 else f"{stem}{index}")
        if not candidate.exists():
            return candidate
    raise DlkitError(f"too many {stem} folders in {base}")
