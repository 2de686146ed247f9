"""Scores each shipped model's file again on its held-out splits, made here, and compares
every figure (numbers and intervals) with the one its metrics.json recorded.

The offline data are made from what is installed, so a recorded figure holds for the
examples it was scored on; this says, per app and split, whether this machine makes
the same examples (the same figures, to 1e-6) and gives the data fingerprint of each.
With `--record`, an app whose every compared figure reproduces gets the fingerprints of
the splits compared written into its metrics.json (`data_fingerprints`), so that
`dlkit <app> evaluate` can tell later whether it scores the same examples.

    python tools/reproduce_shipped.py [APP ...] [--record] [--out tools/results/reproduce.json]

Trigger is left out: tools/bench_trigger.py measures it (streaming, hours of negative
audio) and records its clips' fingerprints itself.
"""

import argparse
import sys

from dlkit import io
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import config_of, held_out_splits, runner_for, score
from dlkit.errors import DlkitError
from dlkit.paths import shipped_model_dir
from dlkit.registry import app_names, get_app

TOLERANCE = 1e-6
SPLITS = ("val", "test")


def recorded_report(metrics, variant, split):
    """The report metrics.json holds for `variant` (e.g. tflite_int8) on `split`, or None
    (`{variant: {split: figures}}`, every app's layout)."""
    report = metrics.get(variant, {}).get(split)
    return report if isinstance(report, dict) else None


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def numbers(value):
    """A figure as a list of numbers (a number, or an interval), else None."""
    if number(value):
        return [value]
    if isinstance(value, list) and value and all(number(v) for v in value):
        return value
    return None


def compare(recorded, measured):
    """[(figure, recorded, measured)] for every figure, a number or a list of numbers such as
    an interval, that both reports hold at the top level."""
    rows = []
    for key, value in recorded.items():
        mine, here = numbers(value), numbers(measured.get(key))
        if mine is not None and here is not None:
            rows.append((key, value, measured[key]))
    return rows


def differs(a, b):
    a, b = numbers(a), numbers(b)
    return len(a) != len(b) or any(abs(x - y) > TOLERANCE * max(1.0, abs(x)) for x, y in zip(a, b))


def reproduce(app_name):
    """{split: {"fingerprint", "compared", "differing"}} for the shipped model of `app_name`."""
    app = get_app(app_name)
    folder = shipped_model_dir(app_name)
    bundle = ModelBundle.load(folder, app=app, prefer="tflite")
    kind = next(k for k, record in bundle.meta["exports"].items() if record["file"] == bundle.path.name)
    variant = f"tflite_{kind}"
    metrics = io.read_json(folder / "metrics.json")
    config = config_of(app, bundle.meta)
    run = runner_for(app, bundle, config)
    results = {"file": bundle.path.name, "variant": variant}
    for split, loaded in held_out_splits(app, config, bundle.meta, names=SPLITS).items():
        recorded = recorded_report(metrics, variant, split)
        report = score(app, config, bundle.meta, run, loaded)
        rows = compare(recorded, report) if recorded else []
        results[split] = {
            "fingerprint": report["data_fingerprint"],
            "compared": len(rows),
            "differing": {key: [a, b] for key, a, b in rows if differs(a, b)},
        }
    return results


def reproduced(result):
    """The splits whose recorded figures were all measured again, the same; None when a
    figure of some split differs (nothing of that model is vouched for)."""
    rows = [result[split] for split in SPLITS]
    if any(row["differing"] for row in rows):
        return None
    return [split for split in SPLITS if result[split]["compared"]]


def record(app_name, result, splits):
    """Writes the fingerprints of `splits` into the shipped model's metrics.json."""
    path = shipped_model_dir(app_name) / "metrics.json"
    metrics = io.read_json(path)
    metrics["data_fingerprints"] = {split: result[split]["fingerprint"] for split in splits}
    io.write_json(path, metrics)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("apps", nargs="*", help="Apps (default: every app with a shipped model but trigger).")
    parser.add_argument("--record", action="store_true", help="Write the fingerprints where all reproduces.")
    parser.add_argument("--out", default=None, help="Write the comparison as JSON here.")
    args = parser.parse_args(argv)
    names = args.apps or [
        n for n in app_names() if n != "trigger" and (shipped_model_dir(n) / "model.json").exists()
    ]
    unknown = sorted(set(names) - set(app_names()))
    if unknown:
        raise DlkitError(f"unknown app {', '.join(unknown)} (apps: {', '.join(app_names())})")
    if "trigger" in names:
        raise DlkitError(
            "trigger is measured by tools/bench_trigger.py, which records its clips' fingerprints"
        )
    results = {}
    for name in names:
        results[name] = result = reproduce(name)
        same = reproduced(result)
        result["reproduced"] = bool(same)
        for split in SPLITS:
            row = result[split]
            differing = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in row["differing"].items())
            print(
                f"{name} {split}: {row['compared']} figures compared, "
                f"{'differing: ' + differing if differing else 'all equal' if row['compared'] else 'no record'}"
                f" (data fingerprint {row['fingerprint']})",
                flush=True,
            )
        if args.record and same:
            record(name, result, same)
            print(f"{name}: fingerprints recorded for {', '.join(same)}", flush=True)
    if args.out:
        io.write_json(args.out, results)
    return results


if __name__ == "__main__":
    try:
        main()
    except DlkitError as error:
        sys.exit(f"error: {error}")
