"""Training images drawn with OpenCV: the scenes `scenes.compose` draws with Pillow, and
detection's zoom and colour jitter (`zoom_and_recolor`), at a fraction of the CPU.

A fresh training scene is drawn for every example, on the CPU the training step needs
too; Pillow's resampling (an antialiased shrink of the background crop, a shrink and a
turn of every object) took most of it. Here each object is one affine warp (stretch,
shrink, turn and mirror in one bilinear resampling) from the level of a pyramid (steps
of sqrt(2), area-filtered once) that shrinks it by at most sqrt(2), and the background
crop is one such warp too; a scene costs about a third of Pillow's CPU.
Cut-outs are kept with premultiplied alpha, so warps and blurs do not darken their
edges and compositing is one multiply-add.

The random draws are `scenes.compose`'s (`dlkit.data.draws`), so a seed gives the same
scene (objects, classes, positions, sizes, turns, colours) as Pillow would draw; only
the resampling of the pixels differs. Stored scenes stay Pillow's: written once, they
keep its antialiased shrinks.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

from dlkit.data import draws

cv2.setNumThreads(1)  # small images: OpenCV's own threads would only compete with tf.data's


@dataclass
class Cutout:
    """A cut-out prepared for warping: `levels`, the RGBA image with premultiplied alpha
    (uint8) and its `pyramid`; `mean`, the mean grey of its opaque pixels (what colour
    changes keep)."""

    levels: list
    mean: float

    @property
    def size(self):
        height, width = self.levels[0].shape[:2]
        return width, height


def pyramid(image, smallest):
    """`image` and its shrinks by steps of sqrt(2) (area-filtered) while their shorter side
    stays >= `smallest`: drawn from the nearest larger level, a bilinear resampling then
    shrinks by at most sqrt(2), where it barely aliases."""
    levels = [np.ascontiguousarray(image)]
    height, width = image.shape[:2]
    step = 1
    while min(height, width) * 2 ** (-step / 2) >= smallest:
        shape = (round(width * 2 ** (-step / 2)), round(height * 2 ** (-step / 2)))
        levels.append(cv2.resize(levels[-2 if step > 1 else 0], shape, interpolation=cv2.INTER_AREA))
        step += 1
    return levels


def prepare_cutout(image):
    """A Cutout from an RGBA Pillow image."""
    pixels = np.asarray(image.convert("RGBA"), np.float32)
    alpha = pixels[..., 3:] / 255.0
    opaque = alpha[..., 0] > 127 / 255
    mean = float(pixels[..., :3][opaque].mean()) if opaque.any() else 127.0
    premultiplied = np.concatenate([pixels[..., :3] * alpha, pixels[..., 3:]], axis=-1)
    return Cutout(pyramid(np.rint(premultiplied).astype(np.uint8), 8), mean)


def prepare_background(image, size):
    """The pyramid of a background photo (RGB uint8) that crops to (size, size) use."""
    return pyramid(image, draws.MIN_CROP * size)


def _level(levels, shrink):
    """The smallest level with at least one pixel per output pixel, when the full-size
    image (the first level) is shrunk by `shrink` (output / input length)."""
    width = levels[0].shape[1]
    index = 0
    while index + 1 < len(levels) and levels[index + 1].shape[1] >= shrink * width:
        index += 1
    return levels[index]


def _affine(linear, offset):
    """The 2x3 OpenCV matrix of x -> linear @ x + offset in pixel-edge coordinates (pixel
    i spans [i, i + 1]); OpenCV maps pixel centres, which lie half a pixel in."""
    (a, b), (c, d) = linear
    return np.array(
        [
            [a, b, offset[0] + 0.5 * (a + b) - 0.5],
            [c, d, offset[1] + 0.5 * (c + d) - 0.5],
        ]
    )


def background(prepared, rng, size):
    """`tuxpaint.random_background` on prepared backgrounds: the canvas, (size, size, 3)
    uint8."""
    levels = prepared[rng.integers(len(prepared))]
    height, width = levels[0].shape[:2]
    side, top, left, mirror = draws.crop(rng, height, width)
    level = _level(levels, size / side)
    scale = size / side * width / level.shape[1]  # level pixels -> output pixels
    linear, offset = [[scale, 0], [0, scale]], [-left * size / side, -top * size / side]
    if mirror:
        linear[0][0], offset[0] = -scale, size - offset[0]
    matrix = _affine(linear, offset)
    return cv2.warpAffine(
        level, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def place(canvas, ids, obj, index, rng, scale_range, varied=False):
    """`scenes.place` on a uint8 canvas with a Cutout: the same draws, in the same order
    (scale; with `varied` stretch, turn, colour and blur as `scenes.vary`; mirror; position).
    Returns its full pixel count and the window of the canvas it covers."""
    size = canvas.shape[0]
    scale = rng.uniform(*scale_range)
    width, height = obj.size
    turn, colour, blur = 0.0, None, 0.0
    if varied:
        aspect, turn, factor, colour, blur = draws.variation(rng, width, height, scale * size)
        shrunk = (max(4, round(width * aspect * factor)), max(4, round(height * factor)))
        out_width, out_height = (max(6, math.ceil(x - 1e-6)) for x in draws.turned(*shrunk, turn))
        # The warp maps the shrunk rectangle's extent onto the output (as Pillow's
        # resize, then rotate with expand).
        sx, sy = shrunk[0] / width, shrunk[1] / height
    else:
        factor = scale * size / max(width, height)
        out_width, out_height = max(6, int(width * factor)), max(6, int(height * factor))
        sx, sy = out_width / width, out_height / height
    mirror, left, top = draws.position(rng, out_width, out_height, size)

    level = _level(obj.levels, max(sx, sy))
    # level pixels -> the cut-out's -> centred, shrunk and stretched -> turned counter-
    # clockwise (as Pillow's rotate) -> the output's; mirrored last.
    ax, ay = sx * width / level.shape[1], sy * height / level.shape[0]
    cos, sin = math.cos(math.radians(turn)), math.sin(math.radians(turn))
    linear = [[cos * ax, sin * ay], [-sin * ax, cos * ay]]
    cx, cy = sx * width / 2, sy * height / 2
    offset = [out_width / 2 - cos * cx - sin * cy, out_height / 2 + sin * cx - cos * cy]
    if mirror:
        linear[0] = [-linear[0][0], -linear[0][1]]
        offset[0] = out_width - offset[0]
    patch = cv2.warpAffine(  # uint8, premultiplied
        level, _affine(linear, offset), (out_width, out_height), flags=cv2.INTER_LINEAR
    )
    if colour is not None:
        # scenes.vary's affine colour map on premultiplied pixels, where its shift scales
        # with alpha: one 4x4 matrix (rounded, saturated); values above alpha are the
        # colours vary clips at 255.
        saturation, contrast, brightness = colour
        keep, grey = contrast * saturation, contrast * (1 - saturation) / 3
        shift = obj.mean * (brightness - contrast) / 255.0
        matrix = np.full((4, 4), grey)
        matrix[np.arange(3), np.arange(3)] += keep
        matrix[:, 3], matrix[3] = shift, (0, 0, 0, 1)
        *rgb, alpha = cv2.split(cv2.transform(patch, matrix))
        patch = cv2.merge([*(cv2.min(c, alpha) for c in rgb), alpha])  # numpy's: 8x slower
    if blur:
        patch = cv2.GaussianBlur(patch, (0, 0), blur)
    opaque = patch[..., 3] > 127
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + out_height, size), min(left + out_width, size)
    window = (slice(y0, max(y0, y1)), slice(x0, max(x0, x1)))
    inside = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
    part = patch[inside]
    if part.size:
        # canvas = object + canvas * (1 - alpha), rounded to uint8 as Pillow's
        # alpha_composite; in OpenCV, as numpy's broadcast of alpha over a window of the
        # canvas costs about 8x more.
        keep = cv2.merge([255 - part[..., 3]] * 3)
        win = canvas[window]
        win[...] = cv2.add(cv2.cvtColor(part, cv2.COLOR_RGBA2RGB), cv2.multiply(win, keep, scale=1 / 255))
    np.copyto(ids[window], index, where=opaque[inside])
    return int(np.count_nonzero(opaque)), window


def image(canvas):
    """The finished canvas: RGB uint8 already."""
    return canvas


def zoom_and_recolor(image, view, factors):
    """`detection.zoom_image` then `detection.recolor` of a square uint8 image, in two
    OpenCV passes: one bilinear warp (mirror and window; outside the image its integer
    mean colour, as Pillow's fill) and one 3 x 4 colour matrix (saturation about each
    pixel's grey, contrast about the image mean, brightness; floored as `recolor`'s uint8
    cast). The same pixels to rounding, at a fraction of the CPU of either the numpy
    version or a batched TensorFlow one (`crop_and_resize` costs 1.4 ms an image here)."""
    mirror, x0, y0, side = (float(v) for v in view)
    size = image.shape[0]
    fill = [int(v) for v in cv2.mean(image)[:3]]  # numpy's mean over a uint8 image: 30x slower
    # Output = (input - window corner) / side, the input mirrored first (x -> size - x).
    linear = [[(-1 if mirror else 1) / side, 0], [0, 1 / side]]
    offset = [((size if mirror else 0) - x0 * size) / side, -y0 * size / side]
    zoomed = cv2.warpAffine(
        image,
        _affine(linear, offset),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
    saturation, contrast, brightness = (float(f) for f in factors)
    if (saturation, contrast, brightness) == (1.0, 1.0, 0.0):
        return zoomed
    # Saturation keeps each pixel's grey, so the image mean after it is the mean before.
    mean = sum(cv2.mean(zoomed)[:3]) / 3
    keep, grey = contrast * saturation, contrast * (1 - saturation) / 3
    matrix = np.full((3, 4), grey)
    matrix[np.arange(3), np.arange(3)] += keep
    # OpenCV rounds to the nearest integer; recolor truncates: half a level lower.
    matrix[:, 3] = (1 - contrast) * mean + brightness * 127.5 - 0.5
    return cv2.transform(zoomed, matrix)
