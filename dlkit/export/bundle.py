"""The export bundle: `.tflite` + `model.json` + golden vectors, behind a parity gate."""

from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.config import from_dict
from dlkit.console import ProgressPrinter, log
from dlkit.edge.bundle import ModelBundle
from dlkit.errors import DlkitError
from dlkit.export import tflite_name


def gate_metric(app, meta):
    """(metric name, points per unit) the parity gate compares: an app's `gate_metric(meta)`,
    else its `GATE_METRIC` as a fraction (100 points per unit)."""
    if hasattr(app.model, "gate_metric"):
        return app.model.gate_metric(meta)
    return app.model.GATE_METRIC, 100.0


REPRESENTATIVE_SAMPLES = 600


def representative_inputs(inputs):
    """The int8 calibration set: up to REPRESENTATIVE_SAMPLES training inputs, picked with a
    fixed seed and kept in order, so the same model always converts to the same bytes."""
    pick = np.random.default_rng(0).choice(
        len(inputs), min(REPRESENTATIVE_SAMPLES, len(inputs)), replace=False
    )
    return inputs[np.sort(pick)]


def export(app, model_path, quantize="float32", data=None, max_drop=None, out_dir=None, batch_size=None):
    """Exports a trained `.keras` model to TFLite and checks it against Keras.

    The TFLite model is scored on the validation split with the app's own metric; when
    it scores more than `max_drop` points below Keras the export fails and nothing is
    written. Golden input/output vectors are saved for on-device tests.

    Returns:
        dict: the export record stored in model.json under `exports[quantize]`.
    """
    from dlkit.export.tflite import convert
    from dlkit.predict import app_keras_runner, app_tflite_runner
    from dlkit.runner import align_targets, load_keras, predict_batches, report_skipped

    bundle = ModelBundle.load(model_path, app=app.name, prefer="keras")
    if bundle.is_tflite:
        raise DlkitError(f"{bundle.path}: export needs the .keras model, not a .tflite")
    out_dir = Path(out_dir) if out_dir else bundle.directory
    meta = dict(bundle.meta)
    config = from_dict(app.config.Config, meta.get("config", {}))
    max_drop = config.max_drop if max_drop is None else max_drop
    model = load_keras(bundle.path)

    progress = ProgressPrinter()
    source = app.data.open_source(config, data if data is not None else meta.get("data"), progress=progress)
    val = app.data.load_split(config, source, "val", meta=meta, progress=progress)
    report_skipped(val.skipped)
    representative = None
    if quantize == "int8":
        train = app.data.load_split(config, source, "train", meta=meta, progress=progress)
        representative = representative_inputs(train.inputs)

    log(f"converting {bundle.path} to TFLite ({quantize})")
    if hasattr(app.model, "convert"):  # apps whose device graphs differ from the training model
        flatbuffer = app.model.convert(model, config, meta, quantize, representative)
    else:
        flatbuffer = convert(
            model,
            quantize,
            representative,
            batch_size=batch_size,
            int8_input=meta.get("int8_input") if quantize == "int8" else None,
        )
    name = tflite_name(quantize)
    targets = align_targets(meta, val)
    keras_outputs = predict_batches(app_keras_runner(app, model, meta, config), val.inputs)
    keras_score = app.model.evaluate(config, meta, keras_outputs, targets)
    with io.atomic_path(out_dir / name) as tmp:
        tmp.write_bytes(flatbuffer)
        tflite_outputs = predict_batches(app_tflite_runner(app, tmp, meta), val.inputs)
        tflite_score = app.model.evaluate(config, meta, tflite_outputs, targets)
        metric, points = gate_metric(app, meta)
        drop = points * (keras_score[metric] - tflite_score[metric])
        log(
            f"{metric} on val: keras {keras_score[metric]:.4f}, tflite {quantize} {tflite_score[metric]:.4f} "
            f"(drop {drop:+.2f} points, budget {max_drop})"
        )
        if drop > max_drop:
            raise DlkitError(
                f"TFLite {quantize} {metric} dropped {drop:.2f} points (budget {max_drop}); "
                "nothing written. Raise --max-drop to accept it"
            )
    golden = out_dir / name.replace(".tflite", ".golden.npz")
    with io.atomic_path(golden) as tmp:
        with open(tmp, "wb") as f:
            arrays = {"inputs": val.inputs[:4]}
            for k, (keras_out, tflite_out) in enumerate(zip(keras_outputs, tflite_outputs)):
                arrays[f"keras_output_{k}"] = keras_out[:4]
                arrays[f"tflite_output_{k}"] = tflite_out[:4]
            np.savez_compressed(f, **arrays)
    record = {
        "file": name,
        "bytes": len(flatbuffer),
        "golden": golden.name,
        "val": {
            "keras": keras_score[metric],
            "tflite": tflite_score[metric],
            "metric": metric,
            "drop_points": drop,
            "max_drop": max_drop,
        },
        "max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(keras_outputs, tflite_outputs)),
    }
    meta.setdefault("exports", {})[quantize] = record
    io.write_json(out_dir / "model.json", meta)
    log(f"wrote {out_dir / name} ({len(flatbuffer) / 1e6:.2f} MB)")
    return record
