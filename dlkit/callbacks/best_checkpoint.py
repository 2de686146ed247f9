"""Keeps the weights of the best epoch, written atomically."""

import math

import keras

from dlkit import io


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model weights whenever `monitor` improves.

    Args:
        path: str. A `.weights.h5` file, replaced atomically.
        monitor: str. A metric in the epoch logs, e.g. "val_accuracy".
        mode: str. "max" or "min".
        best: float or None. The best value so far (given when a run resumes).

    Example:
        >>> best = BestCheckpoint("run/best.weights.h5", monitor="val_loss", mode="min")
    """

    def __init__(self, path, monitor="val_loss", mode="min", best=None):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.path = str(path)
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.best_epoch = None

    def improved(self, value):
        if value is None or math.isnan(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and self.improved(float(value)):
            self.best = float(value)
            self.best_epoch = epoch
            with io.atomic_path(self.path) as tmp:
                self.model.save_weights(tmp)
