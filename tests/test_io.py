import os
import subprocess
import sys

import pytest

from dlkit import io


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    with io.atomic_path(target) as tmp:
        assert tmp.name.endswith(".keras")
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_deflate_zip_keeps_every_member_byte_for_byte(tmp_path):
    import zipfile

    import numpy as np

    path = tmp_path / "model.keras"
    members = {
        "config.json": b'{"a": 1}' * 50,
        "model.weights.h5": np.arange(40000, dtype=np.float32).tobytes(),
    }
    with zipfile.ZipFile(path, "w") as stored:
        for name, data in members.items():
            stored.writestr(name, data)
    before = path.stat().st_size
    io.deflate_zip(path)
    with zipfile.ZipFile(path) as deflated:
        assert [m.filename for m in deflated.infolist()] == list(members)
        assert all(m.compress_type == zipfile.ZIP_DEFLATED for m in deflated.infolist())
        assert {name: deflated.read(name) for name in members} == members
    assert path.stat().st_size < before
    assert list(tmp_path.iterdir()) == [path]


def test_half_precision_keras_loads_float16_rounded_weights_into_float32_variables(tmp_path):
    import keras
    import numpy as np

    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(300), keras.layers.LayerNormalization(), keras.layers.Dense(2)]
    )
    weights = model.get_weights()
    weights[-1][:] = [1e5, -3.0]  # above float16's range: this array stays float32
    model.set_weights(weights)
    full, half = tmp_path / "full.keras", tmp_path / "half.keras"
    model.save(full)
    io.half_precision_keras(full, half)

    loaded = keras.saving.load_model(half)
    assert [w.dtype for w in loaded.weights] == ["float32"] * len(model.weights)
    for before, after in zip(weights[:-1], loaded.get_weights()[:-1]):
        np.testing.assert_array_equal(after, before.astype(np.float16).astype(np.float32))
    assert weights[0].astype(np.float16).astype(np.float32).tolist() != weights[0].tolist()
    np.testing.assert_array_equal(loaded.get_weights()[-1], [1e5, -3.0])
    assert half.stat().st_size < 0.6 * full.stat().st_size
    x = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), model(x), rtol=0.02, atol=0.02)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.keras", "half.keras"]


def test_jsonl_keeps_complete_lines_after_a_cut(tmp_path):
    path = tmp_path / "history.jsonl"
    io.append_jsonl(path, {"epoch": 0})
    io.append_jsonl(path, {"epoch": 1})
    with open(path, "a") as f:
        f.write('{"epoch": 2, "lo')  # a kill in the middle of a write
    assert io.read_jsonl(path) == [{"epoch": 0}, {"epoch": 1}]


def test_write_json_numpy_values(tmp_path):
    import numpy as np

    io.write_json(tmp_path / "m.json", {"a": np.float32(0.5), "b": np.arange(3)})
    assert io.read_json(tmp_path / "m.json") == {"a": 0.5, "b": [0, 1, 2]}


def test_check_writable_dir_creates_nothing_and_names_the_blocker(tmp_path):
    target = tmp_path / "new" / "deeper"
    assert io.check_writable_dir(target) == target
    assert not (tmp_path / "new").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for path in (blocker, blocker / "sub"):
        with pytest.raises(io.DlkitError, match=f"{path}: --out must be a folder, and {blocker} is a file"):
            io.check_writable_dir(path, "--out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_dir_refuses_a_read_only_parent(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(io.DlkitError, match="cannot be written"):
            io.check_writable_dir(locked / "out")
    finally:
        locked.chmod(0o755)


def dead_pid():
    """The id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "model.int8.tflite"
    stale = tmp_path / f".model.int8.{dead_pid()}.abc123.int8.tflite"
    live = tmp_path / ".model.int8.1.def456.int8.tflite"  # pid 1 runs
    other = tmp_path / f".other.{dead_pid()}.x.json"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    io.write_bytes(target, b"done")
    assert target.read_bytes() == b"done"
    assert not stale.exists() and live.exists() and other.exists()


def test_temp_dir_is_removed_and_sweeps_what_a_killed_process_left(tmp_path):
    stale = tmp_path / f"dlkit-export.{dead_pid()}.abc"
    stale.mkdir()
    (stale / "saved_model.pb").write_bytes(b"x")
    with io.temp_dir("export", parent=tmp_path) as work:
        assert work.is_dir() and work.name.startswith(f"dlkit-export.{os.getpid()}.")
        assert not stale.exists()
    assert not work.exists()


def test_an_exclusive_write_creates_a_new_file_once(tmp_path):
    path = tmp_path / "config.json"
    io.write_json(path, {"a": 1}, exclusive=True)
    with pytest.raises(FileExistsError):
        io.write_json(path, {"a": 2}, exclusive=True)
    assert io.read_json(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_a_run_folder_is_claimed_once_and_released_when_setup_fails(tmp_path):
    from dlkit.runner import claim_run, release_run

    run_dir = tmp_path / "runs" / "train"
    claim_run(run_dir, {"app": "classify"})
    with pytest.raises(io.DlkitError, match="already holds a run"):
        claim_run(run_dir, {"app": "classify"})
    release_run(run_dir)
    assert not run_dir.exists()


def test_build_once_builds_once_when_two_processes_ask_together(tmp_path, monkeypatch):
    """Two processes asking for the same dataset at once: one builds, the other waits for
    it and reuses the result (no second build, no folder removed under a reader)."""
    import subprocess
    import sys

    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))
    log = tmp_path / "builds.log"
    script = f"""
import os, time
from dlkit.data.cache import build_once
def build(folder):
    with open({str(log)!r}, "a") as f:
        f.write(str(os.getpid()) + "\\n")
    time.sleep(1.0)
    (folder / "data.txt").write_text("ok")
    return {{"pid": os.getpid()}}
print(build_once("shared", build))
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1] == str(tmp_path / "cache" / "datasets" / "shared")
    assert len(log.read_text().split()) == 1
    assert (tmp_path / "cache" / "datasets" / "shared" / "data.txt").read_text() == "ok"


def test_a_resumable_build_interrupted_keeps_its_finished_chunks_and_computes_only_the_rest(
    tmp_path, monkeypatch
):
    """Ctrl-C in the middle of a long cached computation loses only the chunk under way:
    the next build reads the finished chunks back and computes the others, and the result
    equals an uninterrupted build's. A build that is not resumable starts again."""
    import numpy as np

    from dlkit.data.cache import build_once, chunked_array

    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))
    datasets = tmp_path / "cache" / "datasets"
    computed = []

    def compute(start, stop, stop_at=None):
        if start == stop_at:
            raise KeyboardInterrupt
        computed.append((start, stop))
        return np.arange(start, stop, dtype=np.float32)[:, None] * [1.0, -1.0]

    def builder(stop_at=None):
        def build(folder):
            chunked_array(folder / "values.npy", 10, 4, lambda a, b: compute(a, b, stop_at))
            return {"rows": 10}

        return build

    with pytest.raises(KeyboardInterrupt):
        build_once("numbers", builder(stop_at=8), resumable=True)
    assert computed == [(0, 4), (4, 8)] and not (datasets / "numbers").exists()
    computed.clear()
    folder = build_once("numbers", builder(), resumable=True)
    assert computed == [(8, 10)]
    values = np.load(folder / "values.npy")
    np.testing.assert_array_equal(values, np.arange(10, dtype=np.float32)[:, None] * [1.0, -1.0])
    assert sorted(p.name for p in folder.iterdir()) == ["counts.json", "values.npy"]
    assert [p.name for p in datasets.iterdir()] == ["numbers"]  # no partial folder left

    computed.clear()
    with pytest.raises(KeyboardInterrupt):
        build_once("again", builder(stop_at=8))
    assert [p.name for p in datasets.iterdir()] == ["numbers"]
    computed.clear()
    build_once("again", builder())
    assert computed == [(0, 4), (4, 8), (8, 10)]
