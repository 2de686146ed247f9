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
