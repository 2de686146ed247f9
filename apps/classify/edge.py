"""On-device pre- and post-processing for classify (numpy and Pillow only).

Used by on-device predict and by the evaluation of Keras and TFLite models alike.
"""

import numpy as np

from dlkit.edge.image import decode_side, load_image, resize


def read_input(path, meta):
    """Reads one image file as an RGB uint8 array (raises InvalidInputError); a large JPEG
    is decoded at a reduced scale still twice the model's input (as training reads it)."""
    return load_image(path, at_least=decode_side(*meta["input"]["shape"][:2]))


def preprocess(raw, meta):
    """(h, w, 3) uint8 RGB -> (size, size, 3) float32 pixels in [0, 255].

    Scaling to the backbone's range happens inside the model (a Rescaling layer), so the
    device feeds plain pixels and an int8 model can take them as uint8 unchanged.
    """
    height, width = meta["input"]["shape"][:2]
    return resize(raw, (height, width)).astype(np.float32)


def postprocess(outputs, meta, top_k=3):
    """Class probabilities (batch, classes) -> one dict per row with the top-k labels."""
    probs = np.asarray(outputs[0] if isinstance(outputs, (list, tuple)) else outputs)
    labels = meta["labels"]
    k = min(top_k, len(labels))
    results = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:k]
        results.append(
            {
                "label": labels[order[0]],
                "score": float(row[order[0]]),
                "top_k": [{"label": labels[i], "score": float(row[i])} for i in order],
            }
        )
    return results


def format_result(name, result):
    """One human-readable line: `photo.jpg: fruit 0.97 (vegetables 0.02, flowers 0.01)`."""
    rest = ", ".join(f"{r['label']} {r['score']:.2f}" for r in result["top_k"][1:])
    return f"{name}: {result['label']} {result['score']:.2f}" + (f" ({rest})" if rest else "")
