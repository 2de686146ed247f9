"""Assembles saved_models/translate/ (dates) and saved_models/translate/bible/ (sentences)
from finished training runs, with the measurements the README quotes.

    python tools/ship_translate.py dates runs/translate/train
    python tools/ship_translate.py bible runs/translate/train2

dates: exports float32 TFLite, scores Keras and TFLite exact match on the held-out test
split, and compares with dateparser on the same strings (accuracy, strings per second).
bible: exports float32 TFLite and scores BLEU/chrF on the test split with greedy and beam
search through the TFLite graphs. Results go to tools/results/translate.json.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dlkit import io, runner
from dlkit.export.bundle import export
from dlkit.paths import shipped_model_dir
from dlkit.registry import get_app

FILES = ("model.keras", "model.tflite", "model.golden.npz", "model.json", "metrics.json")
RESULTS = Path(__file__).parent / "results" / "translate.json"


def assemble(run_dir, target, measure):
    app = get_app("translate")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("model.keras", "model.json", "metrics.json"):
            shutil.copy2(Path(run_dir) / name, work / name)
        export(app, work, "float32")
        results = measure(app, work)
        metrics = io.read_json(work / "metrics.json")
        metrics["tflite_float32"] = results.get("tflite_float32", {})
        for report in metrics["tflite_float32"].values():
            report.pop("model", None)  # a temporary path
        io.write_json(work / "metrics.json", metrics)
        target.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copy2(work / name, target / name)
    return results


def measure_dates(app, work):
    keras_test = runner.evaluate(app, work / "model.keras", split="test")
    tflite_test = runner.evaluate(app, work / "model.tflite", split="test")
    results = {
        "keras_test_exact_match": keras_test["exact_match"],
        "tflite_test_exact_match": tflite_test["exact_match"],
        "test_count": tflite_test["count"],
        "tflite_float32": {"test": tflite_test},
        "tflite_bytes": (work / "model.tflite").stat().st_size,
    }
    results.update(compare_dateparser(app, work))
    return results


def compare_dateparser(app, work):
    """dateparser and our TFLite model on the same held-out strings, side by side."""
    import dateparser

    from dlkit.engine import config_of

    meta = io.read_json(work / "model.json")
    config = config_of(app, meta)
    source = app.open_source(config, None)
    loaded = app.load_split(config, source, "test", meta=meta)
    texts, references = loaded.texts, loaded.references
    run = app.tflite_runner(work / "model.tflite", meta)
    start = time.perf_counter()
    ours = []
    for begin in range(0, len(texts), 256):
        ours += app.edge.decode_outputs(run(loaded.inputs[begin : begin + 256]), meta)
    ours_seconds = time.perf_counter() - start
    results = {
        "ours_accuracy": sum(o == r for o, r in zip(ours, references)) / len(references),
        "ours_strings_per_second": len(texts) / ours_seconds,
    }
    for label, settings in (("dateparser_default", {}), ("dateparser_day_first", {"DATE_ORDER": "DMY"})):
        answers = []
        start = time.perf_counter()
        for text in texts:
            try:
                parsed = dateparser.parse(text, settings=settings or None)
            except Exception:  # dateparser raises on some inputs; count it as a miss
                parsed = None
            answers.append(parsed.date().isoformat() if parsed else None)
        seconds = time.perf_counter() - start
        results[f"{label}_accuracy"] = sum(a == r for a, r in zip(answers, references)) / len(references)
        results[f"{label}_strings_per_second"] = len(texts) / seconds
        results[f"{label}_unparsed"] = sum(a is None for a in answers) / len(references)
        if label == "dateparser_default":
            misses = [(t, a, r) for t, a, r in zip(texts, answers, references) if a != r]
            results["dateparser_miss_examples"] = misses[:15]
    our_misses = [(t, o, r) for t, o, r in zip(texts, ours, references) if o != r]
    results["ours_miss_examples"] = our_misses[:15]
    return results


def measure_bible(app, work):
    from dlkit.edge.bundle import ModelBundle

    results = {"tflite_bytes": (work / "model.tflite").stat().st_size}
    for label, width in (("greedy", 1), ("beam", 4)):
        bundle = ModelBundle.load(work / "model.tflite")
        meta = dict(bundle.meta, beam_width=width)
        io.write_json(work / "model.json", meta)
        start = time.perf_counter()
        report = runner.evaluate(app, work / "model.tflite", split="test")
        results[label] = {
            "bleu": report["bleu"],
            "chrf": report["chrf"],
            "count": report["count"],
            "seconds": time.perf_counter() - start,
            "examples": report["examples"],
        }
    meta["beam_width"] = 4
    io.write_json(work / "model.json", meta)
    results["tflite_float32"] = {"test_beam": results["beam"], "test_greedy": results["greedy"]}
    return results


def main(kind, run_dir):
    if kind == "dates":
        results = assemble(run_dir, shipped_model_dir("translate"), measure_dates)
    elif kind == "bible":
        results = assemble(run_dir, shipped_model_dir("translate") / "bible", measure_bible)
    else:
        sys.exit(__doc__)
    results.pop("tflite_float32", None)
    saved = io.read_json(RESULTS) if RESULTS.exists() else {}
    saved[kind] = results
    io.write_json(RESULTS, saved)
    print(io.read_json(RESULTS)[kind])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("task", choices=("dates", "bible"))
    parser.add_argument("run", metavar="RUN")
    args = parser.parse_args()
    main(args.task, args.run)
