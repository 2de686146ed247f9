"""Console output: messages and progress on stderr; live in a terminal, terse in logs."""

import sys
import time


def counted(count, noun, plural=None):
    """`1 input`, `2 inputs`; `plural` for a noun that does not add an s (`people`)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def log(message):
    print(message, file=sys.stderr, flush=True)


def report_skipped(messages, limit=10):
    """Logs what a data split left out (unreadable files, pairs too long), at most `limit`."""
    for message in messages[:limit]:
        log(f"skipped: {message}")
    if len(messages) > limit:
        log(f"skipped {len(messages) - limit} more unreadable files")


class ProgressPrinter:
    """`progress(done, total, what)` callback: a live counter on a TTY, else one line at the end.

    Example:
        >>> progress = ProgressPrinter()
        >>> for i in range(10): progress(i + 1, 10, "loading")
    """

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._last = 0.0
        self._what = None
        self._start = time.monotonic()

    def __call__(self, done, total, what=""):
        if what != self._what:
            self._what = what
            self._start = time.monotonic()
        finished = total is not None and done >= total
        now = time.monotonic()
        if self.live and (finished or now - self._last > 0.1):
            self._last = now
            counts = f"{done}/{total}" if total else f"{done}"
            self.stream.write(f"\r{what}: {counts}\x1b[K")
            if finished:
                self.stream.write(f" ({now - self._start:.1f}s)\n")
            self.stream.flush()
        elif not self.live and finished:
            self.stream.write(f"{what}: {done}/{total} ({now - self._start:.1f}s)\n")
            self.stream.flush()


def labelled(text):
    """An argparse type for a tool's `LABEL=PATH` argument: (label, path). The path is what
    follows the last `=`, so a label may hold one (`fresh_scenes=1 run`)."""
    import argparse

    label, equals, path = text.rpartition("=")
    if not equals or not label or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not LABEL=PATH")
    return label, path
