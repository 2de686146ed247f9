"""Model bundles: a model file plus `model.json` (app, labels, input spec, preprocessing)
and the side files it lists (vocabulary, embedding table, gallery, a second model), each
with its checksum."""

import json
import shutil
from pathlib import Path

from dlkit.errors import DlkitError, InvalidInputError
from dlkit.io import atomic_path, sha256_file

# The metadata key that ModelBundle.load fills with {side file name: its path}.
ASSET_PATHS = "asset_paths"
# Preference when a directory is given: the smallest fast on-device model first.
TFLITE_ORDER = ("model.int8.tflite", "model.dynamic.tflite", "model.float16.tflite", "model.tflite")


class ModelBundle:
    """A trained model on disk: `path` is a `.keras` or `.tflite` file; `meta` its model.json.

    Args:
        path: Path. The model file.
        meta: dict. The parsed `model.json` next to it.
    """

    def __init__(self, path, meta):
        self.path = Path(path)
        self.meta = meta

    @property
    def is_tflite(self):
        return self.path.suffix == ".tflite"

    @property
    def directory(self):
        return self.path.parent

    @property
    def labels(self):
        return self.meta.get("labels")

    def asset(self, name):
        """The path of side file `name`, checked against its size and checksum.

        Raises:
            DlkitError: `model.json` lists no such side file.
            InvalidInputError: the file is missing or altered (one line naming it).
        """
        assets = self.meta.get("assets", {})
        if name not in assets:
            listed = ", ".join(sorted(assets)) or "none"
            raise DlkitError(
                f"{self.directory / 'model.json'} lists no side file {name!r} (it lists: {listed})"
            )
        record = assets[name]
        path = self.directory / record["file"]
        if not path.is_file():
            raise InvalidInputError(f"{path}: side file {name!r} of the model is missing")
        if path.stat().st_size != record["bytes"] or sha256_file(path) != record["sha256"]:
            raise InvalidInputError(
                f"{path}: side file {name!r} does not match the checksum in model.json (altered or truncated)"
            )
        return path

    def check_model_file(self):
        """Checks a `.tflite` file against the size and checksum its export recorded.

        A flatbuffer with a few bytes changed may still load and run, giving other numbers:
        this says so instead. Files with no export record (written by hand) are not checked.

        Raises:
            InvalidInputError: the file differs from the one the export wrote.
        """
        if not self.is_tflite:
            return
        exports = self.meta.get("exports", {}).values()
        record = next((r for r in exports if r.get("file") == self.path.name), {})
        if ("bytes" in record and self.path.stat().st_size != record["bytes"]) or (
            "sha256" in record and sha256_file(self.path) != record["sha256"]
        ):
            raise InvalidInputError(
                f"{self.path}: differs from the file its export wrote (size or checksum in "
                "model.json): altered or truncated; export it again"
            )

    def check_assets(self):
        """Checks every listed side file (see `asset`)."""
        for name in self.meta.get("assets", {}):
            self.asset(name)

    @classmethod
    def load(cls, path, app=None, prefer="tflite"):
        """The model at `path` ("last": the app's latest run) with its model.json.

        `app` is an app name, or the App, which also checks the metadata (App.check_meta).
        """
        if str(path) == "last":
            if not app:
                raise DlkitError("--model last needs an app")
            path = latest_run(getattr(app, "name", app))
        path = find_model(path, prefer=prefer)
        meta_path = path.parent / "model.json"
        if not meta_path.exists():
            raise DlkitError(f"{path}: no model.json next to the model (export writes it)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DlkitError(f"{meta_path}: not valid JSON ({error})") from None
        if not isinstance(meta, dict):
            raise DlkitError(f"{meta_path}: not a model description (a JSON object)")
        name = getattr(app, "name", app)
        if name and meta.get("app") != name:
            raise DlkitError(f"{path} is a {meta.get('app')!r} model, not {name!r}")
        if hasattr(app, "check_meta"):
            app.check_meta(meta, meta_path)
        bundle = cls(path, meta)
        bundle.check_model_file()
        bundle.check_assets()
        for name, record in meta.get("assets", {}).items():
            if record.get("into"):
                meta[record["into"]] = (
                    bundle.asset(name).read_text(encoding="utf-8").removesuffix("\n").split("\n")
                )
        # Where the side files are, for the app's edge code (a second model it runs).
        meta[ASSET_PATHS] = {
            name: str(bundle.directory / record["file"]) for name, record in meta.get("assets", {}).items()
        }  # checked above
        return bundle


def latest_run(app, root="runs", marker="model.json"):
    """The newest run of `app` under `runs/<app>/` holding `marker`.

    `model.json` marks a finished run (`--model last`); `config.json` any started run
    (`train --resume` without `--run-dir`).
    """
    runs = [p for p in (Path(root) / app).glob("train*") if (p / marker).exists()]
    if not runs:
        what = "finished run" if marker == "model.json" else "run"
        raise DlkitError(f"no {what} in {Path(root) / app}; train one first or give the path")
    return max(runs, key=lambda p: (p / marker).stat().st_mtime)


def find_model(path, prefer="tflite"):
    """Resolves a model file or a model directory (run dir, export dir, shipped dir).

    Args:
        path: str or Path.
        prefer: "tflite" or "keras": which file to pick when a directory holds both.
    """
    path = Path(path)
    if not path.exists():
        raise DlkitError(f"{path}: no such model file or directory")
    if path.is_file():
        if path.suffix not in (".keras", ".tflite"):
            raise DlkitError(f"{path}: expected a .keras or .tflite file or a model directory")
        return path
    keras_file = path / "model.keras"
    tflite_files = [path / name for name in TFLITE_ORDER if (path / name).exists()]
    order = tflite_files + [keras_file] if prefer == "tflite" else [keras_file] + tflite_files
    for candidate in order:
        if candidate.exists():
            return candidate
    raise DlkitError(f"{path}: no model.keras or model*.tflite in this directory")


def add_asset(directory, meta, name, source, file_name=None, into=None):
    """Copies `source` (a file path or bytes) into `directory` as a side file of the model
    and lists it in `meta["assets"]` with its size and checksum (write `model.json` with
    `stored_meta` after).

    Args:
        directory: the model's folder.
        meta: the model's metadata dict (changed in place).
        name: str. The side file's role, e.g. "vocab", "gallery", "detector".
        source: a path, or the file's bytes.
        file_name: str or None. Its name in `directory` (default: the source's name).
        into: str or None. A metadata key that the file's lines fill on load (a
            vocabulary), left out of model.json by `stored_meta`.
    """
    directory = Path(directory)
    if isinstance(source, (bytes, bytearray)):
        if not file_name:
            raise ValueError("add_asset needs file_name for bytes")
        target = directory / file_name
        with atomic_path(target) as tmp:
            tmp.write_bytes(source)
    else:
        source = Path(source)
        target = directory / (file_name or source.name)
        if source.resolve() != target.resolve():
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
    record = {"file": target.name, "bytes": target.stat().st_size, "sha256": sha256_file(target)}
    if into:
        record["into"] = into
    meta.setdefault("assets", {})[name] = record
    return target


def copy_assets(bundle, directory, meta):
    """Copies a bundle's side files into another folder (an export elsewhere)."""
    for name, record in bundle.meta.get("assets", {}).items():
        add_asset(directory, meta, name, bundle.asset(name), into=record.get("into"))


def stored_meta(meta):
    """`meta` as model.json stores it: without the keys that side files fill on load."""
    filled = {record["into"] for record in meta.get("assets", {}).values() if record.get("into")}
    filled.add(ASSET_PATHS)
    return {key: value for key, value in meta.items() if key not in filled}
