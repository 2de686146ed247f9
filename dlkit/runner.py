"""App-agnostic train and evaluate over the app contract (dlkit.app.App).

The CLI and the Python API call these; they call only the app's methods, so every app
trains, resumes, checkpoints, logs, plots and evaluates the same way. Models are loaded,
run and scored by dlkit.engine.
"""

import contextlib
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from dlkit import __version__, io
from dlkit.config import from_dict, to_dict
from dlkit.console import ProgressPrinter, log, report_skipped
from dlkit.edge.bundle import ModelBundle, add_asset, latest_run, stored_meta
from dlkit.engine import config_of, count, load_keras, runner_for, score
from dlkit.errors import DlkitError
from dlkit.paths import next_numbered_dir
from dlkit.stages import build_optimizer

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
    """`runs/<app>/train`, then `train2`, `train3`..."""
    return next_numbered_dir(Path(root) / app_name, "train")


def train(
    app,
    config,
    data=None,
    run_dir=None,
    resume=False,
    init=None,
    callbacks=(),
    options=None,
    asked=None,
    tiny=False,
):
    """Trains `app` and writes a complete run directory; returns its path.

    Args:
        app: dlkit.app.App.
        config: the app's Config.
        data: str or None. The `--data` source.
        run_dir: str or None. Default: a new `runs/<app>/trainN`.
        resume: bool. Continue the run in `run_dir` (or the latest) after an interruption.
        init: str or None. A trained model directory or file to start from.
        callbacks: extra Keras callbacks for every stage's `fit`.
        options: dlkit.distribute.TrainOptions or None: determinism, XLA, mixed precision,
            devices (a resumed run keeps its own).
        asked: dict or None. With `resume`, what the caller set explicitly (`resume_conflicts`):
            a resumed run keeps the settings it started with, so one it holds otherwise
            stops the call with one line instead of being ignored.
        tiny: bool. `config` is the app's tiny test configuration (recorded with the run,
            so that `--resume --tiny` of a full-size run is refused instead of ignored).
    """
    from dlkit.callbacks.resume import read_state
    from dlkit.distribute import TrainOptions, is_chief, training

    options = options or TrainOptions()
    if resume:
        run_dir = Path(run_dir) if run_dir else latest_run(app.name, marker="config.json")
        if not (run_dir / "config.json").exists():
            raise DlkitError(f"{run_dir}: nothing to resume (no config.json)")
        saved, config, options = read_run_record(run_dir, type(config))
        conflicts = resume_conflicts(app, saved, config, options, asked or {})
        if conflicts:
            raise DlkitError(
                f"{run_dir} resumes with the settings it started with: {', '.join(conflicts)}; "
                f"drop those options to resume it, or train a new run from it with --init {run_dir}"
            )
        data, init, tiny = saved.get("data"), saved.get("init"), bool(saved.get("tiny"))
    else:
        run_dir = Path(run_dir) if run_dir else next_run_dir(app.name)  # claimed below
    worker = options.multi_worker and not is_chief()  # trains into a scratch folder
    with contextlib.nullcontext() if worker else training_lock(run_dir):
        state = read_state(run_dir / CHECKPOINT_DIR) if resume else None
        if resume and state and state.get("complete"):
            log(f"{run_dir} is already complete")
            return run_dir
        if resume:
            log(f"resuming {run_dir}")
        if options.describe():
            log(f"training with: {options.describe()}")
        if worker:
            return train_worker(app, config, data, run_dir, resume, init, callbacks, options, state)
        with training(options):
            finish = _train(app, config, data, run_dir, resume, init, callbacks, options, state, tiny)
        # Scored on one device in float32: the saved model, as export and predict see it.
        return finish(load_keras(run_dir / "model.keras")) if options != TrainOptions() else finish()


def training_lock(run_dir):
    """Held while a process trains `run_dir`: a second one (`--resume` of a run still
    training in another terminal, or of the latest run, which may be that one) stops
    with one line instead of training into the same checkpoint. The lock lives in the
    cache's locks folder, keyed by the run's path, so the run folder holds no lock file."""
    import hashlib

    from dlkit.paths import cache_dir

    key = hashlib.sha1(str(Path(run_dir).resolve()).encode("utf-8")).hexdigest()[:16]
    locks = cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)

    def busy(pid):
        who = f"process {pid}" if pid else "another process"
        return f"{run_dir} is being trained by {who}; wait for it to end, or stop it and --resume"

    return io.held_or_refused(locks / f"run-{key}.lock", busy)


def read_run_record(run_dir, config_class):
    """(record, config, training options) of a run's config.json: the record as read
    ({"app", "config", "data", "init", "options"}), its config as a `config_class` and
    its dlkit.distribute.TrainOptions (options a later version no longer knows left out).
    One line naming the file when it is not one (cut short, hand-edited) or holds a
    config `config_class` cannot take."""
    from dlkit.distribute import TrainOptions

    path = Path(run_dir) / "config.json"
    try:
        record = io.read_json(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise DlkitError(f"{path}: not a run's config ({error}); it cannot be resumed") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise DlkitError(f'{path}: not a run\'s config (no "config" object); it cannot be resumed')
    if not isinstance(record.get("options", {}), dict):
        raise DlkitError(f'{path}: not a run\'s config ("options" is not an object); it cannot be resumed')
    try:
        config = from_dict(config_class, record["config"])
    except DlkitError as error:
        raise DlkitError(f"{path}: {error}; it cannot be resumed") from None
    known = {field.name for field in dataclasses.fields(TrainOptions)}
    options = TrainOptions(**{k: v for k, v in record.get("options", {}).items() if k in known})
    return record, config, options


def resume_conflicts(app, saved, held, held_options, asked):
    """The settings a resumed run holds otherwise than asked, as "epochs=10 (asked 20)".

    Args:
        app: dlkit.app.App.
        saved, held, held_options: the run's record, config and training options
            (`read_run_record`).
        asked: dict of what was set explicitly, each key optional: "overrides" (list of
            "key=value" strings), "data" and "init" (str), "tiny" (bool), "options"
            ({name: value} of dlkit.distribute.TrainOptions fields).
    """
    from dlkit.app import PART_FIELDS
    from dlkit.config import apply_overrides

    conflicts = []
    wanted = apply_overrides(held, asked.get("overrides", ()))
    # Fields an --init model decides were taken from it, whatever was asked, at the start too.
    decided = {*app.architecture, *(f for fields in PART_FIELDS.values() for f in fields)}
    for field in dataclasses.fields(held):
        value, want = getattr(held, field.name), getattr(wanted, field.name)
        if value != want and not (saved.get("init") and field.name in decided):
            conflicts.append(f"{field.name}={value} (asked {want})")
    for key in ("data", "init"):
        if key in asked and not same_source(saved.get(key), asked[key]):
            conflicts.append(f"--{key} {saved.get(key) or '(none)'} (asked {asked[key]})")
    held_flags = {**dataclasses.asdict(held_options), "tiny": saved.get("tiny")}
    asked_flags = {**asked.get("options", {}), **({"tiny": asked["tiny"]} if "tiny" in asked else {})}
    for name, want in asked_flags.items():
        value = held_flags[name]
        if value is not None and value != want:  # None: a record from before the field
            shown = [("on" if v else "off") if isinstance(v, bool) else v for v in (value, want)]
            conflicts.append(f"--{name.replace('_', '-')} {shown[0]} (asked {shown[1]})")
    return conflicts


def same_source(held, asked):
    """Two --data/--init values name the same source: equal, or paths of one file or folder."""
    if held == asked or held is None or asked is None:
        return held == asked
    try:
        return Path(held).resolve() == Path(asked).resolve() and Path(asked).exists()
    except (OSError, ValueError):
        return False


def train_worker(app, config, data, run_dir, resume, init, callbacks, options, state):
    """A multi-worker run's other workers: they train in step with the chief and write
    into a scratch folder removed at the end (TensorFlow's convention), so the run
    directory holds the chief's files only. Resumed, they start from the chief's
    checkpoint (the run directory on storage that every worker reads)."""
    import shutil

    from dlkit.distribute import training, worker_task

    with io.temp_dir("worker") as scratch:
        if state:  # the chief's checkpoint: the epoch model, the best weights, the state
            shutil.copytree(run_dir / CHECKPOINT_DIR, scratch / CHECKPOINT_DIR)
            io.write_json(scratch / "config.json", io.read_json(run_dir / "config.json"))
        with training(options):
            _train(app, config, data, scratch, bool(state), init, callbacks, options, state)
    log(f"worker {worker_task()[1]} done; the chief writes {run_dir}")
    return run_dir


def _train(app, config, data, run_dir, resume, init, callbacks, options, state, tiny=False):
    import keras
    import tensorflow as tf

    from dlkit.callbacks import (
        BestCheckpoint,
        EpochClock,
        JSONLLogger,
        Progress,
        ResumeCheckpoint,
        WeightAverage,
    )
    from dlkit.callbacks.resume import restore_seed_states
    from dlkit.data.batches import training_epoch
    from dlkit.distribute import even_batches, fit_workers, synchronize_batch_norm

    init_bundle, init_parts = None, ()
    if init:
        source = resolve_init(init)
        init_bundle = ModelBundle.load(source, prefer="keras")
        if init_bundle.is_tflite:
            if Path(source).is_dir():  # prefer="keras": the folder holds no .keras
                raise DlkitError(
                    f"{source}: --init needs a .keras model, and this folder holds TFLite files "
                    "only; --init a training run's folder instead, or train without --init"
                )
            raise DlkitError(f"{init_bundle.path}: --init needs a .keras model, not a TFLite file")
        init_parts = inheritable_parts(app, init_bundle)
        if not resume:  # A resumed run's saved config already holds the inherited fields.
            fields = app.architecture if not init_parts else part_fields(init_parts)
            config = inherit_architecture(config, init_bundle.meta.get("config", {}), fields)
            if init_parts:
                config = app.inherit_config(config, init_parts)
    checkpoint_dir = io.check_writable_dir(run_dir, "--run-dir") / CHECKPOINT_DIR
    if not resume:
        record = {"app": app.name, "config": to_dict(config), "data": data, "init": init, "tiny": bool(tiny)}
        claim_run(run_dir, {**record, "options": dataclasses.asdict(options)})
    try:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(config.seed)
        progress = ProgressPrinter()
        source, meta, train_split, val_split = load_training_data(
            app, config, data, init_bundle, init_parts, progress
        )
        if init:  # what `info` shows as the command that trains a model like it
            meta["init"] = str(init)
        if tiny:
            meta["tiny"] = True
    except BaseException:
        if not resume:  # nothing trained yet: the folder is free for the next attempt
            release_run(run_dir)
        raise

    if not (run_dir / "manifest.json").exists():  # a kill can come before it is written
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
                    "train": count(train_split.inputs),
                    "val": count(val_split.inputs),
                },
                "versions": meta["versions"],
            },
        )

    if state:
        import dlkit.layers  # noqa: F401  (registers custom layers and losses for loading)
        import dlkit.losses  # noqa: F401

        # Compiled, so the optimizer state continues where it stopped.
        model = keras.saving.load_model(checkpoint_dir / state.get("model", "last.keras"))
        restore_seed_states(model, state)  # dropout goes on with the masks it would have drawn
        start_epoch = state["epochs_done"]
        log(f"continuing after epoch {start_epoch}")
    else:
        start_epoch = 0
        model = initial_model(app, config, meta, init_bundle, init_parts)
        if options.mixed_precision:
            from dlkit.distribute import float32_outputs

            model = float32_outputs(model)

    train_data = app.make_dataset(config, train_split, training=True, meta=meta)
    val_data = app.make_dataset(config, val_split, meta=meta)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        synchronize_batch_norm(model)
        train_data = even_batches(train_data, replicas, config.batch_size, training=True)
        if not options.multi_worker:  # fit_workers scores uneven batches whole
            val_data = even_batches(val_data, replicas, config.batch_size)
    monitor, mode = app.monitor
    best = BestCheckpoint(
        checkpoint_dir / "best.npz",
        monitor=monitor,
        mode=mode,
        best=state.get("best") if state else None,
    )
    weights_by_class = app.class_weights(config, train_split)
    stages = app.training_stages(config, meta)
    total_epochs = sum(stage.epochs for stage in stages)
    history_path = run_dir / "history.jsonl"
    if resume:
        trim_history(history_path, start_epoch)
    offset = 0
    extra_callbacks = [*app.training_callbacks(config, meta, run_dir, val_split), *callbacks]
    # One average across the stages; in the model from validation until the checkpoint.
    average = WeightAverage(config.ema, checkpoint_dir, start_epoch) if config.ema else None
    for index, stage in enumerate(stages):
        end = offset + stage.epochs
        if end <= start_epoch or stage.epochs == 0:
            offset = end
            continue
        resuming_inside = state is not None and start_epoch > offset
        if not resuming_inside:
            stage.prepare(model)
        build_optimizer(model)
        if options.jit:
            model.jit_compile = True  # after compile, which resets it
        stage_callbacks = [
            *([average] if average else []),
            EpochClock(),
            Progress(total_epochs, stage=stage.name),
            JSONLLogger(history_path, stage=stage.name),
            best,
            *stage.callbacks,
            *extra_callbacks,
        ]
        if config.patience:
            # The same metric as the best checkpoint, so training stops where it picks.
            stage_callbacks.append(
                keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=config.patience)
            )
        if average:  # the trained weights, not the average, go on training and resume
            stage_callbacks.append(average.swap_back)
        # Last: an epoch counts as done only once everything it writes is written (its
        # history line, best weights, sample overlays); a kill before that retrains it.
        stage_callbacks.append(ResumeCheckpoint(checkpoint_dir, index, extra=lambda: {"best": best.best}))
        first = max(start_epoch, offset)
        log(f"stage {stage.name}: epochs {first + 1}-{end} of {total_epochs}")
        # The pipelines draw each epoch's data from (seed, epoch): a resumed run's epochs
        # are the uninterrupted run's, whatever passes `fit` starts to build the model.
        with training_epoch(first):
            if options.multi_worker:  # Keras' fit fails under MultiWorkerMirroredStrategy
                fit_workers(model, train_data, val_data, end, first, stage_callbacks, weights_by_class)
            else:
                model.fit(
                    train_data,
                    validation_data=val_data,
                    initial_epoch=first,
                    epochs=end,
                    verbose=0,
                    shuffle=False,
                    class_weight=weights_by_class,
                    callbacks=stage_callbacks,
                )
        offset = end

    best.restore(model)
    if options.multi_worker:  # every worker's line must match: they hold the same model
        log(f"weights sha256 {weights_digest(model)[:16]}")
    save_model(model, run_dir / "model.keras")
    return lambda saved=model: _finish(
        app, config, run_dir, saved, meta, source, val_split, progress, best.best, total_epochs
    )


def weights_digest(model):
    """SHA-256 of a model's weights (their bytes in order)."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def _finish(app, config, run_dir, model, meta, source, val_split, progress, best, total_epochs):
    """What follows the last epoch: calibration, side files, model.json, plots, scores."""
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    history_path = run_dir / "history.jsonl"
    meta.update(app.calibrate(model, config, meta, val_split))
    for name, asset in app.assets(model, config, meta).items():
        add_asset(run_dir, meta, name, asset.content, asset.file_name, into=asset.into)
    io.write_json(run_dir / "model.json", stored_meta(meta))

    from dlkit.plots import training_curves

    records = io.read_jsonl(history_path) if history_path.exists() else []
    training_curves(records, run_dir / "plots" / "training_curves.png", title=f"{app.name} training")
    run = app.keras_runner(model, config, meta)
    metrics = {"val": score(app, config, meta, run, val_split)}
    try:
        test_split = app.load_split(config, source, "test", meta=meta, progress=progress)
        report_skipped(test_split.skipped)
        metrics["test"] = score(app, config, meta, run, test_split)
        app.plots(metrics["test"], meta, run_dir / "plots", title=f"{app.name} test split")
    except DlkitError as error:
        log(f"no test evaluation: {error}")
    io.write_json(run_dir / "metrics.json", {"keras": metrics})
    io.write_json(
        checkpoint_dir / "state.json", {"epochs_done": total_epochs, "complete": True, "best": best}
    )
    metric = app.gate_metric(meta).name
    shown = ", ".join(f"{split} {m.get(metric, float('nan')):.4f}" for split, m in metrics.items())
    log(f"done: {run_dir} ({metric}: {shown})")
    return run_dir


def claim_run(run_dir, record):
    """Claims `run_dir` for a new run by creating its config.json, atomically: of two
    trainings started on the same folder, the second stops here."""
    try:
        io.write_json(run_dir / "config.json", record, exclusive=True)
    except FileExistsError:
        raise DlkitError(
            f"{run_dir} already holds a run; use --resume to continue it or another --run-dir"
        ) from None


def release_run(run_dir):
    """Undoes `claim_run` for a run that failed before its first epoch."""
    (run_dir / "config.json").unlink(missing_ok=True)
    for folder in (run_dir / CHECKPOINT_DIR, run_dir):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass


def load_training_data(app, config, data, init_bundle, init_parts, progress):
    """(source, meta, train split, val split) of a new or resumed run."""
    source = app.open_source(config, data, progress=progress)
    labels = getattr(source, "labels", ())
    classes = f"{len(labels)} {'class' if len(labels) == 1 else 'classes'}"
    log(f"data: {source.description}" + (f" ({classes}: {', '.join(labels)})" if labels else ""))
    meta = app.make_meta(config, source)
    if init_bundle and not init_parts:
        meta = app.inherit_meta(meta, init_bundle.meta)
    if init_parts:
        meta = inherit_meta_parts(meta, init_bundle, init_parts)
    train_split = app.load_split(config, source, "train", meta=meta, progress=progress)
    val_split = app.load_split(config, source, "val", meta=meta, progress=progress)
    report_skipped(train_split.skipped + val_split.skipped)
    meta["config"] = to_dict(config)
    meta["data"] = data
    meta["versions"] = versions()
    return source, meta, train_split, val_split


def trim_history(path, epochs_done):
    """Drops the history lines of epochs after the last checkpoint, and a line a kill cut
    short: a kill between an epoch's line and its checkpoint would otherwise leave that
    epoch logged twice once the resumed run trains it again, and the next line would be
    appended to the cut one."""
    if not path.exists():
        return
    records = io.read_jsonl(path)
    kept = [r for r in records if r.get("event") != "epoch" or r.get("epoch", 0) < epochs_done]
    text = path.read_bytes()
    if len(kept) != len(records) or (text and not text.endswith(b"\n")):  # or a line cut short
        io.write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def resolve_init(init):
    """`--init`: a model path, or the name of a pretrained model an app offers (`minilm`),
    ported into the cache on first use."""
    from dlkit.registry import presets

    if Path(init).exists():
        return init
    offered = presets()
    if init in offered:
        log(f"--init {init}: the pretrained model (ported once into the cache)")
        return offered[init]()
    return init


def inherit_architecture(config, init_config, fields):
    """The network-defining `fields` of a model we start from win over the defaults."""
    changes = {
        key: init_config[key]
        for key in fields
        if key in init_config and hasattr(config, key) and init_config[key] != getattr(config, key)
    }
    if changes:
        log("from the --init model: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
    return dataclasses.replace(config, **changes)


def inheritable_parts(app, init_bundle):
    """() when `--init` is a model of `app` itself; else the parts of another app's model
    that `app` can take (a one-line error when there are none)."""
    from dlkit.registry import app_names, get_app

    other = init_bundle.meta.get("app")
    where = init_bundle.directory / "model.json"
    if other == app.name:
        app.check_meta(init_bundle.meta, where)
        return ()
    giver = get_app(other) if other in app_names() else None
    if giver:
        giver.check_meta(init_bundle.meta, where)
    offered = giver.provides if giver else ()
    usable = tuple(part for part in app.inherits if part in offered)
    if not usable:
        raise DlkitError(
            f"{init_bundle.path}: a {other or 'unknown'} model offers {', '.join(offered) or 'no parts'}; "
            f"{app.name} can inherit {', '.join(app.inherits) or 'nothing from another app'}"
        )
    return usable


def part_fields(parts):
    from dlkit.app import PART_FIELDS

    return tuple(field for part in parts for field in PART_FIELDS.get(part, ()))


def initial_model(app, config, meta, init_bundle=None, init_parts=()):
    """The model a new run starts from: built from scratch or pretrained weights; the
    `--init` model adapted to the data (same app); or built with the parts inherited from
    another app's model, their weights copied by layer name."""
    if init_bundle is None:
        return app.build_model(config, meta)
    source = load_keras(init_bundle.path)
    if not init_parts:
        return app.adapt_model(source, init_bundle.meta, config, meta, log=log)
    from dlkit.pretrained import copy_layer_weights
    from dlkit.registry import get_app

    giver = get_app(init_bundle.meta["app"])
    offered = giver.parts(source, init_bundle.meta)
    model = app.build_model(config, meta)
    taken = app.parts(model, meta)
    for part in init_parts:
        if part in offered:  # weight parts; metadata parts went into `meta` already
            count = copy_layer_weights(offered[part], taken[part], where=f"{init_bundle.path}: ")
            log(f"from the {giver.name} model {init_bundle.path}: {part} ({count} layers)")
    return model


def inherit_meta_parts(meta, init_bundle, init_parts):
    """`meta` with the metadata parts (a tokenizer's vocabulary) of another app's model."""
    from dlkit.registry import get_app

    giver = get_app(init_bundle.meta["app"])
    offered = giver.meta_parts(init_bundle.meta)
    meta = dict(meta)
    for part in init_parts:
        if part in offered:
            meta.update(offered[part])
            log(f"from the {giver.name} model {init_bundle.path}: {part}")
    return meta


def save_model(model, path):
    """Saves an uncompiled copy: architecture and weights, no optimizer state, deflated.

    Rebuilt from the architecture config: `keras.models.clone_model` compiles its clone
    (Keras 3.15), which would write an optimizer into the file.
    """
    from dlkit.distribute import float32_config

    # Trained in mixed precision: rebuilt in float32, so exports stay float32 / int8.
    clean = type(model).from_config(float32_config(model.get_config()))
    clean.set_weights(model.get_weights())  # mixed precision keeps its variables in float32
    with io.atomic_path(path) as tmp:
        clean.save(tmp)
        io.deflate_zip(tmp)


def evaluate(app, model_path=None, data=None, split="test", out_dir=None, options=None):
    """Scores a `.keras` or `.tflite` model on a split; returns the report dict.

    `options`: {name: value} of the app's predict options that evaluate takes too
    (`Option.evaluate`, e.g. detect's `augment`); those set are recorded in the report."""
    from dlkit.paths import default_model

    bundle = ModelBundle.load(model_path or default_model(app.name), app=app, prefer="keras")
    defaults, values = app.option_values({}, "evaluate"), app.option_values(options or {}, "evaluate")
    chosen = {k: v for k, v in values.items() if v != defaults[k]}
    if chosen:  # an app's prepare_meta may do work of its own (face loads its gallery)
        bundle = ModelBundle(bundle.path, app.options_meta(dict(bundle.meta), values))
    config = config_of(app, bundle.meta)
    own_data = data is None or data == bundle.meta.get("data")
    data = data if data is not None else bundle.meta.get("data")
    progress = ProgressPrinter()
    source = app.open_source(config, data, progress=progress)
    loaded = app.load_split(config, source, split, meta=bundle.meta, progress=progress)
    report_skipped(loaded.skipped)
    report = score(app, config, bundle.meta, runner_for(app, bundle, config), loaded)
    report["model"] = str(bundle.path)
    report["split"] = split
    recorded = recorded_fingerprints(bundle, split) if own_data else set()
    if recorded and report["data_fingerprint"] not in recorded:
        report["recorded_data_fingerprints"] = sorted(recorded)
        log(
            f"note: the {split} examples made here differ from those {bundle.directory}'s records "
            f"were scored on (data fingerprint {report['data_fingerprint']}, recorded "
            f"{', '.join(sorted(recorded))}): other versions of the packages, libraries or dlkit "
            "that make them; these figures and the recorded ones are not comparable"
        )
    if chosen:
        report["options"] = chosen
    peers = app.peers(config, bundle.meta, source, loaded)
    if peers:
        report["peers"] = peers
    if out_dir:
        io.write_json(Path(out_dir) / "evaluation.json", report)
        app.plots(report, bundle.meta, out_dir, title=f"{bundle.path.name} on {split}")
    return report


def recorded_fingerprints(bundle, split):
    """The data fingerprints (`dlkit.engine.fingerprint`) that a model's own records hold
    for `split`: its export checks in model.json, and in the metrics.json beside it every
    report of that split (its training run's, what a ship tool measured) and any
    `data_fingerprints` ({split: fingerprint}) written for them."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if (
                    key == split
                    and isinstance(value, dict)
                    and isinstance(value.get("data_fingerprint"), str)
                ):
                    found.add(value["data_fingerprint"])
                if (
                    key == "data_fingerprints"
                    and isinstance(value, dict)
                    and isinstance(value.get(split), str)
                ):
                    found.add(value[split])  # {split: fingerprint}, as tools/reproduce_shipped.py writes
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(bundle.meta.get("exports", {}))
    metrics = bundle.directory / "metrics.json"
    if metrics.is_file():
        try:
            walk(io.read_json(metrics))
        except (ValueError, OSError, UnicodeDecodeError):
            pass  # `info` reports an unreadable metrics.json; scoring needs none
    return found


def describe(app, model_path=None):
    """`info`: the model bundle's metadata, or the app's default config when no model."""
    from dlkit.paths import shipped_model_dir

    path = Path(model_path) if model_path else shipped_model_dir(app.name)
    try:
        bundle = ModelBundle.load(path, app=app)
    except DlkitError:
        if model_path:
            raise
        return {
            "app": app.name,
            "summary": app.summary,
            "shipped_model": None,
            "default_config": to_dict(app.default_config()),
        }
    info = dict(bundle.meta)
    info["model_file"] = str(bundle.path)
    metrics = bundle.directory / "metrics.json"
    if metrics.exists():
        try:
            info["metrics"] = io.read_json(metrics)
        except (ValueError, OSError, UnicodeDecodeError) as error:  # the model is still usable
            info["metrics_error"] = f"{metrics}: unreadable ({str(error).splitlines()[0][:80]})"
    return info


def info_lines(app, info):
    """`info` without `--json`: what `describe` found as lines a person reads (the app and
    task, the file and its size, labels, input and output, long lists as counts, exports
    with their checked scores, the headline metric's figures, versions)."""
    if "default_config" in info:
        return [
            f"{app.name}: {app.summary}",
            "no model (none given, none shipped); the default config, each key settable with --set:",
            *(f"  {key} = {value}" for key, value in info["default_config"].items()),
        ]
    rows = [("app", f"{info.get('app', app.name)}: {info.get('task', app.summary)}")]
    path = Path(info["model_file"])
    rows.append(("model", f"{path} ({_megabytes(path.stat().st_size)})" if path.is_file() else str(path)))
    labels = info.get("labels") or []
    if labels:
        shown = ", ".join(map(str, labels[:12])) + (", ..." if len(labels) > 12 else "")
        rows.append(("labels", f"{len(labels)}: {shown}"))
    for key in ("input", "output"):
        if isinstance(info.get(key), dict):
            rows.append((key, _tensor_text(info[key])))
    rows += [
        (key, f"{len(value):,} entries")
        for key, value in info.items()
        if isinstance(value, list) and len(value) > 50
    ]
    for name, export in (info.get("exports") or {}).items():
        size = f" ({_megabytes(export['bytes'])})" if export.get("bytes") else ""
        checked = export.get("val") or {}
        score = (
            f", val {checked['metric']} {checked['keras']:.4f} Keras, {checked['tflite']:.4f} TFLite"
            if {"metric", "keras", "tflite"} <= set(checked)
            else ""
        )
        rows.append(("export", f"{name}: {export.get('file', '?')}{size}{score}"))
    metrics = info.get("metrics")
    if info.get("metrics_error"):
        rows.append(("metrics", info["metrics_error"]))
    for name in (app.gate_metric(info).name, *app.headline):
        groups = {}  # "keras" -> ["val 0.913 [0.865, 0.945]", ...]: a model variant's splits on a line
        for where, text in _headline(metrics if isinstance(metrics, dict) else {}, name):
            groups.setdefault(" / ".join(where[:-1]) or name, []).append(
                f"{where[-1] if where else 'all'} {text}"
            )
        for k, (group, texts) in enumerate(groups.items()):
            rows.append((name if k == 0 else "", f"{group}: {', '.join(texts)}"))
    if info.get("pretrained"):  # a port of published weights (`--init dlib`, `--init minilm`)
        rows.append(("ported from", str(info["pretrained"])))
    elif isinstance(info.get("config"), dict):
        rows.append(("trained by", train_command(app, info)))
    versions = info.get("versions") or {}
    if versions:
        rows.append(("trained with", ", ".join(f"{k} {v}" for k, v in versions.items())))
    width = max(len(key) for key, _ in rows)
    lines = [f"{key:>{width}}  {text}" for key, text in rows]
    return [*lines, f"(all metadata and metrics: dlkit {app.name} info --json)"]


def train_command(app, meta):
    """The `dlkit <app> train` command that trains a model like the one `meta` describes:
    its data, `--init` and `--tiny`, and every setting that differs from the defaults as
    `--set key=value` (`apply_overrides` reads them back to the same config)."""
    import shlex

    from dlkit.config import overrides_between

    tiny = bool(meta.get("tiny"))
    words = ["dlkit", app.name, "train", *(["--tiny"] if tiny else [])]
    for flag, key in (("--data", "data"), ("--init", "init")):
        if meta.get(key):
            words += [flag, str(meta[key])]
    for item in overrides_between(app.default_config(tiny=tiny), config_of(app, meta)):
        words += ["--set", item]
    return shlex.join(words)


def _megabytes(size):
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def _tensor_text(spec):
    """`image float32 (160, 160, 3), range [0, 255]` from a model.json input or output entry;
    several named inputs are grouped by shape, a name's own shape (`"masked_positions":
    [20]`) overriding the shared one: `token_ids, attention_mask int32 (128); masked_positions
    int32 (20)`."""
    names = spec.get("names") or [spec.get("name", "?")]
    groups = {}  # shape (or None) -> names, in the inputs' order
    for name in names:
        shape = spec.get(name) if isinstance(spec.get(name), list) else spec.get("shape")
        groups.setdefault(None if shape is None else tuple(shape), []).append(name)
    dtype = f" {spec['dtype']}" if spec.get("dtype") else ""
    text = "; ".join(
        ", ".join(group) + dtype + ("" if shape is None else f" ({', '.join(map(str, shape))})")
        for shape, group in groups.items()
    )
    extras = [f"{key} {spec[key]}" for key in ("range", "activation", "norm") if key in spec]
    return ", ".join([text, *extras])


def _headline(metrics, name, where=()):
    """[(path of keys, "value [low, high]")] for every report in `metrics` (nested by
    model variant and split) that holds the number `name`."""
    found = []
    value = metrics.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        interval = metrics.get(f"{name}_ci95") or []
        figures = [value, *interval]
        # 3 decimals, more where they would show a narrow interval as [1.000, 1.000]
        places = next((d for d in (3, 4, 5) if len({f"{x:.{d}f}" for x in figures}) == len(set(figures))), 5)
        found.append(
            (
                where,
                f"{value:.{places}f}"
                + (f" [{interval[0]:.{places}f}, {interval[1]:.{places}f}]" if interval else ""),
            )
        )
    if len(where) < 3:
        for key, inner in metrics.items():
            if isinstance(inner, dict):
                found += _headline(inner, name, (*where, str(key)))
    return found


def dumps(obj):
    return json.dumps(obj, indent=2, default=io._json_default)
