"""An exponential moving average of the weights, which validation, the best checkpoint
and the saved model use (Ultralytics' ModelEMA, timm's ModelEma)."""

from pathlib import Path

import keras
import numpy as np

from dlkit import io
from dlkit.errors import DlkitError


def ema_decay(decay, updates):
    """The decay of the `updates`-th update: `decay`, ramped up at the start as
    `tf.train.ExponentialMovingAverage(num_updates=...)` does, min(decay, (1 + n) / (10 + n)),
    so the first weights, still random or untuned, leave the average quickly.

    Example:
        >>> round(ema_decay(0.999, 0), 4), round(ema_decay(0.999, 90), 4), ema_decay(0.999, 10**6)
        (0.1, 0.91, 0.999)
    """
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage(keras.callbacks.Callback):
    """Keeps an exponential moving average of the model's floating-point weights
    (trainable ones and BatchNorm's moving statistics, as Ultralytics' ModelEMA does),
    updated after every training batch with `ema_decay`.

    The average is put in the model for validation and kept there through the callbacks
    of the epoch's end, so the monitored metric, the best checkpoint and per-epoch
    samples all see it; `swap_back` (a callback placed before the resume checkpoint)
    puts the trained weights back for the checkpoint and the next epoch. The average
    spans several `fit` calls (the stages of transfer learning) and, with `directory`,
    is saved after every epoch (`ema_epochN.npz`) so a resumed run goes on with it.

    Args:
        decay: float in (0, 1). The weight of the average against each new step's weights.
        directory: str or None. Where the average is saved after each epoch.
        start_epoch: int. The epoch a resumed run continues after (its saved average is read).

    Example:
        >>> average = WeightAverage(0.999)
        >>> model.fit(x, y, validation_data=val, callbacks=[average, best, average.swap_back])
    """

    def __init__(self, decay, directory=None, start_epoch=0):
        super().__init__()
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.directory = None if directory is None else Path(directory)
        self.start_epoch = start_epoch
        self.updates = 0
        self._trained = None  # the trained weights while the average is in the model
        self._shadow = None
        self._variables = None
        self._update = None
        self.swap_back = _SwapBack(self)

    def on_train_begin(self, logs=None):
        if self._shadow is not None:
            return
        import tensorflow as tf

        self._variables = [v for v in self.model.weights if keras.backend.is_float_dtype(v.dtype)]
        values = [np.asarray(v) for v in self._variables]
        saved = self._saved(self.start_epoch) if self.start_epoch else None
        if saved is not None:
            values, self.updates = saved
        self._shadow = [tf.Variable(value, trainable=False) for value in values]

        @tf.function
        def update(decay):
            for shadow, variable in zip(self._shadow, self._variables):
                shadow.assign(decay * shadow + (1.0 - decay) * tf.convert_to_tensor(variable))

        self._update = update

    def _saved(self, epoch):
        path = self.directory / f"ema_epoch{epoch}.npz" if self.directory else None
        if path is None or not path.exists():
            return None
        with np.load(path) as saved:
            values = [saved[f"w{i}"] for i in range(len(self._variables))]
            if [v.shape for v in values] != [tuple(v.shape) for v in self._variables]:
                raise DlkitError(f"{path}: the saved weight average does not fit this model")
            return values, int(saved["updates"])

    def on_train_batch_end(self, batch, logs=None):
        self._update(np.float32(ema_decay(self.decay, self.updates)))
        self.updates += 1

    def on_test_begin(self, logs=None):  # validation inside fit
        self.swap_in()

    def on_epoch_end(self, epoch, logs=None):
        self.swap_in()  # also when the epoch has no validation
        if self.directory is not None:
            arrays = {f"w{i}": np.asarray(s) for i, s in enumerate(self._shadow)}
            io.write_npz(self.directory / f"ema_epoch{epoch + 1}.npz", updates=self.updates, **arrays)
            # A kill before the resume checkpoint lands continues after the epoch before.
            for old in self.directory.glob("ema_epoch*.npz"):
                if old.name not in (f"ema_epoch{epoch + 1}.npz", f"ema_epoch{epoch}.npz"):
                    old.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        self.swap_out()

    def swap_in(self):
        """Puts the average in the model (the trained weights kept aside)."""
        if self._trained is not None or self._shadow is None:
            return
        self._trained = [np.asarray(v) for v in self._variables]
        for variable, shadow in zip(self._variables, self._shadow):
            variable.assign(shadow)

    def swap_out(self):
        """Puts the trained weights back."""
        if self._trained is None:
            return
        for variable, value in zip(self._variables, self._trained):
            variable.assign(value)
        self._trained = None


class _SwapBack(keras.callbacks.Callback):
    """Puts the trained weights back at the epoch's end (see `WeightAverage`)."""

    def __init__(self, average):
        super().__init__()
        self.average = average

    def on_epoch_end(self, epoch, logs=None):
        self.average.swap_out()
