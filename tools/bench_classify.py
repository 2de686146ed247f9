"""Benchmark of the classify app: accuracy (Keras, TFLite float32/int8, from scratch),
file sizes, CLI start-up and predict process time, measured side by side in one run.

    python tools/bench_classify.py [--model saved_models/classify] [--scratch RUN_DIR]

Writes tools/results/classify.json and prints a Markdown table for the README.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command, repeat):
    """Median wall time of a command run `repeat` times (each a fresh process)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "saved_models" / "classify"))
    parser.add_argument("--scratch", default=None, help="A run trained with --weights none, for comparison.")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from dlkit import runner
    from dlkit.export.bundle import export
    from dlkit.registry import get_app

    app = get_app("classify")
    model_dir = Path(args.model)
    results = {"model": str(model_dir)}
    with tempfile.TemporaryDirectory() as tmp:
        # float32 is exported fresh next to a copy, so the shipped folder stays as it is.
        work = Path(tmp)
        for name in ("model.keras", "model.json"):
            (work / name).write_bytes((model_dir / name).read_bytes())
        export(app, work, "float32")
        int8 = model_dir / "model.int8.tflite"
        float32 = work / "model.tflite"
        for label, path in (
            ("keras", model_dir / "model.keras"),
            ("tflite_float32", float32),
            ("tflite_int8", int8),
        ):
            results[f"{label}_test_accuracy"] = runner.evaluate(app, path, split="test")["accuracy"]
        results["float32_bytes"] = float32.stat().st_size
        results["int8_bytes"] = int8.stat().st_size
        results["int8_size_ratio"] = results["int8_bytes"] / results["float32_bytes"]
        if args.scratch:
            results["scratch_test_accuracy"] = runner.evaluate(
                app, Path(args.scratch) / "model.keras", split="test"
            )["accuracy"]

        from dlkit.data.image_classes import open_source

        image = open_source(None).files["test"][0][0]
        dlkit = [sys.executable, "-m", "dlkit.cli"]
        results["help_seconds"] = timed([*dlkit, "--help"], args.repeat)
        results["predict_tflite_seconds"] = timed(
            [*dlkit, "classify", "predict", str(image), "--model", str(int8)], args.repeat
        )
        results["predict_keras_seconds"] = timed(
            [*dlkit, "classify", "predict", str(image), "--model", str(model_dir / "model.keras")],
            args.repeat,
        )
        results["predict_speedup"] = results["predict_keras_seconds"] / results["predict_tflite_seconds"]

    out = ROOT / "tools" / "results" / "classify.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        ("held-out top-1, Keras", f"{results['keras_test_accuracy']:.3f}"),
        ("held-out top-1, TFLite float32", f"{results['tflite_float32_test_accuracy']:.3f}"),
        ("held-out top-1, TFLite int8", f"{results['tflite_int8_test_accuracy']:.3f}"),
        (
            "int8 / float32 file size",
            f"{results['int8_size_ratio']:.1%} ({results['int8_bytes'] / 1e6:.2f} MB)",
        ),
        ("`dlkit --help`", f"{results['help_seconds']:.2f} s"),
        ("predict 1 image, TFLite int8 (process)", f"{results['predict_tflite_seconds']:.2f} s"),
        ("predict 1 image, Keras (process)", f"{results['predict_keras_seconds']:.2f} s"),
        ("TFLite speed-up", f"{results['predict_speedup']:.1f}x"),
    ]
    if "scratch_test_accuracy" in results:
        rows.insert(
            1, ("held-out top-1, same budget from scratch", f"{results['scratch_test_accuracy']:.3f}")
        )
    print("| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
