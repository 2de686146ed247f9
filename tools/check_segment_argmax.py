"""Checks a segment model's `--argmax` export against the argmax of its scores.

Exports the in-graph ArgMax variant (`model.<q>.argmax.tflite`, per-pixel class ids) of a
model folder into a temporary copy, runs it and the plain `model.<q>.tflite` (class
scores) on every validation and test scene, and counts the pixels whose labels agree.
Writes tools/results/segment_argmax.json.

    python tools/check_segment_argmax.py saved_models/segment [--quantize int8]
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import batches, config_of, runner_for
from dlkit.export.bundle import export
from dlkit.registry import get_app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--quantize", default="int8")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "segment_argmax.json"))
    args = parser.parse_args()
    app = get_app("segment")
    folder = Path(args.model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for path in folder.glob("model*"):
            shutil.copy2(path, work / path.name)
        if not (work / f"model.{args.quantize}.tflite").exists():
            export(app, work, args.quantize)
        export(app, work, args.quantize, options={"argmax": True})
        meta = io.read_json(work / "model.json")
        config = config_of(app, meta)
        source = app.open_source(config, meta.get("data"))
        scores = runner_for(
            app, ModelBundle.load(work / f"model.{args.quantize}.tflite", app=app.name), config
        )
        labels = runner_for(
            app, ModelBundle.load(work / f"model.{args.quantize}.argmax.tflite", app=app.name), config
        )
        same = total = 0
        for split in ("val", "test"):
            loaded = app.load_split(config, source, split, meta=meta)
            for inputs, _ in batches(loaded.inputs, loaded.targets):
                expected = np.argmax(np.asarray(scores(inputs)[0]), axis=-1)
                got = np.asarray(labels(inputs)[0])
                same += int(np.sum(expected == got))
                total += expected.size
        sizes = {p.name: p.stat().st_size for p in work.glob(f"model.{args.quantize}*.tflite")}
    result = {
        "model": str(folder),
        "quantize": args.quantize,
        "pixels": total,
        "agreement": same / total,
        "sizes": sizes,
    }
    io.write_json(Path(args.out), result)
    print(result)


if __name__ == "__main__":
    main()
