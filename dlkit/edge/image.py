"""Image decoding and resizing with Pillow in numpy: one implementation for training
data, evaluation and on-device predict, so the TFLite model sees exactly what Keras saw."""

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dlkit.errors import InvalidInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# 20000x20000 is a decompression bomb: 400 M pixels would need 1.2 GB before resizing.
MAX_PIXELS = 64_000_000


def load_image(path, max_pixels=MAX_PIXELS, at_least=None) -> np.ndarray:
    """Reads an image file as an RGB uint8 array of shape (height, width, 3).

    Grayscale, palette, CMYK and 16-bit images are converted; transparent images are
    composited on white; EXIF rotation is applied.

    Args:
        path: str or Path.
        max_pixels: int. Larger images are refused before decoding.
        at_least: int or None. A JPEG is decoded at the smallest of 1/2, 1/4 or 1/8 of its
            size whose sides stay at least this long (the decoder's own scaling: a
            24-megapixel photo in a tenth of the time), for a caller that shrinks the image
            anyway; None decodes every pixel.

    Raises:
        InvalidInputError: empty, corrupt, not an image, or too large; the message names the file.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise InvalidInputError(f"{path}: empty file")
        with warnings.catch_warnings():
            # Pillow warns about large images on open; the size check below says it once.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise InvalidInputError(
                        f"{path}: {width}x{height} image is too large (limit {max_pixels:,} pixels)"
                    )
                if at_least and image.format == "JPEG":
                    image.draft(None, (at_least, at_least))
                image.load()
                return to_rgb(ImageOps.exif_transpose(image))
    except InvalidInputError:
        raise
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise InvalidInputError(f"{path}: not an image file (unrecognised format)") from None
    except Image.DecompressionBombError:
        raise InvalidInputError(f"{path}: image is too large (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidInputError(f"{path}: corrupt image ({error})") from None


def decode_side(*sides):
    """The `at_least` of `load_image` for a caller that resizes the image to `sides`: twice
    the longest, so the resize after still averages several decoded pixels into each."""
    return 2 * max(sides)


def image_array(array) -> np.ndarray:
    """An image given as an array (h, w), (h, w, 1), (h, w, 3) or (h, w, 4), uint8 or
    float in [0, 1] or [0, 255], as an RGB uint8 array (raises InvalidInputError)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or 0 in array.shape:
        raise InvalidInputError(f"image array of shape {array.shape}: expected (height, width[, 1|3|4])")
    if array.dtype.kind == "f":
        scale = 255.0 if np.nanmax(array) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array) * scale + 0.5, 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return to_rgb(Image.fromarray(array))


def to_rgb(image: Image.Image) -> np.ndarray:
    """Converts any Pillow image to an RGB uint8 array."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: Pillow's convert("L") clips; scale to 8 bits instead.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        gray = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def resize(image: np.ndarray, size) -> np.ndarray:
    """Resizes an (h, w, 3) uint8 array to `size` (height, width) with bilinear filtering."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
