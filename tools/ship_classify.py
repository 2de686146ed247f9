"""Assembles saved_models/classify/ from a finished training run.

Exports int8 (shipped) and float32 (measured, not shipped: `dlkit classify export` makes
it again), scores Keras, TFLite float32 and TFLite int8 on the held-out test split, and
copies model.keras (no optimizer state), model.int8.tflite, its golden vectors,
model.json and metrics.json.

    python tools/ship_classify.py runs/classify/train
"""

import shutil
import sys
import tempfile
from pathlib import Path

from dlkit import io, runner
from dlkit.export.bundle import export, install_bundle
from dlkit.paths import shipped_model_dir
from dlkit.registry import get_app

FILES = ("model.keras", "model.int8.tflite", "model.int8.golden.npz", "model.json")


def main(run_dir):
    app = get_app("classify")
    run_dir = Path(run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("model.keras", "model.json", "metrics.json"):
            shutil.copy2(run_dir / name, work / name)
        for quantize in ("float32", "int8"):
            export(app, work, quantize)
        metrics = io.read_json(work / "metrics.json")
        for label, name in (("tflite_float32", "model.tflite"), ("tflite_int8", "model.int8.tflite")):
            metrics[label] = {
                split: runner.evaluate(app, work / name, split=split) for split in ("val", "test")
            }
        metrics["sizes"] = {
            name: (work / name).stat().st_size for name in ("model.tflite", "model.int8.tflite")
        }
        io.write_json(work / "metrics.json", metrics)
        target = install_bundle(work, shipped_model_dir("classify"), FILES)
    summary = {label: round(m["test"]["accuracy"], 4) for label, m in metrics.items() if label != "sizes"}
    print(f"shipped to {target}: test accuracy {summary}, sizes {metrics['sizes']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
