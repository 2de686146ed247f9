"""`dlkit bench`: every app's shipped model measured side by side in one run.

For each app: file size of every TFLite variant (float32, float16, dynamic, int8: the
shipped files as they are, the others converted from the `.keras` model), parameters,
FLOPs per inference, single-input latency (median and p90) at each thread count for
Keras compiled (the engine's runner: a `tf.function` traced once for any batch size)
and for each LiteRT variant, the app's headline metric of every variant on its
validation split, and the whole-process time of `dlkit <app> predict` on the smallest
`.tflite` against the `.keras`.

Latencies at each thread count are measured in a fresh process (TensorFlow fixes its
thread pools when it starts), the app's own runners timed on the first validation
input, so a model is timed the way `predict` runs it (translate's decoding loop included).
FLOPs are counted from the TFLite graph: 2 x the multiply-adds of its convolutions,
matrix products and recurrent cells (elementwise work is left out); a graph with a
loop (WHILE) counts its body once, shown as a lower bound. The achieved fraction of the
CPU's peak compares FLOPs / latency with a LiteRT matrix product measured the same way.

Example:
    >>> from dlkit.bench import bench
    >>> results = bench(["classify"], threads=(1, 2))
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.console import counted, log
from dlkit.errors import DlkitError
from dlkit.stages import build_optimizer

VARIANTS = ("float32", "float16", "dynamic", "int8")
THREADS_ENV = "DLKIT_THREADS"  # read by dlkit.edge.runtime.load_interpreter
PEAK_SHAPE = (64, 1024, 1024)  # (rows, inner, columns) of the peak's matrix product
WARMUP = 3


# --- counting ------------------------------------------------------------------------
def flops(path):
    """(FLOPs of one inference, complete) of a `.tflite` file: 2 x the multiply-adds of
    its convolutions, fully connected layers, matrix products and LSTM/GRU-like cells.
    `complete` is False when the graph holds a loop (its body is not counted)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Run once on zeros, without delegates and keeping every tensor: shapes that depend on
    # the input (a dynamic reshape) are known only then.
    interpreter = Interpreter(
        model_path=str(path),
        num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    total, complete = 0, True

    def size(index):
        return int(np.prod(shapes.get(int(index), [0]))) if index >= 0 else 0

    for op in interpreter._get_ops_details():
        name, inputs, outputs = op["op_name"], op["inputs"], op["outputs"]
        out = size(outputs[0]) if len(outputs) else 0
        weights = shapes.get(int(inputs[1]), []) if len(inputs) > 1 else []
        if name == "CONV_2D" and len(weights) == 4:  # (out, kh, kw, in)
            total += out * weights[1] * weights[2] * weights[3]
        elif name == "DEPTHWISE_CONV_2D" and len(weights) == 4:  # (1, kh, kw, out)
            total += out * weights[1] * weights[2]
        elif name == "TRANSPOSE_CONV":  # inputs: output shape, weights (out, kh, kw, in), input
            kernel = shapes.get(int(inputs[1]), [])
            if len(kernel) == 4:
                total += size(inputs[2]) * kernel[0] * kernel[1] * kernel[2]
        elif name == "FULLY_CONNECTED" and len(weights) == 2:  # (out, in)
            total += out * weights[1]
        elif name == "BATCH_MATMUL":
            left = shapes.get(int(inputs[0]), [])
            inner = left[-1] if not op.get("adj_x") else left[-2]
            total += out * (inner if left else 0)
        elif name in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM"):
            x = shapes.get(int(inputs[0]), [])
            recurrent = shapes.get(int(inputs[5]), [])  # recurrent-to-input weights (units, units)
            if len(x) == 3 and recurrent:
                units, steps = recurrent[0], x[0] * x[1]
                total += 4 * steps * units * (x[2] + units) * (2 if name.startswith("BI") else 1)
        elif name in ("WHILE", "CALL_ONCE", "CALL"):
            complete = complete and name == "CALL_ONCE"
    return 2 * total, complete


def parameters(model):
    return int(model.count_params())


# --- timing --------------------------------------------------------------------------
def timed(run, x, repeat):
    """(median, p90) milliseconds of `run(x)` over `repeat` calls after a warm-up."""
    for _ in range(WARMUP):
        run(x)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), float(np.percentile(times, 90))


def side_by_side(runs, inputs):
    """{name: median milliseconds per input} of several runners ({name: fn(x)}), each
    input given to every runner in turn, so the machine's noise falls on all alike: what a
    ratio between them needs."""
    times = {name: [] for name in runs}
    for x in inputs:
        for name, run in runs.items():
            start = time.perf_counter()
            run(x)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def option_timing(app, model, images, name, **options):
    """Median milliseconds per image of `model` run plain and with the app's predict
    `options` (`augment=True`), one image at a time, side by side: {"plain": ms, name:
    ms, "ratio": name / plain, "images": count}."""
    from dlkit.predict import Predictor

    runs = {"plain": Predictor.load(app, model).run, name: Predictor.load(app, model, **options).run}
    medians = side_by_side(runs, [np.asarray(image, np.float32)[None] for image in images])
    return {**medians, "ratio": medians[name] / medians["plain"], "images": len(images)}


def peak_models(folder):
    """float32 and int8 `.tflite` files of one matrix product (PEAK_SHAPE) and its input,
    written into `folder` (once per cache: `build_once`); returns their names."""
    import keras

    from dlkit.export.tflite import convert

    rows, inner, columns = PEAK_SHAPE
    inputs = keras.Input((inner,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(columns, use_bias=False)(inputs))
    x = np.random.default_rng(0).normal(size=(rows, inner)).astype("float32")
    names = {}
    for quantize in ("float32", "int8"):
        names[quantize] = f"peak.{quantize}.tflite"
        (Path(folder) / names[quantize]).write_bytes(convert(model, quantize, x, batch_size=rows))
    np.save(Path(folder) / "peak.npy", x)
    return names


def measure_latencies(plan_path, threads):
    """The latency worker (a fresh process per thread count): times every job of the plan
    and the peak matrix product; returns {app: {variant: [median, p90]}, "peak": ...}."""
    plan = io.read_json(plan_path)
    os.environ[THREADS_ENV] = str(threads)
    from dlkit.edge.bundle import ModelBundle
    from dlkit.engine import runner_for, tflite_runner
    from dlkit.export.bundle import inputs_of_golden
    from dlkit.registry import get_app

    if any("keras" in job["files"] for job in plan["apps"].values()):
        from dlkit.quiet import import_tensorflow

        import_tensorflow(before_start=lambda: keras_threads(threads))
    results = {}
    rows, inner, columns = PEAK_SHAPE
    x = np.load(plan["peak"]["input"])
    results["peak"] = {}
    for quantize, path in plan["peak"]["files"].items():
        median, _ = timed(tflite_runner(path), x, max(5, plan["repeat"] // 5))
        results["peak"][quantize] = 2 * rows * inner * columns / (median / 1000)
    for name, job in plan["apps"].items():
        app = get_app(name)
        x = inputs_of_golden(dict(np.load(job["input"])))
        results[name] = {}
        for variant, path in job["files"].items():
            bundle = ModelBundle.load(path, app=app)
            run = runner_for(app, bundle)
            results[name][variant] = timed(run, x, plan["repeat"])
    return results


def keras_threads(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def latency_process(plan_path, threads):
    """Runs `measure_latencies` in a fresh Python process; returns its results."""
    out = Path(plan_path).with_name(f"latency.{threads}.json")
    env = {**os.environ, THREADS_ENV: str(threads), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "dlkit.bench", str(plan_path), str(threads), str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DlkitError(f"the latency run with {counted(threads, 'thread')} failed: {tail}")
    return io.read_json(out)


def process_seconds(app, inputs, model, repeat):
    """Median wall time of `dlkit <app> predict INPUTS --model MODEL`, a fresh process each."""
    return command_seconds([app, "predict", *inputs, "--model", str(model)], repeat)


def command_seconds(arguments, repeat):
    """Median wall time of `dlkit ARGUMENTS`, a fresh process each time."""
    command = [sys.executable, "-m", "dlkit.cli", *arguments]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise DlkitError(f"dlkit {' '.join(arguments[:2])} failed: {tail}")
    return statistics.median(times)


# --- one app -------------------------------------------------------------------------
def keras_source(app, directory):
    """The `.keras` file of a model directory, or of the preset that rebuilds a shipped
    model which ships without one (`App.shipped_preset`), or None."""
    directory = Path(directory)
    if (directory / "model.keras").exists():
        return directory / "model.keras"
    if app.shipped_preset:
        preset = Path(app.presets()[app.shipped_preset]())
        if (preset / "model.keras").exists():
            return preset / "model.keras"
    return None


def prepare_app(app, model_dir, work, limit=None, variants=None):
    """Copies a model's bundle into `work`, converts the missing variants and scores them.

    Returns (row, job): the app's row of results (sizes, parameters, FLOPs, metrics,
    notes) and the latency job (files by variant, the sample input).
    """
    from dlkit.edge.bundle import ModelBundle, copy_assets, stored_meta
    from dlkit.engine import config_of, load_keras, representative_inputs, runner_for, score, take
    from dlkit.export import tflite_name
    from dlkit.export.bundle import golden_inputs

    model_dir = Path(model_dir)
    if not (model_dir / "model.json").exists():
        raise DlkitError(f"{model_dir}: no model.json (not a model directory)")
    work.mkdir(parents=True)
    shipped = ModelBundle.load(model_dir, app=app)
    meta = dict(shipped.meta)
    config = config_of(app, meta)
    copy_assets(shipped, work, meta)
    io.write_json(work / "model.json", stored_meta(meta))
    row = {"model": str(model_dir), "notes": [], "sizes": {}, "metric": {}, "flops": {}}
    files = {}
    keras_file = keras_source(app, model_dir)
    if keras_file is not None:
        shutil.copy2(keras_file, work / "model.keras")
        files["keras"] = work / "model.keras"
    else:
        row["notes"].append("no .keras shipped: its variants are the shipped files only")
    for variant in app.quantizations:
        name = tflite_name(variant, "")
        if (model_dir / name).exists():
            shutil.copy2(model_dir / name, work / name)
            files[variant] = work / name
    unsupported = [v for v in VARIANTS if v not in app.quantizations]
    if unsupported:
        row["notes"].append(f"{', '.join(unsupported)}: not supported by this app's graph")

    bundle = ModelBundle.load(work, app=app)
    source = app.open_source(config, meta.get("data"))
    val = app.load_split(config, source, "val", meta=bundle.meta)
    if limit:
        val = trimmed(val, limit)
    model = None
    if "keras" in files:
        model = load_keras(files["keras"])
        row["parameters"] = parameters(app.inference_model(model, config, bundle.meta))
        missing = [v for v in app.quantizations if v not in files and (variants is None or v in variants)]
        representative = None
        if "int8" in missing:
            train = app.load_split(config, source, "train", meta=bundle.meta)
            representative = representative_inputs(train.inputs)
        for variant in missing:
            log(f"{app.name}: converting {variant}")
            path = work / tflite_name(variant, "")
            path.write_bytes(app.convert(model, config, bundle.meta, variant, representative))
            files[variant] = path
    gate = app.gate_metric(bundle.meta)
    row["metric_name"] = gate.name
    row["max_drop"] = config.max_drop
    row["higher_is_better"] = gate.higher_is_better
    row["val_examples"] = int(len(val.targets))
    for variant, path in files.items():
        log(f"{app.name}: scoring {variant} on {row['val_examples']} validation examples")
        if variant == "keras":
            run = app.keras_runner(model, config, bundle.meta)
        else:
            run = runner_for(app, ModelBundle.load(path, app=app))
            row["sizes"][variant] = path.stat().st_size
            row["flops"][variant] = flops(path)
        row["metric"][variant] = float(score(app, config, bundle.meta, run, val)[gate.name])
    sample = work / "sample.npz"
    np.savez(sample, **golden_inputs(take(val.inputs, slice(0, 1))))
    job = {"files": {k: str(v) for k, v in files.items()}, "input": str(sample)}
    return row, job


class trimmed:
    """The first `limit` examples of a decoded split, with its other per-example attributes."""

    def __init__(self, split, limit):
        from dlkit.engine import take

        self._split = split
        self.inputs, self.targets = take(split.inputs, slice(0, limit)), split.targets[:limit]

    def __getattr__(self, name):
        value = getattr(self._split, name)
        try:  # per-example arrays (texts, flags) shortened to match
            if len(value) == len(self._split.targets) and not isinstance(value, (str, dict)):
                return value[: len(self.targets)]
        except TypeError:
            pass
        return value


def smallest(row, max_drop):
    """The smallest TFLite variant of a row whose metric is within `max_drop` points of
    the Keras model's (the export gate's rule): what a device would ship."""
    from dlkit.app import Metric

    gate = Metric(row["metric_name"], row["higher_is_better"])
    candidates = [v for v in ("int8", "dynamic", "float16", "float32") if v in row["sizes"]]
    for variant in candidates:
        if (
            "keras" not in row["metric"]
            or gate.drop(row["metric"]["keras"], row["metric"][variant]) <= max_drop
        ):
            return variant
    return candidates[-1] if candidates else None


# --- training input pipeline -----------------------------------------------------------
def training_throughput(app, config, data=None, steps=30, warmup=3, rounds=2):
    """Training examples/s of a fresh model of `config` (its first stage) fed by the app's
    real input pipeline, and fed the same batches cached in memory; returns a dict with
    both rates and their ratio (1.0: the pipeline never makes the model wait).

    Each is timed over `steps` steps of a `fit` call after its first `warmup` steps
    (tracing, filling buffers), alternated `rounds` times in this process, the best of
    each kept (`ratio`); each round's own pair of rates is kept too (`rounds`), and its
    ratios (`paired_ratios`, `paired_median`): their spread is the machine's noise, to be
    read beside the ratio. The cached batches are the pipeline's first `steps`, held as
    tensors. `alone` is the pipeline's own rate, iterated without a model: above the cached rate,
    it would keep up on cores of its own, and a ratio below 1 is the two sharing cores.

    `cpu_ms_per_example` is the CPU time (this process's threads and its worker processes,
    `cpu_seconds`) each example took over the same timed steps, the median over rounds:
    `cached` is the model's step alone, `alone` the pipeline alone. When the cores are
    shared, their sum per example bounds the pipeline-fed rate: at most `cores` seconds of
    CPU a second.
    """
    import keras

    keras.utils.set_random_seed(config.seed)
    source = app.open_source(config, data)
    meta = app.make_meta(config, source)
    train = app.load_split(config, source, "train", meta=meta)
    model = app.build_model(config, meta)
    stage = app.training_stages(config, meta)[0]
    stage.prepare(model)
    build_optimizer(model)
    import tensorflow as tf

    pipeline = app.make_dataset(config, train, training=True, meta=meta).repeat()
    batches = list(pipeline.take(steps))  # computed once, then held as tensors
    cached = tf.data.Dataset.from_tensors(batches[0])
    for batch in batches[1:]:
        cached = cached.concatenate(tf.data.Dataset.from_tensors(batch))
    spec = pipeline.element_spec

    def loosen(*batch):
        """The batch with the pipeline's static shapes (its batch size unknown), so the
        model's step is traced as for the pipeline: only the feeding differs."""
        return tf.nest.map_structure(
            lambda tensor, known: tf.compat.v1.placeholder_with_default(tensor, known.shape),
            batch if len(batch) > 1 else batch[0],
            spec,
        )

    cached = cached.map(loosen).repeat()
    examples = sum(int(keras.tree.flatten(batch[0])[0].shape[0]) for batch in batches)

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch in (warmup - 1, warmup + steps - 1):  # where the timed steps start and end
                marks.append((time.perf_counter(), cpu_seconds()))

    def rate(dataset):
        """(examples/s, CPU ms per example) over `steps` steps that follow `warmup` steps
        of one `fit`."""
        marks.clear()
        model.fit(
            dataset, steps_per_epoch=warmup + steps, epochs=1, verbose=0, shuffle=False, callbacks=[Clock()]
        )
        (start, start_cpu), (end, end_cpu) = marks
        return examples / (end - start), 1000 * (end_cpu - start_cpu) / examples

    def alone():
        """The same for the pipeline by itself, over `steps` batches after `warmup`."""
        iterator = iter(pipeline)
        for _ in range(warmup):
            next(iterator)
        start, start_cpu = time.perf_counter(), cpu_seconds()
        for _ in range(steps):
            next(iterator)
        return examples / (time.perf_counter() - start), 1000 * (cpu_seconds() - start_cpu) / examples

    marks = []
    each, cpu = [], []
    for _ in range(rounds):  # alternated, best of each: background noise only slows a run down
        measured = {"cached": rate(cached), "pipeline": rate(pipeline), "alone": alone()}
        each.append({key: rate_ for key, (rate_, _) in measured.items()})
        cpu.append({key: ms for key, (_, ms) in measured.items()})
    fed = {key: max(r[key] for r in each) for key in ("cached", "pipeline", "alone")}
    paired = [r["pipeline"] / r["cached"] for r in each]
    return {
        "stage": stage.name,
        "batch_size": getattr(config, "batch_size", None),
        "steps": steps,
        "examples_per_s": fed,
        "ratio": fed["pipeline"] / fed["cached"],
        # each round's two rates side by side: their spread is the machine's noise
        "rounds": each,
        "paired_ratios": paired,
        "paired_median": statistics.median(paired),
        "cpu_ms_per_example": {key: statistics.median(r[key] for r in cpu) for key in fed},
        "cpu_rounds": cpu,
    }


def cpu_seconds():
    """CPU seconds used so far by this process (all its threads) and by its live child
    processes (the worker processes an input pipeline starts), user and system. Children
    are read from /proc; where there is none, this process alone."""
    total = time.process_time()
    proc = Path("/proc")
    if not proc.is_dir():
        return total
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == me:  # parent pid; then utime and stime, in clock ticks
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# --- the whole run -------------------------------------------------------------------
def machine():
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("tensorflow", "keras", "ai_edge_litert"):
        try:
            from importlib.metadata import version

            versions[package] = version(package.replace("_", "-"))
        except Exception:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), **versions}


def bench(
    apps, models=None, threads=(1, 2), repeat=30, process_repeat=3, limit=None, work=None, variants=None
):
    """Measures `apps` (names) side by side; returns the results dict (see module doc).

    Args:
        models: {app: model directory}; default the shipped model of each app.
        threads: thread counts to time latency at.
        repeat: timed calls per latency.
        process_repeat: `dlkit <app> predict` processes per model file (0: none).
        limit: score on at most this many validation examples (None: the whole split).
        work: a folder for the converted files (default: a temporary one, removed).
        variants: TFLite variants to convert when the model folder lacks them (default:
            every one the app supports).
    """
    from dlkit.data.cache import build_once
    from dlkit.paths import shipped_model_dir
    from dlkit.registry import get_app

    models = dict(models or {})
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "threads": list(threads),
        "repeat": repeat,
        "apps": {},
    }
    results["help_seconds"] = command_seconds(["--help"], process_repeat) if process_repeat else None
    with io.temp_dir("bench") as tmp:
        root = Path(work) if work else tmp
        plan = {"repeat": repeat, "apps": {}}
        peak = build_once("bench-peak-{}x{}x{}".format(*PEAK_SHAPE), peak_models, marker="peak.json")
        names = json.loads((peak / "peak.json").read_text())  # what peak_models returned
        plan["peak"] = {
            "files": {quantize: str(peak / name) for quantize, name in names.items()},
            "input": str(peak / "peak.npy"),
        }
        for name in apps:
            app = get_app(name)
            model_dir = Path(models.get(name) or shipped_model_dir(name))
            if name in models and not (model_dir / "model.json").exists():
                raise DlkitError(f"{model_dir}: no model.json (not a model directory)")
            if not (model_dir / "model.json").exists():
                results["apps"][name] = {"model": str(model_dir), "notes": ["no shipped model"]}
                continue
            log(f"{name}: preparing {model_dir}")
            row, job = prepare_app(app, model_dir, root / name, limit=limit, variants=variants)
            results["apps"][name] = row
            plan["apps"][name] = job
            app_inputs_folder = root / name / "inputs"
            app.write_sample_data(app_inputs_folder)
            job["predict_inputs"] = app.sample_inputs(app_inputs_folder)[:1]
        plan_path = root / "plan.json"
        io.write_json(plan_path, plan)
        results["peak_flops"] = {}
        for count in threads:
            log(f"timing every model with {counted(count, 'thread')}")
            measured = latency_process(plan_path, count)
            results["peak_flops"][str(count)] = measured.pop("peak")
            for name, latencies in measured.items():
                results["apps"][name].setdefault("latency_ms", {})[str(count)] = latencies
        for name, job in plan["apps"].items():
            row, files = results["apps"][name], job["files"]
            small = smallest(row, row["max_drop"])
            row["smallest"] = small
            row["process_seconds"] = {}
            if process_repeat:
                log(f"{name}: timing `dlkit {name} predict` processes")
                row["process_seconds"] = {
                    variant: process_seconds(name, job["predict_inputs"], files[variant], process_repeat)
                    for variant in ("keras", small)
                    if variant in files
                }
            summarise(row, results["peak_flops"])
    return results


def read_results(path):
    """A bench.json `bench` wrote, checked enough to merge into; one-line errors."""
    path = Path(path)
    try:
        results = io.read_json(path)
    except FileNotFoundError:
        raise DlkitError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DlkitError(f"{path}: not a bench.json ({e})") from None
    keys = ("machine", "threads", "apps", "peak_flops")
    if not isinstance(results, dict) or not all(k in results for k in keys) or "pipeline" in results:
        raise DlkitError(f"{path}: not a bench.json of `dlkit bench` (it needs {', '.join(keys)})")
    return results


def merge(base, update, why=""):
    """`update`'s app rows laid into `base` (both `bench` results), for an app measured
    again without measuring every app again.

    Each row from `update` records where it came from in `measured_apart`: the date, the
    machine and the matrix-product peak of its own run (its ratios and fractions of peak
    are side by side within that run only), and `why`. Rows of other apps stay as they
    are; the apps keep `base`'s order, new ones last. `base` is not changed.
    """
    if base["threads"] != update["threads"]:
        raise DlkitError(
            f"this run timed {update['threads']} threads, the results it joins "
            f"{base['threads']}: measure the same thread counts (--threads)"
        )
    merged = {**base, "apps": dict(base["apps"])}
    for name, row in update["apps"].items():
        merged["apps"][name] = {
            **row,
            "measured_apart": {
                "date": update.get("date", ""),
                "why": why,
                "machine": update["machine"],
                "peak_flops": update["peak_flops"],
            },
        }
    return merged


def pipeline_bench(apps, tiny=False, steps=30, warmup=3, rounds=2, overrides=()):
    """`training_throughput` of every app in `apps`: its default config on its offline
    default data, or with `tiny` its tiny config on its sample data (what the tests run),
    with `overrides` ("key=value", as `--set` takes them) applied to each app's config."""
    from dlkit.config import apply_overrides
    from dlkit.registry import get_app

    results = {"machine": machine(), "tiny": tiny, "overrides": list(overrides), "pipeline": {}}
    with io.temp_dir("bench-data") as tmp:
        for name in apps:
            app = get_app(name)
            data = app.write_sample_data(tmp / name) if tiny else None
            log(f"{name}: training throughput, input pipeline against cached batches")
            config = apply_overrides(app.default_config(tiny=tiny), overrides)
            results["pipeline"][name] = training_throughput(app, config, data, steps, warmup, rounds)
    return results


def summarise(row, peaks):
    """Adds the ratios the targets name: size of the smallest variant against float32,
    Keras latency over the smallest variant's, and the achieved fraction of peak."""
    small, sizes = row["smallest"], row["sizes"]
    if small and "float32" in sizes:
        row["size_ratio"] = sizes[small] / sizes["float32"]
    row["speedup"] = {}
    row["peak_fraction"] = {}
    for count, latencies in row.get("latency_ms", {}).items():
        if "keras" in latencies and small in latencies:
            row["speedup"][count] = latencies["keras"][0] / latencies[small][0]
        fractions = {}
        for variant, (median, _) in latencies.items():
            count_flops = row["flops"].get(variant if variant != "keras" else "float32")
            if count_flops:
                # Dynamic-range models multiply in int8 too (weights int8, inputs quantized on the fly).
                peak = peaks[count]["int8" if variant in ("int8", "dynamic") else "float32"]
                fractions[variant] = count_flops[0] / (median / 1000) / peak
        row["peak_fraction"][count] = fractions


# --- report --------------------------------------------------------------------------
def peak_text(peak_flops):
    """'1 thread: 97.0 GFLOP/s float32, 354.9 GOP/s int8, 2 threads: ...'"""
    return ", ".join(
        f"{counted(int(t), 'thread')}: {p['float32'] / 1e9:.1f} GFLOP/s float32, {p['int8'] / 1e9:.1f} GOP/s int8"
        for t, p in peak_flops.items()
    )


def markdown(results):
    """The results as Markdown: the machine, one row per app and variant, the summary per
    app, then one line for each app whose rows were measured in a run of their own."""
    m = results["machine"]
    threads = [str(t) for t in results["threads"]]
    lines = [
        f"Measured on {m['cpu']} ({m['cores']} cores), TensorFlow {m['tensorflow']}, "
        f"LiteRT {m['ai_edge_litert']}. Peak (a LiteRT matrix product): {peak_text(results['peak_flops'])}."
        + (f" `dlkit --help`: {results['help_seconds']:.2f} s." if results["help_seconds"] else ""),
        "",
        "| app | variant | size | params | FLOPs | "
        + " | ".join(f"latency {t}t ms (p90)" for t in threads)
        + f" | % of peak ({threads[-1]}t) | val metric |",
        "| --- | --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in threads) + " | ---: | ---: |",
    ]
    for name, row in results["apps"].items():
        if "latency_ms" not in row:
            lines.append(
                f"| {name} | - | | | | " + " | ".join("" for _ in threads) + f" | | {row['notes'][0]} |"
            )
            continue
        for variant in ("keras", *VARIANTS):
            if variant not in row["latency_ms"][threads[0]]:
                continue
            size = row["sizes"].get(variant)
            flops = row["flops"].get(variant if variant != "keras" else "float32")
            flops_text = ""
            if flops:
                flops_text = ("" if flops[1] else ">=") + f"{flops[0] / 1e9:.2f} G"
            cells = [
                name,
                variant,
                f"{size / 1e6:.2f} MB" if size else "",
                f"{row['parameters'] / 1e6:.2f} M" if variant == "keras" and "parameters" in row else "",
                flops_text,
                *(
                    "{:.2f} ({:.2f})".format(*row["latency_ms"][t][variant])
                    if variant in row["latency_ms"][t]
                    else ""
                    for t in threads
                ),
                f"{row['peak_fraction'][threads[-1]].get(variant, 0):.1%}"
                if variant in row["peak_fraction"][threads[-1]]
                else "",
                f"{row['metric_name']} {row['metric'][variant]:.4f}" if variant in row["metric"] else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| app | smallest | size / float32 | Keras / LiteRT latency (1t, "
        f"{threads[-1]}t) | predict process: .keras / .tflite | notes |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name, row in results["apps"].items():
        if "latency_ms" not in row:
            continue
        speedup = ", ".join(f"{row['speedup'][t]:.1f}x" for t in threads if t in row["speedup"]) or "-"
        process = row["process_seconds"]
        small = row["smallest"]
        process_text = " / ".join(f"{process[v]:.2f} s" if v in process else "-" for v in ("keras", small))
        ratio = f"{row['size_ratio']:.1%}" if "size_ratio" in row else "-"
        lines.append(
            f"| {name} | {small} | {ratio} | {speedup} | {process_text} | {'; '.join(row['notes'])} |"
        )
    apart = [
        (name, row["measured_apart"]) for name, row in results["apps"].items() if "measured_apart" in row
    ]
    if apart:
        lines.append("")
    for name, record in apart:
        when = f" on {record['date']}" if record.get("date") else ""
        why = f" ({record['why']})" if record.get("why") else ""
        peak = f" Peak: {peak_text(record['peak_flops'])}." if record.get("peak_flops") else ""
        lines.append(f"- The {name} rows were measured{when} in a run of their own{why}.{peak}")
    return "\n".join(lines) + "\n"


def pipeline_markdown(results):
    """The training input pipeline table."""
    m = results["machine"]
    lines = [
        f"Training input pipeline on {m['cpu']} ({m['cores']} cores), TensorFlow {m['tensorflow']}"
        f"{', tiny configs' if results['tiny'] else ', default configs and offline data'}: examples/s of "
        "each app's first training stage fed by its tf.data pipeline and by the same batches cached "
        "in memory, and the pipeline's own rate with no model; CPU time per example (the process and "
        "its worker processes) of the model's step fed from cache, and of the pipeline alone."
        + (f" Config overrides: {', '.join(results['overrides'])}." if results.get("overrides") else ""),
        "",
        "| app | stage | batch | pipeline ex/s | cached ex/s | ratio | paired rounds: median [min, max] "
        "| pipeline alone ex/s | CPU ms/example: step, pipeline |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results["pipeline"].items():
        rates = row["examples_per_s"]
        alone = f"{rates['alone']:.1f}" if "alone" in rates else ""  # older results lack them
        paired = row.get("paired_ratios")
        spread = f"{row['paired_median']:.2f} [{min(paired):.2f}, {max(paired):.2f}]" if paired else ""
        cpu = row.get("cpu_ms_per_example")
        cpu = f"{cpu['cached']:.3g}, {cpu['alone']:.3g}" if cpu else ""
        lines.append(
            f"| {name} | {row['stage']} | {row['batch_size'] or 'auto'} | {rates['pipeline']:.1f} | "
            f"{rates['cached']:.1f} | {row['ratio']:.2f} | {spread} | {alone} | {cpu} |"
        )
    return "\n".join(lines) + "\n"


def write(results, out_dir):
    """bench.json and bench.md (pipeline.json and .md for `pipeline_bench` results) into
    `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "pipeline" if "pipeline" in results else "bench"
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    io.write_json(json_path, results)
    with io.atomic_path(md_path) as tmp:
        tmp.write_text(
            pipeline_markdown(results) if stem == "pipeline" else markdown(results), encoding="utf-8"
        )
    return json_path, md_path


if __name__ == "__main__":  # the latency worker: python -m dlkit.bench PLAN THREADS OUT
    plan_file, thread_count, out_file = sys.argv[1:4]
    measured = measure_latencies(plan_file, int(thread_count))
    Path(out_file).write_text(json.dumps(measured))
