"""Data for detect: sources in any common format, decoded splits, augmented tf.data pipelines."""

from dataclasses import dataclass, field

import numpy as np

from dlkit.data import detection
from dlkit.errors import DlkitError, InvalidInputError

DEFAULT_VERSION = "tuxpaint-scenes-v1"
# Cache names of the offline scenes per image data version (dlkit.data.tuxpaint).
DEFAULT_VERSIONS = {1: DEFAULT_VERSION, 2: "image-data-v2-scenes"}


@dataclass
class LoadedDetection:
    inputs: np.ndarray  # (n, size, size, 3) uint8
    targets: np.ndarray  # (n,) object: (boxes (m, 4) normalised xyxy, classes (m,)) in model ids
    paths: list
    skipped: list = field(default_factory=list)
    source_labels: tuple = None  # classes already mapped to the model's
    scenes: object = None  # callable(rng) -> (image, boxes, classes in model ids), or None


def default_data(config, progress=None):
    """Builds the offline default scenes once (atomically) and returns their folder."""
    from dlkit.data.cache import build_once
    from dlkit.data.scenes import build_detection

    counts = {"train": config.train_images, "val": config.val_images, "test": config.test_images}
    version = DEFAULT_VERSIONS[config.image_data]
    name = (
        version
        if counts == {"train": 3000, "val": 300, "test": 300}
        else (f"{version}-{counts['train']}-{counts['val']}-{counts['test']}")
    )

    def build(folder):
        return build_detection(
            folder,
            counts=counts,
            progress=(lambda d, t: progress(d, t, "compositing scenes")) if progress else None,
            version=config.image_data,
        )

    return build_once(name, build)


def open_source(config, source, progress=None):
    """`--data`: omitted (offline scenes), a YOLO data.yaml or folder, a COCO JSON or folder,
    a VOC folder, or `tfds:voc/2007` / `tfds:coco/2017`."""
    found = detection.open_detection_source(source, cache_builder=lambda: default_data(config, progress))
    if len(found.labels) < 1:
        raise InvalidInputError(f"{found.description}: no classes")
    if source is None and config.fresh_scenes > 0:
        from dlkit.data.scenes import TrainingScenes

        found.scenes = TrainingScenes(
            config.image_size,
            version=config.image_data,
            render=config.scene_render,
            workers=config.scene_workers,
        )
    return found


def load_split(config, source, split, meta=None, progress=None):
    """Decodes one split at `image_size` (plain resize: boxes are normalised, so they do not
    move); classes are mapped to the model's by name."""
    from dlkit.data.labels import label_mapping
    from dlkit.edge.image import decode_side, load_image, resize

    records = source.records.get(split) or []
    if not records:
        raise DlkitError(f"{source.description}: no {split} images")
    labels = meta["labels"] if meta else source.labels
    used = {int(c) for r in records for c in r.classes}
    mapping = label_mapping(source.labels, labels, used)
    size = config.image_size
    images, targets, paths, skipped = [], [], [], []
    for i, record in enumerate(records):
        try:  # boxes are normalised: a large JPEG may decode at a reduced scale
            raw = (
                source.arrays[record.image]
                if record.image in source.arrays
                else load_image(record.image, at_least=decode_side(size))
            )
        except InvalidInputError as error:
            skipped.append(str(error))
            continue
        images.append(resize(raw, (size, size)))
        targets.append((record.boxes, mapping[record.classes] if len(record.classes) else record.classes))
        paths.append(record.image)
        if progress and (i + 1) % 200 == 0:
            progress(i + 1, len(records), f"decoding {split}")
    if not images:
        raise DlkitError(f"{source.description}: no readable {split} image")
    packed = np.empty(len(targets), dtype=object)
    packed[:] = targets
    scenes = None
    if split == "train" and source.scenes is not None:
        scene_mapping = label_mapping(source.scenes.labels, labels)

        def scenes(rng):
            image, boxes, classes = source.scenes(rng)
            return image, boxes, scene_mapping[classes] if len(classes) else classes

    return LoadedDetection(
        np.stack(images),
        packed,
        paths,
        skipped + list(source.skipped if split == "train" else []),
        scenes=scenes,
    )


def make_dataset(config, loaded, training=False, meta=None):
    """A batched `tf.data.Dataset` of (float32 pixels, y_true for `YOLOLoss`).

    Augmentation (flip, zoom in/out, colour) runs on each epoch's images in OpenCV
    (`dlkit.data.render.zoom_and_recolor`), boxes moving with the pixels; targets are
    encoded after it. When the split can make new scenes (the offline default), a
    `fresh_scenes` fraction of each training epoch's images are new scenes instead of
    the stored ones. With `mosaic`, that share of the training images are first tiled
    with three others (`dlkit.data.detection.mosaic`; fresh scenes in the same share),
    except in the last `close_mosaic` epochs. Each example is made in a parallel
    `map` from a seed of its own (the run's seed, the epoch, its index), so the examples
    are the same whatever the number of threads, and the model does not wait for them.
    """
    import tensorflow as tf

    from dlkit.data.batches import seeded_examples
    from dlkit.data.pool import example_draws
    from dlkit.data.render import zoom_and_recolor
    from dlkit.layers.yolo import anchor_table

    grids, anchors = meta["grids"], meta["anchors"]
    rows = anchor_table(grids, anchors).shape[0] + config.max_boxes
    count = len(loaded.inputs)
    size = config.image_size
    fresh = config.fresh_scenes if training and loaded.scenes is not None else 0.0
    pool = scene_pool(config, loaded, count, meta["labels"]) if fresh and config.scene_pool else None
    mosaic_epochs = (
        config.epochs + config.fine_tune_epochs - config.close_mosaic
        if training and config.augment and config.mosaic
        else 0
    )

    def tile(rng):  # a mosaic's other images: fresh scenes in the share the epoch's images are
        if fresh and rng.random() < fresh:
            image, boxes, classes = loaded.scenes(rng)
            return image, (boxes, classes)
        index = rng.integers(count)
        return loaded.inputs[index], loaded.targets[index]

    def example(epoch, index):
        rng, is_fresh = example_draws(config.seed, epoch, index, fresh)
        if is_fresh:
            pooled = pool.get(epoch, index) if pool else None
            if pooled is None:
                image, boxes, classes = loaded.scenes(rng)
            else:  # the same scene, drawn before training; the draws go on from there
                image, boxes, classes, rng.bit_generator.state = pooled
        else:
            image, (boxes, classes) = loaded.inputs[index], loaded.targets[index]
        if mosaic_epochs > epoch and rng.random() < config.mosaic:
            tiles = [(image, (boxes, classes))] + [tile(rng) for _ in range(3)]
            order = rng.permutation(4)
            image, boxes, classes = detection.mosaic(
                [tiles[k][0] for k in order], [tiles[k][1] for k in order], rng.uniform(0.5, 1.5, 2)
            )
        if training and config.augment:
            view = detection.zoom_draws(rng, scale=(config.zoom_min, config.zoom_max))
            boxes, classes = detection.zoom_boxes(boxes, classes, view)
            image = zoom_and_recolor(image, view, detection.color_factors(rng, config.color))
        y = detection.encode_targets(
            boxes, classes, grids, anchors, config.max_boxes, config.assign_threshold or None
        )
        return np.ascontiguousarray(image), y.astype(np.float32)

    specs = [tf.TensorSpec((size, size, 3), tf.uint8), tf.TensorSpec((rows, 6), tf.float32)]
    dataset = seeded_examples(count, config.seed, example, specs, shuffle=training)
    batches = -(-count // config.batch_size)

    def finish(images, y):
        return tf.cast(images, tf.float32), y

    return (
        dataset.batch(config.batch_size)
        .map(finish, num_parallel_calls=tf.data.AUTOTUNE)
        .apply(tf.data.experimental.assert_cardinality(batches))
        .prefetch(tf.data.AUTOTUNE)
    )


def scene_pool(config, loaded, count, labels):
    """The `ScenePool` of every fresh scene of this run's epochs (`config.scene_pool`),
    drawn now, or read from the cache where a run with the same settings drew it."""
    import hashlib
    import json

    from dlkit.console import ProgressPrinter
    from dlkit.data.pool import ScenePool, build_pool

    epochs = config.epochs + config.fine_tune_epochs
    settings = {
        "seed": config.seed,
        "fresh": config.fresh_scenes,
        "count": count,
        "epochs": epochs,
        "image_size": config.image_size,
        "image_data": config.image_data,
        "render": config.scene_render,
        "labels": list(labels),
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    name = f"{DEFAULT_VERSIONS[config.image_data]}-pool-{key}"
    folder = build_pool(
        name,
        config.seed,
        epochs,
        count,
        config.fresh_scenes,
        loaded.scenes,
        config.scene_workers,
        ProgressPrinter(),
    )
    return ScenePool(folder)


SAMPLE_COLORS = {"red": (220, 20, 20), "blue": (20, 20, 220)}


def write_sample_yolo(root, count=48, size=64, seed=0):
    """A tiny YOLO dataset a small detector can learn: coloured rectangles on noise,
    split train/val/test; returns the path of its `data.yaml`."""
    from pathlib import Path

    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    names = list(SAMPLE_COLORS)
    for i in range(count):
        split = "train" if i < count * 0.6 else "val" if i < count * 0.8 else "test"
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        rows = []
        for _ in range(rng.integers(1, 3)):
            cls = int(rng.integers(2))
            w, h = rng.integers(12, 30, 2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            image[y : y + h, x : x + w] = SAMPLE_COLORS[names[cls]]
            rows.append(f"{cls} {(x + w / 2) / size} {(y + h / 2) / size} {w / size} {h / size}")
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "images" / split / f"{i:03d}.png")
        (root / "labels" / split / f"{i:03d}.txt").write_text("\n".join(rows) + "\n")
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnames: [red, blue]\n"
    )
    return root / "data.yaml"
