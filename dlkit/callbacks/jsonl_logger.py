"""A JSON-lines event log of training: one line per epoch, flushed as it is written."""

import time

import keras

from dlkit import io


class JSONLLogger(keras.callbacks.Callback):
    """Appends `{"event": "epoch", "epoch": n, "stage": s, "time": t, <metrics>}` lines.

    Each line is flushed and fsynced, so a killed run keeps every finished epoch and a
    resumed run appends after them.

    Args:
        path: str. The `.jsonl` file.
        stage: str. Stage name recorded with each epoch.

    Example:
        >>> model.fit(data, epochs=2, callbacks=[JSONLLogger("run/history.jsonl")])
    """

    def __init__(self, path, stage=""):
        super().__init__()
        self.path = str(path)
        self.stage = stage

    def on_train_begin(self, logs=None):
        io.append_jsonl(self.path, {"event": "train_begin", "stage": self.stage, "time": time.time()})

    def on_epoch_end(self, epoch, logs=None):
        record = {"event": "epoch", "epoch": epoch, "stage": self.stage, "time": time.time()}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        io.append_jsonl(self.path, record)
