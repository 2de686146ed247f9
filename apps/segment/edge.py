"""On-device segment (numpy and Pillow): pre/post-processing, overlays and label maps.

Used by on-device predict and by the evaluation of Keras and TFLite models alike.
"""

import numpy as np

from dlkit.edge.image import load_image, resize

# Class colours of overlays and label-map previews (background is not painted).
COLORS = np.array(
    [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
    + [(70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)],
    np.uint8,
)


def read_input(path, meta):
    """Reads one image file as an RGB uint8 array (raises InvalidInputError)."""
    return load_image(path)


def preprocess(raw, meta):
    """(h, w, 3) uint8 -> (size, size, 3) float32 pixels in [0, 255] (plain resize)."""
    height, width = meta["input"]["shape"][:2]
    return resize(raw, (height, width)).astype(np.float32)


def postprocess(outputs, meta, **options):
    """Probabilities (b, S, S, classes), or the label maps (b, S, S) of an `--argmax`
    export -> one `{"label_map": (S, S) uint8}` per image."""
    out = np.asarray(outputs[0])
    maps = out if out.ndim == 3 else np.argmax(out, axis=-1)
    return [{"label_map": row.astype(np.uint8)} for row in maps]


def to_image_size(label_map, width, height):
    """A label map resized to the original image (nearest neighbour, labels stay labels)."""
    from PIL import Image

    return np.asarray(Image.fromarray(label_map).resize((width, height), Image.NEAREST))


def summarize(label_map, labels):
    """The share of the image's pixels each class covers, every class listed."""
    counts = np.bincount(label_map.reshape(-1), minlength=len(labels))[: len(labels)]
    return {label: round(float(count) / label_map.size, 4) for label, count in zip(labels, counts)}


def overlay(image, label_map, alpha=0.5):
    """The image with every non-background pixel tinted by its class colour."""
    from PIL import Image

    colours = COLORS[label_map % len(COLORS)].astype(np.float32)
    tinted = np.where(label_map[..., None] > 0, (1 - alpha) * image + alpha * colours, image)
    return Image.fromarray(tinted.astype(np.uint8))


def format_result(name, result):
    """`scene.jpg: birds 12.3%, fish 4.0% (background 83.7%)`."""
    shares = result["classes"]
    objects = sorted(
        ((s, label) for label, s in shares.items() if label != "background" and s > 0), reverse=True
    )
    listed = ", ".join(f"{label} {100 * s:.1f}%" for s, label in objects) or "no objects"
    background = shares.get("background")
    return f"{name}: {listed}" + (f" (background {100 * background:.1f}%)" if background is not None else "")
