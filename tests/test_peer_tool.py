"""tools/peer_ultralytics.py scores the peer's predictions with detect's own evaluator."""

import numpy as np
import pytest

from conftest import load_tool


def test_peer_predictions_are_scored_by_detects_evaluator():
    from dlkit.apps.detect.model import DetectionEvaluator

    tool = load_tool("peer_ultralytics")
    rng = np.random.default_rng(0)
    labels = ["a", "b"]
    targets, rows = {}, {}
    for split in ("val", "test"):
        targets[split], rows[split] = [], []
        for _ in range(12):
            xy = rng.uniform(0, 0.6, (3, 2))
            boxes = np.concatenate([xy, xy + rng.uniform(0.1, 0.4, (3, 2))], 1).astype(np.float32)
            classes = rng.integers(0, 2, 3)
            targets[split].append((boxes, classes))
            found = boxes + rng.normal(0, 0.02, boxes.shape).astype(np.float32)  # near, not exact
            rows[split].append(
                {
                    "boxes": found.tolist(),
                    "scores": rng.uniform(0.3, 1, 3).tolist(),
                    "classes": classes.tolist(),
                }
            )
    rows["val"][0]["classes"] = [1 - c for c in rows["val"][0]["classes"]]  # some misnamed
    rows["test"][1] = {"boxes": [], "scores": [], "classes": []}  # an image with nothing found
    results = tool.score(rows, targets, labels)
    for split in ("val", "test", "pooled"):
        parts = ("val", "test") if split == "pooled" else (split,)
        reference = DetectionEvaluator(labels)
        reference.found = [
            (np.array(r["boxes"], np.float32).reshape(-1, 4), np.array(r["scores"]), np.array(r["classes"]))
            for part in parts
            for r in rows[part]
        ]
        reference.truth = [t for part in parts for t in targets[part]]
        expected = reference.result()
        for key in ("map50", "map50_95", "class_agnostic_map50", "class_agnostic_map50_95"):
            assert results[split][key] == pytest.approx(expected[key])
    assert results["val"]["map50"] < 1.0 and results["test"]["class_agnostic_map50"] < 1.0
    assert results["pooled"]["images"] == 24 and "curves" not in results["pooled"]
