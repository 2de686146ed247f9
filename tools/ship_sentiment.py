"""Assembles saved_models/sentiment/ from a finished Bi-LSTM run, or only measures it.

Exports the dynamic-range TFLite model (shipped) and float32 (measured), and scores, on
the validation and test splits of the rated movie sentences (`val`, `test`) and on the
archive's cross-domain sets (`tweets`, `amazon`, `nyt`): Keras, both TFLite files, the
label agreement of Keras and the shipped TFLite, the averaging baseline (a second run),
VADER and the TF-IDF logistic regression, each with a 95% interval and its accuracy on
the negation/contrast diagnostic subset. metrics.json is `{variant: {split: figures}}`,
as for every app.

    python tools/ship_sentiment.py LSTM_RUN AVERAGE_RUN [--measure-only]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit.apps.sentiment import reviews
from dlkit.apps.sentiment.data import rated_source
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import batches, config_of, runner_for, score
from dlkit.export.bundle import ship_run
from dlkit.registry import get_app

SHIPPED = "model.dynamic.tflite"
FILES = ("model.keras", SHIPPED, "model.dynamic.golden.npz", "model.json")
VARIANTS = (("keras", "model.keras"), ("tflite_float32", "model.tflite"), ("tflite_dynamic", SHIPPED))
SETS = ("movie", *reviews.CROSS_DOMAIN)
SPLIT_NAMES = {"movie": "test"}  # the movie sentences are the app's own data; the rest keep their names


def headline(report):
    """The figures worth a table row: accuracy, its interval, the diagnostic subset."""
    row = {
        key: report[key]
        for key in ("accuracy", "accuracy_ci95", "count", "data_fingerprint")
        if key in report
    }
    if "diagnostic" in report:
        row["diagnostic_accuracy"] = report["diagnostic"]["accuracy"]
        row["diagnostic_count"] = report["diagnostic"]["count"]
    elif "diagnostic_accuracy" in report:
        row["diagnostic_accuracy"] = report["diagnostic_accuracy"]
    return row


def labels_of(run, loaded):
    return np.concatenate(
        [np.argmax(run(inputs)[0], axis=1) for inputs, _ in batches(loaded.inputs, loaded.targets)]
    )


def measure(app, work, average_run):
    meta = ModelBundle.load(work / "model.keras", app=app.name).meta
    config = config_of(app, meta)
    sets = reviews.load_sets()
    movie = rated_source(config, "movie", sets)
    tests = {
        name: app.load_split(config, rated_source(config, name, sets), "test", meta=meta) for name in SETS
    }
    runs = {
        variant: runner_for(app, ModelBundle.load(work / name, app=app.name), config)
        for variant, name in VARIANTS
    }
    average = ModelBundle.load(Path(average_run) / "model.keras", app=app.name)
    average_config = config_of(app, average.meta)
    runs["average_keras"] = runner_for(app, average, average_config)
    results = {variant: {} for variant in runs}
    val = app.load_split(config, movie, "val", meta=meta)
    for variant, _ in VARIANTS:
        results[variant]["val"] = headline(score(app, config, meta, runs[variant], val))
    for name, loaded in tests.items():
        split = SPLIT_NAMES.get(name, name)
        for variant, run in runs.items():
            variant_meta = average.meta if variant == "average_keras" else meta
            if variant == "average_keras":
                loaded_here = app.load_split(
                    average_config, rated_source(average_config, name, sets), "test", meta=variant_meta
                )
            else:
                loaded_here = loaded
            results[variant][split] = headline(score(app, config, variant_meta, run, loaded_here))
        # Its own vocabulary makes other ids of the same sentences: not this model's data.
        results["average_keras"][split].pop("data_fingerprint", None)
        for peer, report in app.peers(config, meta, movie, loaded).items():
            results.setdefault(peer, {})[split] = headline(report)
        keras_labels, tflite_labels = (
            labels_of(runs["keras"], loaded),
            labels_of(runs["tflite_dynamic"], loaded),
        )
        agreement = float(np.mean(keras_labels == tflite_labels))
        results.setdefault("label_agreement_keras_tflite_dynamic", {})[split] = agreement
        print(
            split,
            {k: round(v[split]["accuracy"], 4) for k, v in results.items() if isinstance(v.get(split), dict)},
            flush=True,
        )
    return results


def main(run_dir, average_run, measure_only=False):
    app = get_app("sentiment")
    target = ship_run(
        app,
        run_dir,
        ("float32", "dynamic"),
        lambda work: measure(app, work, average_run),
        FILES,
        Path(__file__).parent / "results" / "sentiment.json",
        record={"average_run": str(average_run)},
        measure_only=measure_only,
    )
    if target:
        print(f"shipped to {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("lstm_run", metavar="LSTM_RUN")
    parser.add_argument("average_run", metavar="AVERAGE_RUN")
    parser.add_argument("--measure-only", action="store_true", help="measure, do not ship")
    args = parser.parse_args()
    main(args.lstm_run, args.average_run, measure_only=args.measure_only)
