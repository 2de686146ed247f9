"""The classify app end to end on a tiny dataset: train, evaluate, export, predict."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import BAD_IMAGES, assert_one_line_error, run_cli, write_tiny_folder
from dlkit import io
from dlkit.apps.classify import edge
from dlkit.apps.classify.config import Config
from dlkit.edge import EdgeModel


def test_run_directory_is_complete(tiny_run):
    for name in (
        "config.json",
        "manifest.json",
        "history.jsonl",
        "metrics.json",
        "model.keras",
        "model.json",
        "plots/training_curves.png",
        "plots/confusion_matrix.png",
        "checkpoint/state.json",
    ):
        assert (tiny_run / name).exists(), name
    manifest = io.read_json(tiny_run / "manifest.json")
    assert manifest["seed"] == Config.tiny().seed and len(manifest["data"]["fingerprint"]) == 16
    assert set(manifest["versions"]) >= {"tensorflow", "keras", "dlkit"}
    epochs = [r for r in io.read_jsonl(tiny_run / "history.jsonl") if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1]
    metrics = io.read_json(tiny_run / "metrics.json")["keras"]["test"]
    assert set(metrics) >= {"accuracy", "top_3_accuracy", "per_class", "confusion_matrix"}
    assert np.sum(metrics["confusion_matrix"]) == metrics["count"]


def test_shipped_model_file_has_no_optimizer_state(tiny_run):
    import io as bytes_io
    import zipfile

    import h5py

    with zipfile.ZipFile(tiny_run / "model.keras") as archive:
        config = json.loads(archive.read("config.json"))
        weights = h5py.File(bytes_io.BytesIO(archive.read("model.weights.h5")), "r")
        assert "optimizer" not in weights and "layers" in weights
    assert not config.get("compile_config")


def test_export_records_parity(tiny_run):
    meta = io.read_json(tiny_run / "model.json")
    assert set(meta["exports"]) == {"float32", "int8"}
    assert meta["exports"]["float32"]["max_abs_diff"] < 1e-4
    assert meta["exports"]["int8"]["bytes"] < meta["exports"]["float32"]["bytes"]
    assert EdgeModel(tiny_run / "model.int8.tflite").input_dtypes == ["uint8"]


def test_postprocess_top_k_order():
    meta = {"labels": ["a", "b", "c"]}
    [result] = edge.postprocess(np.array([[0.2, 0.5, 0.3]]), meta, top_k=2)
    assert result["label"] == "b" and [r["label"] for r in result["top_k"]] == ["b", "c"]
    assert edge.format_result("x.jpg", result) == "x.jpg: b 0.50 (c 0.30)"


def test_cli_predict_json_and_text(tiny_run, bad_files):
    result = run_cli("classify", "predict", bad_files["good"], "--model", tiny_run, "--json", "--top-k", "2")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["input"] == str(bad_files["good"]) and len(record["top_k"]) == 2
    assert abs(sum(r["score"] for r in record["top_k"])) <= 1.0 + 1e-5
    text = run_cli("classify", "predict", bad_files["good"], "--model", tiny_run / "model.keras")
    assert text.exit_code == 0 and f"{bad_files['good']}: " in text.output


@pytest.mark.parametrize("kind, message", BAD_IMAGES)
def test_cli_predict_bad_file_is_one_line_exit_2(tiny_run, bad_files, kind, message):
    assert_one_line_error(run_cli("classify", "predict", bad_files[kind], "--model", tiny_run), message)


@pytest.mark.parametrize("kind", ["gray", "rgba", "deep"])
def test_cli_predict_unusual_but_valid_images(tiny_run, bad_files, kind):
    result = run_cli("classify", "predict", bad_files[kind], "--model", tiny_run, "--json")
    assert result.exit_code == 0, result.output


def test_cli_predict_folder_skips_and_reports_bad_files(tiny_run, bad_files):
    folder = bad_files["good"].parent
    result = run_cli("classify", "predict", folder, "--model", tiny_run, "--json")
    assert result.exit_code == 2
    records = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    good = [r for r in records if "label" in r]
    bad = [r for r in records if "error" in r]
    assert {r["input"].rsplit("/", 1)[-1] for r in good} == {"good.jpg", "gray.png", "rgba.png", "deep.png"}
    assert {r["input"].rsplit("/", 1)[-1] for r in bad} == {
        "corrupt.jpg",
        "empty.jpg",
        "text.png",
        "bomb.png",
    }
    assert "Traceback" not in result.output
    assert "4 inputs could not be read" in result.output


def test_cli_train_evaluate_export_predict(tmp_path, monkeypatch):
    """One CLI run on train/val/test folders holding an unreadable training file and an
    unreadable test image (each skipped and named: at loading, and at the end of
    training), with early stopping (it watches the checkpoint's metric); then evaluate,
    export and predict on what it wrote."""
    import keras

    data = tmp_path / "data"
    for split, count in (("train", 6), ("val", 4), ("test", 4)):
        write_tiny_folder(data / split, per_class=count)
    (data / "train" / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (data / "test" / "red" / "broken.png").write_bytes(b"\x89PNG broken")
    seen = []

    class Recording(keras.callbacks.EarlyStopping):
        def __init__(self, **kwargs):
            seen.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(keras.callbacks, "EarlyStopping", Recording)
    run_dir = tmp_path / "run"
    train = ("classify", "train", "--tiny", "--data", data, "--run-dir", run_dir)
    result = run_cli(*train, "--set", "fine_tune_epochs=0", "--set", "patience=1")
    assert result.exit_code == 0, result.output
    assert (run_dir / "model.keras").exists()
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped: ")]
    assert any("broken.jpg" in line for line in skipped) and any("broken.png" in line for line in skipped)
    assert seen == [{"monitor": "val_accuracy", "mode": "max", "patience": 1}]
    done = io.read_json(run_dir / "metrics.json")["keras"]
    shown = f"val {done['val']['accuracy']:.4f}, test {done['test']['accuracy']:.4f}"
    assert f"done: {run_dir} (accuracy: {shown})" in result.output
    assert_one_line_error(run_cli(*train), "already holds a run")
    result = run_cli(
        "classify", "evaluate", "--model", run_dir, "--split", "val", "--json", "--out", tmp_path / "eval"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["split"] == "val" and 0 <= report["accuracy"] <= 1
    assert (tmp_path / "eval" / "confusion_matrix.png").exists()
    # Every image it got wrong, most confident first, each under its true class's folder.
    errors = report["misclassified"]
    assert "rows" not in report
    assert len(errors) == report["count"] - round(report["accuracy"] * report["count"])
    assert [e["confidence"] for e in errors] == sorted((e["confidence"] for e in errors), reverse=True)
    assert all(Path(e["path"]).parent.name == e["true"] != e["predicted"] for e in errors)
    tsv = (tmp_path / "eval" / "misclassified.tsv").read_text().splitlines()
    assert tsv[0] == "path\ttrue\tpredicted\tconfidence" and len(tsv) == len(errors) + 1
    result = run_cli("classify", "export", "--model", run_dir, "--quantize", "dynamic")
    assert result.exit_code == 0, result.output
    assert (run_dir / "model.dynamic.tflite").exists()
    image = sorted((data / "val").rglob("*.png"))[0]
    result = run_cli("classify", "predict", image, "--model", run_dir / "model.dynamic.tflite")
    assert result.exit_code == 0 and result.output.startswith(str(image))
    info = run_cli("classify", "info", "--model", run_dir, "--json")
    assert info.exit_code == 0 and '"labels"' in info.output


def test_export_gate_fails_without_writing(tmp_path, tiny_run, monkeypatch):
    import shutil

    from dlkit.app import Metric

    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run, run_dir)
    (run_dir / "model.float16.tflite").unlink(missing_ok=True)
    monkeypatch.setattr(Metric, "drop", lambda self, reference, candidate: 5.0)  # 5 points worse
    result = run_cli("classify", "export", "--model", run_dir, "--quantize", "float16", "--max-drop", "1")
    assert_one_line_error(result, "nothing written")
    assert re.search(r"dropped 5.00 points on \d+ validation examples \(budget 1.0\)", result.output)
    assert not (run_dir / "model.float16.tflite").exists()


def test_bad_config_override(tiny_folder):
    assert_one_line_error(
        run_cli("classify", "train", "--data", tiny_folder, "--set", "epochs=many"), "epochs expects int"
    )
    assert_one_line_error(
        run_cli("classify", "train", "--data", tiny_folder, "--set", "colour=red"), "unknown config key"
    )


def test_one_class_and_empty_class_folders(tmp_path):
    one = write_tiny_folder(tmp_path / "one", classes=("only",))
    assert_one_line_error(run_cli("classify", "train", "--tiny", "--data", one), "only one class")
    empty = write_tiny_folder(tmp_path / "empty", classes=("a", "b"))
    (empty / "c").mkdir()
    assert_one_line_error(run_cli("classify", "train", "--tiny", "--data", empty), "without images: c")
    assert_one_line_error(
        run_cli("classify", "train", "--tiny", "--data", tmp_path / "missing"), "no such data folder"
    )
    (tmp_path / "flat").mkdir()
    assert_one_line_error(
        run_cli("classify", "train", "--tiny", "--data", tmp_path / "flat"), "no class sub-folders"
    )


def test_labels_not_in_the_model_are_an_error(tmp_path, tiny_run):
    other = write_tiny_folder(tmp_path / "other", classes=("red", "purple"))
    result = run_cli("classify", "evaluate", "--model", tiny_run, "--data", other)
    assert_one_line_error(result, "data classes not known to the model: purple")


def test_subset_of_labels_is_remapped(tmp_path, tiny_run):
    subset = write_tiny_folder(tmp_path / "subset", classes=("red", "blue"), per_class=10)
    result = run_cli(
        "classify", "evaluate", "--model", tiny_run, "--data", subset, "--split", "train", "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["per_class"]["green"]["support"] == 0
    assert report["per_class"]["red"]["support"] > 0 and report["per_class"]["blue"]["support"] > 0


def test_init_from_a_model_with_other_classes_keeps_its_backbone_and_architecture(tmp_path, tiny_run):
    from dlkit.apps.classify.model import backbone_of
    from dlkit.engine import load_keras

    other = write_tiny_folder(tmp_path / "pets", classes=("cat", "dog"))
    run_dir = tmp_path / "finetuned"
    # No --tiny: the defaults say 160 px and a full-width backbone; the init model is 32 px,
    # alpha 0.35. One head epoch: the frozen backbone must come through unchanged.
    result = run_cli(
        "classify",
        "train",
        "--data",
        other,
        "--init",
        tiny_run,
        "--run-dir",
        run_dir,
        "--set",
        "epochs=1",
        "--set",
        "fine_tune_epochs=0",
    )
    assert result.exit_code == 0, result.output
    assert "from the --init model: alpha=0.35, image_size=32" in result.output
    assert "keeping the backbone, new head" in result.output
    config = io.read_json(run_dir / "config.json")["config"]
    assert (config["image_size"], config["alpha"]) == (32, 0.35)
    assert io.read_json(run_dir / "model.json")["labels"] == ["cat", "dog"]
    before = backbone_of(load_keras(tiny_run / "model.keras")).get_weights()
    after = backbone_of(load_keras(run_dir / "model.keras")).get_weights()
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)


def test_missing_model_and_wrong_model_file(tmp_path, bad_files):
    assert_one_line_error(
        run_cli("classify", "predict", bad_files["good"], "--model", tmp_path / "nope"),
        "no such model file or directory",
    )
    (tmp_path / "m.txt").write_text("x")
    assert_one_line_error(
        run_cli("classify", "predict", bad_files["good"], "--model", tmp_path / "m.txt"),
        "expected a .keras or .tflite file",
    )


def test_a_class_whose_every_image_is_unreadable_stops_training(tmp_path):
    data = write_tiny_folder(tmp_path / "data")
    for path in (data / "blue").iterdir():
        path.write_bytes(b"\x89PNG broken")
    run_dir = tmp_path / "run"
    result = run_cli("classify", "train", "--tiny", "--data", data, "--run-dir", run_dir)
    assert_one_line_error(result, "class 'blue' has no training image (all ")
    assert "of its files are unreadable" in result.output
    assert not (run_dir / "model.keras").exists()


@pytest.mark.slow
def test_fine_tune_the_shipped_model_on_a_user_folder(tmp_path):
    from dlkit.paths import shipped_model_dir

    shipped = shipped_model_dir("classify")
    if not (shipped / "model.keras").exists():
        pytest.skip("no shipped model")
    pets = write_tiny_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=6, size=64)
    run_dir = tmp_path / "pets_run"
    result = run_cli(
        "classify",
        "train",
        "--init",
        shipped,
        "--data",
        pets,
        "--run-dir",
        run_dir,
        "--set",
        "epochs=1",
        "--set",
        "fine_tune_epochs=1",
        "--set",
        "batch_size=8",
    )
    assert result.exit_code == 0, result.output
    meta = io.read_json(run_dir / "model.json")
    assert meta["labels"] == ["cat", "dog"]
    assert meta["config"]["backbone"] == io.read_json(shipped / "model.json")["config"]["backbone"]


def test_from_scratch_batchnorm_tracks_statistics_quickly():
    from dlkit.apps.classify.model import backbone_of, build_model

    meta = {"labels": ["a", "b"]}
    scratch = backbone_of(build_model(Config.tiny(), meta))
    momenta = {layer.momentum for layer in scratch.layers if hasattr(layer, "moving_mean")}
    assert momenta == {0.9}
    pretrained = backbone_of(build_model(Config(image_size=32), meta))
    assert {layer.momentum for layer in pretrained.layers if hasattr(layer, "moving_mean")} == {0.999}


def test_object_groups_join_the_views_of_one_object():
    from dlkit.data.image_classes import object_groups

    paths = ["d/val/fish/f08_0.jpg", "d/val/fish/f08_4.jpg", "d/val/fish/categorization-fish14_2.jpg"]
    paths += ["d/val/birds/f08_1.jpg", "d/val/birds/duck.jpg", "d/val/birds/blue_tit.jpg"]
    assert object_groups(paths) == [
        "fish/f08",
        "fish/f08",
        "fish/categorization-fish14",
        "birds/f08",
        "birds/duck",
        "birds/blue_tit",
    ]


def test_ship_tool_scores_every_variant_apart_and_pooled_with_object_intervals(tmp_path, tiny_run):
    """`tools/ship_classify.py --measure-only` on a finished run: Keras and both TFLite
    files on val, test and pooled, each accuracy with its interval; nothing shipped."""
    import shutil
    import subprocess
    import sys

    from dlkit import io

    run = tmp_path / "run"
    run.mkdir()
    for name in ("model.keras", "model.json", "metrics.json"):
        shutil.copy2(Path(tiny_run) / name, run / name)
    tool = Path(__file__).parents[2] / "tools" / "ship_classify.py"
    done = subprocess.run(
        [sys.executable, str(tool), str(run), "--measure-only"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = io.read_json(run / "ship_metrics.json")
    for variant in ("keras", "tflite_float32", "tflite_int8"):
        reports = metrics[variant]
        assert reports["pooled"]["count"] == reports["val"]["count"] + reports["test"]["count"]
        hits = sum(reports[s]["accuracy"] * reports[s]["count"] for s in ("val", "test"))
        assert abs(reports["pooled"]["accuracy"] - hits / reports["pooled"]["count"]) < 1e-9
        for report in reports.values():
            low, high = report["accuracy_ci95"]
            assert low <= report["accuracy"] <= high
            assert "objects" not in report  # a user's folder: each image alone, a Wilson interval
    assert metrics["sizes"]["model.int8.tflite"] < metrics["sizes"]["model.tflite"]
    assert not (run / "model.int8.tflite").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    done = subprocess.run([sys.executable, str(tool), str(broken)], capture_output=True, text=True)
    assert (
        done.returncode == 2
        and "not a finished classify run" in done.stderr
        and "Traceback" not in done.stderr
    )


def test_misclassified_rows_and_their_pictures(tmp_path):
    """`misclassified` lists the wrong rows most confident first; the plots write them as
    misclassified.tsv and draw those that are files (a TFDS example is a name only)."""
    from dlkit.apps.classify.model import plots
    from dlkit.metrics.classification import ClassificationEvaluator, misclassified

    evaluator = ClassificationEvaluator(["cat", "dog"], k=1, rows=True)
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    evaluator.update([probs], np.array([0, 0, 0, 1]))
    report = evaluator.result()
    names = [str(tmp_path / f"{i}.png") for i in range(3)] + ["tfds:pets:test:3"]
    for name in names[:3]:
        Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(name)
    errors = misclassified(report, names, key="path")
    assert "rows" not in report
    assert [(e["path"], e["true"], e["predicted"]) for e in errors] == [
        (names[2], "cat", "dog"),  # 0.8 sure
        (names[1], "cat", "dog"),  # 0.7
        (names[3], "dog", "cat"),  # 0.6
    ]
    report["misclassified"] = errors
    written = plots(report, {}, tmp_path, title="pets on test")
    assert [Path(p).name for p in written] == [
        "confusion_matrix.png",
        "misclassified.tsv",
        "misclassified.png",
    ]
    assert (tmp_path / "misclassified.tsv").read_text().splitlines()[1] == f"{names[2]}\tcat\tdog\t0.800"
    with Image.open(tmp_path / "misclassified.png") as picture:
        assert picture.width > 300
