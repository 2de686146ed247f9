"""App-agnostic train and evaluate over the app contract (config, data, model, edge).

The CLI calls these; they call only the app's modules, so every app trains, resumes,
checkpoints, logs, plots and evaluates the same way.
"""

import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from dlkit import __version__, io
from dlkit.config import from_dict, to_dict
from dlkit.console import ProgressPrinter, log
from dlkit.edge.bundle import ModelBundle, latest_run
from dlkit.errors import DlkitError
from dlkit.predict import app_keras_runner, model_runner

CHECKPOINT_DIR = "checkpoint"


def versions():
    import keras
    import tensorflow as tf

    return {
        "dlkit": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def next_run_dir(app_name, root="runs"):
    """`runs/<app>/train`, then `train2`, `train3`... (as Ultralytics numbers its runs)."""
    base = Path(root) / app_name
    for index in range(1, 10_000):
        candidate = base / ("train" if index == 1 else f"train{index}")
        if not candidate.exists():
            return candidate
    raise DlkitError(f"too many runs in {base}")


def train(app, config, data=None, run_dir=None, resume=False, init=None):
    """Trains `app` and writes a complete run directory; returns its path.

    Args:
        app: dlkit.apps.App.
        config: the app's Config.
        data: str or None. The `--data` source.
        run_dir: str or None. Default: a new `runs/<app>/trainN`.
        resume: bool. Continue the run in `run_dir` (or the latest) after an interruption.
        init: str or None. A trained model directory or file to start from.
    """
    import keras

    from dlkit.callbacks import BestCheckpoint, JSONLLogger, Progress, ResumeCheckpoint
    from dlkit.callbacks.resume import read_state

    if resume:
        run_dir = Path(run_dir) if run_dir else latest_run(app.name, marker="config.json")
        if not (run_dir / "config.json").exists():
            raise DlkitError(f"{run_dir}: nothing to resume (no config.json)")
        saved = io.read_json(run_dir / "config.json")
        config = from_dict(type(config), saved["config"])
        data, init = saved.get("data"), saved.get("init")
        log(f"resuming {run_dir}")
    else:
        run_dir = Path(run_dir) if run_dir else next_run_dir(app.name)
        if (run_dir / "config.json").exists():
            raise DlkitError(
                f"{run_dir} already holds a run; use --resume to continue it or another --run-dir"
            )
    init_bundle = None
    if init:
        init_bundle = ModelBundle.load(init, app=app.name, prefer="keras")
        if init_bundle.is_tflite:
            raise DlkitError(f"{init_bundle.path}: --init needs a .keras model, not a TFLite file")
        if not resume:  # A resumed run's saved config already holds the inherited fields.
            config = inherit_architecture(app, config, init_bundle.meta.get("config", {}))
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)

    progress = ProgressPrinter()
    source = app.data.open_source(config, data, progress=progress)
    labels = getattr(source, "labels", ())
    log(f"data: {source.description}" + (f" ({len(labels)} classes: {', '.join(labels)})" if labels else ""))
    meta = app.model.make_meta(config, source)
    if init_bundle and hasattr(app.model, "inherit_meta"):
        meta = app.model.inherit_meta(meta, init_bundle.meta)
    train_split = app.data.load_split(config, source, "train", meta=meta, progress=progress)
    val_split = app.data.load_split(config, source, "val", meta=meta, progress=progress)
    report_skipped(train_split.skipped + val_split.skipped)
    meta["config"] = to_dict(config)
    meta["data"] = data
    meta["versions"] = versions()

    if not resume:
        io.write_json(
            run_dir / "config.json", {"app": app.name, "config": to_dict(config), "data": data, "init": init}
        )
        io.write_json(
            run_dir / "manifest.json",
            {
                "app": app.name,
                "command": sys.argv,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seed": config.seed,
                "data": {
                    "source": source.description,
                    "fingerprint": source.fingerprint,
                    "train": len(train_split.targets),
                    "val": len(val_split.targets),
                },
                "versions": meta["versions"],
            },
        )

    state = read_state(checkpoint_dir) if resume else None
    if state and state.get("complete"):
        log(f"{run_dir} is already complete")
        return run_dir
    if state:
        import dlkit.layers  # noqa: F401  (registers custom layers and losses for loading)
        import dlkit.losses  # noqa: F401

        model = keras.saving.load_model(checkpoint_dir / "last.keras")
        start_epoch = state["epochs_done"]
        log(f"continuing after epoch {start_epoch}")
    else:
        start_epoch = 0
        if init_bundle:
            model = app.model.adapt_model(
                load_keras(init_bundle.path), init_bundle.meta, config, meta, log=log
            )
        else:
            model = app.model.build_model(config, meta)

    train_data = app.data.make_dataset(config, train_split, training=True, meta=meta)
    val_data = app.data.make_dataset(config, val_split, meta=meta)
    monitor, mode = app.model.MONITOR
    best = BestCheckpoint(
        checkpoint_dir / "best.npz",
        monitor=monitor,
        mode=mode,
        best=state.get("best") if state else None,
    )
    weights_by_class = (
        app.model.class_weights(config, train_split) if hasattr(app.model, "class_weights") else None
    )
    stages = app.model.training_stages(config, meta)
    total_epochs = sum(stage.epochs for stage in stages)
    history_path = run_dir / "history.jsonl"
    offset = 0
    for index, stage in enumerate(stages):
        end = offset + stage.epochs
        if end <= start_epoch or stage.epochs == 0:
            offset = end
            continue
        resuming_inside = state is not None and start_epoch > offset
        if not resuming_inside:
            stage.prepare(model)
        callbacks = [
            Progress(total_epochs, stage=stage.name),
            JSONLLogger(history_path, stage=stage.name),
            best,
            ResumeCheckpoint(checkpoint_dir, index, extra=lambda: {"best": best.best}),
            *stage.callbacks,
        ]
        if getattr(config, "patience", 0):
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience))
        log(f"stage {stage.name}: epochs {max(start_epoch, offset) + 1}-{end} of {total_epochs}")
        model.fit(
            train_data,
            validation_data=val_data,
            initial_epoch=max(start_epoch, offset),
            epochs=end,
            verbose=0,
            shuffle=False,
            class_weight=weights_by_class,
            callbacks=callbacks,
        )
        offset = end

    best.restore(model)
    save_model(model, run_dir / "model.keras")
    io.write_json(run_dir / "model.json", meta)

    from dlkit.plots import training_curves

    records = io.read_jsonl(history_path) if history_path.exists() else []
    training_curves(records, run_dir / "plots" / "training_curves.png", title=f"{app.name} training")
    run = app_keras_runner(app, model, meta, config)
    metrics = {"val": score(app, config, meta, run, val_split)}
    try:
        test_split = app.data.load_split(config, source, "test", meta=meta, progress=progress)
        metrics["test"] = score(app, config, meta, run, test_split)
        app.model.plots(metrics["test"], meta, run_dir / "plots", title=f"{app.name} test split")
    except DlkitError as error:
        log(f"no test evaluation: {error}")
    io.write_json(run_dir / "metrics.json", {"keras": metrics})
    io.write_json(
        checkpoint_dir / "state.json", {"epochs_done": total_epochs, "complete": True, "best": best.best}
    )
    from dlkit.export.bundle import gate_metric

    metric, _ = gate_metric(app, meta)
    shown = {split: round(m.get(metric, float("nan")), 4) for split, m in metrics.items()}
    log(f"done: {run_dir} ({metric}: {shown})")
    return run_dir


def inherit_architecture(app, config, init_config):
    """The network-defining fields of a model we start from win over the defaults."""
    changes = {
        key: init_config[key]
        for key in getattr(app.model, "ARCHITECTURE", ())
        if key in init_config and init_config[key] != getattr(config, key)
    }
    if changes:
        log("from the --init model: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
    return dataclasses.replace(config, **changes)


def report_skipped(messages, limit=10):
    for message in messages[:limit]:
        log(f"skipped: {message}")
    if len(messages) > limit:
        log(f"skipped {len(messages) - limit} more unreadable files")


def load_keras(path):
    import keras

    # Importing the registry module registers dlkit's custom layers for safe_mode loading.
    import dlkit.layers  # noqa: F401

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise DlkitError(f"{path}: cannot load the Keras model ({first})") from None


def save_model(model, path):
    """Saves an uncompiled copy: architecture and weights, no optimizer state.

    Rebuilt from the architecture config: `keras.models.clone_model` compiles its clone
    (Keras 3.15), which would write an optimizer into the file.
    """
    clean = type(model).from_config(model.get_config())
    clean.set_weights(model.get_weights())
    with io.atomic_path(path) as tmp:
        clean.save(tmp)


def predict_batches(fn, inputs, batch_size=64):
    """Runs `fn` (batch -> list of outputs) over `inputs`; returns each output concatenated."""
    parts = [fn(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
    return [np.concatenate([part[k] for part in parts], axis=0) for k in range(len(parts[0]))]


def score(app, config, meta, predict_fn, loaded):
    """Runs `predict_fn` on a loaded split and scores it with the app's own metric."""
    outputs = predict_batches(predict_fn, loaded.inputs)
    return app.model.evaluate(config, meta, outputs, align_targets(meta, loaded))


def align_targets(meta, loaded):
    """Maps the data's class ids to the model's, by name; unknown data classes are an error."""
    data_labels = loaded.source_labels
    if data_labels is None:  # not a classification of labelled data
        return loaded.targets
    if list(data_labels) == list(meta["labels"]):
        return loaded.targets
    from dlkit.data.labels import label_mapping

    return label_mapping(data_labels, meta["labels"])[loaded.targets]


def evaluate(app, model_path=None, data=None, split="test", out_dir=None):
    """Scores a `.keras` or `.tflite` model on a split; returns the report dict."""
    from dlkit.paths import default_model

    bundle = ModelBundle.load(model_path or default_model(app.name), app=app.name, prefer="keras")
    config = from_dict(app.config.Config, bundle.meta.get("config", {}))
    data = data if data is not None else bundle.meta.get("data")
    progress = ProgressPrinter()
    source = app.data.open_source(config, data, progress=progress)
    loaded = app.data.load_split(config, source, split, meta=bundle.meta, progress=progress)
    report_skipped(loaded.skipped)
    predict_fn = model_runner(bundle, app)
    report = score(app, config, bundle.meta, predict_fn, loaded)
    report["model"] = str(bundle.path)
    report["split"] = split
    if out_dir:
        io.write_json(Path(out_dir) / "evaluation.json", report)
        app.model.plots(report, bundle.meta, out_dir, title=f"{bundle.path.name} on {split}")
    return report


def describe(app, model_path=None):
    """`info`: the model bundle's metadata, or the app's default config when no model."""
    from dlkit.paths import shipped_model_dir

    path = Path(model_path) if model_path else shipped_model_dir(app.name)
    try:
        bundle = ModelBundle.load(path, app=app.name)
    except DlkitError:
        if model_path:
            raise
        return {
            "app": app.name,
            "summary": app.summary,
            "shipped_model": None,
            "default_config": to_dict(app.config.Config()),
        }
    info = dict(bundle.meta)
    info["model_file"] = str(bundle.path)
    metrics = bundle.directory / "metrics.json"
    if metrics.exists():
        info["metrics"] = io.read_json(metrics)
    return info


def dumps(obj):
    return json.dumps(obj, indent=2, default=io._json_default)
