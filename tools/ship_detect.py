"""Assembles saved_models/detect/ from a finished training run and records the numbers.

Exports float32 and int8 (both with decode + NMS inside), scores Keras, TFLite float32
and TFLite int8 on the held-out test scenes (mAP@0.5, mAP@0.5:0.95), lists the TFLite
ops, and copies model.keras, model.int8.tflite, its golden vectors, model.json and
metrics.json. Results go to tools/results/detect.json.

    python tools/ship_detect.py runs/detect/train
"""

import shutil
import sys
import tempfile
from pathlib import Path

from dlkit import io, runner
from dlkit.apps import get_app
from dlkit.export.bundle import export
from dlkit.paths import shipped_model_dir

FILES = ("model.keras", "model.int8.tflite", "model.int8.golden.npz", "model.json", "metrics.json")
RESULTS = Path(__file__).parent / "results" / "detect.json"


def ops_of(path):
    from ai_edge_litert.interpreter import Interpreter

    return sorted({op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()})


def main(run_dir):
    app = get_app("detect")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("model.keras", "model.json", "metrics.json"):
            shutil.copy2(Path(run_dir) / name, work / name)
        for quantize in ("float32", "int8"):
            export(app, work, quantize)
        metrics = io.read_json(work / "metrics.json")
        results = {}
        for label, name in (
            ("keras", "model.keras"),
            ("tflite_float32", "model.tflite"),
            ("tflite_int8", "model.int8.tflite"),
        ):
            report = runner.evaluate(app, work / name, split="test", out_dir=work / "plots" / label)
            report.pop("model", None)
            report.pop("curves", None)
            metrics.setdefault(label, {})["test"] = report
            results[f"{label}_test_map50"] = report["map50"]
            results[f"{label}_test_map50_95"] = report["map50_95"]
        results["int8_ops"] = ops_of(work / "model.int8.tflite")
        results["bytes"] = {n: (work / n).stat().st_size for n in ("model.tflite", "model.int8.tflite")}
        io.write_json(work / "metrics.json", metrics)
        meta = io.read_json(work / "model.json")
        meta["exports"] = {k: v for k, v in meta["exports"].items() if v["file"] in FILES}
        io.write_json(work / "model.json", meta)
        target = shipped_model_dir("detect")
        target.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copy2(work / name, target / name)
        shutil.copy2(work / "plots" / "tflite_int8" / "precision_recall.png", target / "precision_recall.png")
    io.write_json(RESULTS, results)
    print(results)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
