"""The moving average of the weights (dlkit.callbacks.WeightAverage) against a numpy
replay of the same steps: the average the model holds at the epoch's end, the
validation loss it was scored with, the trained weights after it, and the saved state a
resumed fit goes on from."""

import keras
import numpy as np
import pytest

from dlkit.callbacks import WeightAverage
from dlkit.callbacks.weight_average import ema_decay
from dlkit.errors import DlkitError


def model_and_data():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4),
            keras.layers.BatchNormalization(),  # moving statistics are averaged too
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3)).astype("float32")
    return model, x, (x[:, 0] > 0).astype("int32")


class Recorder(keras.callbacks.Callback):
    """The weights after every training batch, and what the model holds at the epoch's
    end (between the average and its swap back) with the logs."""

    def __init__(self):
        super().__init__()
        self.steps, self.at_epoch_end = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(self.model.get_weights())

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end.append((self.model.get_weights(), dict(logs)))


def replay(start, steps, decay, first_update=0):
    average = [w.astype("float64") for w in start]
    for n, weights in enumerate(steps, start=first_update):
        d = ema_decay(decay, n)
        average = [d * a + (1 - d) * w for a, w in zip(average, weights)]
    return average


def test_ema_decay_ramps_up_to_the_decay():
    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 8) == pytest.approx(9 / 18)
    assert ema_decay(0.999, 10**6) == 0.999
    assert all(ema_decay(0.99, n) <= ema_decay(0.99, n + 1) for n in range(2000))


def test_the_model_holds_the_average_from_validation_to_the_epochs_end():
    model, x, y = model_and_data()
    start = model.get_weights()
    average, recorder = WeightAverage(0.9), Recorder()
    model.fit(
        x,
        y,
        batch_size=6,
        epochs=2,
        shuffle=False,
        verbose=0,
        validation_data=(x, y),
        callbacks=[average, recorder, average.swap_back],
    )
    assert len(recorder.steps) == 8 and average.updates == 8
    for epoch in (0, 1):
        held, logs = recorder.at_epoch_end[epoch]
        expected = replay(start, recorder.steps[: 4 * (epoch + 1)], 0.9)
        for got, want in zip(held, expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        # The epoch's validation loss is the average's.
        probe, _, _ = model_and_data()
        probe.set_weights(held)
        assert logs["val_loss"] == pytest.approx(probe.evaluate(x, y, batch_size=6, verbose=0), rel=1e-5)
    # After the epoch the trained weights are back: the average lags behind them.
    for got, want in zip(model.get_weights(), recorder.steps[-1]):
        np.testing.assert_array_equal(got, want)
    assert not all(np.allclose(a, b) for a, b in zip(recorder.at_epoch_end[-1][0], recorder.steps[-1]))


def test_a_resumed_fit_goes_on_with_the_saved_average(tmp_path):
    model, x, y = model_and_data()
    whole, recorder = WeightAverage(0.9, tmp_path / "whole"), Recorder()
    fit = dict(batch_size=6, shuffle=False, verbose=0, validation_data=(x, y))
    model.fit(x, y, epochs=3, callbacks=[whole, recorder, whole.swap_back], **fit)
    assert sorted(p.name for p in (tmp_path / "whole").iterdir()) == ["ema_epoch2.npz", "ema_epoch3.npz"]

    model, x, y = model_and_data()
    first = WeightAverage(0.9, tmp_path / "split")
    model.fit(x, y, epochs=2, callbacks=[first, first.swap_back], **fit)
    # A new process: a new callback reads the state saved after epoch 2.
    resumed, second = WeightAverage(0.9, tmp_path / "split", start_epoch=2), Recorder()
    model.fit(x, y, initial_epoch=2, epochs=3, callbacks=[resumed, second, resumed.swap_back], **fit)
    assert resumed.updates == 12
    for got, want in zip(second.at_epoch_end[-1][0], recorder.at_epoch_end[-1][0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    other.compile("adam", "mse")
    wrong = WeightAverage(0.9, tmp_path / "split", start_epoch=2)
    with pytest.raises(DlkitError, match="does not fit this model"):
        other.fit(x, np.zeros((24, 5)), epochs=3, initial_epoch=2, verbose=0, callbacks=[wrong])
