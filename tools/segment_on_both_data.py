"""Scores segment models on the held-out scenes of both offline image data versions.

Each model (a run directory or a model folder holding `model.keras` and `model.json`) is
scored in Keras on the 300 validation and 300 test scenes of image data v1 and of v2,
each split apart and pooled, with bootstrap 95% intervals over scenes. The results go
into `tools/results/segment_v1_v2.json` under each model's label; models already there
under other labels are kept, so the table grows one trained model at a time.

    python tools/segment_on_both_data.py [--raw] "LABEL=RUN_DIR" ["LABEL=RUN_DIR" ...]

`--raw` scores on the same held-out scenes composited again, as they are before their
JPEG encoding (`image_data_N_raw`): how much a model depends on the JPEG look.
"""

import argparse
import dataclasses
from pathlib import Path

from dlkit import io
from dlkit.console import labelled
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import config_of, runner_for, score_splits
from dlkit.registry import get_app

RESULTS = Path(__file__).parent / "results" / "segment_v1_v2.json"
KEYS = ("miou", "foreground_iou", "boundary_f", "miou_ci95", "foreground_iou_ci95")
NOTE = (
    "Keras, 300 validation + 300 test scenes of each image data version; 95% intervals by "
    "bootstrap over scenes (tools/segment_on_both_data.py: the app's score_splits with the "
    "model's own config and image_data set)"
)


def score(app, folder, version, raw=False):
    """{val, test, pooled: the KEYS of each report} of the model in `folder` on `version`'s
    held-out scenes (`raw`: composited again, without the files' JPEG encoding)."""
    meta = io.read_json(folder / "model.json")
    config = dataclasses.replace(config_of(app, meta), image_data=version)
    source = app.open_source(config, None)  # the offline default scenes of that version
    splits = {split: app.load_split(config, source, split, meta=meta) for split in ("val", "test")}
    if raw:
        splits = {name: raw_split(config, source, name, split) for name, split in splits.items()}
    run = runner_for(app, ModelBundle.load(folder / "model.keras", app=app.name), config)
    reports = score_splits(app, config, meta, run, splits)
    return {split: summary(report) for split, report in reports.items()}


def raw_split(config, source, name, stored):
    """`stored` (a decoded held-out split) with its images replaced by the same scenes
    composited again (checked against the stored masks), decoded the same way."""
    import numpy as np

    from dlkit.data.scenes import stored_scenes_again
    from dlkit.edge.image import resize

    size = config.image_size
    scenes = stored_scenes_again(source.splits[name], version=config.image_data)
    images = [resize(scenes[Path(path).stem].image, (size, size)) for path in stored.paths]
    return dataclasses.replace(stored, inputs=np.stack(images))


def summary(report):
    """The KEYS of an evaluator's report; per-class IoU by class name."""
    out = {key: report[key] for key in KEYS if key in report}
    out["per_class_iou"] = {label: row["iou"] for label, row in report["per_class"].items()}
    return out


def main(pairs, raw=False):
    app = get_app("segment")
    results = io.read_json(RESULTS) if RESULTS.exists() else {"models": {}}
    results["note"] = NOTE
    suffix = "_raw" if raw else ""
    for label, folder in pairs:
        for version in (1, 2):
            scored = score(app, Path(folder), version, raw)
            results["models"].setdefault(label, {})[f"image_data_{version}{suffix}"] = scored
            pooled = scored["pooled"]
            print(
                f"{label}, image data v{version}{suffix}: mean IoU {pooled['miou']:.3f}, "
                f"foreground IoU {pooled['foreground_iou']:.3f}, boundary F {pooled['boundary_f']:.3f}",
                flush=True,
            )
        io.write_json(RESULTS, results)  # after each model: a long run keeps what it measured


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="+", type=labelled, metavar="LABEL=RUN_DIR")
    parser.add_argument(
        "--raw", action="store_true", help="score the scenes as they are before their JPEG encoding"
    )
    args = parser.parse_args()
    main(args.models, raw=args.raw)
