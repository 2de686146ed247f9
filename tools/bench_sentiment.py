"""Whole-process speed of `dlkit sentiment predict --file` through Keras and TFLite, side by
side in one run: each command is timed from process start to exit, alternating Keras and
TFLite `--repeats` times; the medians and their ratio are reported. The texts are the
first 10,000 sentences of the rated sets (movie, tweets, Amazon, NYT).

Also reported, to show what bounds the ratio: the time `--model` spends inside the
TFLite interpreter for the same texts (the network's own compute, which TensorFlow
cannot skip either).

    python tools/bench_sentiment.py [MODEL_DIR ...] [--repeats 3] [--texts 10000]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlkit import io
from dlkit.apps.sentiment import reviews
from dlkit.paths import shipped_model_dir


def write_texts(path, count):
    sets = reviews.load_sets()
    texts = [text for name in ("movie", *reviews.CROSS_DOMAIN) for text, _ in sets[name]][:count]
    path.write_text("\n".join(" ".join(text.split()) for text in texts) + "\n", encoding="utf-8")
    return len(texts)


def whole_process(model, texts):
    """Seconds from start to exit of one `dlkit sentiment predict --file` process."""
    command = [sys.executable, "-m", "dlkit.cli", "sentiment", "predict", "--file", str(texts)]
    start = time.perf_counter()
    done = subprocess.run([*command, "--model", str(model), "--json"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{model}: predict failed: {done.stderr.strip().splitlines()[-1]}")
    return elapsed


def interpreter_seconds(model, texts):
    """Time inside the TFLite interpreter for all texts (tokenized beforehand)."""
    import numpy as np

    from dlkit.apps.sentiment import edge
    from dlkit.edge import EdgeModel
    from dlkit.edge.bundle import ModelBundle

    meta = ModelBundle.load(model).meta
    rows = np.stack([edge.preprocess(edge.read_input(t, meta), meta) for t in texts])
    runtime = EdgeModel(model)
    start = time.perf_counter()
    runtime.predict(rows, batch_size=32)
    return time.perf_counter() - start


def bench(folder, texts, repeats):
    folder = Path(folder)
    keras_file, tflite_file = folder / "model.keras", sorted(folder.glob("model*.tflite"))[0]
    times = {"keras": [], "tflite": []}
    for _ in range(repeats):
        times["keras"].append(whole_process(keras_file, texts))
        times["tflite"].append(whole_process(tflite_file, texts))
    lines = [line for line in texts.read_text(encoding="utf-8").splitlines() if line.strip()]
    medians = {key: statistics.median(value) for key, value in times.items()}
    return {
        "model": str(folder),
        "tflite_file": tflite_file.name,
        "seconds": times,
        "median_seconds": medians,
        "ratio_keras_over_tflite": medians["keras"] / medians["tflite"],
        "tflite_interpreter_seconds": interpreter_seconds(tflite_file, lines),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=[str(shipped_model_dir("sentiment"))])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--texts", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        texts = Path(tmp) / "texts.txt"
        count = write_texts(texts, args.texts)
        results = {"texts": count, "runs": [bench(model, texts, args.repeats) for model in args.models]}
    for run in results["runs"]:
        median = run["median_seconds"]
        print(
            f"{run['model']}: keras {median['keras']:.2f} s, tflite {median['tflite']:.2f} s, "
            f"ratio {run['ratio_keras_over_tflite']:.1f}x (interpreter alone {run['tflite_interpreter_seconds']:.2f} s)"
        )
    out = Path(__file__).parent / "results" / "sentiment_bench.json"
    io.write_json(out, results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
