"""Assembles saved_models/face/ from a face model directory (default: the ported dlib
descriptor, `--init dlib`), or only measures it.

Exports dynamic-range and full-int8 TFLite. On the offline people (dlib's five Johns,
Obama and Biden: detected and aligned by the shipped BlazeFace), for Keras and each TFLite
file, val and test apart and pooled, and the Johns alone: verification accuracy at the
model's threshold, ROC AUC, TAR at FAR 1e-2 and 1e-3, EER, rank-1 identification, with
95% intervals. Parity: the cosine similarity of each TFLite file's embeddings to Keras's
and the share of pairs whose same/different decision agrees. Peers scored on the same
faces: other face model directories given with `--peer NAME=DIR` (the ported descriptor
fine-tuned with the triplet loss; the course's MobileNetV2 triplet model); peers recorded
in tools/results/face.json by an earlier call and not given again are kept as recorded
(their scores do not depend on the shipped model). Timing: the
whole `dlkit face identify photo.jpg` process through the shipped TFLite file (median of
5 runs). Ships the int8 file, its golden vectors, the detector and metrics; the weights
the .keras is built from stay in saved_models/backbones/face.

    python tools/ship_face.py [MODEL_DIR] [--peer NAME=DIR ...] [--measure-only]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dlkit.apps.face.data import LoadedFaces
from dlkit.console import labelled
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import config_of, runner_for, score_splits
from dlkit.export.bundle import ship_run
from dlkit.metrics.verification import pair_distances, verification_report
from dlkit.registry import get_app

VARIANTS = (
    ("keras", "model.keras"),
    ("tflite_dynamic", "model.dynamic.tflite"),
    ("tflite_int8", "model.int8.tflite"),
)
HEADLINE = (
    "accuracy",
    "accuracy_ci95",
    "roc_auc",
    "roc_auc_ci95",
    "tar_at_far_1e-2",
    "tar_at_far_1e-2_ci95",
    "tar_at_far_1e-3",
    "tar_at_far_1e-3_ci95",
    "eer",
    "eer_ci95",
    "rank1",
    "rank1_ci95",
    "threshold",
    "images",
    "identities",
    "genuine_pairs",
    "impostor_pairs",
)
SHIPPED = "model.int8.tflite"


def embed(run, inputs):
    return np.concatenate([run(inputs[i : i + 32])[0] for i in range(0, len(inputs), 32)])


def headline(report):
    return {key: report[key] for key in HEADLINE if key in report}


def johns_only(splits):
    """The pooled split restricted to dlib's Johns (the benchmark the targets name)."""
    inputs, targets, names = [], [], {}
    for split in splits.values():
        for crop, target in zip(split.inputs, split.targets):
            if split.names[target].startswith("John_"):
                inputs.append(crop)
                targets.append(target)
                names[target] = split.names[target]
    return LoadedFaces(np.stack(inputs), np.asarray(targets, np.int32), names, [])


def score_model(app, bundle, splits, johns):
    config = config_of(app, bundle.meta)
    run = runner_for(app, bundle, config)
    reports = score_splits(app, config, bundle.meta, run, splits)
    scored = {name: headline(report) for name, report in reports.items()}
    embeddings = embed(run, johns.inputs)
    scored["johns"] = headline(verification_report(embeddings, johns.targets, bundle.meta.get("threshold")))
    return scored, run


def identify_seconds(model, photo, runs=5):
    """Median wall time of the whole `dlkit face identify` process."""
    times = []
    command = [
        sys.executable,
        "-m",
        "dlkit.cli",
        "face",
        "identify",
        str(photo),
        "--model",
        str(model),
        "--gallery",
        "none",
    ]
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first run warms the file cache


def earlier_peers(results_path, peers):
    """{name: record} of the peers in an earlier results file (rows naming their `model`)
    that `peers` does not measure again."""
    from dlkit import io

    if not results_path.exists():
        return {}
    metrics = io.read_json(results_path).get("metrics", {})
    return {
        name: row
        for name, row in metrics.items()
        if isinstance(row, dict) and "model" in row and name not in peers
    }


def measure(app, work, peers, earlier=None):
    meta = ModelBundle.load(work / "model.keras", app=app.name).meta
    config = config_of(app, meta)
    source = app.open_source(config, meta.get("data"))
    splits = {name: app.load_split(config, source, name, meta=meta) for name in ("val", "test")}
    johns = johns_only(splits)
    pooled = np.concatenate([split.inputs for split in splits.values()])
    metrics, embeddings = {}, {}
    for variant, file_name in VARIANTS:
        bundle = ModelBundle.load(work / file_name, app=app.name)
        metrics[variant], run = score_model(app, bundle, splits, johns)
        embeddings[variant] = embed(run, pooled)
        print(variant, {s: round(r["roc_auc"], 4) for s, r in metrics[variant].items()}, flush=True)
    # Parity over the pooled faces and every pair of them.
    identities = np.concatenate([split.targets for split in splits.values()])
    keras_same = pair_distances(embeddings["keras"], identities)[0] <= meta["threshold"]
    metrics["parity"] = {}
    for variant, _ in VARIANTS[1:]:
        a, b = embeddings["keras"], embeddings[variant]
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        same = pair_distances(b, identities)[0] <= meta["threshold"]
        metrics["parity"][variant] = {
            "mean_cosine": float(cosine.mean()),
            "min_cosine": float(cosine.min()),
            "decision_agreement": float((same == keras_same).mean()),
            "pairs": int(len(same)),
        }
    print(metrics["parity"], flush=True)
    for name, directory in peers.items():
        bundle = ModelBundle.load(directory, app=app.name, prefer="keras")
        metrics[name], _ = score_model(app, bundle, splits, johns)
        metrics[name]["model"] = str(directory)
        print(
            name,
            {s: round(r["roc_auc"], 4) for s, r in metrics[name].items() if isinstance(r, dict)},
            flush=True,
        )
    for name, row in (earlier or {}).items():
        metrics.setdefault(name, row)
    photo = Path(splits["test"].paths[0])
    metrics["identify_seconds"] = {
        "photo": photo.name,
        "tflite_int8": identify_seconds(work / SHIPPED, photo),
        "tflite_dynamic": identify_seconds(work / "model.dynamic.tflite", photo),
    }
    print(metrics["identify_seconds"], flush=True)
    metrics["data"] = {
        "source": source.description,
        "people": {split: len(loaded.names) for split, loaded in splits.items()},
        "faces": {split: len(loaded.inputs) for split, loaded in splits.items()},
        "johns": {"faces": len(johns.inputs), "people": len(johns.names)},
    }
    return metrics


def main(model_dir=None, peers=(), measure_only=False):
    from dlkit.apps.face.model import pretrained_model_dir

    app = get_app("face")
    model_dir = Path(model_dir) if model_dir else pretrained_model_dir()
    peers = dict(peers)  # (name, folder) each
    results_path = Path(__file__).parent / "results" / "face.json"
    earlier = earlier_peers(results_path, peers)
    target = ship_run(
        app,
        model_dir,
        ("dynamic", "int8"),
        lambda work: {**measure(app, work, peers, earlier), "shipped": SHIPPED},
        (SHIPPED, SHIPPED.replace(".tflite", ".golden.npz"), "model.json"),
        results_path,
        measure_only=measure_only,
    )
    if target:
        print(f"shipped to {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "model_dir", nargs="?", metavar="MODEL_DIR", help="default: the ported dlib descriptor"
    )
    parser.add_argument("--peer", action="append", default=[], type=labelled, metavar="NAME=DIR")
    parser.add_argument("--measure-only", action="store_true", help="measure, do not ship")
    args = parser.parse_args()
    main(args.model_dir, peers=args.peer, measure_only=args.measure_only)
