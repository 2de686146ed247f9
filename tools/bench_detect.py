"""Speed, size and accuracy of the detect app's TFLite models, side by side in one run.

Three conversions of the same trained model: float32; int8 with decode and NMS in float
(what `dlkit detect export --quantize int8` writes); int8 with the decode quantized too
(the plain full-integer conversion). Each is timed with the LiteRT interpreter on the
same validation image (median of `--repeat` invocations after a warm-up) and scored on
the validation split (mAP@0.5), so the cost of keeping the decode in float is measured,
not guessed.

    python tools/bench_detect.py RUN_OR_MODEL_DIR [--repeat 50] [--threads 1]

Prints a Markdown table; writes tools/results/detect_bench.json.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.errors import DlkitError

RESULTS = Path(__file__).parent / "results" / "detect_bench.json"
EXPORTED = "int8, decode + NMS float (exported)"
QUANTIZED_DECODE = "int8, decode quantized"


def conversions(app, model, config, meta, representative):
    """name -> TFLite flatbuffer of the three variants."""
    return {
        "float32": app.model.convert(model, config, meta, "float32"),
        EXPORTED: app.model.convert(model, config, meta, "int8", representative),
        QUANTIZED_DECODE: app.model.convert(model, config, meta, "int8", representative, float_layers=()),
    }


def latency(path, image, repeat, threads):
    """Median and 90th percentile milliseconds of one invocation on `image`."""
    from dlkit.edge.runtime import load_interpreter

    interpreter = load_interpreter(path, threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = image[None].astype(detail["dtype"])  # pixels 0-255: uint8 or float32 as the model takes them
    for _ in range(5):
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), float(np.percentile(times, 90))


def main(model_dir, repeat=50, threads=1):
    from dlkit.console import ProgressPrinter
    from dlkit.edge.bundle import ModelBundle
    from dlkit.engine import config_of, load_keras, representative_inputs, score
    from dlkit.registry import get_app

    app = get_app("detect")
    bundle = ModelBundle.load(model_dir, app="detect", prefer="keras")
    if bundle.is_tflite:
        raise DlkitError(f"{bundle.path}: the benchmark converts the .keras model; give its directory")
    meta = dict(bundle.meta)
    config = config_of(app, meta)
    model = load_keras(bundle.path)
    progress = ProgressPrinter()
    source = app.open_source(config, meta.get("data"), progress=progress)
    val = app.load_split(config, source, "val", meta=meta, progress=progress)
    train = app.load_split(config, source, "train", meta=meta, progress=progress)
    representative = representative_inputs(train.inputs)

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flatbuffer in conversions(app, model, config, meta, representative).items():
            path = Path(tmp) / f"{len(rows)}.tflite"
            path.write_bytes(flatbuffer)
            report = score(app, config, meta, app.tflite_runner(path, meta), val)
            median, p90 = latency(path, val.inputs[0], repeat, threads)
            rows[name] = {
                "bytes": len(flatbuffer),
                "val_map50": report["map50"],
                "val_map50_95": report["map50_95"],
                "ms_median": median,
                "ms_p90": p90,
            }
            print(f"{name}: {rows[name]}", flush=True)
    exported, quantized = rows[EXPORTED], rows[QUANTIZED_DECODE]
    result = {
        "model": str(model_dir),
        "threads": threads,
        "repeat": repeat,
        "score_threshold": config.score_threshold,
        "variants": rows,
        "float_decode_time_ratio": exported["ms_median"] / quantized["ms_median"],
    }
    io.write_json(RESULTS, result)
    print("\n| TFLite model | MB | val mAP@0.5 | val mAP@0.5:0.95 | ms, median (p90) |")
    print("| --- | --- | --- | --- | --- |")
    for name, row in rows.items():
        print(
            f"| {name} | {row['bytes'] / 1e6:.2f} | {row['val_map50']:.3f} | {row['val_map50_95']:.3f} "
            f"| {row['ms_median']:.2f} ({row['ms_p90']:.2f}) |"
        )
    print(f"\nfloat decode / quantized decode time: {result['float_decode_time_ratio']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "model_dir", help="a finished detect run or an export directory (model.keras + model.json)"
    )
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    try:
        main(args.model_dir, args.repeat, args.threads)
    except DlkitError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
