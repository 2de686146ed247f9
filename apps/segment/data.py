"""Data for segment: image + mask folders (the offline scenes or the user's), decoded
splits and tf.data pipelines that flip image and mask together."""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlkit.data.masks import VOID, check_same_size, pair_images_and_masks, read_mask
from dlkit.errors import DlkitError, InvalidInputError

DEFAULT_VERSION = "tuxpaint-masks-v1"
# Cache names of the offline scenes per image data version (dlkit.data.tuxpaint).
DEFAULT_VERSIONS = {1: DEFAULT_VERSION, 2: "image-data-v2-masks"}
SPLITS = ("train", "val", "test")


@dataclass
class MaskSource:
    description: str
    labels: list  # class names, background first
    splits: dict  # split -> [(image path, mask path)]
    fingerprint: str = ""
    skipped: list = field(default_factory=list)
    scenes: object = None  # dlkit.data.scenes.TrainingScenes of the offline default, or None


@dataclass
class LoadedMasks:
    inputs: np.ndarray  # (n, size, size, 3) uint8
    targets: np.ndarray  # (n, size, size) uint8 class ids in the model's order
    paths: list
    skipped: list = field(default_factory=list)
    scenes: object = None  # callable(rng) -> a fresh (image, mask) like inputs[k], targets[k]


def default_data(config, progress=None):
    """Builds the offline scenes with masks once (the detect scenes, written as masks)."""
    from dlkit.data.cache import build_once
    from dlkit.data.scenes import build_segmentation

    counts = {"train": config.train_images, "val": config.val_images, "test": config.test_images}
    name = f"{DEFAULT_VERSIONS[config.image_data]}-{counts['train']}-{counts['val']}-{counts['test']}"

    def build(folder):
        report = (lambda d, t: progress(d, t, "compositing scenes")) if progress else None
        return build_segmentation(folder, counts=counts, progress=report, version=config.image_data)

    return build_once(name, build)


def open_source(config, source, progress=None):
    """`--data`:

    - omitted: the offline scenes (built once);
    - a folder with `images/` and `masks/` (PNG class indices, same stems; each optionally
      split into `train/`, `val/`, `test/`, else split by `val_split` and `test_split`)
      and an optional `labels.txt` (background first);
    - a Pascal VOC folder (`SegmentationClass/`, `JPEGImages/`, `ImageSets/Segmentation/`):
      its train list gives training and validation, its val list the test split;
    - a COCO instances JSON, or a folder with `annotations/instances_<split>*.json`:
      polygons and RLE rasterized once into the dlkit cache (pycocotools);
    - `tfds:NAME`, a TFDS set with `image` and `segmentation_mask` (`tfds:oxford_iiit_pet`:
      background, cat, dog; trimap borders void), written once into the dlkit cache.
    """
    from dlkit.data.cache import build_once
    from dlkit.data.masks import find_voc_root, tfds_mask_folder

    if source is None:
        version = "" if config.image_data == 1 else ", image data v2"
        found = _folder_source(
            config, default_data(config, progress), f"default (Tux Paint scenes with masks{version})"
        )
        if config.fresh_scenes > 0:
            from dlkit.data.scenes import TrainingScenes

            found.scenes = TrainingScenes(version=config.image_data)  # at the stored scenes' size
        return found
    source = str(source)
    if source.startswith("tfds:"):
        name = source[5:]
        report = (lambda d, t, what: progress(d, t, what)) if progress else None
        folder = build_once(
            f"tfds-masks-{name.replace('/', '-')}-v1", lambda out: tfds_mask_folder(name, out, report)
        )
        return _folder_source(config, folder, source)
    path = Path(source).expanduser()
    if not path.exists():
        raise InvalidInputError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".json" or (path / "annotations").is_dir():
        return _coco_source(config, path)
    voc = find_voc_root(path) if path.is_dir() else None
    if voc is not None:
        return _voc_source(config, voc)
    return _folder_source(config, path, str(path))


def _three_splits(config, pairs, splits=None):
    """Missing val (and test) splits carved from `pairs` by `val_split` / `test_split`, by
    a hash of each image's file name (`dlkit.data.splits`): not the run's seed, and a
    growing folder keeps every image in its split."""
    from dlkit.data.splits import hash_split

    splits = dict(splits or {})
    test_fraction = 0.0 if "test" in splits else config.test_split
    carved = hash_split(pairs, lambda pair: Path(pair[0]).name, config.val_split, test_fraction)
    splits["val"], splits["train"] = carved["val"], carved["train"]
    splits.setdefault("test", carved["test"])
    return splits


def _source(description, labels, splits, skipped):
    if not splits.get("train"):
        first = f" ({len(skipped)} skipped, e.g. {skipped[0]})" if skipped else ""
        raise InvalidInputError(f"{description}: no image with a mask in the training split{first}")
    digest = hashlib.sha256("".join(f"{i.name}{m.name}" for s in splits.values() for i, m in s).encode())
    return MaskSource(description, labels, splits, digest.hexdigest()[:16], skipped)


def _folder_source(config, folder, description):
    images, masks = folder / "images", folder / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise InvalidInputError(
            f"{folder}: expected images/ and masks/ folders (masks: PNG class indices), a Pascal VOC "
            "folder, a COCO instances JSON or annotations/ folder, or tfds:NAME"
        )
    splits, skipped = {}, []
    if (images / "train").is_dir():
        for split in SPLITS:
            if (images / split).is_dir():
                pairs, missing = pair_images_and_masks(images / split, masks / split)
                splits[split], skipped = pairs, skipped + missing
        if not splits.get("val") and splits.get("train"):
            splits = _three_splits(config, splits["train"], {"test": splits.get("test", [])})
    else:
        pairs, skipped = pair_images_and_masks(images, masks)
        splits = _three_splits(config, pairs)
    labels = _labels(folder, splits.get("train", []))
    return _source(description, labels, splits, skipped)


def _voc_source(config, root):
    from dlkit.data.masks import VOC_CLASSES, voc_pairs

    lists, skipped = voc_pairs(root)
    splits = _three_splits(config, lists["train"], {"test": lists.get("val", [])})
    labels = _labels(root, []) if (root / "labels.txt").exists() else list(VOC_CLASSES)
    return _source(f"Pascal VOC {root}", labels, splits, skipped)


def _coco_source(config, path):
    from dlkit.data.cache import build_once
    from dlkit.data.masks import coco_class_masks

    if path.is_file():
        files = {"train": (path, path.parent)}
    else:
        files = {}
        for file in sorted((path / "annotations").glob("instances_*.json")):
            tag = file.stem.removeprefix("instances_")
            split = "train" if tag.startswith("train") else "test" if tag.startswith("val") else None
            images = next(
                (d for d in (path / tag, path / "images" / tag, path / "images") if d.is_dir()), path
            )
            if split and split not in files:
                files[split] = (file, images)
        if "train" not in files:
            raise InvalidInputError(f"{path}: no annotations/instances_train*.json")
    digest = hashlib.sha256()
    for file, images in files.values():
        digest.update(f"{file.resolve()}:{file.stat().st_size}:{file.stat().st_mtime_ns}:{images}".encode())

    def build(out):
        names, counts = None, {}
        for split, (file, images) in files.items():
            pairs, names, skipped = coco_class_masks(file, images, out / split, names)
            counts[split] = len(pairs)
            (out / split / "pairs.json").write_text(
                json.dumps({"pairs": [[str(i), m.name] for i, m in pairs], "skipped": skipped})
            )
        (out / "labels.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
        return counts

    folder = build_once(f"coco-masks-{digest.hexdigest()[:16]}", build)
    read, skipped = {}, []
    for split in files:
        stored = json.loads((folder / split / "pairs.json").read_text())
        read[split] = [(Path(i), folder / split / m) for i, m in stored["pairs"]]
        skipped += stored["skipped"]
    splits = _three_splits(config, read["train"], {"test": read["test"]} if "test" in read else None)
    return _source(f"COCO {path}", _labels(folder, []), splits, skipped)


def _labels(folder, train_pairs):
    path = folder / "labels.txt"
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"{path}: not UTF-8 text") from None
        labels = [line.strip() for line in text.splitlines() if line.strip()]
        if len(labels) < 2:
            raise InvalidInputError(f"{path}: needs the background and at least one class, one per line")
        if len(set(labels)) != len(labels):
            raise InvalidInputError(f"{path}: a class is named twice")
        return labels
    highest = 0
    for _, mask_path in train_pairs:
        try:
            ids = np.unique(read_mask(mask_path))
        except InvalidInputError:
            continue  # load_split skips and reports it
        highest = max(highest, int(ids[ids != VOID].max(initial=0)))
    return ["background", *(f"class_{i}" for i in range(1, max(highest, 1) + 1))]


def load_split(config, source, split, meta=None, progress=None):
    """Decodes one split at `image_size`: images bilinear, masks nearest-neighbour; class
    ids mapped to the model's classes by name. Unreadable pairs are skipped and reported.
    VOC's void label (255) stays void."""
    from PIL import Image

    from dlkit.data.labels import label_mapping
    from dlkit.edge.image import load_image, resize

    pairs = source.splits.get(split) or []
    if not pairs:
        raise DlkitError(f"{source.description}: no {split} images")
    labels = meta["labels"] if meta else source.labels
    mapping = label_mapping(source.labels, labels)
    lookup = np.zeros(256, np.uint8)
    lookup[: len(mapping)] = np.maximum(mapping, 0)
    lookup[VOID] = VOID  # kept: neither trained (dlkit.losses.DiceCrossEntropy) nor scored
    size = config.image_size

    def decode(image, mask):
        small = np.asarray(Image.fromarray(mask).resize((size, size), Image.NEAREST))
        return resize(image, (size, size)), lookup[small]

    images, masks, paths, skipped = [], [], [], list(source.skipped if split == "train" else [])
    for index, (image_path, mask_path) in enumerate(pairs):
        try:
            image = load_image(image_path)
            mask = read_mask(mask_path, num_classes=len(source.labels))
            check_same_size(image, mask, image_path, mask_path)
        except InvalidInputError as error:
            skipped.append(str(error))
            continue
        image, mask = decode(image, mask)
        images.append(image)
        masks.append(mask)
        paths.append(str(image_path))
        if progress and (index + 1) % 200 == 0:
            progress(index + 1, len(pairs), f"decoding {split}")
    if not images:
        raise DlkitError(f"{source.description}: no readable {split} image and mask")
    fresh = None
    if split == "train" and source.scenes is not None:

        def fresh(rng):
            scene = source.scenes.scene(rng)
            return decode(scene.image, scene.class_mask.astype(np.uint8))

    return LoadedMasks(np.stack(images), np.stack(masks), paths, skipped, scenes=fresh)


def make_dataset(config, loaded, training=False, meta=None):
    """A batched `tf.data.Dataset` of (float32 pixels in [0, 255], int32 class map).
    Training data is shuffled and augmented, image and mask together: a left-right flip,
    a zoom in by up to `1 + zoom` with a random crop back to size (bilinear for the
    image, nearest neighbour for the mask, so labels stay labels); brightness and
    contrast by up to `color` on the image only. On the offline default data a
    `fresh_scenes` fraction of each epoch's training scenes are new ones."""
    import tensorflow as tf

    size = config.image_size
    fresh = config.fresh_scenes if training and loaded.scenes is not None else 0.0
    if fresh:
        dataset = _fresh_examples(config, loaded, fresh)
    elif training:  # a new order each epoch, from the seed and the epoch
        from dlkit.data.batches import epoch_examples

        dataset = epoch_examples((loaded.inputs, loaded.targets), config.seed)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((loaded.inputs, loaded.targets))

    def prepare(image, mask):
        image, mask = tf.cast(image, tf.float32), tf.cast(mask, tf.int32)
        if training and config.augment:
            flip = tf.random.uniform(()) < 0.5
            image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
            mask = tf.cond(flip, lambda: tf.reverse(mask, [1]), lambda: mask)
            if config.zoom > 0:
                scaled = tf.cast(tf.round(size * tf.random.uniform((), 1.0, 1.0 + config.zoom)), tf.int32)
                image = tf.image.resize(image, (scaled, scaled), method="bilinear")
                mask = tf.image.resize(mask[..., None], (scaled, scaled), method="nearest")[..., 0]
                top = tf.random.uniform((), 0, scaled - size + 1, dtype=tf.int32)
                left = tf.random.uniform((), 0, scaled - size + 1, dtype=tf.int32)
                image = image[top : top + size, left : left + size]
                mask = mask[top : top + size, left : left + size]
            if config.color > 0:
                mean = tf.reduce_mean(image)
                contrast = tf.random.uniform((), 1 - config.color, 1 + config.color)
                brightness = tf.random.uniform((), -config.color, config.color) * 255.0
                image = tf.clip_by_value((image - mean) * contrast + mean + brightness, 0.0, 255.0)
            image = tf.ensure_shape(image, (size, size, 3))
            mask = tf.ensure_shape(mask, (size, size))
        return image, mask

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)


def _fresh_examples(config, loaded, fresh):
    """(uint8 image, uint8 mask) of one training epoch: the stored scenes in a new order,
    each replaced by a new scene with probability `fresh`, from a seed of its own (the
    run's seed, the epoch, its index)."""
    import tensorflow as tf

    from dlkit.data.batches import seeded_examples

    size = config.image_size

    def example(epoch, index):
        rng = np.random.default_rng([config.seed, int(epoch), int(index)])
        if rng.random() < fresh:
            return loaded.scenes(rng)
        return loaded.inputs[index], loaded.targets[index]

    specs = [tf.TensorSpec((size, size, 3), tf.uint8), tf.TensorSpec((size, size), tf.uint8)]
    return seeded_examples(len(loaded.inputs), config.seed, example, specs)


SAMPLE_COLORS = ((220, 30, 30), (30, 30, 220))


def write_sample_folder(root, per_split=(16, 6, 6), size=48, seed=0):
    """A tiny dataset a small U-Net can learn: red and blue squares on grey noise, with
    their masks (1 = red, 2 = blue), split into train/val/test, and `labels.txt`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    for split, count in zip(SPLITS, per_split):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = rng.integers(60, 140, (size, size, 3), dtype=np.uint8)
            mask = np.zeros((size, size), np.uint8)
            for cls in rng.permutation(2)[: rng.integers(1, 3)]:
                w, h = rng.integers(10, 24, 2)
                x, y = rng.integers(0, size - w), rng.integers(0, size - h)
                image[y : y + h, x : x + w] = SAMPLE_COLORS[cls]
                mask[y : y + h, x : x + w] = cls + 1
            Image.fromarray(image).save(root / "images" / split / f"{split}_{i:03d}.png")
            Image.fromarray(mask, "L").save(root / "masks" / split / f"{split}_{i:03d}.png")
    (root / "labels.txt").write_text("background\nred\nblue\n")
    return root
