"""Assembles saved_models/segment/ from a finished training run, or only measures it.

Exports int8 (shipped) and float32 (measured, not shipped), scores Keras, TFLite float32
and TFLite int8 on the held-out validation and test scenes and on both pooled, with
bootstrap 95% intervals for mean IoU and foreground IoU, and copies model.int8.tflite, its
golden vectors, model.json and metrics.json (the run's model.keras stays with the run).

    python tools/ship_segment.py /tmp/runs/segment [--measure-only]
"""

import argparse
from pathlib import Path

from dlkit import io
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import config_of, runner_for, score_splits
from dlkit.export.bundle import ship_run
from dlkit.registry import get_app

# No model.keras: the EfficientNet-Lite0 U-Net's 34 MB would take saved_models/ past its
# 150 MiB budget, and fine-tuning starts from the encoder (--weights), not from the U-Net.
FILES = ("model.int8.tflite", "model.int8.golden.npz", "model.json")
VARIANTS = (
    ("keras", "model.keras"),
    ("tflite_float32", "model.tflite"),
    ("tflite_int8", "model.int8.tflite"),
)


def measure(app, work):
    """{variant: {val, test, pooled: report}} for the three variants."""
    meta = io.read_json(work / "model.json")
    config = config_of(app, meta)
    source = app.open_source(config, meta.get("data"))
    splits = {split: app.load_split(config, source, split, meta=meta) for split in ("val", "test")}
    metrics = {}
    for variant, name in VARIANTS:
        run = runner_for(app, ModelBundle.load(work / name, app=app.name), config)
        metrics[variant] = reports = score_splits(app, config, meta, run, splits)
        print(variant, {s: round(r["miou"], 4) for s, r in reports.items()}, flush=True)
    return metrics


def main(run_dir, measure_only=False):
    app = get_app("segment")
    results = Path(__file__).parent / "results" / "segment.json"
    target = ship_run(
        app,
        run_dir,
        ("float32", "int8"),
        lambda work: measure(app, work),
        FILES,
        results,
        measure_only=measure_only,
    )
    if target:
        print(f"shipped to {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("--measure-only", action="store_true", help="measure, do not ship")
    args = parser.parse_args()
    main(args.run, measure_only=args.measure_only)
