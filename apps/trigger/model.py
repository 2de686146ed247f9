"""The course's trigger-word network over a spectrogram computed in the model, and its
streaming form: the same layers with the GRU states as inputs and outputs, so a device
runs any length of audio chunk by chunk, each chunk costing only its own frames."""

import keras
import numpy as np
from keras import layers

from dlkit.engine import Evaluator
from dlkit.layers import Spectrogram, UnrolledGRU
from dlkit.stages import Stage


def make_meta(config, source):
    from dlkit.apps.trigger.data import output_steps, receptive_samples, step_samples

    samples = int(config.clip_seconds * config.sample_rate)
    return {
        "app": "trigger",
        "task": "trigger word detection",
        "word": config.word,
        "labels": ["trigger"],
        "sample_rate": config.sample_rate,
        "clip_samples": samples,
        "steps": output_steps(config, samples),
        "step_samples": step_samples(config),
        "receptive_samples": receptive_samples(config),
        "stream_steps": config.stream_steps,
        "gru_units": config.gru_units,
        "threshold": config.threshold,
        "min_steps": config.min_steps,
        "refractory_seconds": config.refractory_seconds,
        "input": {"name": "audio", "shape": [samples], "dtype": "float32", "range": [-1, 1]},
        "output": {"name": "probs", "shape": [output_steps(config, samples), 1], "activation": "sigmoid"},
    }


def _layers(config):
    """The network's layers by name (shared by the clip and streaming models)."""
    return {
        "spectrogram": Spectrogram(
            config.frame_length, config.frame_step, config.fft_length, name="spectrogram"
        ),
        "conv": layers.Conv1D(
            config.conv_filters, config.conv_kernel, strides=config.conv_stride, name="conv"
        ),
        "conv_bn": layers.BatchNormalization(name="conv_bn"),
        "conv_relu": layers.ReLU(name="conv_relu"),
        "conv_dropout": layers.Dropout(config.dropout, name="conv_dropout"),
        "gru_1": layers.GRU(config.gru_units, return_sequences=True, return_state=True, name="gru_1"),
        "gru_1_dropout": layers.Dropout(config.dropout, name="gru_1_dropout"),
        "gru_1_bn": layers.BatchNormalization(name="gru_1_bn"),
        "gru_2": layers.GRU(config.gru_units, return_sequences=True, return_state=True, name="gru_2"),
        "gru_2_dropout": layers.Dropout(config.dropout, name="gru_2_dropout"),
        "gru_2_bn": layers.BatchNormalization(name="gru_2_bn"),
        "out_dropout": layers.Dropout(config.dropout, name="out_dropout"),
        "probs": layers.Dense(1, activation="sigmoid", name="probs"),
    }


def _apply(parts, audio, states=(None, None)):
    """audio (batch, samples) -> (probs (batch, steps, 1), [state 1, state 2])."""
    x = parts["spectrogram"](audio)  # (batch, frames, bins)
    x = parts["conv"](x)  # (batch, steps, filters): stride 4, no padding
    x = parts["conv_dropout"](parts["conv_relu"](parts["conv_bn"](x)))
    x, h1 = parts["gru_1"](x, initial_state=states[0])  # unidirectional: it can stream
    x = parts["gru_1_bn"](parts["gru_1_dropout"](x))
    x, h2 = parts["gru_2"](x, initial_state=states[1])
    x = parts["out_dropout"](parts["gru_2_bn"](parts["gru_2_dropout"](x)))
    return parts["probs"](x), [h1, h2]  # (batch, steps, 1): per-step sigmoid


def build_model(config, meta, load_weights=True):
    """Raw audio (batch, clip samples) -> per-step trigger probabilities (batch, steps, 1)."""
    audio = keras.Input((meta["clip_samples"],), name="audio")
    probs, _ = _apply(_layers(config), audio)
    model = keras.Model(audio, probs, name="trigger_gru")
    compile_model(model, config)
    return model


def stream_model(model, config, meta):
    """The trained network on one chunk: (audio window (1, W), state_1, state_2) ->
    (probs (1, stream_steps, 1), new state_1, new state_2), W = the samples of
    `stream_steps` steps plus the receptive field's overlap with the previous chunk.
    Its spectrogram is two matrix products (`Spectrogram(fft="matmul")`) and its GRUs are
    written out step by step with fused gates (`dlkit.layers.UnrolledGRU`): the same
    numbers, a chunk in less than half of LiteRT's time before (README, bench)."""
    from dlkit.apps.trigger.edge import window_samples

    audio = keras.Input((window_samples(meta),), name="audio", batch_size=1)
    h1 = keras.Input((config.gru_units,), name="state_1", batch_size=1)
    h2 = keras.Input((config.gru_units,), name="state_2", batch_size=1)
    parts = _layers(config)
    # The same function in faster ops: the STFT as two matrix products, the GRUs step by step.
    spectrogram = parts["spectrogram"]
    parts["spectrogram"] = Spectrogram.from_config({**spectrogram.get_config(), "fft": "matmul"})
    for name in ("gru_1", "gru_2"):
        parts[name] = UnrolledGRU.from_gru(model.get_layer(name))
    probs, (s1, s2) = _apply(parts, audio, (h1, h2))
    stream = keras.Model([audio, h1, h2], [probs, s1, s2], name="trigger_stream")
    for name in parts:
        if model.get_layer(name).weights:
            stream.get_layer(name).set_weights(model.get_layer(name).get_weights())
    return stream


def compile_model(model, config, learning_rate=None):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate or config.learning_rate, clipnorm=1.0),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.Recall(name="recall")],
    )


def training_stages(config, meta=None):
    return [Stage("train", config.epochs, lambda model: compile_model(model, config))]


def adapt_model(model, model_meta, config, meta, log=print):
    compile_model(model, config)
    return model


def convert(model, config, meta, quantize, representative=None):
    """TFLite bytes of the streaming model (one chunk and the GRU states per call)."""
    from dlkit.export.tflite import convert as convert_keras

    return convert_keras(stream_model(model, config, meta), quantize, batch_size=1)


DET_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999)


class TriggerEvaluator(Evaluator):
    """Frame-level precision/recall/F1 at the threshold, and event-level recall and false
    accepts (events found by dlkit.apps.trigger.edge.detect_events against the labelled
    runs), per clip, with 95% intervals (Wilson for recall, exact Poisson for false
    accepts an hour); and the same events over DET_THRESHOLDS (a DET curve)."""

    def __init__(self, meta):
        self.meta = meta
        self.tp = self.fp = self.fn = 0
        self.positives = 0
        self.seconds = 0.0
        self.det = {t: [0, 0] for t in sorted({*DET_THRESHOLDS, meta["threshold"]})}  # hits, false accepts

    def update(self, outputs, targets):
        from dlkit.apps.trigger.edge import detect_events, match_events, runs

        probs = np.asarray(outputs[0])[..., 0]
        targets = np.asarray(targets)
        predicted = probs >= self.meta["threshold"]
        truth = targets > 0.5
        self.tp += int(np.sum(predicted & truth))
        self.fp += int(np.sum(predicted & ~truth))
        self.fn += int(np.sum(~predicted & truth))
        for row, labels in zip(probs, truth):
            positive_runs = runs(labels)
            for threshold, counts in self.det.items():
                hits, false_accepts = match_events(
                    detect_events(row, self.meta, threshold), positive_runs, self.meta
                )
                counts[0] += hits
                counts[1] += false_accepts
            self.positives += len(positive_runs)
            self.seconds += len(row) * self.meta["step_samples"] / self.meta["sample_rate"]

    def result(self):
        from dlkit.metrics.intervals import poisson_interval, wilson_interval

        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        hours = self.seconds / 3600
        hits, false_accepts = self.det[self.meta["threshold"]]
        return {
            "f1": f1,
            "precision": precision,
            "recall": recall,
            "event_recall": hits / self.positives if self.positives else float("nan"),
            "event_recall_ci95": wilson_interval(hits, self.positives),
            "events": self.positives,
            "false_accepts": false_accepts,
            "false_accepts_per_hour": false_accepts / hours if hours else float("nan"),
            "false_accepts_per_hour_ci95": poisson_interval(false_accepts, hours),
            "hours": hours,
            "det": [
                {
                    "threshold": threshold,
                    "miss_rate": 1 - found / self.positives if self.positives else float("nan"),
                    "false_accepts_per_hour": false / hours if hours else float("nan"),
                }
                for threshold, (found, false) in self.det.items()
            ],
        }


def plots(report, meta, out_dir, title=""):
    """The DET curve of an evaluation: miss rate against false accepts an hour."""
    from pathlib import Path

    from dlkit.plots import det_plot

    if not report.get("det"):
        return []
    return [det_plot({title or "evaluated clips": report["det"]}, Path(out_dir) / "det.png", title="DET")]


def evaluator(config, meta):
    return TriggerEvaluator(meta)
