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


def test_confusion_matrix_cells_keep_large_counts_short(tmp_path):
    """A segmentation's pixel counts run to millions: a cell shows three figures and a
    unit, rounded the way the rest of the text is, never '1e+03k'."""
    from dlkit.plots import _count, confusion_matrix_plot

    shown = [_count(n) for n in (0, 9999, 10000, 48213, 999_999, 1_312_345, 30_100_000, 2 * 10**9, -12345)]
    assert shown == ["0", "9999", "10k", "48.2k", "1M", "1.31M", "30.1M", "2G", "-12.3k"]
    matrix = np.array([[27_000_000, 512_345], [999_999, 0]])
    path = confusion_matrix_plot(matrix, ["background", "birds"], tmp_path / "pixels.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty row (nothing true of a class) divides nothing
        confusion_matrix_plot(np.zeros((2, 2), int), ["a", "b"], tmp_path / "empty.png")
    with Image.open(path) as image:
        assert image.width > 200 and image.height > 200


def test_an_image_grid_of_nothing_writes_no_file(tmp_path):
    from dlkit.plots import image_grid_plot

    assert image_grid_plot([], [], tmp_path / "none.png", "model on test", "mistakes") is None
    assert not (tmp_path / "none.png").exists()
    image = np.zeros((20, 30, 3), np.uint8)
    assert image_grid_plot([image], ["a"], tmp_path / "one.png", "", "mistakes") == tmp_path / "one.png"
    assert (tmp_path / "one.png").stat().st_size > 0
