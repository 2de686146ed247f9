"""Data for face: people folders (the offline faces or the user's), faces detected and
aligned once per split, and tf.data batches of P identities x K images for the triplet loss.

A split is a list of (photo, person): a named person's photo gives its largest face; a
photo without a person (None) gives every face in it, each its own pseudo-identity,
seen in training as K augmented views (the offline training data).
"""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlkit.edge.image import IMAGE_SUFFIXES
from dlkit.errors import DlkitError, InvalidInputError

SPLITS = ("train", "val", "test")


@dataclass
class FaceSource:
    description: str
    splits: dict  # split -> [(photo path, person name or None)]
    fingerprint: str = ""
    skipped: list = field(default_factory=list)
    labels: tuple = ()  # no classes: the people differ between splits


@dataclass
class LoadedFaces:
    inputs: np.ndarray  # (n, size, size, 3) uint8 aligned faces
    targets: np.ndarray  # (n,) int32 identity ids (identity_id of the name: the same in every split)
    names: dict  # identity id -> person name (or photo#face for a pseudo-identity)
    paths: list
    skipped: list = field(default_factory=list)


def _images(folder):
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _people(folder):
    """{person: [photos]} of a folder of person folders (the LFW layout)."""
    people = {}
    for person in sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = _images(person)
        if photos:
            people[person.name] = photos
    return people


def _fingerprint(splits):
    digest = hashlib.sha256()
    for split in SPLITS:
        for path, person in splits.get(split, []):
            digest.update(f"{split}|{person}|{Path(path).name}|{Path(path).stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def open_source(config, source, progress=None):
    """`--data`:

    - omitted: the offline faces (apps/face/faces.py): training on the faces without
      identities, validation and test on the people (each person's photos halved between
      them: the threshold is calibrated on val, scored on test);
    - a folder of person folders (the LFW layout: `Name/photo.jpg`), split by person with
      `val_split` and `test_split` (training and evaluation people never mix), or with
      `train/`, `val/`, `test/` folders of person folders;
    - `tfds:NAME`, a TFDS set of `image` and a person `label` (text or class name:
      `tfds:lfw`), written once into the dlkit cache as person folders, split by person.
    """
    if source is None:
        from dlkit.apps.face import faces

        folder = faces.default_folder()
        splits = {"train": [(p, None) for p in _images(folder / faces.UNLABELLED)], "val": [], "test": []}
        for person, photos in _people(folder / faces.PEOPLE).items():
            half = len(photos) // 2
            splits["val"] += [(p, person) for p in photos[:half]]
            splits["test"] += [(p, person) for p in photos[half:]]
        description = f"offline faces ({folder})"
        return FaceSource(description, splits, _fingerprint(splits))
    if str(source).startswith("tfds:"):
        from dlkit.data.cache import build_once

        name = str(source)[len("tfds:") :]
        report = (lambda done, total: progress(done, total, f"writing tfds:{name}")) if progress else None
        folder = build_once(
            f"face-tfds-{name.replace('/', '-')}-v1", lambda out: tfds_people(name, out, report)
        )
        splits = split_people(_people(folder), config.val_split, config.test_split)
        return FaceSource(f"tfds:{name} ({folder})", splits, _fingerprint(splits))
    folder = Path(source)
    if not folder.is_dir():
        raise DlkitError(f"{folder}: not a folder (face reads a folder with a folder of photos per person)")
    if all((folder / split).is_dir() for split in SPLITS):
        splits = {
            split: [(p, person) for person, photos in _people(folder / split).items() for p in photos]
            for split in SPLITS
        }
    else:
        splits = split_people(_people(folder), config.val_split, config.test_split)
    for split in SPLITS:
        if len({person for _, person in splits[split]}) < 2:
            raise DlkitError(
                f"{folder}: the {split} split has fewer than 2 people; give at least 6 person folders "
                "(2 each for train, val and test) or train/, val/ and test/ folders of person folders"
            )
    return FaceSource(f"people in {folder}", splits, _fingerprint(splits))


def tfds_people(name, out, progress=None):
    """Writes every example of a TFDS set (all its splits) as `out/<person>/<n>.png`."""
    from PIL import Image

    from dlkit.data.tfds_source import prepared_builder

    builder = prepared_builder(name)
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DlkitError(f"tfds:{name}: face needs `image` and `label` (the person) features")
    names = getattr(features["label"], "names", None)
    total, counts = sum(split.num_examples for split in builder.info.splits.values()), {}
    for split in builder.info.splits:
        for example in builder.as_dataset(split=split).as_numpy_iterator():
            label = example["label"]
            person = (
                names[int(label)]
                if names
                else (label.decode("utf-8") if isinstance(label, bytes) else str(label))
            )
            person = re.sub(r"[^\w .-]", "_", person).strip().lstrip(".") or "unnamed"  # a folder name
            counts[person] = counts.get(person, 0) + 1
            (out / person).mkdir(parents=True, exist_ok=True)
            Image.fromarray(example["image"]).save(out / person / f"{counts[person]:04d}.png")
            if progress and sum(counts.values()) % 500 == 0:
                progress(sum(counts.values()), total)
    return {"people": len(counts), "photos": sum(counts.values())}


def split_people(people, val_split, test_split):
    """{split: [(photo, person)]}: whole people per split, chosen by a hash of the name
    (stable when people are added), at least 2 people in each split."""
    names = sorted(people, key=lambda n: hashlib.sha1(n.encode("utf-8")).hexdigest())
    count = len(names)
    n_val = max(2, round(count * val_split))
    n_test = max(2, round(count * test_split))
    chosen = {"val": names[:n_val], "test": names[n_val : n_val + n_test], "train": names[n_val + n_test :]}
    return {split: [(p, n) for n in sorted(chosen[split]) for p in people[n]] for split in SPLITS}


def identity_id(name):
    """A person's id, from their name: the same person has the same id in every split, so
    splits pool without mixing people up (31 bits of a SHA-1)."""
    return int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


def load_split(config, source, split, meta=None, progress=None):
    """Detects and aligns the faces of a split at `image_size` (unreadable photos and
    photos without a face are skipped and reported)."""
    from dlkit.apps.face.detector import align, detector_at, find_faces, shipped_detector
    from dlkit.edge.image import load_image

    items = source.splits.get(split) or []
    if not items:
        raise DlkitError(f"{source.description}: no {split} photos")
    detector = detector_at(str(shipped_detector()))
    size = config.image_size
    crops, targets, names, paths = [], [], {}, []
    skipped = list(source.skipped if split == "train" else [])
    for index, (path, person) in enumerate(items):
        try:
            image = load_image(path)
        except InvalidInputError as error:
            skipped.append(str(error))
            continue
        found = find_faces(detector, image, config.min_face)
        if not found:
            skipped.append(f"{path}: no face found")
            continue
        for number, face in enumerate(found if person is None else found[:1]):
            name = person if person is not None else f"{Path(path).name}#{number}"
            names[identity_id(name)] = name
            crops.append(align(image, face.keypoints, size))
            targets.append(identity_id(name))
            paths.append(str(path))
        if progress and (index + 1) % 50 == 0:
            progress(index + 1, len(items), f"finding faces ({split})")
    if not crops:
        raise DlkitError(f"{source.description}: no face found in the {split} photos")
    return LoadedFaces(np.stack(crops), np.asarray(targets, np.int32), names, paths, skipped)


def identity_batches(targets, per_batch, per_identity, batches, rng):
    """Index arrays of `per_batch` identities x `per_identity` images each (drawn with
    replacement when an identity has fewer), `batches` of them."""
    by_identity = {}
    for index, identity in enumerate(targets):
        by_identity.setdefault(int(identity), []).append(index)
    identities = np.array(sorted(by_identity))
    take = min(per_batch, len(identities))
    for _ in range(batches):
        chosen = rng.choice(identities, take, replace=False)
        yield np.concatenate(
            [
                rng.choice(by_identity[i], per_identity, replace=len(by_identity[i]) < per_identity)
                for i in chosen
            ]
        )


def steps_per_epoch(config, loaded):
    identities = len(np.unique(loaded.targets))
    return max(1, config.passes * -(-identities // config.identities_per_batch))


def make_dataset(config, loaded, training=False, meta=None):
    """(float32 pixels in [0, 255], int32 identity) batches.

    Training: P identities x K images per batch, each image augmented on its own (a
    mirror, a zoom of up to `zoom` with a shift, brightness and contrast by up to
    `color`), so a pseudo-identity's K views differ. Otherwise the split in order.
    """
    import tensorflow as tf

    from dlkit.data.batches import epoch_numbers

    if not training:
        per_batch = config.identities_per_batch * config.images_per_identity
        return tf.data.Dataset.from_tensor_slices((loaded.inputs, loaded.targets)).batch(per_batch)
    identities = len(np.unique(loaded.targets))
    if identities < 2:
        raise DlkitError("the training split needs at least 2 identities for the triplet loss")
    steps = steps_per_epoch(config, loaded)
    per_batch = min(config.identities_per_batch, identities) * config.images_per_identity

    def epoch_batches(epoch):  # drawn from the seed and the epoch
        rng = np.random.default_rng([config.seed, int(epoch)])
        batches = identity_batches(
            loaded.targets, config.identities_per_batch, config.images_per_identity, steps, rng
        )
        return np.stack(list(batches)).astype(np.int64)

    def indices(epoch):
        batches = tf.numpy_function(epoch_batches, [epoch], tf.int64, stateful=False)
        return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(batches, (steps, per_batch)))

    images = tf.constant(loaded.inputs)
    targets = tf.constant(loaded.targets)
    size = config.image_size

    def gather(index):
        batch = tf.gather(images, index)
        batch = (
            augment(batch, size, config.zoom, config.color) if config.augment else tf.cast(batch, tf.float32)
        )
        return batch, tf.gather(targets, index)

    dataset = epoch_numbers().flat_map(indices)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps))  # an epoch's length for fit
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def augment(batch, size, zoom, color):
    """Per-image mirror and zoom-and-shift in one `crop_and_resize` (a box whose left edge
    is right of its right edge is read mirrored), then colour jitter; uint8 or float
    pixels in, float32 out."""
    import tensorflow as tf

    count = tf.shape(batch)[0]
    side = 1.0 / tf.random.uniform((count,), 1.0, 1.0 + zoom)  # the crop's side, as a fraction
    top = tf.random.uniform((count,)) * (1.0 - side)
    left = tf.random.uniform((count,)) * (1.0 - side)
    mirror = tf.random.uniform((count,)) < 0.5
    x1, x2 = tf.where(mirror, left + side, left), tf.where(mirror, left, left + side)
    # Corners are sampled at pixel centres: a full box maps pixel i to i (no blur).
    boxes = tf.stack([top, x1, top + side, x2], axis=1)
    batch = tf.image.crop_and_resize(batch, boxes, tf.range(count), (size, size))
    if color > 0:
        mean = tf.reduce_mean(batch, axis=[1, 2, 3], keepdims=True)
        contrast = tf.random.uniform((count, 1, 1, 1), 1 - color, 1 + color)
        brightness = tf.random.uniform((count, 1, 1, 1), -color, color) * 255.0
        batch = tf.clip_by_value((batch - mean) * contrast + mean + brightness, 0.0, 255.0)
    return batch


def write_sample_folder(root, people=8, photos=3, seed=0):
    """A tiny people folder from real faces offline: `people` of scikit-image's LFW faces
    (those the detector finds), each in `photos` variants (mirrored, shifted, brighter),
    with train/val/test folders."""
    from PIL import Image, ImageEnhance

    from dlkit.apps.face.detector import detector_at, find_faces, shipped_detector
    from dlkit.apps.face.faces import lfw_faces

    rng = np.random.default_rng(seed)
    detector = detector_at(str(shipped_detector()))
    faces = [face for face in lfw_faces(size=96)[: 2 * people] if find_faces(detector, face)][:people]
    root = Path(root)
    per_split = {"train": people - 4, "val": 2, "test": 2}
    index = 0
    for split, count in per_split.items():
        for _ in range(count):
            face = Image.fromarray(faces[index])
            person = root / split / f"person_{index:02d}"
            person.mkdir(parents=True, exist_ok=True)
            for k in range(photos):
                shifted = face.rotate(0, translate=tuple(int(v) for v in rng.integers(-6, 7, 2)))
                if k % 2:
                    shifted = shifted.transpose(Image.FLIP_LEFT_RIGHT)
                ImageEnhance.Brightness(shifted).enhance(float(rng.uniform(0.8, 1.2))).save(
                    person / f"{k}.png"
                )
            index += 1
    return root
