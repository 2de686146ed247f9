"""Data for classify: sources, decoded splits and tf.data pipelines with augmentation."""

from dlkit.data import image_classes


def open_source(config, source, progress=None):
    """Resolves `--data` (None/default, `tfds:NAME`, or a class-per-folder directory)."""
    return image_classes.open_source(
        source, val_split=config.val_split, test_split=config.test_split, progress=progress
    )


def load_split(config, source, split, meta=None, progress=None):
    """Decodes one split; `.inputs` are (n, size, size, 3) uint8 images, `.targets` ids."""
    return image_classes.load_split(source, split, config.image_size, progress=progress)


def make_dataset(config, loaded, training=False, meta=None):
    """A batched `tf.data.Dataset` of (float32 pixels in [0, 255], class id).

    Training data is shuffled each epoch and augmented with Keras preprocessing layers
    in the pipeline, so augmentation never ends up in the exported model.
    """
    import tensorflow as tf

    from dlkit.data.augment import image_augmenter

    dataset = tf.data.Dataset.from_tensor_slices((loaded.inputs, loaded.targets))
    if training:
        dataset = dataset.shuffle(len(loaded.targets), seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size)
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if training and config.augment:
        augment = image_augmenter(
            flip=config.flip,
            rotation=config.rotation,
            zoom=config.zoom,
            translation=config.translation,
            contrast=config.contrast,
            brightness=config.brightness,
            saturation=config.saturation,
            hue=config.hue,
            seed=config.seed,
        )
        dataset = dataset.map(
            lambda x, y: (tf.clip_by_value(augment(x, training=True), 0.0, 255.0), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
