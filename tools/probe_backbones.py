"""Which pretrained backbone's frozen features name unseen objects best: a linear probe.

For each BACKBONE@SIZE (a name of `dlkit.pretrained` and an input side), the backbone's
global-pooled features of the training images (no augmentation, no fine-tuning) train a
logistic regression (standardised features; its L2 strength picked by 5-fold
cross-validation grouped by object on the training split alone), which then names the
held-out validation and test images of image data v2 (or `--data`). Pooled accuracy with
a 95% interval from resampling the objects, and each probe minus the first with a paired
interval (`tools/compare_classify.py`'s statistics). A probe costs a forward pass over
the images, not a training run, and tells backbones apart before one is fine-tuned.

    python tools/probe_backbones.py efficientnet_lite0@160 efficientnet_lite1@224 ...
        [--out tools/results/classify_backbone_probe.json]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.metrics.intervals import cluster_bootstrap_interval, paired_cluster_difference

STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0)  # logistic regression C, picked on the training split


def parse(spec):
    name, _, size = spec.partition("@")
    if not size.isdigit() or int(size) < 32:
        raise argparse.ArgumentTypeError(f"{spec!r}: give BACKBONE@SIZE, e.g. efficientnet_lite0@160")
    return name, int(size)


def features(name, size, images):
    import keras

    from dlkit.pretrained import build_backbone

    backbone = build_backbone(name, (size, size, 3))
    pooled = keras.Sequential([backbone, keras.layers.GlobalAveragePooling2D()])
    return pooled.predict(images.astype(np.float32) / 127.5 - 1, batch_size=32, verbose=0)


def probe(name, size, splits):
    """(right or not per held-out image, its object, the chosen C) of one backbone."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = splits["train"]
    x = features(name, size, train.images)
    groups = train.groups or train.paths

    def classifier(strength):
        return make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=3000))

    scores = [
        cross_val_score(classifier(c), x, train.labels, groups=groups, cv=GroupKFold(5)).mean()
        for c in STRENGTHS
    ]
    strength = STRENGTHS[int(np.argmax(scores))]
    fitted = classifier(strength).fit(x, train.labels)
    held, right = [], []
    for split in ("val", "test"):
        loaded = splits[split]
        right.extend(fitted.predict(features(name, size, loaded.images)) == loaded.labels)
        held.extend(f"{split}:{g}" for g in (loaded.groups or loaded.paths))
    return np.asarray(right), held, strength


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("backbones", nargs="+", type=parse, metavar="BACKBONE@SIZE")
    parser.add_argument("--data", default=None, help="a class-per-folder directory (default: image data v2)")
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "classify_backbone_probe.json")
    )
    args = parser.parse_args()
    from dlkit.quiet import import_tensorflow

    import_tensorflow()  # quietly, after the arguments: --help needs none of it
    from dlkit.data import image_classes

    source = image_classes.open_source(args.data, val_split=0.15, test_split=0.15, image_data=2)
    loaded, rows = {}, []
    for name, size in args.backbones:
        if size not in loaded:
            loaded[size] = {s: image_classes.load_split(source, s, size) for s in ("train", "val", "test")}
        right, groups, strength = probe(name, size, loaded[size])
        row = {"backbone": name, "size": size, "C": strength, "accuracy": float(right.mean())}
        row["accuracy_ci95"] = cluster_bootstrap_interval(right, groups)
        if rows:
            row["minus_first"], row["minus_first_ci95"] = paired_cluster_difference(
                right, rows[0]["right"], groups
            )
        rows.append({**row, "right": right})
        print(row, flush=True)
    probes = [{**row, "right": row["right"].astype(int).tolist()} for row in rows]
    io.write_json(Path(args.out), {"images": groups, "probes": probes})


if __name__ == "__main__":
    main()
