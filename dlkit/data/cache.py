"""Datasets built once into the cache, atomically."""

import os
import shutil
import tempfile
from pathlib import Path

from dlkit import io
from dlkit.paths import cache_dir


def build_once(name, build, marker="counts.json", resumable=False):
    """Returns `<cache>/datasets/<name>`, building it first if needed.

    `build(folder)` writes the dataset into a temporary folder and returns a JSON-able
    summary, saved as `marker`; the folder is renamed into place only when complete, so
    an interrupted build is never used.

    With `resumable`, the temporary folder outlives an interrupted build (Ctrl-C, a
    kill, an error): the next build of `name` is handed the same folder, so a `build`
    that writes its work in parts (each atomically: `chunked_array`) keeps the parts finished
    and computes only the rest. `name` must then name the inputs (a digest of them).
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
        return _build(target, build, marker, resumable)


def _build(target, build, marker, resumable):
    io.sweep(target.parent, ".building-")  # what a killed build left
    if resumable:  # held by the lock: one build of `name` at a time
        tmp = target.parent / f".partial-{target.name}"
        tmp.mkdir(exist_ok=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f".building-{os.getpid()}.", dir=target.parent))
    try:
        io.write_json(tmp / marker, build(tmp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists() and not resumable:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def chunked_array(path, total, size, compute, progress=None, what="items"):
    """Computes `compute(start, stop) -> array` over [0, total) in chunks of `size` and
    saves the whole as `path` (.npy); returns it. Each chunk is saved atomically beside
    `path` as it is done, so one interrupted build (resumable, `build_once`) keeps its
    finished chunks and the next computes only the rest; they are removed once `path` is
    written. `progress(done, total, what)` after each chunk."""
    import numpy as np

    folder, parts = Path(path).parent, []
    for start in range(0, total, size):
        stop = min(start + size, total)
        part_path = folder / f"{Path(path).stem}.chunk_{start:09d}_{stop:09d}.npy"
        if part_path.exists():
            part = np.load(part_path)
        else:
            part = np.asarray(compute(start, stop))
            with io.atomic_path(part_path) as tmp:
                np.save(tmp, part)
        parts.append(part)
        if progress:
            progress(stop, total, what)
    whole = np.concatenate(parts) if parts else np.asarray(compute(0, 0))
    with io.atomic_path(path) as tmp:
        np.save(tmp, whole)
    for part_path in folder.glob(f"{Path(path).stem}.chunk_*.npy"):
        part_path.unlink()
    return whole
