"""The random draws of a composited scene, apart from its pixels: Pillow's stored scenes
(`dlkit.data.scenes`, `dlkit.data.tuxpaint.random_background`) and OpenCV's training
scenes (`dlkit.data.render`) both take them from here, so one seed gives one scene
whichever draws it.
"""

import numpy as np

MIN_CROP = 0.4  # a background crop's side: at least this fraction of the photo's shorter side
# How much training scenes vary a pasted object: aspect ratio by 1 +- STRETCH, angle by
# up to TURN degrees, saturation, contrast and brightness by 1 +- RECOLOUR.
STRETCH, TURN, RECOLOUR = 0.25, 15.0, 0.25


def crop(rng, height, width):
    """(side, top, left, mirror) of a square crop of a (height, width) photo."""
    side = int(min(height, width) * rng.uniform(MIN_CROP, 1.0))
    top = rng.integers(0, height - side + 1)
    left = rng.integers(0, width - side + 1)
    return side, top, left, rng.random() < 0.5


def turned(width, height, turn):
    """The extent of a (width, height) rectangle turned by `turn` degrees (numpy's cosine,
    as the stored scenes were drawn with: another library's could round a size apart)."""
    cos, sin = abs(np.cos(np.radians(turn))), abs(np.sin(np.radians(turn)))
    return width * cos + height * sin, width * sin + height * cos


def variation(rng, width, height, longest, stretch=STRETCH, angle=TURN, color=RECOLOUR):
    """How a (width, height) object is varied to a longest side of about `longest`:
    (aspect, turn in degrees, factor, (saturation, contrast, brightness), blur radius or
    0). `factor` scales the stretched object so that turned it is `longest` across; the
    blur radius is what a full-size blur would have once shrunk."""
    aspect = rng.uniform(1 - stretch, 1 + stretch)
    turn = rng.uniform(-angle, angle) if angle and rng.random() < 0.5 else 0.0
    factor = longest / max(turned(width * aspect, height, turn))
    colour = tuple(rng.uniform(1 - color, 1 + color) for _ in range(3))
    blur = float(rng.uniform(0.4, 1.2) * factor) if rng.random() < 0.2 else 0.0
    return aspect, turn, factor, colour, blur


def position(rng, width, height, size):
    """(mirror, left, top) of a (width, height) object pasted on a (size, size) canvas, up
    to 30% of it outside (partial crops)."""
    mirror = rng.random() < 0.5
    left = int(rng.integers(-int(0.3 * width), size - int(0.7 * width) + 1))
    top = int(rng.integers(-int(0.3 * height), size - int(0.7 * height) + 1))
    return mirror, left, top
