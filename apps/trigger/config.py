"""Configuration of the trigger app (no TensorFlow import)."""

from dataclasses import dataclass
from typing import ClassVar

from dlkit.config import AT_LEAST_ONE, FRACTION, POSITIVE, PROBABILITY, TrainConfig


@dataclass
class Config(TrainConfig):
    """Training, data and detection settings; every field can be set with `--set key=value`.

    Geometry: audio at `sample_rate`; the spectrogram has a frame every `frame_step`
    samples (10 ms); the strided convolution makes one output step per `conv_stride`
    frames (40 ms). A step is labelled 1 for `label_steps` steps right after the end of a
    trigger word: the course labels 50 of its 1,375 steps per 10 s (0.36 s), here 10 of
    250 (0.40 s).
    """

    LIMITS: ClassVar[dict] = {
        **dict.fromkeys(
            (
                "sample_rate",
                "train_clips",
                "val_clips",
                "test_clips",
                "label_steps",
                "frame_length",
                "frame_step",
                "fft_length",
                "conv_filters",
                "conv_kernel",
                "conv_stride",
                "gru_units",
                "min_steps",
                "stream_steps",
            ),
            AT_LEAST_ONE,
        ),
        "clip_seconds": POSITIVE,
        "dropout": FRACTION,
        "threshold": PROBABILITY,
    }

    word: str = "activate"
    sample_rate: int = 16000
    clip_seconds: float = 10.0
    train_clips: int = 3000
    val_clips: int = 300
    test_clips: int = 300
    max_positives: int = 4
    max_negatives: int = 3
    # recorded-speech files decoded per split: all of them (7,800 in training; 1,500 gave
    # twice the false accepts of 4,900)
    speech_files: int = 10000
    label_steps: int = 10
    frame_length: int = 400
    frame_step: int = 160
    fft_length: int = 512
    conv_filters: int = 196
    conv_kernel: int = 15
    conv_stride: int = 4
    gru_units: int = 128
    dropout: float = 0.5
    # detection: an event when the probability stays >= threshold for min_steps steps;
    # then nothing fires for refractory_seconds
    threshold: float = 0.5
    min_steps: int = 2
    refractory_seconds: float = 1.0
    stream_steps: int = 12  # output steps per streaming chunk (0.48 s)
    batch_size: int = 16
    epochs: int = 25
    learning_rate: float = 1e-3
    patience: int = 6
    max_drop: float = 1.0

    @classmethod
    def tiny(cls):
        """Seconds, not minutes: 3-second clips, a few dozen of them, narrow layers."""
        return cls(
            clip_seconds=3.0,
            train_clips=32,
            val_clips=8,
            test_clips=8,
            speech_files=20,
            conv_filters=8,
            gru_units=8,
            batch_size=8,
            epochs=2,
            patience=0,
            max_drop=100.0,
            stream_steps=6,
        )
