"""Conversion time of `dlkit export`, side by side, by route: each shipped model that has
a `.keras` converted to TFLite (float32 and dynamic range, which need no calibration data)
the way `dlkit.export.tflite.convert` does (`default`), and with its earlier routes refused
so that the later ones run: through a SavedModel whose weights are constants of its graph
(`constant_saved_model`: the route of graphs with composite ops, detect's NMS), and
through Keras's SavedModel with its checkpoint of every variable (`keras_saved_model`: the
last resort, and every model's route before). All in one process, alternating, after one
warm-up conversion each; with the files' sizes and their largest output difference to the
default route's file on the same random inputs.

    python tools/bench_export.py [--apps classify,detect,sentiment,translate,trigger]
        [--repeats 2] [--out tools/results/bench/export.json]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.edge import EdgeModel
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import config_of, load_keras
from dlkit.export import tflite
from dlkit.registry import get_app

ROOT = Path(__file__).resolve().parents[1]


ROUTES = ("frozen_function", "constant_saved_model", "keras_saved_model")


def through(route, convert):
    """`convert` with the routes before `route` refused, as for a graph they cannot take."""

    def refused(*args):
        raise ValueError(f"through {route}")

    def run(*args, **kwargs):
        skipped = ROUTES[: ROUTES.index(route)]
        kept = {name: getattr(tflite, name) for name in skipped}
        for name in skipped:
            setattr(tflite, name, refused)
        try:
            return convert(*args, **kwargs)
        finally:
            for name, function in kept.items():
                setattr(tflite, name, function)

    return run


def outputs_of(flatbuffer, work, name, rows=4):
    """The file's outputs on fixed random inputs of its input shapes, drawn in the order of
    the input names (ids under 20 for integer inputs)."""
    path = work / f"{name}.tflite"
    path.write_bytes(flatbuffer)
    model = EdgeModel(path)
    rng = np.random.default_rng(0)
    inputs = {
        name: rng.integers(0, 20, (rows, *shape[1:])).astype(dtype)
        if np.dtype(dtype).kind in "iu"
        else rng.normal(size=(rows, *shape[1:])).astype(dtype)
        for name, shape, dtype in sorted(zip(model.input_names, model.input_shapes, model.input_dtypes))
    }
    return model.predict(inputs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="classify,detect,sentiment,translate,trigger")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "tools/results/bench/export.json"))
    args = parser.parse_args()
    rows = []
    with io.temp_dir("bench-export") as work:
        for name in args.apps.split(","):
            app = get_app(name)
            directory = ROOT / "saved_models" / name
            bundle = ModelBundle.load(directory, app=app)
            meta, config = bundle.meta, config_of(app, bundle.meta)
            model = load_keras(directory / "model.keras")
            for quantize in ("float32", "dynamic"):
                paths = {
                    "default": app.convert,
                    "constant_saved_model": through("constant_saved_model", app.convert),
                    "keras_saved_model": through("keras_saved_model", app.convert),
                }
                seconds = {path: [] for path in paths}
                files = {}
                for repeat in range(args.repeats + 1):  # the first of each is a warm-up
                    for path, convert in paths.items():
                        start = time.perf_counter()
                        files[path] = convert(model, config, meta, quantize, None)
                        if repeat:
                            seconds[path].append(time.perf_counter() - start)
                outputs = {path: outputs_of(files[path], work, path) for path in files}
                row = {
                    "app": name,
                    "quantize": quantize,
                    "seconds": {path: min(times) for path, times in seconds.items()},
                    "bytes": {path: len(data) for path, data in files.items()},
                    "max_abs_output_difference": {
                        path: max(float(np.abs(a - b).max()) for a, b in zip(outputs["default"], got))
                        for path, got in outputs.items()
                        if path != "default"
                    },
                }
                row["speedup"] = row["seconds"]["keras_saved_model"] / row["seconds"]["default"]
                print(
                    f"{name:10s} {quantize:8s} "
                    + "  ".join(f"{path} {row['seconds'][path]:5.1f} s" for path in paths)
                    + f"  x{row['speedup']:.1f}  bytes {' / '.join(str(n) for n in row['bytes'].values())}"
                    + f"  max diff {max(row['max_abs_output_difference'].values()):.2g}",
                    flush=True,
                )
                rows.append(row)
    io.write_json(Path(args.out), {"repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
