"""Predict on files with a `.tflite` (edge path, no TensorFlow) or a `.keras` model."""

from pathlib import Path

import numpy as np

from dlkit.console import log
from dlkit.edge.bundle import ModelBundle
from dlkit.edge.image import IMAGE_SUFFIXES
from dlkit.errors import DlkitError, InvalidInputError
from dlkit.paths import default_model


def expand_inputs(inputs, suffixes=IMAGE_SUFFIXES):
    """Files given directly, plus the files with a known suffix inside given folders."""
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise DlkitError(f"{path}: no input files in this folder")
            files += found
        else:
            files.append(path)
    if not files:
        raise DlkitError("no input given")
    return files


def keras_runner(model):
    """fn(batch) -> list of output arrays, for a Keras model (inputs cast to its dtype)."""
    dtype = model.inputs[0].dtype

    def run(x):
        out = model.predict_on_batch(np.asarray(x, dtype=dtype))
        return list(out) if isinstance(out, (list, tuple)) else [out]

    return run


def tflite_runner(path):
    """The same for a `.tflite` file, through the edge runtime (no TensorFlow)."""
    from dlkit.edge import EdgeModel

    return EdgeModel(path).predict


def app_keras_runner(app, model, meta, config=None):
    """The Keras runner of an app: its own `model.make_runner` (e.g. beam search) if any."""
    make = getattr(app.model, "make_runner", None)
    if make is None:
        return keras_runner(model)
    if config is None:
        from dlkit.config import from_dict

        config = from_dict(app.config.Config, meta.get("config", {}))
    return make(model, config, meta)


def app_tflite_runner(app, path, meta):
    """The TFLite runner of an app: its own `edge.tflite_runner` (e.g. multi-graph) if any."""
    make = getattr(app.edge, "tflite_runner", None)
    return make(path, meta) if make else tflite_runner(path)


def model_runner(bundle, app=None):
    """The runner for a bundle's model file, Keras or TFLite."""
    if bundle.is_tflite:
        return app_tflite_runner(app, bundle.path, bundle.meta) if app else tflite_runner(bundle.path)
    from dlkit.runner import load_keras

    model = load_keras(bundle.path)
    return app_keras_runner(app, model, bundle.meta) if app else keras_runner(model)


def load_predictor(app, model_path=None):
    """Returns (bundle, fn) where fn maps a batch of inputs to the model's outputs."""
    bundle = ModelBundle.load(model_path or default_model(app.name), app=app.name, prefer="tflite")
    return bundle, model_runner(bundle, app)


def predict(app, inputs, model_path=None, batch_size=32, progress=None, **options):
    """Yields (path, result or None, error message or None) for every input file.

    Bad files are reported and skipped: the rest of a batch is still processed.
    """
    bundle, run = load_predictor(app, model_path)
    edge = app.edge
    files = expand_inputs(inputs)
    if progress:
        progress(0, len(files), "predicting")  # starts the clock
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        ready, arrays = [], []
        for path in chunk:
            try:
                arrays.append(edge.preprocess(edge.read_input(path, bundle.meta), bundle.meta))
                ready.append(path)
            except InvalidInputError as error:
                yield path, None, str(error)
        if ready:
            outputs = run(np.stack(arrays))
            for path, result in zip(ready, edge.postprocess(outputs, bundle.meta, **options)):
                yield path, result, None
        if progress:
            progress(min(start + batch_size, len(files)), len(files), "predicting")
    if bundle.is_tflite is False:
        log(f"(predicted with Keras model {bundle.path})")
