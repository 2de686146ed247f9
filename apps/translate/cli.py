"""`dlkit translate predict`: text in, translation out (a .tflite model needs no TensorFlow)."""

import json
import re
import sys
from pathlib import Path

import click

from dlkit.cli import EXIT_USAGE, handle_errors, model_option


def read_lines(path):
    """Inputs from a file, one per line; blank lines are skipped."""
    from dlkit.errors import InvalidInputError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not UTF-8 text") from None
    return [line for line in text.splitlines() if line.strip()]


def register(group, app):
    @group.command(help="Translate texts given as arguments or one per line in --file.")
    @click.argument("texts", nargs=-1)
    @click.option("--file", "file", default=None, metavar="FILE", help="Translate every line of FILE.")
    @model_option
    @click.option("--beam-width", type=int, default=None, help="Beam width for sentence models (1 = greedy).")
    @click.option("--plot", default=None, metavar="DIR", help="Write an attention-map PNG per input here.")
    @click.option("--batch-size", type=int, default=64, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSON lines).")
    @handle_errors
    def predict(texts, file, model_path, beam_width, plot, batch_size, as_json):
        import numpy as np

        from dlkit.edge.bundle import ModelBundle
        from dlkit.errors import DlkitError, InvalidInputError
        from dlkit.paths import default_model
        from dlkit.predict import model_runner

        inputs = list(texts) + (read_lines(file) if file else [])
        if not inputs:
            raise DlkitError("nothing to translate: give texts as arguments or --file FILE")
        bundle = ModelBundle.load(model_path or default_model(app.name), app=app.name, prefer="tflite")
        meta = bundle.meta
        if beam_width:
            meta["beam_width"] = beam_width
        run = model_runner(bundle, app)
        edge = app.edge
        failed = 0
        ready = []
        for text in inputs:
            try:
                clean = edge.read_input(text, meta)
                ids = edge.preprocess(clean, meta)
            except InvalidInputError as error:
                failed += 1
                click.echo(f"skipped: {error}" if len(inputs) > 1 else f"Error: {error}", err=True)
                continue
            unknown = edge.unknown_characters(clean, meta)
            if unknown:
                click.echo(
                    f"warning: {text!r}: unknown characters {''.join(unknown)!r} read as <unk>", err=True
                )
            ready.append((text, clean, ids))
        for start in range(0, len(ready), batch_size):
            chunk = ready[start : start + batch_size]
            outputs = run(np.stack([ids for _, _, ids in chunk]))
            for index, ((text, clean, _), result) in enumerate(zip(chunk, edge.postprocess(outputs, meta))):
                weights = result.pop("attention", None)
                if plot and weights is not None:
                    result["plot"] = write_plot(plot, start + index, clean, result["translation"], weights)
                if as_json:
                    click.echo(json.dumps({"input": text, **result}, ensure_ascii=False))
                else:
                    click.echo(edge.format_result(text, result))
        if plot and meta["model"] != "attention":
            click.echo("note: attention maps are drawn for the date (attention) model only", err=True)
        if not bundle.is_tflite:
            click.echo(f"(translated with Keras model {bundle.path})", err=True)
        if failed:
            sys.exit(EXIT_USAGE)

    group.add_command(predict)


def write_plot(folder, index, clean, translation, weights):
    from dlkit.plots import attention_plot

    slug = re.sub(r"[^0-9a-z]+", "_", clean.lower()).strip("_")[:40] or "input"
    path = Path(folder) / f"{index:03d}_{slug}.png"
    attention_plot(weights, list(clean), list(translation), path, title=f"{clean} -> {translation}")
    return str(path)
