"""A quiet console: TensorFlow's, the converter's and LiteRT's C++ lines stay off stderr
unless asked for, and what a failing silenced block printed is shown after all."""

import os
import subprocess
import sys

import pytest

from dlkit.quiet import VERBOSE_ENV, native_output_silenced

NOISE = ("cuInit", "cuda", "fully_quantize", "XNNPACK", "oneDNN", "absl::InitializeLog")


def dlkit(*args, verbose=False):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", VERBOSE_ENV)}
    command = [sys.executable, "-m", "dlkit.cli", *(["--verbose"] if verbose else []), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def noise(text):
    return [line for line in text.splitlines() if any(word in line for word in NOISE)]


def test_silenced_block_hides_native_writes_and_replays_them_on_failure(capfd):
    with native_output_silenced():
        os.write(2, b"native chatter\n")
    assert "native chatter" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), native_output_silenced():
        os.write(2, b"why it failed\n")
        raise RuntimeError
    assert "why it failed" in capfd.readouterr().err


def test_export_evaluate_and_predict_print_only_dlkit_lines(tiny_run, tmp_path, bad_files):
    exported = dlkit("classify", "export", "--model", tiny_run, "--quantize", "int8", "--out", tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "converting" in exported.stderr and not noise(exported.stderr), noise(exported.stderr)
    evaluated = dlkit("classify", "evaluate", "--model", tmp_path / "model.int8.tflite", "--split", "val")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "accuracy" in evaluated.stdout and not noise(evaluated.stderr), noise(evaluated.stderr)
    predicted = dlkit("classify", "predict", bad_files["good"], "--model", tmp_path / "model.int8.tflite")
    assert predicted.returncode == 0 and not noise(predicted.stdout + predicted.stderr)


def test_verbose_shows_tensorflow_lines_again(tiny_run):
    result = dlkit("classify", "evaluate", "--model", tiny_run, "--split", "val", verbose=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert noise(result.stderr), "--verbose showed none of TensorFlow's own lines"
