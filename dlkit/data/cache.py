"""Datasets built once into the cache, atomically."""

import os
import shutil
import tempfile
from pathlib import Path

from dlkit import io
from dlkit.paths import cache_dir


def build_once(name, build, marker="counts.json"):
    """Returns `<cache>/datasets/<name>`, building it first if needed.

    `build(folder)` writes the dataset into a temporary folder and returns a JSON-able
    summary, saved as `marker`; the folder is renamed into place only when complete, so
    an interrupted build is never used.
    """
    target = cache_dir() / "datasets" / name
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    locks = cache_dir() / "locks"  # kept apart: a build that fails leaves `datasets` as it was
    locks.mkdir(exist_ok=True)
    with io.locked(locks / f"{name}.lock"):
        if (target / marker).exists():  # another process built it while this one waited
            return target
        return _build(target, build, marker)


def _build(target, build, marker):
    io.sweep(target.parent, ".building-")  # what a killed build left
    tmp = Path(tempfile.mkdtemp(prefix=f".building-{os.getpid()}.", dir=target.parent))
    try:
        io.write_json(tmp / marker, build(tmp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
