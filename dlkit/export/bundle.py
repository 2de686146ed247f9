"""The export bundle: `.tflite` + `model.json` + golden vectors, behind a parity gate."""

import hashlib
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.console import ProgressPrinter, log, report_skipped
from dlkit.edge.bundle import ModelBundle, copy_assets, stored_meta
from dlkit.edge.runtime import FROZEN_RUNTIME, min_runtime_version, version_tuple
from dlkit.engine import config_of, count, load_keras, representative_inputs, score, take
from dlkit.errors import DlkitError
from dlkit.export import tflite_name

GOLDEN_ROWS = 4


def export(app, model_path, quantize="float32", data=None, max_drop=None, out_dir=None, options=None):
    """Exports a trained `.keras` model to TFLite and checks it against Keras.

    The TFLite model is scored on the validation split with the app's own metric; when
    it scores more than `max_drop` points below Keras the export fails and nothing is
    written. Golden input/output vectors are saved for on-device tests.

    `options` are the app's export options (`App.export_options`, e.g. argmax=True); they
    make a variant file, `model.<quantize>.<variant>.tflite`, recorded as
    `exports["<quantize>.<variant>"]`.

    Returns:
        dict: the export record stored in model.json under `exports[quantize]`.
    """
    if quantize not in app.quantizations:
        raise DlkitError(f"{app.name} exports {', '.join(app.quantizations)}; {quantize} is not supported")
    bundle = ModelBundle.load(model_path, app=app, prefer="keras")
    if bundle.is_tflite:
        raise DlkitError(f"{bundle.path}: export needs the .keras model, not a .tflite")
    out_dir = Path(out_dir) if out_dir else bundle.directory
    meta = dict(bundle.meta)
    config = config_of(app, meta)
    max_drop = config.max_drop if max_drop is None else max_drop
    model = load_keras(bundle.path)

    progress = ProgressPrinter()
    source = app.open_source(config, data if data is not None else meta.get("data"), progress=progress)
    val = app.load_split(config, source, "val", meta=meta, progress=progress)
    report_skipped(val.skipped)
    representative = None
    if quantize == "int8" or (quantize == "dynamic" and app.gptq):
        train = app.load_split(config, source, "train", meta=meta, progress=progress)
        representative = representative_inputs(train.inputs)

    stored = meta
    meta, variant = app.export_variant(dict(meta), options or {})
    log(f"converting {bundle.path} to TFLite ({quantize}{', ' + variant if variant else ''})")
    flatbuffer = app.convert(model, config, meta, quantize, representative)
    name = tflite_name(quantize, variant)
    gate = app.gate_metric(meta)
    keras_score, keras_outputs = score(
        app, config, meta, app.keras_runner(model, config, meta), val, keep=GOLDEN_ROWS
    )
    with io.atomic_path(out_dir / name) as tmp:
        tmp.write_bytes(flatbuffer)
        tflite_score, tflite_outputs = score(
            app, config, meta, app.tflite_runner(tmp, meta), val, keep=GOLDEN_ROWS
        )
        drop = gate.drop(keras_score[gate.name], tflite_score[gate.name])
        examples = count(val.inputs)  # the drop's resolution: on 195 images one is 0.51 points
        log(
            f"{gate.name} on val ({examples} examples): keras {keras_score[gate.name]:.4f}, tflite "
            f"{quantize} {tflite_score[gate.name]:.4f} (drop {drop:+.2f} points, budget {max_drop})"
        )
        if drop > max_drop:
            raise DlkitError(
                f"TFLite {quantize} {gate.name} dropped {drop:.2f} points on {examples} validation "
                f"examples (budget {max_drop}); nothing written. Raise --max-drop to accept it"
            )
    golden = out_dir / name.replace(".tflite", ".golden.npz")
    arrays = golden_inputs(take(val.inputs, slice(0, GOLDEN_ROWS)))
    for k, (keras_out, tflite_out) in enumerate(zip(keras_outputs, tflite_outputs)):
        arrays[f"keras_output_{k}"] = keras_out
        arrays[f"tflite_output_{k}"] = tflite_out
    io.write_npz(golden, compressed=True, **arrays)
    needs = min_runtime_version(flatbuffer)
    record = {
        "file": name,
        "bytes": len(flatbuffer),
        "sha256": hashlib.sha256(flatbuffer).hexdigest(),  # ModelBundle.load checks it
        "min_runtime": needs,  # the oldest TFLite runtime that runs it, as the converter says
        "golden": golden.name,
        "val": {
            "keras": keras_score[gate.name],
            "tflite": tflite_score[gate.name],
            "metric": gate.name,
            "higher_is_better": gate.higher_is_better,
            "drop_points": drop,
            "max_drop": max_drop,
            "data_fingerprint": keras_score["data_fingerprint"],
        },
        # Over the golden rows (the whole split's outputs are never held in memory).
        "max_abs_diff": max(
            float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
            for a, b in zip(keras_outputs, tflite_outputs)
        ),
    }
    if out_dir.resolve() != bundle.directory.resolve():
        copy_assets(bundle, out_dir, stored)
    stored.setdefault("exports", {})[f"{quantize}.{variant}" if variant else quantize] = record
    io.write_json(out_dir / "model.json", stored_meta(stored))
    log(f"wrote {out_dir / name} ({len(flatbuffer) / 1e6:.2f} MB, TFLite runtime {needs or '?'} or newer)")
    if needs and version_tuple(needs) > version_tuple(FROZEN_RUNTIME):
        log(
            f"note: tflite-runtime {FROZEN_RUNTIME} (the last release of that package) cannot run it; use ai-edge-litert"
        )
    return record


def golden_inputs(inputs):
    """`inputs` (one array) or `input_<name>` arrays (several named inputs) for the npz."""
    if isinstance(inputs, dict):
        return {f"input_{key}": value for key, value in inputs.items()}
    return {"inputs": inputs}


def inputs_of_golden(arrays):
    """The inputs `golden_inputs` stored, from the loaded npz `arrays`."""
    if "inputs" in arrays:
        return arrays["inputs"]
    return {key.removeprefix("input_"): arrays[key] for key in arrays if key.startswith("input_")}


def install_bundle(work, target, files):
    """Copies a measured bundle into `target` (a shipped-model folder): only `files`, its
    side files and metrics.json, with model.json listing only the exports among them."""
    import shutil

    work, target = Path(work), Path(target)
    meta = io.read_json(work / "model.json")
    meta["exports"] = {k: v for k, v in meta.get("exports", {}).items() if v["file"] in files}
    io.write_json(work / "model.json", meta)
    target.mkdir(parents=True, exist_ok=True)
    side_files = [record["file"] for record in meta.get("assets", {}).values()]
    for name in (*files, *side_files, "metrics.json"):
        if (work / name).exists():
            shutil.copy2(work / name, target / name)
    return target


def ship_run(app, run_dir, quantizations, measure, files, results_path, record=None, measure_only=False):
    """The shipping steps of tools/ship_<app>.py: copies a finished run's model and side
    files into a work folder, exports `quantizations`, measures (`measure(work)` -> a
    metrics dict, which gets the TFLite sizes), writes metrics.json and `results_path`,
    and installs `files` into saved_models/<app> (unless `measure_only`).

    Returns:
        The shipped folder, or None with `measure_only`.
    """
    import shutil

    from dlkit.paths import shipped_model_dir

    run_dir = Path(run_dir)
    with io.temp_dir("ship") as work:
        side_files = [
            entry["file"] for entry in io.read_json(run_dir / "model.json").get("assets", {}).values()
        ]
        for name in ("model.keras", "model.json", *side_files):
            shutil.copy2(run_dir / name, work / name)
        for quantize in quantizations:
            export(app, work, quantize)
        metrics = measure(work)
        metrics["sizes"] = {path.name: path.stat().st_size for path in sorted(work.glob("model*.tflite"))}
        io.write_json(work / "metrics.json", metrics)
        io.write_json(results_path, {"run": str(run_dir), **(record or {}), "metrics": metrics})
        if measure_only:
            log(f"measured {run_dir}: {results_path}")
            return None
        return install_bundle(work, shipped_model_dir(app.name), files)
