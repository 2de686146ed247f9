"""Is segment's foreground IoU bound by the argmax's balance of background and objects?

The shipped int8 U-Net's class probabilities on the held-out validation and test scenes,
labelled by the argmax of log p + b, where b is a bias per class: first on the
background alone (b_0 over a grid: negative calls more pixels objects), then one per
class by coordinate ascent on validation mean IoU. Each bias is chosen on validation and
scored on test, against the plain argmax on the same scenes (paired 95% intervals: each
resampling of the scenes scores both). A post-hoc threshold any model could ship; if the
best one moves test little, the errors are not a matter of where the decision line is.

    python tools/probe_segment_bias.py [--out tools/results/segment_bias.json]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.engine import config_of, held_out_splits
from dlkit.metrics.segmentation import SegmentationEvaluator, iou_difference
from dlkit.paths import shipped_model_dir
from dlkit.predict import Predictor
from dlkit.registry import get_app

GRID = np.round(np.arange(-1.5, 1.51, 0.25), 2)  # background biases (log-probability)
STEPS = np.round(np.arange(-1.0, 1.01, 0.25), 2)  # per-class biases, coordinate ascent


def log_probabilities(predictor, inputs, batch=16):
    """(n, h, w, classes) float16 log-probabilities of the model on `inputs`."""
    found = []
    for start in range(0, len(inputs), batch):
        probs = np.asarray(predictor.run(np.asarray(inputs[start : start + batch]))[0], np.float32)
        found.append(np.log(np.clip(probs, 1e-6, 1.0)).astype(np.float16))
    return np.concatenate(found)


def scored(labels, log_probs, masks, bias):
    """A SegmentationEvaluator updated with the argmax of log p + bias (no intervals yet)."""
    evaluator = SegmentationEvaluator(labels)
    for start in range(0, len(masks), 50):
        shifted = log_probs[start : start + 50].astype(np.float32) + np.asarray(bias, np.float32)
        evaluator.update([np.argmax(shifted, axis=-1)], masks[start : start + 50])
    return evaluator


def figures(evaluator, bootstrap=0):
    report = evaluator.result(bootstrap=bootstrap)
    keys = ("miou", "foreground_iou", "miou_ci95", "foreground_iou_ci95")
    return {key: report[key] for key in keys if key in report}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "segment_bias.json"))
    args = parser.parse_args()
    app = get_app("segment")
    folder = shipped_model_dir("segment")
    meta = io.read_json(folder / "model.json")
    labels = meta["labels"]
    splits = held_out_splits(app, config_of(app, meta), meta)
    predictor = Predictor.load(app, folder / "model.int8.tflite")
    log_probs = {name: log_probabilities(predictor, split.inputs) for name, split in splits.items()}
    masks = {name: np.asarray(split.targets).astype(np.int64) for name, split in splits.items()}
    zero = np.zeros(len(labels))

    def on(name, bias, bootstrap=0):
        return figures(scored(labels, log_probs[name], masks[name], bias), bootstrap)

    results = {"model": "model.int8.tflite", "labels": labels, "background_grid": []}
    for value in GRID:
        bias = zero.copy()
        bias[0] = value
        row = {"background_bias": float(value), **{name: on(name, bias) for name in splits}}
        results["background_grid"].append(row)
        print(row, flush=True)
    chosen = {}
    best_background = max(results["background_grid"], key=lambda row: row["val"]["foreground_iou"])
    chosen["background (best validation foreground IoU)"] = (
        zero + np.eye(len(labels))[0] * best_background["background_bias"]
    )
    bias, best = zero.copy(), on("val", zero)["miou"]
    for _ in range(2):
        for c in range(len(labels)):
            for value in STEPS:
                trial = bias.copy()
                trial[c] = value
                miou = on("val", trial)["miou"]
                if miou > best + 1e-4:
                    best, bias = miou, trial
    chosen["per class (best validation mean IoU)"] = bias
    plain = scored(labels, log_probs["test"], masks["test"], zero)
    results["test_plain"] = figures(plain, bootstrap=1000)
    results["chosen"] = {}
    for what, bias in chosen.items():
        evaluator = scored(labels, log_probs["test"], masks["test"], bias)
        results["chosen"][what] = {
            "bias": dict(zip(labels, map(float, bias))),
            "val": on("val", bias),
            "test": figures(evaluator, bootstrap=1000),
            "test_gain": iou_difference(evaluator, plain),
        }
        print(what, results["chosen"][what], flush=True)
    io.write_json(Path(args.out), results)


if __name__ == "__main__":
    main()
