"""The face gallery: enrolled people's embeddings in one versioned JSON file (numpy only).

    {"format": "dlkit-face-gallery", "version": 1, "embedder": "<id>", "dimension": 128,
     "people": {"Ada": [[...128 numbers...], ...], ...}}

`embedder` names the network that made the embeddings (model.json `embedder_id`);
embeddings of another network are not comparable, so such a gallery is refused. Every
change is a read-modify-write under an exclusive lock, written to a temporary file that is
flushed to disk and renamed over the gallery: a kill at any moment leaves either the old
file or the new one, never a torn one, and two processes enrolling at once both land.
Enrolling a name again adds its photos to that person (`replace=True` starts it afresh).
"""

import contextlib
import json
import os
from pathlib import Path

import numpy as np

from dlkit.errors import DlkitError, InvalidInputError

FORMAT = "dlkit-face-gallery"
VERSION = 1


def default_path():
    from dlkit.paths import data_dir

    return data_dir() / "face" / "gallery.json"


class Gallery:
    """Enrolled people: {name: (k, d) embeddings}.

    Args:
        path: Path. The gallery file (it need not exist yet).
        embedder: str or None. The id of the network its embeddings come from.
        people: dict or None.
    """

    def __init__(self, path, embedder=None, people=None, dimension=None):
        self.path = Path(path)
        self.embedder = embedder
        self.dimension = dimension
        self.people = dict(people or {})

    @classmethod
    def load(cls, path):
        """The gallery at `path`; an empty one when the file does not exist."""
        path = Path(path)
        if not path.exists():
            return cls(path)
        if path.is_dir():
            raise InvalidInputError(f"{path}: a folder, not a gallery file")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidInputError(f"{path}: not a face gallery ({str(error)[:100]})") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise InvalidInputError(f"{path}: not a face gallery (no '{FORMAT}' format field)")
        if record.get("version", 0) > VERSION:
            raise InvalidInputError(
                f"{path}: gallery version {record.get('version')} is newer than this dlkit reads ({VERSION})"
            )
        dimension = record.get("dimension")
        people = {}
        for name, rows in (record.get("people") or {}).items():
            array = np.asarray(rows, np.float32)
            if array.ndim != 2 or array.shape[1] != dimension or not np.isfinite(array).all():
                raise InvalidInputError(f"{path}: the embeddings of {name!r} are not {dimension}-number rows")
            people[name] = array
        return cls(path, record.get("embedder"), people, dimension)

    def check_embedder(self, meta):
        """Raises DlkitError when the gallery was made with another network than `meta`'s."""
        embedder = meta.get("embedder_id")
        if self.people and self.embedder != embedder:
            raise DlkitError(
                f"{self.path}: its embeddings come from another face model ({self.embedder}) than this one "
                f"({embedder}); they are not comparable: enrol the people again into a new --gallery"
            )

    @property
    def photos(self):
        return sum(len(rows) for rows in self.people.values())

    def add(self, name, embeddings, meta, replace=False):
        embeddings = np.asarray(embeddings, np.float32).reshape(-1, meta["embedding_size"])
        self.check_embedder(meta)
        self.embedder, self.dimension = meta.get("embedder_id"), embeddings.shape[1]
        kept = self.people.get(name) if not replace else None
        self.people[name] = embeddings if kept is None else np.concatenate([kept, embeddings])

    def remove(self, name):
        if name not in self.people:
            known = ", ".join(sorted(self.people)) or "nobody"
            raise DlkitError(f"{self.path}: no {name!r} in the gallery (it has: {known})")
        del self.people[name]

    def match(self, embedding):
        """(name, distance) of the nearest enrolled photo; (None, inf) when empty."""
        best, distance = None, float("inf")
        for name, rows in self.people.items():
            nearest = float(np.sqrt(((rows - embedding) ** 2).sum(1)).min())
            if nearest < distance:
                best, distance = name, nearest
        return best, distance

    def record(self):
        return {
            "format": FORMAT,
            "version": VERSION,
            "embedder": self.embedder,
            "dimension": self.dimension,
            "people": {
                name: np.round(rows.astype(np.float64), 7).tolist()
                for name, rows in sorted(self.people.items())
            },
        }

    def save(self):
        """Writes the gallery atomically (temporary file, fsync, rename)."""
        from dlkit.io import atomic_path

        with atomic_path(self.path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.record(), f)
                f.flush()
                os.fsync(f.fileno())


@contextlib.contextmanager
def editing(path):
    """Yields the gallery at `path` under an exclusive lock and saves it on success (a
    failure or a kill leaves the file as it was)."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            gallery = Gallery.load(path)
            yield gallery
            gallery.save()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
