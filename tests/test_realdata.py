"""Checks on the real offline data (Debian tuxpaint-stamps-default) and the shipped model."""

import pytest

from dlkit.data import tuxpaint
from dlkit.paths import shipped_model_dir

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not tuxpaint.STAMPS_ROOT.is_dir(), reason="tuxpaint-stamps-default not installed"),
]


def test_cutouts_are_real_photos_split_without_overlap():
    cutouts = tuxpaint.find_cutouts()
    assert len(cutouts) >= 5 and all(len(v) >= 10 for v in cutouts.values())
    splits = tuxpaint.split_cutouts(cutouts)
    paths = {name: {c.path for c in items} for name, items in splits.items()}
    assert (
        not paths["train"] & paths["val"]
        and not paths["train"] & paths["test"]
        and not paths["val"] & paths["test"]
    )
    for name in ("val", "test"):
        assert {c.label for c in splits[name]} == set(cutouts)
    assert all("cartoon" not in str(p) for p in paths["train"])
    # The split is stable: recomputing gives the same assignment.
    assert tuxpaint.split_cutouts(tuxpaint.find_cutouts()) == splits


def test_compositing_is_deterministic_and_keeps_the_object(tmp_path):
    counts = tuxpaint.build_classification(
        tmp_path / "a", image_size=64, views={"train": 1, "val": 1, "test": 1}
    )
    tuxpaint.build_classification(tmp_path / "b", image_size=64, views={"train": 1, "val": 1, "test": 1})
    files = sorted((tmp_path / "a").rglob("*.jpg"))
    assert len(files) == sum(sum(c.values()) for c in counts.values())
    for path in files[:20]:
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_default_source_has_fixed_splits():
    from dlkit.data.image_classes import open_source

    source = open_source(None)
    assert source.labels == sorted(tuxpaint.PHOTO_CLASSES)
    stems = {split: {p.stem.rsplit("_", 1)[0] for p, _ in files} for split, files in source.files.items()}
    assert not stems["train"] & stems["test"] and not stems["train"] & stems["val"]


@pytest.mark.slow
@pytest.mark.skipif(not (shipped_model_dir("classify") / "model.keras").exists(), reason="no shipped model")
def test_shipped_model_accuracy_and_int8_parity_on_the_held_out_split():
    from apps.classify.config import Config
    from dlkit import runner
    from dlkit.apps import get_app
    from dlkit.io import read_json

    app = get_app("classify")
    directory = shipped_model_dir("classify")
    keras_report = runner.evaluate(app, directory / "model.keras", split="test")
    tflite_report = runner.evaluate(app, directory / "model.int8.tflite", split="test")
    shipped = read_json(directory / "metrics.json")
    # The shipped metrics are what this machine measures now.
    assert keras_report["accuracy"] == pytest.approx(shipped["keras"]["test"]["accuracy"], abs=1e-6)
    assert tflite_report["accuracy"] == pytest.approx(shipped["tflite_int8"]["test"]["accuracy"], abs=0.02)
    assert keras_report["accuracy"] >= 0.9
    assert abs(keras_report["accuracy"] - tflite_report["accuracy"]) <= 0.02
    assert Config().image_size == read_json(directory / "model.json")["input"]["shape"][0]


def test_missing_backgrounds_are_an_actionable_error(monkeypatch, tmp_path):
    from dlkit.errors import MissingSourceError

    monkeypatch.setattr(tuxpaint, "OPENCV_DATA", tmp_path)
    with pytest.raises(MissingSourceError, match="apt-get install -y opencv-doc"):
        tuxpaint.load_backgrounds()
    monkeypatch.setattr(tuxpaint, "STAMPS_ROOT", tmp_path / "none")
    with pytest.raises(MissingSourceError, match="apt-get install -y tuxpaint-stamps-default"):
        tuxpaint.find_cutouts(root=tmp_path / "none")
