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
    export -> one `{"label_map": (S, S) uint8, "confidence": (S, S) float32 or None}` per
    image; the confidence is each pixel's top probability (None: an `--argmax` export
    has none)."""
    out = np.asarray(outputs[0], np.float32)
    if out.ndim == 3:
        return [{"label_map": row.astype(np.uint8), "confidence": None} for row in out]
    return [
        {"label_map": np.argmax(row, axis=-1).astype(np.uint8), "confidence": row.max(axis=-1)} for row in out
    ]


def augmented(run):
    """fn(batch of preprocessed inputs) -> [class probabilities] like `run`, the mean of
    the plain and the mirrored view (mirrored back) of each input: `--augment`. Label maps
    (an `--argmax` export) cannot be averaged: one line saying which file to use."""
    from dlkit.errors import DlkitError

    def call(inputs):
        inputs = np.asarray(inputs, np.float32)
        plain = np.asarray(run(inputs)[0], np.float32)
        if plain.ndim != 4:
            raise DlkitError(
                "--augment averages class scores, and this model gives label maps (an --argmax "
                "export): use its file without .argmax"
            )
        mirrored = np.asarray(run(np.ascontiguousarray(inputs[:, :, ::-1]))[0], np.float32)
        return [(plain + mirrored[:, :, ::-1]) / 2]

    return call


def to_image_size(label_map, width, height):
    """A label map resized to the original image (nearest neighbour, labels stay labels)."""
    from PIL import Image

    return np.asarray(Image.fromarray(label_map).resize((width, height), Image.NEAREST))


def summarize(label_map, labels):
    """The share of the image's pixels each class covers, every class listed."""
    counts = np.bincount(label_map.reshape(-1), minlength=len(labels))[: len(labels)]
    return {label: round(float(count) / label_map.size, 4) for label, count in zip(labels, counts)}


def confidences(label_map, confidence, labels):
    """{"confidence": the mean top probability over the image's pixels, "class_confidence":
    {label: its mean over the pixels given that label}, for the classes present} at the
    model's resolution; both None for an `--argmax` export. `evaluate` reports how well
    these pixel probabilities are calibrated (`ece`)."""
    if confidence is None:
        return {"confidence": None, "class_confidence": None}
    flat, scores = label_map.reshape(-1), confidence.reshape(-1).astype(np.float64)
    counts = np.bincount(flat, minlength=len(labels))[: len(labels)]
    sums = np.bincount(flat, weights=scores, minlength=len(labels))[: len(labels)]
    return {
        "confidence": round(float(scores.mean()), 4),
        "class_confidence": {
            label: round(float(total / count), 4)
            for label, total, count in zip(labels, sums, counts)
            if count
        },
    }


def overlay(image, label_map, alpha=0.5):
    """The image with every non-background pixel tinted by its class colour:
    `(1 - alpha) * pixel + alpha * colour`, computed on the tinted pixels only, class by
    class (a 24-megapixel photo in a fraction of a second)."""
    from PIL import Image

    tinted = np.array(image, np.uint8)  # a copy
    present = np.flatnonzero(np.bincount(label_map.reshape(-1)))
    for k in present[present > 0]:
        where = label_map == k
        colour = np.float32(alpha) * COLORS[k % len(COLORS)].astype(np.float32)
        tinted[where] = (np.float32(1 - alpha) * tinted[where] + colour).astype(np.uint8)
    return Image.fromarray(tinted)


def percent(share):
    """`12.3%`; a share above 0 that would round to 0.0% is `<0.1%`, and one short of
    1 that would round to 100.0% is `>99.9%`."""
    if 0 < share < 0.0005:
        return "<0.1%"
    if 0.9995 <= share < 1:
        return ">99.9%"
    return f"{100 * share:.1f}%"


def format_result(name, result):
    """`scene.jpg: birds 12.3%, fish 4.0% (background 83.7%, pixel confidence 0.95)`."""
    shares = result["classes"]
    objects = sorted(
        ((s, label) for label, s in shares.items() if label != "background" and s > 0), reverse=True
    )
    listed = ", ".join(f"{label} {percent(s)}" for s, label in objects) or "no objects"
    background = shares.get("background")
    notes = [f"background {percent(background)}"] if background is not None else []
    if result.get("confidence") is not None:
        notes.append(f"pixel confidence {result['confidence']:.2f}")
    return f"{name}: {listed}" + (f" ({', '.join(notes)})" if notes else "")
