"""Assembles saved_models/detect/ from a finished training run and records the numbers.

Exports float32 and int8 (both with decode + NMS inside), scores Keras, TFLite float32
and TFLite int8 on the held-out validation and test scenes, apart and pooled (mAP@0.5,
mAP@0.5:0.95, with 95% intervals from resampling the images), lists the TFLite
ops, and copies model.keras, model.int8.tflite, its golden vectors, model.json and
metrics.json. Results go to tools/results/detect.json (earlier records kept under
`earlier`).

    python tools/ship_detect.py runs/detect/train [--set score_threshold=0.001] [--measure-only]
        [--describe "what run this is"]

`--set` changes inference settings of the exported graph (score threshold, NMS IoU,
detections kept), never the network; `--measure-only` writes the numbers to
RUN/ship_metrics.json and touches neither saved_models/ nor tools/results/detect.json,
which stays the shipped model's record.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from dlkit import io
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import config_of, runner_for, score_splits
from dlkit.errors import DlkitError
from dlkit.export.bundle import export
from dlkit.paths import shipped_model_dir
from dlkit.registry import get_app

RUN_FILES = ("model.keras", "model.json", "metrics.json")
FILES = ("model.keras", "model.int8.tflite", "model.int8.golden.npz", "model.json", "metrics.json")
RESULTS = Path(__file__).parent / "results" / "detect.json"
INFERENCE_SETTINGS = {"score_threshold": float, "iou_threshold": float, "max_detections": int}
KEYS = ("map50", "map50_95", "class_agnostic_map50", "class_agnostic_map50_95")


def ops_of(path):
    from ai_edge_litert.interpreter import Interpreter

    return sorted({op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()})


def record(results, description):
    """Writes `results` to tools/results/detect.json, keeping earlier records under `earlier`."""
    earlier = []
    if RESULTS.exists():
        previous = io.read_json(RESULTS)
        earlier = previous.pop("earlier", [])
        earlier.insert(0, previous)
    io.write_json(RESULTS, {"run": description, **results, "earlier": earlier})


def main(run_dir, settings=(), measure_only=False, description=""):
    app = get_app("detect")
    missing = [n for n in RUN_FILES if not (Path(run_dir) / n).exists()]
    if missing:
        raise DlkitError(f"{run_dir}: not a finished detect run (no {', '.join(missing)})")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in RUN_FILES:
            shutil.copy2(Path(run_dir) / name, work / name)
        if settings:
            meta = io.read_json(work / "model.json")
            for item in settings:
                key, _, value = item.partition("=")
                if key not in INFERENCE_SETTINGS:
                    raise SystemExit(f"--set {key}: only {', '.join(INFERENCE_SETTINGS)} can change")
                meta["config"][key] = INFERENCE_SETTINGS[key](value)
            io.write_json(work / "model.json", meta)
        for quantize in ("float32", "int8"):
            # Measuring records the TFLite drop whatever it is; shipping keeps the gate.
            export(app, work, quantize, max_drop=100.0 if measure_only else None)
        metrics = io.read_json(work / "metrics.json")
        results = {}
        meta = io.read_json(work / "model.json")
        config = config_of(app, meta)
        source = app.open_source(config, meta.get("data"))
        splits = {split: app.load_split(config, source, split, meta=meta) for split in ("val", "test")}
        for label, name in (
            ("keras", "model.keras"),
            ("tflite_float32", "model.tflite"),
            ("tflite_int8", "model.int8.tflite"),
        ):
            run = runner_for(app, ModelBundle.load(work / name, app=app.name), config)
            reports = score_splits(app, config, meta, run, splits)
            app.plots(reports["val"], meta, work / "plots" / label / "val")
            for split, report in reports.items():
                report.pop("curves", None)
                metrics.setdefault(label, {})[split] = report
                for key in KEYS:
                    results[f"{label}_{split}_{key}"] = report[key]
                    if f"{key}_ci95" in report:
                        results[f"{label}_{split}_{key}_ci95"] = report[f"{key}_ci95"]
                results[f"{label}_{split}_ap50_per_class"] = {
                    k: v["ap50"] for k, v in report["per_class"].items()
                }
            print(label, {split: round(r["map50"], 4) for split, r in reports.items()}, flush=True)
        results["settings"] = {k: io.read_json(work / "model.json")["config"][k] for k in INFERENCE_SETTINGS}
        results["int8_ops"] = ops_of(work / "model.int8.tflite")
        results["bytes"] = {n: (work / n).stat().st_size for n in ("model.tflite", "model.int8.tflite")}
        io.write_json(work / "metrics.json", metrics)
        meta = io.read_json(work / "model.json")
        meta["exports"] = {k: v for k, v in meta["exports"].items() if v["file"] in FILES}
        io.write_json(work / "model.json", meta)
        if not measure_only:
            target = shipped_model_dir("detect")
            target.mkdir(parents=True, exist_ok=True)
            for name in FILES:
                shutil.copy2(work / name, target / name)
            shutil.copy2(
                work / "plots" / "tflite_int8" / "val" / "precision_recall.png",
                target / "precision_recall.png",
            )
    if measure_only:
        io.write_json(Path(run_dir) / "ship_metrics.json", {"run": description, **results})
    else:
        record(results, description)
    print(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--measure-only", action="store_true", help="write run_dir/ship_metrics.json, ship nothing"
    )
    parser.add_argument(
        "--describe", default="", help="what run this is (recipe, epochs), recorded with the numbers"
    )
    args = parser.parse_args()
    try:
        main(args.run_dir, args.settings, args.measure_only, args.describe or str(args.run_dir))
    except DlkitError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
