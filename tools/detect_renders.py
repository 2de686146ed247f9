"""Scores detect models on the held-out scenes drawn by Pillow and by OpenCV.

The stored validation and test scenes of the offline default data are drawn by Pillow
and stored as JPEG. Here the same scenes are composited again (the same draws: cut-outs,
classes, places, sizes, stacking) by each render, `dlkit.data.scenes.scenes_drawn_again`,
and each model is scored in Keras on four versions of them, validation and test pooled:

- `stored`: the files, as `dlkit detect evaluate` reads them;
- `pillow`: Pillow's scenes before their JPEG encoding (checked: the files' boxes);
- `pillow_jpeg`, `opencv_jpeg`: each render's scenes through the files' JPEG encoding
  (`JPEG_QUALITY`), with each render's own boxes;
- `opencv`: OpenCV's scenes, unencoded.

A model trained on one render and scored on both separates what the drawing does to a
model from how well the model learnt: a model that learnt worse loses on both, one that
learnt another look loses on the other render only. Results go into
`tools/results/detect_renders.json` under each model's label (other labels are kept).

    python tools/detect_renders.py "LABEL=RUN_DIR_OR_MODEL_FOLDER" [...]
"""

import argparse
import dataclasses
import io as bytes_io
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.console import labelled
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import config_of, runner_for, score_splits
from dlkit.registry import get_app

RESULTS = Path(__file__).parent / "results" / "detect_renders.json"
KEYS = ("map50", "map50_95", "class_agnostic_map50", "class_agnostic_map50_95")
VERSIONS = ("stored", "pillow", "pillow_jpeg", "opencv_jpeg", "opencv")
NOTE = (
    "Keras, the 300 validation + 300 test scenes of the model's image data, pooled; each "
    "version of them composited again from the same draws (tools/detect_renders.py); "
    "95% intervals by bootstrap over images"
)


def jpeg(image):
    """`image` through the stored scenes' JPEG encoding (`write_yolo_scene`)."""
    from PIL import Image

    from dlkit.data.scenes import JPEG_QUALITY

    buffer = bytes_io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(buffer).convert("RGB"))


def drawn_again(config, meta, name, stored, render, encode):
    """The decoded held-out split `stored` with its images (and, drawn by OpenCV, its boxes)
    replaced by the same scenes composited again by `render`."""
    from dlkit.data.labels import label_mapping
    from dlkit.data.scenes import TrainingScenes, scenes_drawn_again
    from dlkit.edge.image import resize

    stems = [Path(path).stem for path in stored.paths]
    number = max(int(stem.rpartition("_")[2]) for stem in stems) + 1
    scenes = dict(scenes_drawn_again(name, number, version=config.image_data, render=render))
    labels = TrainingScenes().labels  # the scenes' class ids
    if sorted(meta["labels"]) != labels:
        raise SystemExit(f"the model's classes {meta['labels']} are not the offline scenes' {labels}")
    mapping = label_mapping(labels, meta["labels"])
    size = config.image_size
    images, targets = [], []
    for stem, (boxes, classes) in zip(stems, stored.targets):
        scene = scenes[stem]
        image = jpeg(scene.image) if encode else scene.image
        images.append(resize(image, (size, size)))
        own = (
            scene.boxes / scene.image.shape[0],
            mapping[scene.classes] if len(scene.classes) else scene.classes,
        )
        if render == "pillow" and not (
            np.allclose(own[0], boxes, atol=2e-6) and np.array_equal(own[1], classes)
        ):
            raise SystemExit(f"{name} {stem}: the scene composited again has other boxes than its file")
        targets.append(own)
    packed = np.empty(len(targets), dtype=object)
    packed[:] = targets
    return dataclasses.replace(stored, inputs=np.stack(images), targets=packed)


def score(app, folder):
    """{version: the KEYS (and intervals) of the pooled report} of the model in `folder`."""
    meta = io.read_json(folder / "model.json")
    config = config_of(app, meta)
    source = app.open_source(dataclasses.replace(config, fresh_scenes=0.0), None)
    stored = {split: app.load_split(config, source, split, meta=meta) for split in ("val", "test")}
    run = runner_for(app, ModelBundle.load(folder / "model.keras", app=app.name), config)
    found = {}
    for version in VERSIONS:
        if version == "stored":
            splits = stored
        else:
            render, _, encoded = version.partition("_")
            splits = {
                name: drawn_again(config, meta, name, split, render, bool(encoded))
                for name, split in stored.items()
            }
        pooled = score_splits(app, config, meta, run, splits)["pooled"]
        found[version] = {
            **{key: pooled[key] for key in KEYS},
            **{f"{key}_ci95": pooled[f"{key}_ci95"] for key in KEYS},
        }
        print(version, {key: round(pooled[key], 3) for key in KEYS}, flush=True)
    return found


def model_folder(path):
    """`path`, a run directory or a model folder, once it holds `model.keras` and `model.json`."""
    path = Path(path)
    if not ((path / "model.keras").exists() and (path / "model.json").exists()):
        raise SystemExit(f"{path}: no model.keras and model.json in it")
    return path


def main(pairs):
    """`pairs`: (label, run directory or model folder) each."""
    app = get_app("detect")
    results = io.read_json(RESULTS) if RESULTS.exists() else {"note": NOTE, "models": {}}
    for label, path in pairs:
        print(f"{label}: {path}", flush=True)
        results["models"][label] = {"path": path, **score(app, model_folder(path))}
        io.write_json(RESULTS, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="+", type=labelled, metavar="LABEL=RUN_DIR_OR_MODEL_FOLDER")
    main(parser.parse_args().models)
