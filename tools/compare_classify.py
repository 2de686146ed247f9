"""Classify models on the same held-out objects, with paired intervals of their difference.

Scores each model (a run or export folder, a .keras or .tflite file) on the held-out
validation and test images of image data v2 (or `--data`), pooled, and gives each
accuracy a 95% interval from resampling the objects (the views of one object are not
independent trials; on a user's folder each image is its own object), then every model
after the first minus the first, with a paired interval: each of 2,000 resamplings of
the objects scores both models, so what the objects share cancels out.

    python tools/compare_classify.py [MODEL ...] [--reference MODEL: the shipped model]
        [--out tools/results/classify_compare.json]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.errors import DlkitError
from dlkit.metrics.intervals import cluster_bootstrap_interval, paired_cluster_difference

SPLITS = ("val", "test")


def held_out_right(app, predictor, source):
    """(right or not per held-out image, its object "<split>:<object>"), val then test."""
    from dlkit.engine import config_of

    meta = predictor.meta
    groups, right = [], []
    for split in SPLITS:
        # The app's own loader: the model's input size, the data's classes mapped to the
        # model's (one it does not know is an error).
        loaded = app.load_split(config_of(app, meta), source, split, meta=meta)
        truth = loaded.targets
        probs = np.concatenate(
            [predictor.run(loaded.images[i : i + 64].astype(np.float32))[0] for i in range(0, len(truth), 64)]
        )
        right.extend(np.argmax(probs, axis=1) == truth)
        groups.extend(f"{split}:{g}" for g in (loaded.groups or loaded.paths))
    return np.asarray(right), groups


def compare(models, data=None, image_data=2):
    from dlkit.data import image_classes
    from dlkit.predict import Predictor
    from dlkit.registry import get_app

    app = get_app("classify")
    source = image_classes.open_source(data, val_split=0.15, test_split=0.15, image_data=image_data)
    rows = []
    for model in models:
        prefer = "tflite" if str(model).endswith(".tflite") else "keras"
        right, groups = held_out_right(app, Predictor.load(app, model, prefer=prefer), source)
        row = {"model": str(model), "accuracy": float(right.mean())}
        row["accuracy_ci95"] = cluster_bootstrap_interval(right, groups)
        if rows:
            difference, interval = paired_cluster_difference(right, rows[0]["right"], groups)
            row["minus_reference"], row["minus_reference_ci95"] = difference, interval
        rows.append({**row, "right": right})
        print(f"{len(set(groups))} objects, {len(groups)} images:", row, flush=True)
    return {
        "images": groups,
        "models": [{**row, "right": row["right"].astype(int).tolist()} for row in rows],
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help="models compared with the reference")
    parser.add_argument("--reference", default=None, help="the model the others are compared with (shipped)")
    parser.add_argument("--data", default=None, help="a class-per-folder directory (default: image data v2)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "classify_compare.json"))
    args = parser.parse_args()
    from dlkit.paths import default_model
    from dlkit.quiet import import_tensorflow

    import_tensorflow()  # quietly, after the arguments: --help needs none of it
    try:
        reference = args.reference or str(default_model("classify"))
        io.write_json(Path(args.out), compare([reference, *args.models], args.data))
    except DlkitError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
