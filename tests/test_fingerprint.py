"""Data fingerprints: a digest of a decoded split that reports carry and `evaluate`
compares with the model's records."""

from types import SimpleNamespace

import numpy as np
import pytest

from dlkit import io
from dlkit.engine import fingerprint, pooled_fingerprint, score_splits
from dlkit.runner import recorded_fingerprints


def split(inputs, targets):
    return SimpleNamespace(inputs=inputs, targets=targets)


def detection_targets(boxes):
    """Ragged targets as detect decodes them: an object array of (boxes, classes)."""
    packed = np.empty(len(boxes), dtype=object)
    packed[:] = [(np.asarray(b, np.float32), np.arange(len(b), dtype=np.int32)) for b in boxes]
    return packed


def test_equal_data_give_equal_digests_and_any_change_another():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 1], np.int32)
    digest = fingerprint(split(images, labels))
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert fingerprint(split(images.copy(), labels.copy())) == digest
    assert fingerprint(split(np.asfortranarray(images), labels)) == digest  # memory layout is not data
    changed = images.copy()
    changed[3, 7, 7, 2] ^= 1  # one bit of one pixel
    others = [
        split(changed, labels),
        split(images, labels[::-1].copy()),
        split(images, labels.astype(np.int64)),  # the same numbers, another type
        split(images.reshape(4, 64, 3), labels),  # the same bytes, another shape
        split(images[:3], labels[:3]),
    ]
    assert len({digest, *(fingerprint(s) for s in others)}) == 1 + len(others)


def test_named_inputs_ragged_and_text_targets():
    ids = {"token_ids": np.arange(6).reshape(2, 3), "mask": np.ones((2, 3), np.int8)}
    reordered = {"mask": ids["mask"], "token_ids": ids["token_ids"]}
    assert fingerprint(split(ids, np.zeros(2))) == fingerprint(split(reordered, np.zeros(2)))
    renamed = {"token_ids": ids["token_ids"], "attention": ids["mask"]}
    assert fingerprint(split(ids, np.zeros(2))) != fingerprint(split(renamed, np.zeros(2)))

    images = np.zeros((2, 4, 4, 3), np.uint8)
    boxes = detection_targets([[[0.1, 0.1, 0.5, 0.5]], [[0.2, 0.2, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]]])
    moved = detection_targets([[[0.1, 0.1, 0.5, 0.5]], [[0.2, 0.2, 0.4, 0.4], [0.5, 0.5, 0.9, 0.91]]])
    assert fingerprint(split(images, boxes)) == fingerprint(split(images, detection_targets(
        [[[0.1, 0.1, 0.5, 0.5]], [[0.2, 0.2, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]]])))  # fmt: skip
    assert fingerprint(split(images, boxes)) != fingerprint(split(images, moved))

    references = np.array(["1979-07-03", "2001-01-01"], dtype=object)
    assert fingerprint(split(ids, references)) != fingerprint(
        split(ids, np.array(["1979-07-03", "2001-01-02"], dtype=object))
    )
    # A number and its text are not the same target.
    assert fingerprint(split(ids, [1, 2])) != fingerprint(split(ids, ["1", "2"]))


class CountingEvaluator:
    def __init__(self):
        self.seen = 0

    def update(self, outputs, targets):
        self.seen += len(targets)

    def result(self):
        return {"count": self.seen}


def test_score_splits_puts_each_splits_digest_in_its_report_and_pools_them():
    app = SimpleNamespace(
        evaluator=lambda config, meta: CountingEvaluator(), annotate=lambda report, split: report
    )
    splits = {
        "val": split(np.zeros((3, 2), np.float32), np.array([0, 1, 0])),
        "test": split(np.ones((5, 2), np.float32), np.array([1, 1, 0, 0, 1])),
    }
    reports = score_splits(app, None, {}, lambda x: [x], splits)
    assert reports["val"]["data_fingerprint"] == fingerprint(splits["val"])
    assert reports["test"]["data_fingerprint"] == fingerprint(splits["test"])
    assert reports["pooled"]["count"] == 8
    assert reports["pooled"]["data_fingerprint"] == pooled_fingerprint(
        [fingerprint(splits["val"]), fingerprint(splits["test"])]
    )
    assert pooled_fingerprint(["a", "b"]) != pooled_fingerprint(["b", "a"])


@pytest.mark.parametrize("metrics_text", [None, "{not json"])
def test_recorded_fingerprints_are_read_from_the_export_checks_and_metrics(tmp_path, metrics_text):
    meta = {
        "exports": {"int8": {"file": "model.int8.tflite", "val": {"accuracy": 0.9, "data_fingerprint": "e1"}}}
    }
    bundle = SimpleNamespace(meta=meta, directory=tmp_path)
    if metrics_text is not None:  # unreadable: the export check is still read
        (tmp_path / "metrics.json").write_text(metrics_text)
    assert recorded_fingerprints(bundle, "val") == {"e1"}
    assert recorded_fingerprints(bundle, "test") == set()
    io.write_json(
        tmp_path / "metrics.json",
        {
            "keras": {"val": {"data_fingerprint": "k1"}, "test": {"data_fingerprint": "k2"}},
            "movie": {"tflite_dynamic": {"accuracy": 0.8}},
            "data_fingerprints": {"test": "t1"},
            "bench": {"test": {"clips": 300, "data_fingerprint": "b1"}},
        },
    )
    assert recorded_fingerprints(bundle, "val") == {"e1", "k1"}
    assert recorded_fingerprints(bundle, "test") == {"k2", "t1", "b1"}
    assert recorded_fingerprints(bundle, "train") == set()


def test_reproduce_shipped_records_fingerprints_only_where_every_figure_repeats(
    contract_run, tmp_path, monkeypatch
):
    from conftest import load_tool
    from dlkit import runner

    tool = load_tool("reproduce_shipped")
    trained = contract_run("classify")
    meta = io.read_json(trained.run_dir / "model.json")
    record = meta["exports"]["int8"]
    for name in ("model.json", record["file"], record["golden"]):
        (tmp_path / name).write_bytes((trained.run_dir / name).read_bytes())
    # A shipped record as a ship tool writes it: the file's reports on val and test.
    reports = {
        split: runner.evaluate(trained.app, tmp_path / record["file"], split=split)
        for split in ("val", "test")
    }
    io.write_json(tmp_path / "metrics.json", {"tflite_int8": reports})
    monkeypatch.setattr(tool, "shipped_model_dir", lambda name: tmp_path)

    results = tool.main(["classify", "--record"])
    found = results["classify"]
    assert found["variant"] == "tflite_int8" and found["reproduced"]
    figures = [k for k, v in reports["val"].items() if tool.numbers(v) is not None]
    assert "accuracy" in figures and "accuracy_ci95" in figures  # numbers and intervals
    assert found["val"]["compared"] == len(figures) >= 3 and not found["val"]["differing"]
    assert io.read_json(tmp_path / "metrics.json")["data_fingerprints"] == {
        split: reports[split]["data_fingerprint"] for split in ("val", "test")
    }

    # One recorded figure off by more than the tolerance: reported, nothing recorded.
    metrics = {"tflite_int8": reports}
    metrics["tflite_int8"]["test"]["accuracy"] += 0.01
    low, high = metrics["tflite_int8"]["val"]["accuracy_ci95"]
    metrics["tflite_int8"]["val"]["accuracy_ci95"] = [low, high - 0.01]  # an interval too
    io.write_json(tmp_path / "metrics.json", metrics)
    results = tool.main(["classify", "--record"])
    assert not results["classify"]["reproduced"]
    assert list(results["classify"]["test"]["differing"]) == ["accuracy"]
    assert list(results["classify"]["val"]["differing"]) == ["accuracy_ci95"]
    assert "data_fingerprints" not in io.read_json(tmp_path / "metrics.json")
