"""Plots: written quietly whatever the input holds."""

import warnings

import numpy as np
from PIL import Image


def test_audio_plot_of_a_clip_opening_in_digital_silence_warns_nothing(tmp_path):
    """A recording that starts with exact zeros has -inf dB in its spectrogram: the plot
    is drawn without numpy's divide-by-zero warning reaching the user's terminal."""
    from dlkit.plots import audio_scores_plot

    rate = 16000
    audio = np.zeros(2 * rate, np.float32)
    audio[rate:] = np.random.default_rng(0).uniform(-0.3, 0.3, rate)
    steps = np.linspace(0, 2, 50)
    path = tmp_path / "clip.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audio_scores_plot(path, audio, rate, steps, np.linspace(0, 1, 50), 0.5, events=[1.5], truth=[1.4])
    with Image.open(path) as image:
        assert image.width > 500 and image.height > 400
