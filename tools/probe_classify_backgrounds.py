"""Does the shipped classifier read the background? Underwater scenes against the rest.

Image data v2 gives classify 28 whole-scene GCompris photos of fish, all under water, so
in training an underwater scene is far more often a fish than a chance pick of the
backgrounds would make it. This probe pastes each held-out cut-out (validation and test:
objects no training image shows) on VIEWS backgrounds of each kind, as the dataset
composes its views (224 px, the object 60-95% of the side, JPEG at the dataset's
quality, resized to the model's input): GCompris's underwater photos, and every other
background photo. Per kind it reports how often a cut-out that is not a fish is called a
fish, and how often each object is named right; differences are paired by object, with
95% intervals from resampling the objects (`dlkit.metrics.intervals`).

    python tools/probe_classify_backgrounds.py [MODEL] [--views 12] [--label shipped]

MODEL: a classify run or model folder, .keras or .tflite (default: the shipped model).
Writes tools/results/classify_backgrounds.json under the model's label (other labels are
kept, so runs of other recipes sit side by side).
"""

import argparse
import io as bytes_io
from pathlib import Path

import numpy as np
from PIL import Image

from dlkit import io
from dlkit.data import tuxpaint
from dlkit.edge.image import resize
from dlkit.metrics.intervals import paired_difference_interval
from dlkit.predict import Predictor
from dlkit.registry import get_app

RESULTS = Path(__file__).parent / "results" / "classify_backgrounds.json"
SIZE, SCALES, JPEG_QUALITY = 224, (0.6, 0.95), 92  # as tuxpaint.build_classification writes views
UNDERWATER = "gcompris/"  # the names of GCompris's underwater backgrounds


def views(cutout, pool, count, seed, side):
    """`count` views of `cutout` pasted on backgrounds of `pool`, as the model reads them."""
    rng = np.random.default_rng(seed)
    drawn = []
    for _ in range(count):
        canvas = tuxpaint.random_background(pool, rng, SIZE)
        tuxpaint.paste(canvas, cutout, rng, SCALES)
        encoded = bytes_io.BytesIO()
        canvas.convert("RGB").save(encoded, format="JPEG", quality=JPEG_QUALITY)
        drawn.append(resize(np.asarray(Image.open(encoded).convert("RGB")), (side, side)))
    return np.stack(drawn)


def probe(model=None, count=6):
    app = get_app("classify")
    predictor = Predictor.load(app, model, prefer="keras")
    labels = list(predictor.meta["labels"])
    side = predictor.meta["input"]["shape"][0]
    named = tuxpaint._named_backgrounds()
    pools = {
        "underwater": [image for name, image in named.items() if name.startswith(UNDERWATER)],
        "other": [image for name, image in named.items() if not name.startswith(UNDERWATER)],
    }
    splits = tuxpaint.split_cutouts(tuxpaint.find_cutouts(version=2))
    objects = [item for split in ("val", "test") for item in splits[split]]
    rows = []
    for index, item in enumerate(objects):
        cutout = tuxpaint.load_cutout(item.path)
        row = {"object": str(item.path.name), "label": item.label}
        for number, (kind, pool) in enumerate(pools.items()):
            probs = predictor.run(views(cutout, pool, count, [index, number], side).astype(np.float32))[0]
            named_as = np.argmax(probs, axis=1)
            row[kind] = {
                "right": float(np.mean(named_as == labels.index(item.label))),
                "fish": float(np.mean(named_as == labels.index("fish"))),
            }
        rows.append(row)
        print(f"{index + 1}/{len(objects)} {row['object']}: {row}", flush=True)

    def compare(chosen, measure):
        a = [r["underwater"][measure] for r in chosen]
        b = [r["other"][measure] for r in chosen]
        difference, interval = paired_difference_interval(a, b)
        return {
            "underwater": float(np.mean(a)),
            "other": float(np.mean(b)),
            "difference": difference,
            "difference_ci95": interval,
            "objects": len(chosen),
        }

    not_fish = [r for r in rows if r["label"] != "fish"]
    fish = [r for r in rows if r["label"] == "fish"]
    return {
        "model": str(predictor.bundle.path),
        "views_per_object_and_kind": count,
        "backgrounds": {kind: len(pool) for kind, pool in pools.items()},
        "not_fish_called_fish": compare(not_fish, "fish"),
        "not_fish_named_right": compare(not_fish, "right"),
        "fish_named_right": compare(fish, "right"),
        "per_class_named_right": {
            label: compare([r for r in rows if r["label"] == label], "right") for label in labels
        },
        "objects": rows,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", nargs="?", metavar="MODEL")
    parser.add_argument("--views", type=int, default=12, help="views per object and kind of background")
    parser.add_argument("--label", default="shipped", help="the name of the model's record in the results")
    args = parser.parse_args()
    result = probe(args.model, args.views)
    results = io.read_json(RESULTS) if RESULTS.exists() else {"models": {}}
    results["models"][args.label] = result
    io.write_json(RESULTS, results)
    for key in ("not_fish_called_fish", "not_fish_named_right", "fish_named_right"):
        print(key, result[key])
