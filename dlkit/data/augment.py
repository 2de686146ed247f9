"""Image augmentation as Keras preprocessing layers, applied in the tf.data pipeline
(never inside the exported model)."""

import keras
from keras import layers


def image_augmenter(
    flip=True,
    rotation=0.1,
    zoom=0.15,
    translation=0.1,
    contrast=0.2,
    brightness=0.2,
    saturation=0.2,
    hue=0.02,
    seed=None,
    name="augment",
):
    """A `keras.Sequential` of random image transforms for pixels in [0, 255].

    Args:
        flip: bool. Random horizontal flips.
        rotation: float. Maximum rotation as a fraction of a full turn.
        zoom: float. Maximum zoom in or out, as a fraction of the size.
        translation: float. Maximum shift, as a fraction of the size.
        contrast: float. Contrast factor range (1 +- contrast).
        brightness: float. Brightness change as a fraction of the value range.
        saturation: float. Saturation factor range around neutral.
        hue: float. Hue shift as a fraction of the hue circle.
        seed: int or None.

    Example:
        >>> augment = image_augmenter(rotation=0.05)
        >>> dataset = dataset.map(lambda x, y: (augment(x, training=True), y))
    """
    steps = []
    if flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        steps.append(layers.RandomRotation(rotation, fill_mode="reflect", seed=seed))
    if zoom:
        steps.append(layers.RandomZoom((-zoom, zoom), fill_mode="reflect", seed=seed))
    if translation:
        steps.append(layers.RandomTranslation(translation, translation, fill_mode="reflect", seed=seed))
    if contrast:
        steps.append(layers.RandomContrast(contrast, value_range=(0, 255), seed=seed))
    if brightness:
        steps.append(layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed))
    if saturation or hue:
        steps.append(
            layers.RandomColorJitter(
                value_range=(0, 255),
                saturation_factor=(0.5 - saturation / 2, 0.5 + saturation / 2) if saturation else None,
                hue_factor=hue or None,
                seed=seed,
            )
        )
    # An empty Sequential cannot be called; with every transform off, pass images through.
    return keras.Sequential(steps or [layers.Identity(name="identity")], name=name)
