"""The `dlkit` command: `dlkit <app> <verb> [options]`.

This module imports only click and the standard library at load time; TensorFlow is
imported inside the commands that need it, so `dlkit --help` and edge predict start fast.
"""

import dataclasses
import functools
import json
import os
import sys
from pathlib import Path

import click

from dlkit import __version__
from dlkit.console import counted
from dlkit.errors import DlkitError
from dlkit.export import QUANTIZATIONS
from dlkit.registry import app_names, get_app

EXIT_USAGE = 2


def one_line(message):
    """A message on one line: a library's own text inside ours may hold line breaks."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


EXIT_INTERRUPTED = 130  # a shell's code for a process stopped by Ctrl-C


def handle_errors(function=None, *, interrupted="interrupted"):
    """Turns DlkitError into `Error: ...` + exit 2, and Ctrl-C into the line `interrupted`
    (train: how to resume) + exit 130. Use as `@handle_errors` or
    `@handle_errors(interrupted=...)`."""
    if function is None:
        return functools.partial(handle_errors, interrupted=interrupted)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except DlkitError as error:
            click.echo(f"Error: {one_line(error)}", err=True)
            sys.exit(EXIT_USAGE)
        except OSError as error:  # a full disk, a file vanished or locked while we worked
            where = f"{error.filename}: " if error.filename else ""
            click.echo(f"Error: {where}{one_line(error.strerror or error)}", err=True)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            click.echo(f"\n{interrupted}", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


class UnreadableInputs:
    """How the commands that go through many inputs (predict, listen) report the ones they
    cannot read: each on a `skipped:` line while the others go on (plus a JSON line with
    `--json`), then a count and exit 2 at the end. Given a single input, it is `Error:`
    and exit 2, as any other bad argument.

    Args:
        many: bool. Several inputs, or a folder (`several_inputs`).
        as_json: bool. Also write `{"input": ..., "error": ...}` to stdout.
    """

    def __init__(self, many, as_json=False):
        self.many = many
        self.as_json = as_json
        self.count = 0

    def skip(self, name, error):
        self.count += 1
        message = one_line(error)
        if self.as_json:
            click.echo(json.dumps({"input": str(name), "error": message}))
        click.echo(f"skipped: {message}" if self.many else f"Error: {message}", err=True)

    def finish(self):
        """Exits 2 when any input could not be read."""
        if self.count:
            if self.many:
                click.echo(f"{counted(self.count, 'input')} could not be read", err=True)
            sys.exit(EXIT_USAGE)


def several_inputs(arguments, inputs):
    """Whether a command was given several inputs: more than one, or a folder (whose files
    it reports one by one even when it holds one)."""
    return len(inputs) > 1 or any(Path(a).is_dir() for a in arguments)


def resolve_config(app, overrides=(), seed=None, epochs=None, weights=None, tiny=False):
    from dlkit.config import apply_overrides

    config = app.default_config(tiny)
    config = apply_overrides(config, overrides)
    extra = {"seed": seed, "epochs": epochs, "weights": weights}
    for key, value in extra.items():
        if value is None:
            continue
        if not hasattr(config, key):
            raise DlkitError(f"{app.name} has no {key!r} setting")
        config = apply_overrides(config, [f"{key}={value}"])
    return config


def explicit_settings(overrides, **fields):
    """What the command line of the current click command set explicitly, for a resumed
    run to check against its own (dlkit.runner.resume_conflicts): config `overrides` plus
    the config `fields` given (not None), and --data, --init and the training options
    typed or taken from the environment, not left at their defaults, and --tiny."""
    from click.core import ParameterSource

    from dlkit.distribute import TrainOptions

    context = click.get_current_context()
    given = {
        name
        for name in context.params
        if context.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    }
    option_names = {field.name for field in dataclasses.fields(TrainOptions)}
    asked = {
        "overrides": [*overrides, *(f"{key}={value}" for key, value in fields.items() if value is not None)],
        "options": {name: context.params[name] for name in option_names & given},
    }
    asked.update({name: context.params[name] for name in ("data", "init", "tiny") if name in given})
    return asked


def data_option(app):
    return click.option("--data", "data", default=None, metavar="SOURCE", help=app.data_help)


def model_option(function):
    return click.option(
        "--model",
        "model_path",
        default=None,
        metavar="PATH",
        help="A run/export directory, a .keras/.tflite file, or 'last' (the latest run). "
        "Default: the shipped model.",
    )(function)


def uses_tensorflow(function):
    """Imports TensorFlow first, its C++ start-up lines silenced (dlkit.quiet); with a
    `devices` option above 1 and no GPU, the CPU is split into that many logical devices
    before the runtime starts, and with `multi_worker` the workers' strategy is made then
    (dlkit.distribute)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from dlkit.distribute import split_cpu, worker_strategy
        from dlkit.quiet import import_tensorflow

        def before_start():
            split_cpu(kwargs.get("devices") or 1)
            # A multi-worker run, or one resumed in a cluster (TF_CONFIG set, as at its start),
            # joins the other workers before the runtime starts.
            if kwargs.get("multi_worker") or (kwargs.get("resume") and os.environ.get("TF_CONFIG")):
                worker_strategy()

        import_tensorflow(before_start=before_start)
        return function(*args, **kwargs)

    return wrapper


def make_app_group(name):
    """Builds the click group of one app; every app gets the same verbs."""
    app = get_app(name)

    @click.group(name=name, help=app.summary, short_help=app.summary)
    def group():
        pass

    @group.command(help="Train a model; writes a run directory with model, metrics and plots.")
    @data_option(app)
    @click.option("--run-dir", default=None, metavar="DIR", help="Run directory (default runs/<app>/trainN).")
    @click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable)."
    )
    @click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=None,
        help="Seed for Python, numpy and TensorFlow (with --deterministic, the same weights every time).",
    )
    @click.option(
        "--epochs",
        type=click.IntRange(min=1),
        default=None,
        help="Epochs (first stage for transfer learning).",
    )
    @click.option(
        "--weights",
        default=None,
        metavar="W",
        help="Backbone weights: dlkit (shipped), imagenet, none, or a file.",
    )
    @click.option(
        "--init", default=None, metavar="MODEL", help="Start from a trained model (fine-tune it on --data)."
    )
    @click.option(
        "--resume",
        is_flag=True,
        help="Continue an interrupted run (--run-dir or the latest) with the settings it started with; "
        "options given beside it must agree with them.",
    )
    @click.option("--tiny", is_flag=True, help="Use the tiny test configuration (seconds, not minutes).")
    @click.option(
        "--deterministic",
        is_flag=True,
        help="Deterministic ops and pipeline: the same seed gives the same weights (slower).",
    )
    @click.option("--jit", is_flag=True, help="Compile each training step with XLA.")
    @click.option(
        "--mixed-precision",
        is_flag=True,
        help="Compute in bfloat16 (CPU) or float16 (GPU, loss-scaled); the saved model stays float32.",
    )
    @click.option(
        "--devices",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Train on this many devices (MirroredStrategy): GPUs, or the CPU split in logical devices.",
    )
    @click.option(
        "--multi-worker",
        is_flag=True,
        help="Train on the machines TF_CONFIG names (MultiWorkerMirroredStrategy); run it on each.",
    )
    @handle_errors(interrupted="interrupted; continue the run with --resume")
    @uses_tensorflow
    def train(data, run_dir, overrides, seed, epochs, weights, init, resume, tiny, **flags):
        from dlkit import runner
        from dlkit.distribute import TrainOptions

        config = resolve_config(app, overrides, seed, epochs, weights, tiny)
        asked = explicit_settings(overrides, seed=seed, epochs=epochs, weights=weights) if resume else None
        options = TrainOptions(**flags)
        runner.train(
            app,
            config,
            data=data,
            run_dir=run_dir,
            resume=resume,
            init=init,
            options=options,
            asked=asked,
            tiny=tiny,
        )

    @group.command(help="Score a .keras or .tflite model on a data split.")
    @model_option
    @data_option(app)
    @click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
    @click.option("--out", default=None, metavar="DIR", help="Write evaluation.json and plots here.")
    @click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
    @handle_errors
    @uses_tensorflow
    def evaluate(model_path, data, split, out, as_json, **options):
        from dlkit import io, runner

        if out:
            io.check_writable_dir(out, "--out")
        report = runner.evaluate(app, model_path, data, split, out, options=options)
        if as_json:
            click.echo(runner.dumps(report))
            return
        for line in report_lines(report):
            click.echo(line)

    for option in app.predict_options:
        if option.evaluate:
            evaluate = option.click_option()(evaluate)

    @group.command(help="Convert a trained .keras model to TFLite, checked against Keras.")
    @model_option
    @data_option(app)
    @click.option(
        "--quantize",
        type=click.Choice(QUANTIZATIONS),
        multiple=True,
        default=("float32",),
        show_default=True,
        help="Repeat for several variants.",
    )
    @click.option(
        "--max-drop",
        type=click.FloatRange(min=0),
        default=None,
        help="Allowed metric drop in points (app default).",
    )
    @click.option("--out", default=None, metavar="DIR", help="Output directory (default: next to the model).")
    @handle_errors
    @uses_tensorflow
    def export(model_path, data, quantize, max_drop, out, **options):
        from dlkit import io
        from dlkit.export.bundle import export as run_export

        if out:
            io.check_writable_dir(out, "--out")
        model_path = model_path or "last"
        for variant in quantize:
            run_export(app, model_path, variant, data=data, max_drop=max_drop, out_dir=out, options=options)

    for option in app.export_options:
        export = click.option(
            option.flag, option.name, is_flag=option.type is bool, default=option.default, help=option.help
        )(export)

    group.add_command(predict_command(app))

    @group.command(help="Show a model's metadata and metrics, or the app's default config.")
    @model_option
    @click.option(
        "--json", "as_json", is_flag=True, help="Everything, as JSON (labels, vocabularies, config)."
    )
    @handle_errors
    def info(model_path, as_json):
        from dlkit.runner import describe, dumps, info_lines

        info = describe(app, model_path)
        click.echo(dumps(info) if as_json else "\n".join(info_lines(app, info)))

    app.register_cli(group)
    return group


def report_lines(report):
    """An evaluation report as lines: headline numbers (with their 95% interval when the
    report has `<name>_ci95`), per-class rows, then any named groups of numbers (a
    diagnostic subset, peers scored on the same split)."""

    def number(key, value, row):
        interval = row.get(f"{key}_ci95")
        shown = f"{value:.4f}" if isinstance(value, float) else f"{value}"
        return shown + (f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "")

    def numbers(row):
        return ", ".join(
            f"{key} {number(key, value, row)}"
            for key, value in row.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        )

    rows = [(key, number(key, value, report)) for key, value in report.items() if isinstance(value, float)]
    rows += [(label, numbers(row)) for label, row in report.get("per_class", {}).items()]
    if report.get("options"):  # how the model was run (`--augment`), so the numbers say it
        rows.insert(0, ("options", ", ".join(f"{k} {v}" for k, v in report["options"].items())))
    for key, value in report.items():
        if key in ("per_class", "options") or not isinstance(value, dict) or not value:
            continue
        group = value.items() if all(isinstance(v, dict) for v in value.values()) else [(key, value)]
        rows += [  # a group of lists (a curve, plot points) has no number to show
            (f"{key}: {name}" if name != key else key, numbers(row)) for name, row in group if numbers(row)
        ]
    width = max([18, *(len(label) for label, _ in rows)])
    return [f"{label:>{width}}: {text}" for label, text in rows]


PREDICT_HELP = {
    "image": "Predict on image files, videos (a result per frame, an annotated video) or folders",
    "audio": "Predict on audio files or folders",
    "text": "Predict on texts given as arguments or one per line in --file",
    "pair": "Predict on pairs of inputs (two arguments each)",
}


def predict_command(app):
    """`dlkit <app> predict`: one pipeline and one --json/--out behaviour for every app."""
    kind = app.input_kind

    @click.command(
        name="predict",
        help=f"{PREDICT_HELP[kind]} (a .tflite model runs without TensorFlow). With --out, "
        "writes predictions.json and the app's per-input files there.",
    )
    @click.argument("inputs", nargs=-1, required=kind != "text")
    @model_option
    @click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSON lines).")
    @click.option(
        "--out",
        default=None,
        metavar="DIR",
        help=f"Write predictions.json{' and annotated files' if app.saves_predictions else ''} here"
        + (f" (default runs/{app.name}/predictN)." if app.saves_predictions else "."),
    )
    @handle_errors
    def predict(inputs, model_path, batch_size, as_json, out, file=None, **options):
        from dlkit import io
        from dlkit.console import ProgressPrinter, log
        from dlkit.edge.video import is_video
        from dlkit.predict import Predictor, expand_sources, next_predict_dir

        items = expand_sources(kind, inputs, file)
        if out is not None:
            io.check_writable_dir(out, "--out")
        for option in app.predict_options:
            if option.metavar == "DIR" and options.get(option.name):
                io.check_writable_dir(options[option.name], option.flag)
        predictor = Predictor.load(app, model_path, **options)
        chosen = out is not None
        if out is None and app.saves_predictions:
            out = next_predict_dir(app.name)
        many = several_inputs(inputs if kind in ("image", "audio") else (), items)
        videos = kind == "image" and any(is_video(item) for item in items)
        progress = ProgressPrinter() if (many or videos) and kind != "text" else None
        unreadable = UnreadableInputs(many, as_json)
        records, interrupted = [], False
        try:
            for prediction in predictor(items, batch_size=batch_size, out_dir=out, progress=progress):
                for warning in prediction.warnings:
                    click.echo(f"warning: {prediction.name}: {warning}", err=True)
                if prediction.error:
                    unreadable.skip(prediction.name, prediction.error)
                    continue
                record = {"input": prediction.name, **prediction.result}
                records.append(record)
                if as_json:
                    click.echo(json.dumps(record, ensure_ascii=False))
                else:
                    click.echo(app.format_result(prediction.label, prediction.result))
        except KeyboardInterrupt:  # what was predicted so far is still written
            interrupted = True
        if out is not None and (chosen or records):
            io.write_json(Path(out) / "predictions.json", records)
            log(f"wrote {len(records)} predictions to {Path(out) / 'predictions.json'}")
        if interrupted:
            done = len(records) + unreadable.count
            click.echo(
                f"interrupted after {counted(done, 'prediction')} (a video's frames one each)"
                if videos
                else f"interrupted after {done} of {len(items)} inputs",
                err=True,
            )
            sys.exit(EXIT_INTERRUPTED)
        if not predictor.bundle.is_tflite:
            log(f"(predicted with Keras model {predictor.bundle.path})")
        unreadable.finish()

    if kind == "text":
        predict = click.option(
            "--file", "file", default=None, metavar="FILE", help="Also read one input per line of FILE."
        )(predict)
    for option in app.predict_options:
        predict = option.click_option()(predict)
    return predict


def model_pairs(ctx, param, values):
    """`--model APP=DIR` values -> {app: dir}."""
    models = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or name not in app_names():
            raise click.BadParameter(
                f"expected APP=DIR with APP one of {', '.join(app_names())}, got {value!r}"
            )
        if not (Path(path) / "model.json").exists():
            raise click.BadParameter(f"{path}: no model.json (not a model directory)")
        models[name] = path
    return models


def thread_counts(ctx, param, value):
    """`--threads 1,2` -> (1, 2)."""
    try:
        counts = tuple(int(t) for t in value.split(","))
    except ValueError:
        raise click.BadParameter(f"counts separated by commas (1,2), got {value!r}") from None
    if min(counts) < 1:
        raise click.BadParameter(f"counts of at least 1, got {value!r}")
    return counts


@click.command(
    "bench",
    help="Measure the apps' shipped models side by side: sizes, FLOPs, latency of Keras and every "
    "LiteRT variant at 1 and 2 threads, each variant's validation metric, predict process time.",
)
@click.option(
    "--app", "apps", multiple=True, type=click.Choice(app_names()), help="Only this app (repeatable)."
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="APP=DIR",
    callback=model_pairs,
    help="Bench this model for APP.",
)
@click.option(
    "--threads",
    default="1,2",
    show_default=True,
    callback=thread_counts,
    help="Thread counts to time latency at.",
)
@click.option(
    "--repeat", type=click.IntRange(min=1), default=30, show_default=True, help="Timed calls per latency."
)
@click.option(
    "--process-repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="predict processes per file.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Score on the first N validation examples only."
)
@click.option(
    "--pipeline",
    is_flag=True,
    help="Measure the training input pipeline instead: examples/s fed by tf.data against cached batches.",
)
@click.option("--tiny", is_flag=True, help="With --pipeline: tiny configs on sample data (seconds).")
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="With --pipeline: rounds of cached and pipeline-fed steps, alternated (best of each, and each round's ratio).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --pipeline: override a config field of every app benched (repeatable).",
)
@click.option(
    "--out",
    default="runs/bench",
    show_default=True,
    metavar="DIR",
    help="Writes bench.json/.md (pipeline.json/.md).",
)
@click.option(
    "--into",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="BENCH_JSON",
    help="Lay this run's app rows into an earlier bench.json (the other apps' rows stay, each "
    "row keeps its own run's date, machine and peak) and write the merged results to --out.",
)
@click.option("--why", default="", metavar="TEXT", help="With --into: why these apps were measured again.")
@handle_errors
@uses_tensorflow
def bench_command(
    apps, models, threads, repeat, process_repeat, limit, pipeline, tiny, rounds, overrides, out, into, why
):
    from dlkit.bench import bench, markdown, merge, pipeline_bench, pipeline_markdown, read_results, write

    if overrides and not pipeline:
        raise click.UsageError("--set applies to --pipeline (the shipped models are benched as they are)")
    if into and pipeline:
        raise click.UsageError("--into merges model benches, not --pipeline results")
    if why and not into:
        raise click.UsageError("--why goes with --into")
    base = read_results(into) if into else None  # before the long run, so a bad file stops it now
    if pipeline:
        results = pipeline_bench(list(apps) or app_names(), tiny=tiny, rounds=rounds, overrides=overrides)
        click.echo(pipeline_markdown(results))
    else:
        results = bench(list(apps) or app_names(), models, threads, repeat, process_repeat, limit)
        if base is not None:
            results = merge(base, results, why)
        click.echo(markdown(results))
    json_path, md_path = write(results, out)
    click.echo(f"wrote {json_path} and {md_path}", err=True)


class LazyGroup(click.Group):
    """Builds an app's sub-group only when it is invoked or listed; `bench` spans them all."""

    def list_commands(self, ctx):
        return [*app_names(), "bench"]

    def get_command(self, ctx, name):
        if name == "bench":
            return bench_command
        if name not in app_names():
            return None
        return make_app_group(name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlkit")
@click.option(
    "--verbose",
    is_flag=True,
    help="Show TensorFlow's and LiteRT's own console lines too (or set DLKIT_VERBOSE=1).",
)
def cli(verbose):
    """dlkit: train, evaluate, export and run deep-learning apps on device.

    \b
    Examples:
      dlkit classify train                      # offline default data, shipped backbone
      dlkit classify export --quantize int8
      dlkit classify predict photo.jpg          # shipped model, no TensorFlow needed
    """
    if verbose:
        from dlkit.quiet import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"


def main():
    # TensorFlow's C++ chatter hides our own progress lines (`--verbose` shows it).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cli(prog_name="dlkit")


if __name__ == "__main__":
    main()
