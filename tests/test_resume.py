"""Kills and full disks: resume keeps each epoch once, an export killed mid-conversion keeps
the previous file. (Every app's training is killed at a random point and resumed by the
contract kit, tests/conftest.py.)"""

import json
import os
import signal
import subprocess
import sys
import time

from dlkit import io


def test_resume_drops_history_lines_of_epochs_after_the_checkpoint(tmp_path):
    from dlkit.runner import trim_history

    path = tmp_path / "history.jsonl"
    lines = [
        {"event": "train_begin"},
        *({"event": "epoch", "epoch": e, "loss": 1.0 / (e + 1)} for e in range(4)),
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"event": "epo')
    trim_history(path, 3)
    assert io.read_jsonl(path) == lines[:4]
    assert path.read_text().endswith("}\n")
    before = path.read_bytes()
    trim_history(path, 3)
    assert path.read_bytes() == before
    path.write_bytes(before + b'{"event": "epo')  # cut short, nothing to drop
    trim_history(path, 3)
    assert path.read_bytes() == before


def written(path):
    """`path` holds bytes (False once it is gone: renamed into place)."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def test_sigkill_during_export_keeps_the_previous_file_and_the_next_export_cleans_up(tmp_path, tiny_run):
    """A kill while the new file is scored (written beside the old one, not yet in its
    place) leaves the exported file as it was; the hidden file it leaves behind is
    removed by the next export. (The SavedModel scratch folder of the conversion path
    that writes one is swept the same way: tests/test_io.py.)"""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    previous = (run_dir / "model.tflite").read_bytes()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "dlkit.cli", "classify", "export", "--model", str(run_dir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    pending = f".model.{process.pid}.*tflite"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if any(written(path) for path in run_dir.glob(pending)):  # written, being scored
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the export ended before it could be killed"
    assert (run_dir / "model.tflite").read_bytes() == previous
    assert list(run_dir.glob(pending)), "a kill leaves the pending file"

    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]


def test_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path, tiny_run, bad_files, monkeypatch):
    import errno

    from conftest import assert_one_line_error, run_cli

    out = tmp_path / "out"
    assert run_cli("classify", "predict", bad_files["good"], "--model", tiny_run, "--out", out).exit_code == 0
    before = (out / "predictions.json").read_bytes()

    def full(source, target):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(io.os, "replace", full)
    result = run_cli("classify", "predict", bad_files["gray"], "--model", tiny_run, "--out", out)
    assert_one_line_error(result, "predictions.json: No space left on device")
    assert (out / "predictions.json").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["predictions.json"]
