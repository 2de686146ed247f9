"""Atomic file writes and small JSON helpers (no TensorFlow)."""

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from io import BytesIO
from pathlib import Path, PurePath

from dlkit.errors import DlkitError


@contextlib.contextmanager
def atomic_path(path, exclusive=False):
    """Yields a temporary path next to `path`; renames it onto `path` on success.

    The temporary name keeps the suffix of `path` (Keras checks `.keras`/`.weights.h5`
    suffixes). On an exception the temporary file is removed and `path` is untouched,
    so a crash never leaves a half-written model or run file behind. A kill (SIGKILL)
    can leave the hidden temporary file; it carries the writer's process id, and the next
    write of the same file removes it once that process is gone.

    With `exclusive`, `path` is created, never replaced: FileExistsError when it exists,
    also when another process created it meanwhile (a hard link is atomic).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    prefix = f".{path.stem}."
    sweep(path.parent, prefix, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # Writers such as h5py refuse to open an existing empty file.
    try:
        yield Path(tmp)
        (os.link if exclusive else os.replace)(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sweep(folder, prefix, suffix=""):
    """Removes `<prefix><pid>.*<suffix>` files and folders in `folder` whose process `pid`
    no longer runs: what a killed writer left behind."""
    for path in Path(folder).glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        pid = path.name[len(prefix) :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def locked(path):
    """Holds an exclusive lock on `path` (created if missing) for the `with` block; a
    second process waits. The kernel releases it when a holder dies."""
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


@contextlib.contextmanager
def held_or_refused(path, busy):
    """Holds an exclusive lock on `path` (created if missing) for the `with` block, with
    this process's id in it; when another process holds it, raises DlkitError with
    `busy(pid)` at once instead of waiting. The kernel releases it when a holder dies."""
    with open(path, "a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip()
            raise DlkitError(busy(int(holder) if holder.isdigit() else None)) from None
        try:
            file.truncate(0)
            file.write(str(os.getpid()))
            file.flush()
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


@contextlib.contextmanager
def temp_dir(name, parent=None):
    """A scratch folder `dlkit-<name>.<pid>.*` (in the system temp folder by default),
    removed on exit; one a killed process left is removed by the next `temp_dir(name)`.

    Example:
        >>> with io.temp_dir("export") as tmp:
        ...     model.export(tmp)
    """
    parent = Path(parent) if parent else Path(tempfile.gettempdir())
    prefix = f"dlkit-{name}."
    sweep(parent, prefix)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def check_writable_dir(path, what="output folder"):
    """`path` as a Path, once it is known that a folder can be written there: it is a
    folder or can be made one, under a writable parent. Nothing is created, so a command
    that then fails on bad input leaves no empty folder; the check runs before long work,
    so a conversion or a training run is not lost to an output location it cannot use.

    Raises:
        DlkitError: `path` or a parent is a file, or the nearest existing folder is
            read-only.
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise DlkitError(f"{path}: {what} must be a folder, and {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DlkitError(f"{path}: {what} cannot be written ({existing} is read-only)")
    return path


def deflate_zip(path):
    """Rewrites the zip file `path` with its members deflated, in place and atomically.

    Keras writes `.keras` files uncompressed; float32 weights deflate by about a tenth,
    and Keras reads the deflated file as fast and bit for bit the same.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
            for member in source.infolist():
                with source.open(member) as read, out.open(member.filename, "w", force_zip64=True) as write:
                    shutil.copyfileobj(read, write, 1 << 20)


def half_precision_keras(source, target):
    """Writes the `.keras` file `source` to `target` (atomically, deflated) with every
    float32 weight array stored as float16: half the size, for shipping a model within
    the saved_models budget (mlm's, to fine-tune from). Keras loads it into the same
    float32 variables (each weight rounded to float16's 11 significant bits). An array
    float16 cannot hold (a magnitude above 65504) stays float32."""
    import h5py
    import numpy as np

    limit = float(np.finfo(np.float16).max)

    def copy(read, write):
        write.attrs.update(read.attrs)
        for name, item in read.items():
            if isinstance(item, h5py.Group):
                copy(item, write.create_group(name))
                continue
            data = item[()]
            if getattr(data, "dtype", None) == np.float32 and np.all(np.abs(data) <= limit):
                data = data.astype(np.float16)
            write.create_dataset(name, data=data).attrs.update(item.attrs)

    with atomic_path(target) as tmp:
        with zipfile.ZipFile(source) as read, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
            for member in read.infolist():
                data = read.read(member.filename)
                if member.filename.endswith(".h5"):
                    half = BytesIO()
                    with h5py.File(BytesIO(data), "r") as weights, h5py.File(half, "w") as halved:
                        copy(weights, halved)
                    data = half.getvalue()
                out.writestr(member.filename, data)


def write_bytes(path, data: bytes):
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_npz(path, *arrays, compressed=False, **named):
    """Writes numpy arrays atomically as an `.npz` (`np.savez`: positional ones as
    `arr_0`, `arr_1`...), deflated with `compressed`."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, *arrays, **named)


def write_text(path, text: str, exclusive=False):
    """Writes `text` atomically; `exclusive`: only into a new file (see `atomic_path`)."""
    with atomic_path(path, exclusive) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_tsv(path, records, columns):
    """Writes `records` (dicts) atomically as tab-separated lines of their `columns`, under a
    header line of the column names; floats to three decimals."""
    lines = ["\t".join(columns)]
    lines += [
        "\t".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in columns) for r in records
    ]
    write_text(path, "\n".join(lines) + "\n")


def write_json(path, obj, exclusive=False):
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n", exclusive)


def leaves_folder(name):
    """Whether a relative file name read from a data file (a COCO `file_name`, a VOC
    `filename`, an archive member) would point outside the folder it is joined to."""
    pure = PurePath(name)
    return pure.is_absolute() or ".." in pure.parts


def read_json(path):
    """The parsed file; JSON nested too deep for the parser is a ValueError like any
    other invalid JSON (not a RecursionError)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def append_jsonl(path, record):
    """Appends one JSON line and flushes it, so a killed run keeps every finished line."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=_json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path):
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            # A line cut short by a kill; every complete line before it is kept.
            continue
    return records


def _json_default(value):
    # numpy scalars and arrays without importing numpy here.
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def sha256_file(path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
