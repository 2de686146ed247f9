"""Quiet native output: TensorFlow's and LiteRT's C++ start-up lines, kept off the console.

TensorFlow prints `Could not find cuda drivers` and `failed call to cuInit` on a CPU-only
machine, the converter prints its settings, and LiteRT prints `Created TensorFlow Lite
XNNPACK delegate for CPU`. They are written by C++ straight to file descriptor 2, so they
are silenced there, around the import, the conversion or the interpreter creation. When
the silenced code fails, what it printed is shown after all. `--verbose` or
`DLKIT_VERBOSE=1` shows everything.
"""

import contextlib
import os
import sys
import tempfile

VERBOSE_ENV = "DLKIT_VERBOSE"


def verbose():
    return os.environ.get(VERBOSE_ENV, "").lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def native_output_silenced():
    """Redirects file descriptor 2 to a temporary file for the block (not when verbose)."""
    if verbose():
        yield
        return
    # Native code writes to descriptor 2 whatever Python's sys.stderr is (a test runner
    # may have replaced it), so that is the one silenced.
    stderr_fd = 2
    try:
        saved = os.dup(stderr_fd)
    except OSError:  # no descriptor 2 at all
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), stderr_fd)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            if failed:
                captured.seek(0)
                sys.stderr.write(captured.read().decode("utf-8", "replace"))


def import_tensorflow(before_start=None):
    """Imports TensorFlow and Keras and initialises the devices (where `failed call to
    cuInit` comes from), with their C++ start-up lines silenced. TensorFlow's own log is
    kept to fatal messages (`--verbose` shows all): its run-time ERROR lines are advice,
    such as oneDNN's "supports DT_BOOL only on platforms with AVX-512" for masked LSTMs;
    real failures raise Python exceptions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose() else "3")
    with native_output_silenced():
        import keras  # noqa: F401
        import tensorflow as tf

        if before_start:  # device configuration, which must come before the runtime starts
            before_start()
        tf.config.list_logical_devices()
