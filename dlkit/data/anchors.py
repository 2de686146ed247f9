"""Anchor shapes for YOLO-style detectors, learnt from a dataset's boxes (training only)."""

import numpy as np

from dlkit.edge.boxes import shape_iou


def kmeans_anchors(wh, k, seed=0, iterations=300):
    """Anchor shapes by k-means with the distance 1 - IoU (YOLOv2), sorted by area.

    Args:
        wh: (n, 2) box widths and heights (normalised to the image).
        k: int. Number of anchors.
    """
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    if len(wh) < k:
        raise ValueError(f"need at least {k} boxes for {k} anchors, got {len(wh)}")
    rng = np.random.default_rng(seed)
    centres = wh[rng.choice(len(wh), k, replace=False)]
    for _ in range(iterations):
        nearest = np.argmax(shape_iou(wh, centres), axis=1)
        updated = np.array(
            [np.median(wh[nearest == j], axis=0) if np.any(nearest == j) else centres[j] for j in range(k)]
        )
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres[np.argsort(np.prod(centres, axis=1))].astype(np.float32)
