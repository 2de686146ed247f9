"""Image-classification sources: a class-per-folder directory, `tfds:NAME`, or the
offline default (Tux Paint photos composited on real backgrounds).

All images go through `dlkit.edge.image` (Pillow), the same code on-device predict
uses, and are decoded once into uint8 arrays at the model's input size.
"""

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlkit.edge.image import IMAGE_SUFFIXES, decode_side, load_image, resize
from dlkit.errors import DlkitError, InvalidInputError

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}
DEFAULT_NAMES = (None, "", "default", "tuxpaint")
DEFAULT_VERSION = "tuxpaint-photos-v3"
# Cache names of the offline default per image data version (dlkit.data.tuxpaint).
DEFAULT_VERSIONS = {1: DEFAULT_VERSION, 2: "image-data-v2-classes"}


@dataclass
class ImageClassSource:
    """Where the examples of each split come from.

    Args:
        description: str. Shown to the user and stored in the run manifest.
        labels: list of str. Class names; the index is the class id.
        files: dict split -> list of (path, class id), for folder sources.
        tfds_splits: dict split -> TFDS split string, for `tfds:` sources.
        fingerprint: str. Changes when the data changes.
        views: bool. File names are `<object>_<view>`: images of one object share a
            prefix (the offline default), so intervals can resample objects.
    """

    description: str
    labels: list
    files: dict = field(default_factory=dict)
    tfds_name: str = ""
    tfds_splits: dict = field(default_factory=dict)
    fingerprint: str = ""
    views: bool = False


def open_source(source, val_split=0.15, test_split=0.15, seed=0, progress=None, image_data=1):
    """Resolves a `--data` value to an `ImageClassSource`.

    Args:
        source: None/"default" for the offline default, "tfds:NAME", or a folder path.
        val_split, test_split: float. Fractions held out when the folder has no split folders.
        seed: int. Only the default dataset's compositing uses it.
        progress: callable(done, total, what) or None.
        image_data: int. The offline default's version (dlkit.data.tuxpaint).
    """
    if source in DEFAULT_NAMES:
        description = "default (Tux Paint photos)" if image_data == 1 else "default (image data v2 photos)"
        found = open_folder(
            default_dataset(progress=progress, image_data=image_data), val_split, test_split, description
        )
        found.views = True
        return found
    source = str(source)
    if source.startswith("tfds:"):
        return open_tfds(source[len("tfds:") :], val_split, test_split)
    return open_folder(Path(source), val_split, test_split)


def default_dataset(progress=None, image_data=1) -> Path:
    """Builds the offline default dataset once into the cache and returns its folder."""
    from dlkit.data import tuxpaint
    from dlkit.data.cache import build_once

    tuxpaint.check_version(image_data)

    def build(folder):
        return tuxpaint.build_classification(
            folder,
            progress=(lambda d, t: progress(d, t, "compositing scenes")) if progress else None,
            version=image_data,
        )

    return build_once(DEFAULT_VERSIONS[image_data], build)


def _class_folders(folder: Path):
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path):
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def open_folder(folder: Path, val_split=0.15, test_split=0.15, description=None):
    """A folder of class sub-folders, optionally split as `train/`, `val/`, `test/`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DlkitError(f"{folder}: no such data folder (expected <folder>/<class>/<image>)")
    subdirs = {p.name.lower(): p for p in _class_folders(folder)}
    split_dirs = {}
    for split, aliases in SPLIT_ALIASES.items():
        for alias in aliases:
            if alias in subdirs:
                split_dirs[split] = subdirs[alias]
                break
    if "train" in split_dirs:
        labels = [p.name for p in _class_folders(split_dirs["train"])]
        _check_labels(labels, split_dirs["train"])
        files = {}
        for split, directory in split_dirs.items():
            files[split] = []
            for path in _class_folders(directory):
                if path.name not in labels:
                    raise DlkitError(
                        f"{path}: class {path.name!r} is not among the training classes {labels}"
                    )
                files[split] += [(p, labels.index(path.name)) for p in _images_in(path)]
        _check_nonempty(files["train"], split_dirs["train"], labels)
        if "val" not in files:
            files["train"], files["val"] = _hash_split(files["train"], val_split)
        files.setdefault("test", files["val"])
    else:
        classes = _class_folders(folder)
        labels = [p.name for p in classes]
        _check_labels(labels, folder)
        everything = [(p, i) for i, c in enumerate(classes) for p in _images_in(c)]
        _check_nonempty(everything, folder, labels)
        rest, test = _hash_split(everything, test_split, salt="test")
        train, val = _hash_split(rest, val_split / max(1e-9, 1 - test_split), salt="val")
        files = {"train": train, "val": val, "test": test or val}
    fingerprint = _fingerprint(folder, files)
    return ImageClassSource(description or str(folder), labels, files=files, fingerprint=fingerprint)


def _check_labels(labels, folder):
    if not labels:
        raise DlkitError(f"{folder}: no class sub-folders (expected {folder}/<class>/<image>)")
    if len(labels) < 2:
        raise DlkitError(f"{folder}: only one class ({labels[0]!r}); classification needs at least 2")


def _check_nonempty(files, folder, labels):
    counts = np.bincount([label for _, label in files], minlength=len(labels))
    empty = [labels[i] for i, n in enumerate(counts) if n == 0]
    if empty:
        raise DlkitError(
            f"{folder}: {'class folder' if len(empty) == 1 else 'class folders'} without images: {', '.join(empty)}"
        )


def _hash_split(files, fraction, salt=""):
    """Splits per class by a stable hash of the file name (at least one held out per class)."""
    if fraction <= 0:
        return list(files), []
    by_class = {}
    for item in files:
        by_class.setdefault(item[1], []).append(item)
    keep, held = [], []
    for items in by_class.values():
        items = sorted(items, key=lambda it: hashlib.sha1((salt + it[0].name).encode()).hexdigest())
        n_held = min(len(items) - 1, max(1, round(len(items) * fraction))) if len(items) > 1 else 0
        held += items[:n_held]
        keep += items[n_held:]
    return keep, held


def _fingerprint(root, files):
    digest = hashlib.sha256()
    for split in sorted(files):
        for path, label in files[split]:
            digest.update(f"{split}|{Path(path).relative_to(root)}|{label}|{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def open_tfds(name, val_split=0.15, test_split=0.15):
    """A TFDS catalog dataset with an image and a class label (e.g. `tf_flowers`).

    Prepared data is read from `$TFDS_DATA_DIR` (default `~/tensorflow_datasets`);
    downloading needs the internet.
    """

    from dlkit.data.tfds_source import prepared_builder

    builder = prepared_builder(name)
    label_feature = builder.info.features["label"]
    labels = list(label_feature.names)
    available = set(builder.info.splits)
    if "validation" in available:
        splits = {
            "train": "train",
            "val": "validation",
            "test": "test" if "test" in available else "validation",
        }
    else:
        held = int(round((val_split + (0 if "test" in available else test_split)) * 100))
        val_end = 100 - held + int(round(val_split * 100))
        splits = {
            "train": f"train[:{100 - held}%]",
            "val": f"train[{100 - held}%:{val_end}%]",
            "test": "test" if "test" in available else f"train[{val_end}%:]",
        }
    version = str(builder.info.version)
    return ImageClassSource(
        f"tfds:{name}", labels, tfds_name=name, tfds_splits=splits, fingerprint=f"tfds:{name}:{version}"
    )


@dataclass
class LoadedSplit:
    images: np.ndarray  # (n, height, width, 3) uint8
    labels: np.ndarray  # (n,) int32
    paths: list
    skipped: list  # one-line messages for files that could not be read
    source_labels: list  # class names of the source, which `labels` index
    groups: list | None = None  # the object each image shows, when the source says (views)

    @property
    def inputs(self):
        return self.images

    @property
    def targets(self):
        return self.labels


def load_split(source: ImageClassSource, split, image_size, progress=None) -> LoadedSplit:
    """Decodes one split into uint8 arrays at `image_size`; unreadable files are skipped."""
    size = (image_size, image_size)
    if source.tfds_name:
        return _load_tfds_split(source, split, size, progress)
    items = source.files.get(split) or []
    if not items:
        raise DlkitError(f"{source.description}: the {split!r} split is empty")

    def decode(item):
        path, label = item
        try:
            return resize(load_image(path, at_least=decode_side(image_size)), size), label, None
        except InvalidInputError as error:
            return None, label, str(error)

    images, labels, paths, skipped = [], [], [], []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for index, (image, label, error) in enumerate(pool.map(decode, items)):
            if error:
                skipped.append(error)
            else:
                images.append(image)
                labels.append(label)
                paths.append(str(items[index][0]))
            if progress:
                progress(index + 1, len(items), f"loading {split}")
    if not images:
        raise DlkitError(f"{source.description}: no readable image in the {split!r} split")
    if split == "train":
        check_every_class_trains(source, items, labels)
    groups = object_groups(paths) if source.views else None
    return LoadedSplit(
        np.stack(images), np.asarray(labels, np.int32), paths, skipped, list(source.labels), groups
    )


def object_groups(paths):
    """The object each image of the offline default data shows, from its file name
    (`<class>/<object>_<view>.jpg`): views of one object share a group, so intervals
    resample objects, not views. A name without a `_<view>` suffix is its own object."""
    groups = []
    for path in paths:
        path = Path(path)
        stem, _, view = path.stem.rpartition("_")
        groups.append(f"{path.parent.name}/{stem if stem and view.isdigit() else path.stem}")
    return groups


def check_every_class_trains(source, items, labels):
    """A class without one readable training image would silently drop out of the model
    (and its accuracy be measured without it): a one-line error instead."""
    listed = np.bincount([label for _, label in items], minlength=len(source.labels))
    read = np.bincount(labels, minlength=len(source.labels))
    for index, name in enumerate(source.labels):
        if read[index] == 0:
            why = f"all {listed[index]} of its files are unreadable" if listed[index] else "it has no files"
            raise DlkitError(f"{source.description}: class {name!r} has no training image ({why})")


def _load_tfds_split(source, split, size, progress):
    import tensorflow_datasets as tfds

    dataset = tfds.load(source.tfds_name, split=source.tfds_splits[split])
    images, labels = [], []
    for index, example in enumerate(tfds.as_numpy(dataset)):
        image = example["image"]
        if image.ndim == 2 or image.shape[-1] == 1:
            image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=-1)
        images.append(resize(image[..., :3].astype(np.uint8), size))
        labels.append(int(example["label"]))
        if progress and index % 64 == 0:
            progress(index + 1, None, f"loading {split}")
    if not images:
        raise DlkitError(f"tfds:{source.tfds_name}: the {split!r} split is empty")
    names = [f"{source.tfds_name}:{split}:{i}" for i in range(len(images))]
    return LoadedSplit(np.stack(images), np.asarray(labels, np.int32), names, [], list(source.labels))
