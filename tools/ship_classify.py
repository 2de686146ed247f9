"""Assembles saved_models/classify/ from a finished training run.

Exports int8 (shipped) and float32 (measured, not shipped: `dlkit classify export` makes
it again), scores Keras, TFLite float32 and TFLite int8 on the held-out validation and
test splits, apart and pooled, each accuracy with a 95% interval from resampling the
objects (the views of one object are not independent trials), and copies model.keras
(no optimizer state), model.int8.tflite, its golden vectors, model.json and
metrics.json.

    python tools/ship_classify.py runs/classify/train [--measure-only]
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import config_of, held_out_splits, runner_for, score_splits
from dlkit.errors import DlkitError
from dlkit.export.bundle import export, install_bundle
from dlkit.paths import shipped_model_dir
from dlkit.registry import get_app

RUN_FILES = ("model.keras", "model.json", "metrics.json")
FILES = ("model.keras", "model.int8.tflite", "model.int8.golden.npz", "model.json")
VARIANTS = (
    ("keras", "model.keras"),
    ("tflite_float32", "model.tflite"),
    ("tflite_int8", "model.int8.tflite"),
)


def main(run_dir, measure_only=False):
    app = get_app("classify")
    run_dir = Path(run_dir)
    missing = [n for n in RUN_FILES if not (run_dir / n).exists()]
    if missing:
        raise DlkitError(f"{run_dir}: not a finished classify run (no {', '.join(missing)})")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in RUN_FILES:
            shutil.copy2(run_dir / name, work / name)
        for quantize in ("float32", "int8"):
            export(app, work, quantize, max_drop=100.0 if measure_only else None)
        metrics = io.read_json(work / "metrics.json")
        meta = io.read_json(work / "model.json")
        config = config_of(app, meta)
        splits = held_out_splits(app, config, meta)
        for label, name in VARIANTS:
            run = runner_for(app, ModelBundle.load(work / name, app=app.name), config)
            # On the default data each accuracy_ci95 resamples objects (the split lists them).
            metrics[label] = score_splits(app, config, meta, run, splits)
        metrics["sizes"] = {
            name: (work / name).stat().st_size for name in ("model.tflite", "model.int8.tflite")
        }
        io.write_json(work / "metrics.json", metrics)
        if not measure_only:
            target = install_bundle(work, shipped_model_dir("classify"), FILES)
            print(f"shipped to {target}")
        else:
            io.write_json(run_dir / "ship_metrics.json", metrics)
    for label, _ in VARIANTS:
        print(
            label,
            {
                split: f"{r['accuracy']:.4f} {np.round(r['accuracy_ci95'], 3).tolist()}"
                for split, r in metrics[label].items()
            },
        )
    print("sizes", metrics["sizes"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir")
    parser.add_argument(
        "--measure-only", action="store_true", help="write run_dir/ship_metrics.json, ship nothing"
    )
    args = parser.parse_args()
    try:
        main(args.run_dir, args.measure_only)
    except DlkitError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
