"""`dlkit trigger listen`: streaming detection over files of any length (no TensorFlow with
a .tflite model)."""

import json
import time
from pathlib import Path

import click


def listen_command(app):
    from dlkit.cli import UnreadableInputs, handle_errors, model_option, several_inputs

    @click.command(
        name="listen",
        help="Detect the trigger word in audio files (or folders of them) as a stream: chunk "
        "by chunk through the streaming TFLite model, in bounded memory. Prints each "
        "detection's time.",
    )
    @click.argument("files", nargs=-1, required=True, type=click.Path())
    @model_option
    @click.option(
        "--threshold",
        type=click.FloatRange(0, 1),
        default=None,
        help="Probability threshold (model default).",
    )
    @click.option(
        "--chime",
        "chime_dir",
        default=None,
        metavar="DIR",
        help="Write each file with a chime at every detection.",
    )
    @click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="One JSON object per detection (JSON lines), as they fire.",
    )
    @handle_errors
    def listen(files, model_path, threshold, chime_dir, as_json):
        from dlkit import io
        from dlkit.apps.trigger.edge import listen as stream
        from dlkit.apps.trigger.edge import tflite_stepper, triggers_text
        from dlkit.edge.bundle import ModelBundle
        from dlkit.errors import DlkitError, InvalidInputError
        from dlkit.paths import default_model
        from dlkit.predict import AUDIO_SUFFIXES, expand_files

        bundle = ModelBundle.load(model_path or default_model(app.name), app=app, prefer="tflite")
        if not bundle.is_tflite:
            raise DlkitError(
                f"{bundle.path}: listen streams through an exported .tflite model; run export first"
            )
        if chime_dir:
            io.check_writable_dir(chime_dir, "--chime")
        step = tflite_stepper(bundle.path)
        paths = expand_files(files, AUDIO_SUFFIXES)
        unreadable = UnreadableInputs(several_inputs(files, paths), as_json)
        for path in paths:
            chime_to = Path(chime_dir) / f"{path.stem}_chime.wav" if chime_dir else None
            start, count = time.perf_counter(), 0
            events = stream(path, step, bundle.meta, chime_to=chime_to, threshold=threshold)
            try:
                while True:
                    try:
                        seconds, probability = next(events)
                    except StopIteration as done:
                        heard = done.value
                        break
                    count += 1
                    if as_json:
                        event = {
                            "input": str(path),
                            "time": round(seconds, 3),
                            "probability": round(probability, 4),
                        }
                        click.echo(json.dumps(event))
                    else:
                        click.echo(f"{path}: trigger at {seconds:.2f} s (p={probability:.2f})")
            except InvalidInputError as error:  # the other files still stream
                unreadable.skip(path, error)
                continue
            elapsed = time.perf_counter() - start
            click.echo(
                f"{path}: {triggers_text(count)} in {heard:.1f} s of audio (streamed in {elapsed:.1f} s)",
                err=True,
            )
            if chime_to:
                click.echo(f"wrote {chime_to}", err=True)
        unreadable.finish()

    return listen
