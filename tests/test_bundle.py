"""Bundles with side files (checksummed, resolved on the edge, copied by export) and runs
started from another app's model (`--init`), which take only the parts they can inherit."""

import shutil

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from dlkit import io
from dlkit.edge.bundle import ModelBundle, add_asset
from dlkit.errors import DlkitError
from dlkit.registry import get_app


@pytest.fixture
def bundle_with_asset(tiny_run, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.keras", "model.tflite", "model.json"):
        shutil.copy(tiny_run / name, folder / name)
    meta = io.read_json(folder / "model.json")
    meta["exports"] = {"float32": meta["exports"]["float32"]}
    add_asset(folder, meta, "notes", b"side file\n", "notes.txt")
    io.write_json(folder / "model.json", meta)
    return folder


def test_side_file_is_listed_with_checksum_and_resolved(bundle_with_asset, bad_files):
    meta = io.read_json(bundle_with_asset / "model.json")
    assert meta["assets"]["notes"]["file"] == "notes.txt" and meta["assets"]["notes"]["bytes"] == 10
    bundle = ModelBundle.load(bundle_with_asset / "model.tflite")
    assert bundle.asset("notes").read_bytes() == b"side file\n"
    with pytest.raises(DlkitError, match="lists no side file 'vocab'"):
        bundle.asset("vocab")
    result = run_cli("classify", "predict", bad_files["good"], "--model", bundle_with_asset / "model.tflite")
    assert result.exit_code == 0, result.output


def test_altered_or_missing_side_file_is_a_one_line_error(bundle_with_asset, bad_files):
    model = bundle_with_asset / "model.tflite"
    (bundle_with_asset / "notes.txt").write_bytes(b"side fil3\n")  # same size, other bytes
    assert_one_line_error(run_cli("classify", "predict", bad_files["good"], "--model", model), "notes.txt")
    assert_one_line_error(run_cli("classify", "predict", bad_files["good"], "--model", model), "checksum")
    (bundle_with_asset / "notes.txt").unlink()
    assert_one_line_error(run_cli("classify", "predict", bad_files["good"], "--model", model), "is missing")


def test_a_tflite_file_altered_after_export_is_refused_in_one_line(bundle_with_asset, bad_files):
    import hashlib

    model = bundle_with_asset / "model.tflite"
    flatbuffer = model.read_bytes()
    record = io.read_json(bundle_with_asset / "model.json")["exports"]["float32"]
    assert record["sha256"] == hashlib.sha256(flatbuffer).hexdigest()
    assert record["bytes"] == len(flatbuffer)
    middle = len(flatbuffer) // 2  # inside the weights: the file still parses and runs
    model.write_bytes(flatbuffer[:middle] + bytes([flatbuffer[middle] ^ 1]) + flatbuffer[middle + 1 :])
    predict = ("classify", "predict", bad_files["good"], "--model", model)
    assert_one_line_error(run_cli(*predict), "differs from the file its export wrote")
    model.write_bytes(flatbuffer + b"\0")
    assert_one_line_error(run_cli(*predict), "altered or truncated")
    model.write_bytes(flatbuffer)
    assert run_cli(*predict).exit_code == 0
    # A file the export did not record (a bundle put together by hand) is not checked.
    meta = io.read_json(bundle_with_asset / "model.json")
    meta["exports"] = {}
    io.write_json(bundle_with_asset / "model.json", meta)
    model.write_bytes(flatbuffer[:middle] + bytes([flatbuffer[middle] ^ 1]) + flatbuffer[middle + 1 :])
    assert ModelBundle.load(model).path == model


def test_text_side_file_fills_the_metadata_and_stays_out_of_model_json(contract_run):
    from dlkit.edge.bundle import stored_meta

    run_dir = contract_run("sentiment").run_dir
    stored = io.read_json(run_dir / "model.json")
    assert "vocab" not in stored and stored["assets"]["vocab"]["into"] == "vocab"
    bundle = ModelBundle.load(run_dir / "model.tflite")
    lines = (run_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert bundle.meta["vocab"] == lines and lines[:2] == ["<pad>", "<unk>"]
    assert stored_meta(bundle.meta) == stored


def test_export_to_another_folder_takes_the_side_files(bundle_with_asset, tmp_path):
    from dlkit.export.bundle import export

    out = tmp_path / "exported"
    export(get_app("classify"), bundle_with_asset, "float32", out_dir=out)
    bundle = ModelBundle.load(out / "model.tflite")
    assert bundle.asset("notes").read_bytes() == b"side file\n"


def test_init_from_another_app_takes_only_the_backbone(tiny_run):
    from dlkit.runner import inherit_architecture, inheritable_parts, initial_model, part_fields

    keras = pytest.importorskip("keras")
    classify, detect = get_app("classify"), get_app("detect")
    source = ModelBundle.load(tiny_run, prefer="keras")
    parts = inheritable_parts(detect, source)
    assert parts == ("image_backbone",)
    config = inherit_architecture(
        detect.default_config(tiny=True).__class__(alpha=1.0, image_size=64, weights="none", head_channels=8),
        source.meta["config"],
        part_fields(parts),
    )
    assert config.alpha == source.meta["config"]["alpha"] and config.image_size == 64  # not the giver's 32
    meta = {"labels": ["a", "b"], "grids": [4, 2], "anchors": [[[0.1, 0.1]] * 3, [[0.4, 0.4]] * 3]}
    model = initial_model(detect, config, meta, source, parts)
    given = classify.parts(keras.saving.load_model(source.path, compile=False), source.meta)["image_backbone"]
    taken = detect.parts(model, meta)["image_backbone"]
    weighted = [layer for layer in taken.layers if layer.weights]
    assert weighted
    for layer in weighted:
        for a, b in zip(layer.get_weights(), given.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # The heads are new: detect's own layers, not copied from anywhere.
    assert model.get_layer("p4_cls").get_weights()[0].shape[-1] == 3 * 2


def test_init_from_an_app_with_nothing_to_inherit_is_a_one_line_error(tiny_run, tmp_path):
    with pytest.raises(DlkitError, match="offers image_backbone; translate can inherit nothing"):
        from dlkit.runner import inheritable_parts

        inheritable_parts(get_app("translate"), ModelBundle.load(tiny_run, prefer="keras"))
    result = run_cli("translate", "train", "--tiny", "--init", tiny_run, "--run-dir", tmp_path / "run")
    assert_one_line_error(result, "can inherit nothing from another app")
    assert not (tmp_path / "run" / "model.keras").exists()


def test_init_from_a_folder_of_tflite_files_only_says_what_to_start_from(tiny_run, tmp_path):
    shipped = tmp_path / "shipped"  # a shipped-model folder without a .keras (segment's)
    shipped.mkdir()
    for name in ("model.json", "model.int8.tflite"):
        shutil.copy2(tiny_run / name, shipped / name)
    result = run_cli("classify", "train", "--tiny", "--init", shipped, "--run-dir", tmp_path / "run")
    assert_one_line_error(result, "holds TFLite files only; --init a training run")
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_tokenizer_is_handed_over_as_metadata(contract_run, monkeypatch):
    from dlkit import registry
    from dlkit.app import App
    from dlkit.runner import inherit_architecture, inherit_meta_parts, inheritable_parts, part_fields

    class Reader(App):  # a text app that starts from another model's tokenizer
        name = "reader"
        input_kind = "text"
        inherits = ("tokenizer", "image_backbone")

    monkeypatch.setitem(registry._REGISTRY, "reader", Reader())
    dates = ModelBundle.load(contract_run("translate").run_dir, prefer="keras")
    parts = inheritable_parts(registry.get_app("reader"), dates)
    assert parts == ("tokenizer",)  # translate offers no backbone
    meta = inherit_meta_parts({"app": "reader", "labels": ["neg", "pos"]}, dates, parts)
    assert meta["vocab"] == dates.meta["source_vocab"] and meta["tokenizer"] == "char"
    assert meta["lowercase"] == dates.meta["lowercase"] and meta["labels"] == ["neg", "pos"]
    assert part_fields(parts) == ("tokenizer", "lowercase")
    from dlkit.apps.translate.config import Config

    config = inherit_architecture(Config(lowercase=False), dates.meta["config"], part_fields(parts))
    assert config.lowercase is dates.meta["config"]["lowercase"]


def test_install_bundle_ships_only_the_listed_files_and_their_exports(tmp_path):
    from dlkit.export.bundle import install_bundle

    work = tmp_path / "work"
    work.mkdir()
    for name in ("model.tflite", "model.int8.tflite", "metrics.json"):
        (work / name).write_bytes(b"x")
    exports = {"float32": {"file": "model.tflite"}, "int8": {"file": "model.int8.tflite"}}
    io.write_json(work / "model.json", {"app": "classify", "exports": exports})
    target = install_bundle(work, tmp_path / "shipped", ("model.int8.tflite", "model.json"))
    assert sorted(p.name for p in target.iterdir()) == ["metrics.json", "model.int8.tflite", "model.json"]
    assert list(io.read_json(target / "model.json")["exports"]) == ["int8"]


def test_ship_run_exports_measures_and_records_with_side_files(contract_run, tmp_path):
    from dlkit.export.bundle import ship_run

    run = contract_run("sentiment")
    seen = {}

    def measure(work):
        seen["files"] = sorted(p.name for p in work.iterdir())
        return {"score": 1.0}

    results = tmp_path / "results.json"
    assert (
        ship_run(run.app, run.run_dir, ("dynamic",), measure, (), results, {"note": "x"}, measure_only=True)
        is None
    )
    assert {"model.keras", "model.json", "vocab.txt", "model.dynamic.tflite"} <= set(seen["files"])
    record = io.read_json(results)
    assert record["note"] == "x" and record["run"] == str(run.run_dir) and record["metrics"]["score"] == 1.0
    assert record["metrics"]["sizes"]["model.dynamic.tflite"] > 0


def test_untrusted_or_broken_keras_files_are_refused_in_one_line(tiny_run, tmp_path, bad_files):
    """safe_mode stays on: a Lambda layer (arbitrary code) is refused, as are a truncated
    file and a file of another kind named .keras."""
    import keras

    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    with_lambda = tmp_path / "lambda"
    with_lambda.mkdir()
    keras.Model(inputs, outputs).save(with_lambda / "model.keras")
    shutil.copy(tiny_run / "model.json", with_lambda / "model.json")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    data = (tiny_run / "model.keras").read_bytes()
    (truncated / "model.keras").write_bytes(data[: len(data) // 2])
    shutil.copy(tiny_run / "model.json", truncated / "model.json")
    for folder, message in ((with_lambda, "Lambda"), (truncated, "not a .keras model")):
        result = run_cli("classify", "predict", bad_files["good"], "--model", folder / "model.keras")
        assert_one_line_error(result, message)
