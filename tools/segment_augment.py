"""Test-time augmentation for segment, measured: the shipped model with and without `--augment`.

Scores the shipped int8 U-Net (its `.keras` is not shipped) on the held-out validation
and test scenes, apart and pooled, plain and through `--augment` (each pixel's class
scores averaged over the image and its mirror image), with 95% intervals from resampling
the scenes, and the pooled gain with a paired interval (each resampling scores both).
Then times both side by side (LiteRT, median over the same 100 scenes, one image at a
time) and records the augmented scores in the shipped model's metrics.json.

    python tools/segment_augment.py [--out tools/results/segment_augment.json]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.bench import option_timing
from dlkit.engine import config_of, held_out_splits, score_splits
from dlkit.metrics.segmentation import SegmentationEvaluator, iou_difference
from dlkit.paths import shipped_model_dir
from dlkit.predict import Predictor
from dlkit.registry import get_app

KEYS = ("miou", "foreground_iou", "boundary_f", "pixel_accuracy", "mean_dice")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "segment_augment.json"))
    args = parser.parse_args()
    from dlkit.quiet import import_tensorflow

    import_tensorflow()  # quietly, after the arguments: --help needs none of it
    from dlkit.apps.segment.model import recording

    app = get_app("segment")
    folder = shipped_model_dir("segment")
    path = folder / "model.int8.tflite"
    meta = io.read_json(folder / "model.json")
    config = config_of(app, meta)
    splits = held_out_splits(app, config, meta)
    masks = np.concatenate([np.asarray(split.targets) for split in splits.values()])
    results = {"model": "model.int8.tflite"}
    evaluators = {}
    for augment in (False, True):
        predictor = Predictor.load(app, path, augment=augment)
        found = []  # val's label maps, then test's: the pooled order
        reports = score_splits(app, config, predictor.meta, recording(predictor.run, found), splits)
        key = f"tflite_int8_{'augmented' if augment else 'plain'}"
        results[key] = {
            split: {k: report[k] for k in report if k.split("_ci95")[0] in KEYS}
            | {"iou_per_class": {c: v["iou"] for c, v in report["per_class"].items()}}
            for split, report in reports.items()
        }
        evaluators[augment] = SegmentationEvaluator(meta["labels"])
        evaluators[augment].update([np.concatenate(found)], masks)
        print(key, {s: round(r["miou"], 4) for s, r in reports.items()}, flush=True)
    results["tflite_int8_pooled_gain"] = iou_difference(evaluators[True], evaluators[False])
    print("gain", results["tflite_int8_pooled_gain"], flush=True)
    results["timing_int8_ms_per_image"] = option_timing(
        app, path, splits["val"].inputs[:100], "augmented", augment=True
    )
    print(results["timing_int8_ms_per_image"])
    io.write_json(Path(args.out), results)
    metrics = io.read_json(folder / "metrics.json")
    metrics["tflite_int8_augmented"] = results["tflite_int8_augmented"]
    io.write_json(folder / "metrics.json", metrics)


if __name__ == "__main__":
    main()
