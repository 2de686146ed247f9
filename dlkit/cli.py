"""The `dlkit` command: `dlkit <app> <verb> [options]`.

This module imports only click and the standard library at load time; TensorFlow is
imported inside the commands that need it, so `dlkit --help` and edge predict start fast.
"""

import functools
import json
import os
import sys

import click

from dlkit import __version__
from dlkit.apps import APPS, get_app
from dlkit.errors import DlkitError
from dlkit.export import QUANTIZATIONS

EXIT_USAGE = 2


def handle_errors(function):
    """Turns DlkitError into `Error: ...` + exit 2, and Ctrl-C into a resume hint."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except DlkitError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            click.echo("\ninterrupted; continue a training run with --resume", err=True)
            sys.exit(130)

    return wrapper


def resolve_config(app, overrides=(), seed=None, epochs=None, weights=None, tiny=False):
    from dlkit.config import apply_overrides

    config = app.config.Config.tiny() if tiny else app.config.Config()
    config = apply_overrides(config, overrides)
    extra = {"seed": seed, "epochs": epochs, "weights": weights}
    for key, value in extra.items():
        if value is None:
            continue
        if not hasattr(config, key):
            raise DlkitError(f"{app.name} has no {key!r} setting")
        config = apply_overrides(config, [f"{key}={value}"])
    return config


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
        type=int,
        default=None,
        help="Seed for Python, numpy and TensorFlow (parallel augmentation is not bit-repeatable).",
    )
    @click.option("--epochs", type=int, default=None, help="Epochs (first stage for transfer learning).")
    @click.option(
        "--weights",
        default=None,
        metavar="W",
        help="Backbone weights: dlkit (shipped), imagenet, none, or a file.",
    )
    @click.option(
        "--init", default=None, metavar="MODEL", help="Start from a trained model (fine-tune it on --data)."
    )
    @click.option("--resume", is_flag=True, help="Continue an interrupted run (--run-dir or the latest).")
    @click.option("--tiny", is_flag=True, help="Use the tiny test configuration (seconds, not minutes).")
    @handle_errors
    def train(data, run_dir, overrides, seed, epochs, weights, init, resume, tiny):
        from dlkit import runner

        config = resolve_config(app, overrides, seed, epochs, weights, tiny)
        runner.train(app, config, data=data, run_dir=run_dir, resume=resume, init=init)

    @group.command(help="Score a .keras or .tflite model on a data split.")
    @model_option
    @data_option(app)
    @click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
    @click.option("--out", default=None, metavar="DIR", help="Write evaluation.json and plots here.")
    @click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
    @handle_errors
    def evaluate(model_path, data, split, out, as_json):
        from dlkit import runner

        report = runner.evaluate(app, model_path, data, split, out)
        if as_json:
            click.echo(runner.dumps(report))
            return
        for key, value in report.items():
            if isinstance(value, float):
                click.echo(f"{key:>18}: {value:.4f}")
        for label, row in report.get("per_class", {}).items():
            values = ", ".join(
                f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
                for key, value in row.items()
            )
            click.echo(f"{label:>18}: {values}")

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
    @click.option("--max-drop", type=float, default=None, help="Allowed metric drop in points (app default).")
    @click.option("--out", default=None, metavar="DIR", help="Output directory (default: next to the model).")
    @handle_errors
    def export(model_path, data, quantize, max_drop, out):
        from dlkit.export.bundle import export as run_export

        model_path = model_path or "last"
        for variant in quantize:
            run_export(app, model_path, variant, data=data, max_drop=max_drop, out_dir=out)

    @group.command(help="Predict on files or folders (a .tflite model runs without TensorFlow).")
    @click.argument("inputs", nargs=-1, required=True)
    @model_option
    @click.option("--top-k", type=int, default=3, show_default=True, help="Labels to show per input.")
    @click.option("--batch-size", type=int, default=32, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSON lines).")
    @handle_errors
    def predict(inputs, model_path, top_k, batch_size, as_json):
        from dlkit.console import ProgressPrinter
        from dlkit.predict import predict as run_predict

        failed = 0
        many = len(inputs) > 1 or any(not str(i).lower().endswith(tuple(_suffixes())) for i in inputs)
        progress = ProgressPrinter() if many else None
        for path, result, error in run_predict(app, inputs, model_path, batch_size, progress, top_k=top_k):
            if error:
                failed += 1
                if as_json:
                    click.echo(json.dumps({"file": str(path), "error": error}))
                click.echo(f"skipped: {error}" if many else f"Error: {error}", err=True)
            elif as_json:
                click.echo(json.dumps({"file": str(path), **result}))
            else:
                click.echo(app.edge.format_result(str(path), result))
        if failed:
            if many:
                click.echo(f"{failed} input(s) could not be read", err=True)
            sys.exit(EXIT_USAGE)

    @group.command(help="Show a model's metadata and metrics, or the app's default config.")
    @model_option
    @handle_errors
    def info(model_path):
        from dlkit.runner import describe, dumps

        click.echo(dumps(describe(app, model_path)))

    extend_app_group(group, app)
    return group


def extend_app_group(group, app):
    """An app may add verbs or replace generic ones in `apps/<name>/cli.py` (`register`)."""
    import importlib
    import importlib.util

    module_name = f"{app.package}.cli"
    if importlib.util.find_spec(module_name) is None:
        return
    importlib.import_module(module_name).register(group, app)


def _suffixes():
    from dlkit.edge.image import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


class LazyGroup(click.Group):
    """Builds an app's sub-group only when it is invoked or listed."""

    def list_commands(self, ctx):
        return sorted(APPS)

    def get_command(self, ctx, name):
        if name not in APPS:
            return None
        return make_app_group(name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlkit")
def cli():
    """dlkit: train, evaluate, export and run deep-learning apps on device.

    \b
    Examples:
      dlkit classify train                      # offline default data, shipped backbone
      dlkit classify export --quantize int8
      dlkit classify predict photo.jpg          # shipped model, no TensorFlow needed
    """


def main():
    # TensorFlow's C++ start-up chatter hides our own progress lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cli(prog_name="dlkit")


if __name__ == "__main__":
    main()
