"""Kills and full disks: resume keeps each epoch once, an export killed mid-conversion keeps
the previous file. (Every app's training is killed at a random point and resumed by the
contract kit, tests/conftest.py.)"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

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


def test_a_resumed_run_names_each_setting_asked_otherwise_than_it_holds(tmp_path, monkeypatch):
    """Options beside --resume are checked, not ignored: a config field, --data or a
    training option set otherwise is named with both values; one set the same is not, nor
    a path written otherwise to the same folder, nor a field an --init model decided."""
    from dlkit.config import to_dict
    from dlkit.registry import get_app
    from dlkit.runner import read_run_record
    from dlkit.runner import resume_conflicts as conflicts_of

    app = get_app("sentiment")
    config = app.default_config(tiny=True)
    (tmp_path / "texts").mkdir()
    monkeypatch.chdir(tmp_path)
    saved = {
        "config": to_dict(config),
        "data": "texts",
        "init": None,
        "options": {"jit": False, "devices": 1},
    }

    def resume_conflicts(app, kind, saved, asked):  # the record as the runner reads it
        io.write_json(tmp_path / "run" / "config.json", saved)
        return conflicts_of(app, *read_run_record(tmp_path / "run", kind), asked)

    kind = type(config)
    same = {
        "overrides": [f"epochs={config.epochs}"],
        "data": str(tmp_path / "texts"),
        "options": {"devices": 1},
    }
    assert resume_conflicts(app, kind, saved, same) == []
    assert resume_conflicts(app, kind, saved, {}) == []
    asked = {
        "overrides": [f"epochs={config.epochs + 2}", f"seed={config.seed}"],
        "data": "other",
        "options": {"jit": True, "mixed_precision": True},
    }
    assert resume_conflicts(app, kind, saved, asked) == [
        f"epochs={config.epochs} (asked {config.epochs + 2})",
        "--data texts (asked other)",
        "--jit off (asked on)",
        "--mixed-precision off (asked on)",  # a record without it held the default
    ]
    wider = {"overrides": [f"hidden_size={config.hidden_size * 2}"]}
    assert resume_conflicts(app, kind, saved, wider) == [
        f"hidden_size={config.hidden_size} (asked {config.hidden_size * 2})"
    ]
    assert resume_conflicts(app, kind, {**saved, "init": "runs/mlm/train"}, wider) == []
    assert resume_conflicts(app, kind, saved, {"init": "runs/mlm/train"}) == [
        "--init (none) (asked runs/mlm/train)"
    ]
    # --tiny picks a new run's starting config: asked beside --resume, the run's record
    # must say it started tiny; a record from before runs recorded it is not judged.
    assert resume_conflicts(app, kind, {**saved, "tiny": False}, {"tiny": True}) == ["--tiny off (asked on)"]
    assert resume_conflicts(app, kind, {**saved, "tiny": True}, {"tiny": True}) == []
    assert resume_conflicts(app, kind, saved, {"tiny": True}) == []


@pytest.mark.parametrize(
    "text, message",
    [
        ("{bad", "not a run's config (Expecting property name"),
        ("[1]", 'not a run\'s config (no "config" object)'),
        ('{"config": {"epochs": "x"}}', "config field epochs holds 'x', not int"),
        ('{"config": {}, "options": [1]}', '"options" is not an object'),
    ],
)
def test_a_run_record_cut_short_or_hand_edited_is_one_line(tmp_path, text, message):
    from conftest import run_cli

    (tmp_path / "config.json").write_text(text)
    result = run_cli("sentiment", "train", "--resume", "--run-dir", tmp_path)
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert message in result.output and "config.json" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_a_run_being_trained_is_not_trained_by_a_second_process_too(tmp_path, monkeypatch):
    """`--resume` of a run still training elsewhere (or of the latest run, which may be
    that one), or a new run into its folder, stops with one line naming the process,
    before anything is written; once the lock is released the run is free again."""
    from conftest import run_cli
    from dlkit.runner import training_lock

    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "runs" / "train"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text('{"app": "sentiment", "config": {}}')
    with training_lock(run_dir):
        for arguments in (
            ("--resume", "--run-dir", run_dir),
            ("--run-dir", tmp_path / "runs" / ".." / "runs" / "train"),
        ):
            result = run_cli("sentiment", "train", *arguments)
            assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
            assert f"is being trained by process {os.getpid()}" in result.output
        assert [p.name for p in run_dir.iterdir()] == ["config.json"]
    with training_lock(run_dir):  # released: free again
        pass


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
    # The tiny model is scored in milliseconds: each scoring waits a second first, so the
    # kill lands while the new file is scored, whatever the machine's load.
    slowed = (
        "import sys, time; from dlkit.export import bundle; scored = bundle.score; "
        "bundle.score = lambda *a, **k: (time.sleep(1), scored(*a, **k))[1]; "
        "from dlkit.cli import main; sys.argv = ['dlkit', *sys.argv[1:]]; main()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", slowed, *command[3:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
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
