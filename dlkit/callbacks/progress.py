"""TTY-aware training progress: a live bar in a terminal, one line per epoch in logs."""

import sys
import time

import keras


class Progress(keras.callbacks.Callback):
    """Prints training progress.

    In a terminal, a bar redrawn in place during each epoch; otherwise (CI, a log file)
    one complete line per epoch, so logs stay readable.

    Args:
        total_epochs: int. Epochs in the whole run, across stages.
        stage: str. Name of the training stage shown in each line ("head", "fine-tune").
        stream: file-like. Default `sys.stderr`.
        live: bool or None. Force the bar on or off; default: on when `stream` is a TTY.

    Example:
        >>> model.fit(data, epochs=5, verbose=0, callbacks=[Progress(total_epochs=5)])
    """

    def __init__(self, total_epochs, stage="", stream=None, live=None):
        super().__init__()
        self.total_epochs = total_epochs
        self.stage = stage
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._epoch_start = 0.0
        self._last_draw = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = time.monotonic()
        self._steps = self.params.get("steps") if self.params else None

    def on_train_batch_end(self, batch, logs=None):
        if not self.live:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1:
            return
        self._last_draw = now
        done = batch + 1
        width = 24
        if self._steps:
            filled = int(width * done / self._steps)
            bar = "#" * filled + "." * (width - filled)
            where = f"{done}/{self._steps}"
        else:
            bar, where = "", f"{done}"
        self.stream.write(f"\r{self._prefix()} [{bar}] {where} {_format(logs)}\x1b[K")
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self._epoch_start
        line = f"{self._prefix()} {_format(logs)} ({seconds:.1f}s)"
        self.stream.write(("\r" + line + "\x1b[K\n") if self.live else line + "\n")
        self.stream.flush()

    def _prefix(self):
        stage = f"{self.stage} " if self.stage else ""
        return f"{stage}epoch {self._epoch + 1}/{self.total_epochs}"


def _format(logs):
    return " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items() if isinstance(v, (int, float)))
