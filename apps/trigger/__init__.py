"""Trigger word detection: the course's Conv1D + GRU network over a spectrogram computed in
the model, streaming on device.

Data: by default 10-second clips synthesized as in the course: real background sounds
(Tux Paint, freedesktop) and coloured noise, the trigger word ("activate") spoken by
espeak-ng voices, and real recorded speech (Tux Paint's spoken stamp names) as
negatives; voices, speakers and sounds of validation and test never occur in training.
`--data DIR` takes a folder with positives/, negatives/ and backgrounds/ recordings, and/or
recordings/ of long audio with a label file each.

Example:
    dlkit trigger predict recording.wav
    dlkit trigger listen meeting.flac --chime out/
"""

import functools
from pathlib import Path

from dlkit.app import App, Metric
from dlkit.console import log
from dlkit.errors import InvalidInputError
from dlkit.registry import register


@functools.cache
def _can_plot():
    """matplotlib is there (the train extra); an edge-only install says so once and skips
    the plots."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log("trigger: plots need matplotlib (pip install matplotlib); none written")
        return False
    return True


@register
class TriggerApp(App):
    name = "trigger"
    summary = "Trigger word detection: Conv1D + GRU over an in-model spectrogram, streaming on device."
    input_kind = "audio"
    data_help = (
        "A folder with positives/, negatives/ and backgrounds/ recordings, and/or recordings/ of long "
        "audio with a label file each (talk.wav + talk.txt: trigger times in seconds); omit for the "
        "synthesized clips."
    )
    gate = Metric("f1")
    headline = ("event_recall", "false_accepts_per_hour")
    monitor = ("val_loss", "min")
    architecture = (
        "sample_rate",
        "clip_seconds",
        "frame_length",
        "frame_step",
        "fft_length",
        "conv_filters",
        "conv_kernel",
        "conv_stride",
        "gru_units",
    )
    # Full int8 would need the streaming model calibrated on chunks with their carried GRU
    # states, which export does not collect.
    quantizations = ("float32", "float16", "dynamic")

    def convert(self, model, config, meta, quantize, representative=None):
        return self.model.convert(model, config, meta, quantize, representative)

    def tflite_runner(self, path, meta):
        return self.edge.tflite_runner(path, meta)

    def input_warnings(self, raw, meta):
        return self.edge.input_warnings(raw, meta)

    def windows(self, raw, meta):
        return self.edge.windows(raw, meta)

    def combine(self, results, raw, meta):
        return self.edge.combine(results, raw, meta)

    def plots(self, report, meta, out_dir, title=""):
        return self.model.plots(report, meta, out_dir, title)

    def finish(self, item, raw, result, context):
        """With a label file beside the audio (`talk.wav`, `talk.txt`), the labelled times
        and how many were found; with an output folder, a plot per file (waveform,
        spectrogram, P(trigger), detections and labels)."""
        step_times, probs = result.pop("scores")
        labelled = None
        labels = self.edge.label_file(item) if isinstance(item, (str, Path)) else None
        if labels:
            try:
                labelled = self.edge.read_labels(labels)
            except InvalidInputError:
                labelled = None  # a .txt of something else beside the audio: not labels
        if labelled is not None:
            result["labelled"] = labelled
            result["found"] = self.edge.found_labelled(result["triggers"], labelled, context.meta)
        if context.out_dir is not None and _can_plot():
            from dlkit.plots import audio_scores_plot

            stem = Path(item).stem if isinstance(item, (str, Path)) else f"audio{context.index}"
            audio_scores_plot(context.out_dir / f"{stem}.png", raw.samples, raw.sample_rate, step_times, probs,
                              context.meta["threshold"], result["triggers"], labelled or (), title=str(item))  # fmt: skip
        return result

    def register_cli(self, group):
        from dlkit.apps.trigger.cli import listen_command

        group.add_command(listen_command(self))

    def write_sample_data(self, folder):
        return None  # Config.tiny() synthesizes a few 3-second clips offline

    def sample_inputs(self, folder):
        return [str(self.data.write_sample_audio(folder))]
