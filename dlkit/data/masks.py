"""Segmentation masks in user folders: `images/<stem>.<ext>` beside `masks/<stem>.png`,
each mask one channel of class indices (0 = background), as Pascal VOC's palette PNGs
and most labelling tools write them.

Every problem is a one-line InvalidInputError naming the file: a missing mask, a mask of
another size than its image, class ids the dataset does not have, or an RGB colour mask
where indices are expected (with how to convert it).
"""

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dlkit.edge.image import IMAGE_SUFFIXES
from dlkit.errors import InvalidInputError

# Pascal VOC marks object borders "void" with 255: those pixels are not scored or trained.
VOID = 255


def read_mask(path, num_classes=None):
    """A mask PNG as an (h, w) uint8 array of class ids (VOID kept as 255).

    Args:
        path: str or Path.
        num_classes: int or None. Ids must be below it (VOID excepted).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            array = np.asarray(image)
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such mask file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InvalidInputError(f"{path}: not a readable mask image ({error})") from None
    if array.ndim == 3:
        channels = array[..., :3]
        if np.all(channels == channels[..., :1]):  # grey saved as RGB: the indices are there
            array = channels[..., 0]
        else:
            raise InvalidInputError(
                f"{path}: an RGB colour mask ({mode}); expected one channel of class indices "
                "(0 = background). Convert it with a colour -> index table, e.g. "
                "np.argmax(np.all(rgb[..., None, :] == palette, -1), -1), and save as a grey or palette PNG"
            )
    if array.dtype != np.uint8:
        if array.max(initial=0) > 255:
            raise InvalidInputError(
                f"{path}: class ids up to {array.max()}; at most 255 classes are supported"
            )
        array = array.astype(np.uint8)
    if num_classes is not None:
        ids = np.unique(array)
        bad = ids[(ids >= num_classes) & (ids != VOID)]
        if len(bad):
            raise InvalidInputError(
                f"{path}: class id {int(bad[0])} but the dataset has {num_classes} classes (0-{num_classes - 1})"
            )
    return array


def pair_images_and_masks(images_dir, masks_dir):
    """[(image path, mask path)] matched by file stem, and the images without a mask (as
    one-line messages; the caller skips and reports them)."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    masks = {p.stem: p for p in masks_dir.iterdir() if p.is_file() and p.suffix.lower() == ".png"}
    pairs, missing = [], []
    for image in sorted(
        p for p in images_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    ):
        if image.stem in masks:
            pairs.append((image, masks[image.stem]))
        else:
            missing.append(f"{image}: no mask {masks_dir / (image.stem + '.png')}")
    return pairs, missing


def check_same_size(image, mask, image_path, mask_path):
    """Raises a one-line error when a mask does not cover its image pixel for pixel."""
    if image.shape[:2] != mask.shape[:2]:
        raise InvalidInputError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {Path(image_path).name} "
            f"is {image.shape[1]}x{image.shape[0]}"
        )
