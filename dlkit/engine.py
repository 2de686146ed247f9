"""The evaluation engine: model loading, Keras and TFLite runners, batch-by-batch scoring.

The runner (train, evaluate), the export gate and predict all score and run models
through this module; it imports none of them, so there is no import circle. Inputs may
be one array or several named arrays (a dict), batched the same way.
"""

import hashlib

import numpy as np

from dlkit.errors import DlkitError

SCORE_BATCH = 64


def count(inputs):
    """Number of examples in an array or a dict of arrays."""
    if isinstance(inputs, dict):
        return len(next(iter(inputs.values())))
    return len(inputs)


def take(inputs, index):
    """Rows `index` (a slice or an index array) of an array or of each array of a dict."""
    if isinstance(inputs, dict):
        return {key: value[index] for key, value in inputs.items()}
    return inputs[index]


def stack(rows):
    """One batch from per-example inputs (arrays, or dicts of arrays)."""
    if rows and isinstance(rows[0], dict):
        return {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    return np.stack(rows)


def batches(inputs, targets, batch_size=SCORE_BATCH):
    """Yields (inputs, targets) batches of a decoded split."""
    total = count(inputs)
    for start in range(0, total, batch_size):
        part = slice(start, start + batch_size)
        yield take(inputs, part), targets[part]


def fingerprint(split):
    """A short digest of a decoded split's inputs and targets, as `score` records it.

    The default data are made here from what is installed (speech synthesized by the
    espeak-ng wheel, scenes composited from Debian packages' photos, text read from
    them), so a package or library version can change a held-out split without any file
    of the project changing. Two reports with the same digest scored the same examples;
    `evaluate` compares it with the one a model's metrics.json recorded.
    """
    digest = hashlib.sha256()
    _digest(digest, split.inputs)
    _digest(digest, split.targets)
    return digest.hexdigest()[:16]


def pooled_fingerprint(fingerprints):
    """The digest of several splits scored as one, from theirs (in order)."""
    return hashlib.sha256("+".join(fingerprints).encode()).hexdigest()[:16]


def _digest(digest, value):
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and value.dtype != object:
        digest.update(f"{value.dtype.str}{value.shape};".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        digest.update(f"{{{len(value)};".encode())
        for key in sorted(value, key=str):
            digest.update(f"{key}:".encode())
            _digest(digest, value[key])
    elif isinstance(value, (list, tuple, np.ndarray)):  # object arrays: ragged targets
        digest.update(f"[{len(value)};".encode())
        for item in value:
            _digest(digest, item)
    else:  # strings (reference texts), numbers, None
        digest.update(f"{type(value).__name__}:{value!s};".encode())


def load_keras(path):
    """A `.keras` model (safe mode, no compile); a bad file is a one-line DlkitError."""
    from dlkit.quiet import import_tensorflow

    try:
        import_tensorflow()  # quietly, when a Keras model is the first TensorFlow use (predict)
    except ImportError:
        raise DlkitError(
            f"{path}: a .keras model needs TensorFlow: pip install 'dlkit[train]', "
            "or give the exported .tflite (dlkit <app> export)"
        ) from None
    import zipfile

    import keras

    if not zipfile.is_zipfile(path):
        raise DlkitError(
            f"{path}: not a .keras model (a .keras file is a zip archive; this one is corrupt or another kind)"
        )
    # Importing these registers dlkit's custom layers and losses for safe_mode loading.
    import dlkit.layers  # noqa: F401
    import dlkit.losses  # noqa: F401

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise DlkitError(f"{path}: cannot load the Keras model ({first})") from None


def keras_runner(model):
    """fn(batch) -> list of output arrays for a Keras model (inputs cast to its dtypes).

    The model runs in a `tf.function` traced once per input structure for any batch
    size. Keras' `predict_on_batch` traces its first batch's exact size, then again for a
    new one (the last, smaller batch of a split): twice the trace, and a graph with a
    static batch may be built otherwise (detect's NMS is unrolled per image for export).
    """
    import keras
    import tensorflow as tf

    dtypes = {tensor.name.split(":")[0]: tensor.dtype for tensor in model.inputs}
    first = model.inputs[0].dtype
    traced = {}

    def run(x):
        if isinstance(x, dict):
            x = {key: np.asarray(value, dtype=dtypes.get(key, first)) for key, value in x.items()}
        else:
            x = np.asarray(x, dtype=first)
        key = str(keras.tree.map_structure(lambda a: (a.shape[1:], a.dtype.str), x))
        if key not in traced:
            specs = keras.tree.map_structure(lambda a: tf.TensorSpec((None, *a.shape[1:]), a.dtype), x)
            traced[key] = tf.function(lambda inputs: model(inputs, training=False)).get_concrete_function(
                specs
            )
        out = traced[key](x)
        return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]

    return run


def tflite_runner(path):
    """fn(batch) -> list of output arrays for a `.tflite` file (edge runtime, no TF)."""
    from dlkit.edge import EdgeModel

    return EdgeModel(path).predict


def runner_for(app, bundle, config=None):
    """The app's runner for a bundle's model file, Keras or TFLite, wrapped as its meta's
    predict options ask (`App.wrap_runner`)."""
    if bundle.is_tflite:
        return app.wrap_runner(app.tflite_runner(bundle.path, bundle.meta), bundle.meta)
    config = config if config is not None else config_of(app, bundle.meta)
    return app.wrap_runner(app.keras_runner(load_keras(bundle.path), config, bundle.meta), bundle.meta)


def config_of(app, meta):
    """The app's Config as a trained model recorded it."""
    from dlkit.config import from_dict

    return from_dict(app.config_class, meta.get("config", {}))


class Evaluator:
    """Scores a split batch by batch: `update` keeps only what the final figures need.

    Subclasses implement `update(outputs, targets)` and `result()`; the engine never holds
    a whole split's outputs, so dense masks and long audio score in bounded memory. The
    engine calls `begin(split)` before a split's batches (a pooled evaluator sees several),
    for what the split knows beyond its targets (which examples show one object).
    """

    def begin(self, split):
        """Called before `split`'s batches are scored; by default nothing."""

    def update(self, outputs, targets):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError


def begin(evaluator, split):
    """`evaluator.begin(split)` for evaluators that have it (an Evaluator, or any class
    with `update` and `result`)."""
    if hasattr(evaluator, "begin"):
        evaluator.begin(split)


def score(app, config, meta, run, split, batch_size=SCORE_BATCH, keep=None):
    """Runs `run` over a decoded split and returns the app's evaluation report.

    Args:
        keep: int or None. Also return the first `keep` rows of every output (golden
            vectors), as (report, outputs).
    """
    evaluator = app.evaluator(config, meta)
    begin(evaluator, split)
    kept = None
    for inputs, targets in batches(split.inputs, split.targets, batch_size):
        outputs = run(inputs)
        evaluator.update(outputs, targets)
        if keep and kept is None:
            kept = [np.asarray(o)[:keep] for o in outputs]
    report = {**annotated(app, evaluator.result(), split), "data_fingerprint": fingerprint(split)}
    return (report, kept) if keep else report


def annotated(app, report, split):
    """The evaluator's report completed by the app from the split (`App.annotate`), without
    the per-row predictions it hands `annotate` (`rows`), which no report keeps."""
    report = app.annotate(report, split) if split is not None else report
    report.pop("rows", None)
    return report


def worst_images(report, split):
    """`report` with `worst_images`: the evaluator's worst rows (`rows["worst"]`, each with
    the image's `index` in the split) named by the split's files instead, where the split
    has them (detect's and segment's `App.annotate`)."""
    paths = getattr(split, "paths", None)
    if "worst" in (report.get("rows") or {}) and paths is not None:
        report["worst_images"] = [
            {"path": str(paths[row["index"]]), **{k: v for k, v in row.items() if k != "index"}}
            for row in report["rows"]["worst"]
        ]
    return report


def held_out_splits(app, config, meta, data=None, names=("val", "test")):
    """{name: decoded split} of a model's held-out splits, from its own data unless
    `data` is given: what `score_splits` scores."""
    source = app.open_source(config, data if data is not None else meta.get("data"))
    return {name: app.load_split(config, source, name, meta=meta) for name in names}


def score_splits(app, config, meta, run, splits):
    """{split name: report, ..., "pooled": report} for decoded `splits` ({name: split}):
    each split apart and all of them as one (more held-out data, narrower intervals),
    from one pass of `run` over each."""
    pooled = app.evaluator(config, meta)
    reports = {}
    for name, split in splits.items():
        evaluator = app.evaluator(config, meta)
        begin(evaluator, split)
        begin(pooled, split)
        for inputs, targets in batches(split.inputs, split.targets):
            outputs = run(inputs)
            evaluator.update(outputs, targets)
            pooled.update(outputs, targets)
        reports[name] = {**annotated(app, evaluator.result(), split), "data_fingerprint": fingerprint(split)}
    parts = [reports[name]["data_fingerprint"] for name in splits]
    reports["pooled"] = {
        **annotated(app, pooled.result(), None),
        "data_fingerprint": pooled_fingerprint(parts),
    }
    return reports


REPRESENTATIVE_SAMPLES = 600


def representative_inputs(inputs):
    """The int8 calibration set: up to REPRESENTATIVE_SAMPLES training inputs, picked with a
    fixed seed and kept in order, so the same model always converts to the same bytes."""
    total = count(inputs)
    pick = np.random.default_rng(0).choice(total, min(REPRESENTATIVE_SAMPLES, total), replace=False)
    return take(inputs, np.sort(pick))
