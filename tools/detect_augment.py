"""Test-time augmentation for detect, measured: the shipped model with and without `--augment`.

Scores the shipped detector (Keras, and the shipped int8 TFLite file) on the held-out
validation and test scenes, apart and pooled, plain and through `--augment` (three
scales, each mirrored, boxes fused), with 95% intervals from resampling the images, and
the pooled gain with a paired interval (each resampling scores both). Then times both on
the int8 file, side by side (LiteRT, median over the same 100 scenes, one image at a time),
and records the augmented scores in the shipped model's metrics.json.

    python tools/detect_augment.py [--out tools/results/detect_augment.json]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.bench import option_timing
from dlkit.engine import config_of, held_out_splits, score_splits
from dlkit.metrics.detection import map_difference
from dlkit.paths import shipped_model_dir
from dlkit.predict import Predictor
from dlkit.registry import get_app

KEYS = ("map50", "map50_95", "class_agnostic_map50", "class_agnostic_map50_95")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "detect_augment.json"))
    args = parser.parse_args()
    from dlkit.quiet import import_tensorflow

    import_tensorflow()  # quietly, after the arguments: --help needs none of it
    from dlkit.apps.detect.model import recording

    app = get_app("detect")
    folder = shipped_model_dir("detect")
    meta = io.read_json(folder / "model.json")
    config = config_of(app, meta)
    splits = held_out_splits(app, config, meta)
    truth = [t for split in splits.values() for t in split.targets]
    results = {"scales": list(app.edge.AUGMENT_SCALES), "iou_threshold": app.edge.AUGMENT_IOU}
    for label, name in (("keras", "model.keras"), ("tflite_int8", "model.int8.tflite")):
        found = {}
        for augment in (False, True):
            predictor = Predictor.load(app, folder / name, augment=augment)
            found[augment] = []  # val's images, then test's: the pooled order
            run = recording(predictor.run, found[augment])
            reports = score_splits(app, config, predictor.meta, run, splits)
            key = f"{label}_{'augmented' if augment else 'plain'}"
            results[key] = {
                split: {k: report[k] for k in report if k.split("_ci95")[0] in KEYS}
                | {"ap50_per_class": {c: v["ap50"] for c, v in report["per_class"].items()}}
                for split, report in reports.items()
            }
            print(key, {s: round(r["map50"], 4) for s, r in reports.items()}, flush=True)
        difference = map_difference(found[True], found[False], truth, len(meta["labels"]))
        merged = [[(b, s, np.zeros_like(c)) for b, s, c in found[a]] for a in (True, False)]
        agnostic = map_difference(*merged, [(b, np.zeros_like(c)) for b, c in truth], 1)
        results[f"{label}_pooled_gain"] = difference | {f"class_agnostic_{k}": v for k, v in agnostic.items()}
        print(label, "gain", results[f"{label}_pooled_gain"], flush=True)
    results["timing_int8_ms_per_image"] = option_timing(
        app, folder / "model.int8.tflite", splits["val"].inputs[:100], "augmented", augment=True
    )
    print(results["timing_int8_ms_per_image"])
    io.write_json(Path(args.out), results)
    record_in_metrics(results, folder)


def record_in_metrics(results, folder):
    """Adds the augmented scores to the shipped model's metrics.json (`keras_augmented`,
    `tflite_int8_augmented`: split -> the four mAPs with their intervals), beside the
    plain ones that `dlkit detect info` prints."""
    metrics = io.read_json(folder / "metrics.json")
    for label in ("keras", "tflite_int8"):
        metrics[f"{label}_augmented"] = results[f"{label}_augmented"]
    io.write_json(folder / "metrics.json", metrics)


if __name__ == "__main__":
    main()
