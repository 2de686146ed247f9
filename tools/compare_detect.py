"""Two detectors on the same held-out scenes, with paired intervals of their difference.

Scores each model (a run or export folder, a .keras or .tflite file) on image data v2's
validation and test scenes (or another source with `--data`), apart and pooled, and the
pooled difference of the four mAPs, first minus second, with a paired 95% interval (each
of 1,000 resamplings of the images scores both): what deciding whether one model
replaces another needs, since the two models' intervals apart overlap for any difference
the scenes' own difficulty hides.

    python tools/compare_detect.py NEW_MODEL [OLD_MODEL: the shipped model]
        [--augment] [--out tools/results/detect_compare.json]

`--augment` scores both through test-time augmentation (`detect evaluate --augment`).
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.engine import config_of, held_out_splits, score_splits
from dlkit.metrics.detection import map_difference
from dlkit.paths import shipped_model_dir
from dlkit.predict import Predictor
from dlkit.registry import get_app

KEYS = ("map50", "map50_95", "class_agnostic_map50", "class_agnostic_map50_95")


def compare(app, models, data=None, augment=False):
    """{"models": [..], "reports": [{split: report}], "pooled_difference": {...}} of two
    models on the same held-out splits (the first model's data unless `data`), each
    through test-time augmentation with `augment`."""
    from dlkit.apps.detect.model import recording

    predictors = [Predictor.load(app, model, prefer="keras", augment=augment) for model in models]
    meta = predictors[0].meta
    if list(predictors[1].meta["labels"]) != list(meta["labels"]):
        raise SystemExit("the two models have different classes: nothing to compare pairwise")
    config = config_of(app, meta)
    splits = held_out_splits(app, config, meta, data)
    truth = [t for split in splits.values() for t in split.targets]
    found, reports = [], []
    for predictor in predictors:
        found.append([])  # val's images, then test's: the pooled order
        split_reports = score_splits(app, config, predictor.meta, recording(predictor.run, found[-1]), splits)
        reports.append(
            {
                split: {k: report[k] for k in report if k.split("_ci95")[0] in KEYS}
                for split, report in split_reports.items()
            }
        )
        print(predictor.bundle.path, {s: round(r["map50"], 4) for s, r in split_reports.items()}, flush=True)
    difference = map_difference(*found, truth, len(meta["labels"]))
    merged = [[(b, s, np.zeros_like(c)) for b, s, c in f] for f in found]
    agnostic = map_difference(*merged, [(b, np.zeros_like(c)) for b, c in truth], 1)
    return {
        "models": [str(p.bundle.path) for p in predictors],
        "augment": augment,
        "reports": reports,
        "pooled_difference": difference | {f"class_agnostic_{k}": v for k, v in agnostic.items()},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new")
    parser.add_argument("old", nargs="?", default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--augment", action="store_true", help="score both with test-time augmentation")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "detect_compare.json"))
    args = parser.parse_args()
    from dlkit.quiet import import_tensorflow

    import_tensorflow()  # quietly, after the arguments: --help needs none of it
    app = get_app("detect")
    result = compare(app, [args.new, args.old or shipped_model_dir("detect")], args.data, args.augment)
    print("pooled difference", result["pooled_difference"])
    io.write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
