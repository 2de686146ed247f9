"""Two segmentation models on the same held-out scenes, with paired intervals of their
difference.

Scores each model (a run or export folder, a .keras or .tflite file) on the first model's
held-out validation and test scenes (or another source with `--data`), apart and pooled,
and the difference of mean IoU and foreground IoU on each split and pooled, first minus
second, with a paired 95% interval (each of 1,000 resamplings of the scenes scores both):
what deciding whether one model replaces another needs. The shipped U-Net ships as int8
only, so the fair comparison with it is a run's own int8 file.

    python tools/compare_segment.py NEW_MODEL [OLD_MODEL: the shipped model]
        [--out tools/results/segment_compare.json]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.engine import config_of, held_out_splits, score_splits
from dlkit.metrics.segmentation import SegmentationEvaluator, iou_difference
from dlkit.paths import shipped_model_dir
from dlkit.predict import Predictor
from dlkit.registry import get_app

KEYS = ("miou", "foreground_iou", "boundary_f", "pixel_accuracy", "miou_ci95", "foreground_iou_ci95")


def compare(app, models, data=None):
    """{"models", "reports": [{split: report}], "differences": {split: ...}} of two models
    on the same held-out scenes (the first model's data unless `data`): the paired
    difference on each split and on both pooled ("pooled")."""
    from dlkit.apps.segment.model import recording

    predictors = [Predictor.load(app, model, prefer="keras") for model in models]
    meta = predictors[0].meta
    if list(predictors[1].meta["labels"]) != list(meta["labels"]):
        raise SystemExit("the two models have different classes: nothing to compare pairwise")
    config = config_of(app, meta)
    splits = held_out_splits(app, config, meta, data)
    masks = np.concatenate([np.asarray(split.targets) for split in splits.values()])  # val's, then test's
    ends = np.cumsum([len(split.targets) for split in splits.values()])
    parts = {name: slice(end - len(split.targets), end) for (name, split), end in zip(splits.items(), ends)}
    parts["pooled"] = slice(0, len(masks))
    reports, evaluators = [], []
    for predictor in predictors:
        found = []  # label maps in the order of `masks`
        split_reports = score_splits(app, config, predictor.meta, recording(predictor.run, found), splits)
        reports.append({split: {k: r[k] for k in KEYS if k in r} for split, r in split_reports.items()})
        maps = np.concatenate(found)
        evaluators.append({name: SegmentationEvaluator(meta["labels"]) for name in parts})
        for name, part in parts.items():
            evaluators[-1][name].update([maps[part]], masks[part])
        print(predictor.bundle.path, {s: round(r["miou"], 4) for s, r in split_reports.items()}, flush=True)
    return {
        "models": [str(p.bundle.path) for p in predictors],
        "reports": reports,
        "differences": {name: iou_difference(evaluators[0][name], evaluators[1][name]) for name in parts},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new")
    parser.add_argument("old", nargs="?", default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "segment_compare.json"))
    args = parser.parse_args()
    from dlkit.quiet import import_tensorflow

    import_tensorflow()  # quietly, after the arguments: --help needs none of it
    result = compare(get_app("segment"), [args.new, args.old or shipped_model_dir("segment")], args.data)
    print("differences", result["differences"])
    io.write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
