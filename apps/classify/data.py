"""Data for classify: sources, decoded splits and tf.data pipelines with augmentation."""

from dlkit.data import image_classes


def open_source(config, source, progress=None):
    """Resolves `--data` (None/default, `tfds:NAME`, or a class-per-folder directory)."""
    return image_classes.open_source(
        source,
        val_split=config.val_split,
        test_split=config.test_split,
        progress=progress,
        image_data=config.image_data,
    )


def load_split(config, source, split, meta=None, progress=None):
    """Decodes one split; `.inputs` are (n, size, size, 3) uint8 images, `.targets` the
    model's class ids (the data's classes are mapped to `meta["labels"]` by name; a data
    class the model does not know is an error)."""
    loaded = image_classes.load_split(source, split, config.image_size, progress=progress)
    if meta is not None and list(loaded.source_labels) != list(meta["labels"]):
        from dlkit.data.labels import label_mapping

        loaded.labels = label_mapping(loaded.source_labels, meta["labels"])[loaded.labels]
        loaded.source_labels = list(meta["labels"])
    return loaded


def write_sample_folder(root, per_class=8, size=40, classes=("red", "green", "blue"), seed=0):
    """A class-per-folder dataset that a tiny model can learn: coloured squares on noise."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
            top, left = rng.integers(0, size // 3, 2)
            image[top : top + size // 2, left : left + size // 2, index % 3] = 230
            Image.fromarray(image).save(folder / f"{name}_{i}.png")
    return root


def make_dataset(config, loaded, training=False, meta=None):
    """A batched `tf.data.Dataset` of (float32 pixels in [0, 255], class id).

    Training data is shuffled each epoch and augmented in the pipeline, a batch at a time
    (`dlkit.data.augment.ImageAugment`: one resampling pass, one colour product), from a
    seed per batch that changes every epoch; augmentation never ends up in the exported
    model.
    """
    import tensorflow as tf

    from dlkit.data.augment import ImageAugment
    from dlkit.data.batches import gathered_batches

    seed = config.seed if training else None
    augmenting = training and config.augment
    dataset = gathered_batches(
        (loaded.inputs, loaded.targets), config.batch_size, shuffle_seed=seed, with_seeds=augmenting
    )
    if augmenting:
        augment = ImageAugment(
            flip=config.flip,
            rotation=config.rotation,
            zoom=config.zoom,
            translation=config.translation,
            contrast=config.contrast,
            brightness=config.brightness,
            saturation=config.saturation,
            hue=config.hue,
            jit=config.augment_jit,
        )
        dataset = dataset.map(
            lambda batch, seed: (augment(batch[0], seed), batch[1]), num_parallel_calls=tf.data.AUTOTUNE
        )
    else:
        dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
