"""Keeps the weights of the best epoch, written atomically."""

import math

import keras
import numpy as np

from dlkit import io


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model weights whenever `monitor` improves.

    Only the model's own variables are kept (an `.npz` of `get_weights()`): Keras'
    `save_weights` also stores the optimizer, which no longer fits once a later training
    stage has recompiled the model with another optimizer.

    Args:
        path: str. An `.npz` file, replaced atomically.
        monitor: str. A metric in the epoch logs, e.g. "val_accuracy".
        mode: str. "max" or "min".
        best: float or None. The best value so far (given when a run resumes).

    Example:
        >>> best = BestCheckpoint("run/best.npz", monitor="val_loss", mode="min")
        >>> best.restore(model)  # after training
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
            io.write_npz(self.path, *self.model.get_weights())

    def restore(self, model):
        """Loads the best weights into `model`; returns False when none were saved."""
        try:
            with np.load(self.path) as saved:
                weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        except FileNotFoundError:
            return False
        model.set_weights(weights)
        return True
