"""The detect app end to end on a tiny synthetic YOLO dataset: train, export (float32 and
int8 with decode + NMS inside), Keras/TFLite parity, predict with drawn boxes, bad input."""

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import load_tool
from dlkit.apps.detect.config import Config
from dlkit.apps.detect.data import write_sample_yolo
from dlkit.cli import cli
from dlkit.edge.bundle import ModelBundle
from dlkit.errors import DlkitError
from dlkit.registry import get_app

keras = pytest.importorskip("keras")
APP = get_app("detect")


@pytest.fixture(scope="module")
def detect_run(contract_run):
    """The contract kit's tiny detect run (float32 and int8 exports) and its data.yaml."""
    run = contract_run("detect")
    return run.run_dir, Path(run.data)


def test_run_metadata_and_metrics(detect_run):
    run_dir, _ = detect_run
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["labels"] == ["red", "blue"] and meta["grids"] == [4, 2]
    anchors = np.array(meta["anchors"]).reshape(-1, 2)
    assert anchors.shape == (6, 2) and np.all(np.diff(anchors.prod(1)) >= 0)
    test = json.loads((run_dir / "metrics.json").read_text())["keras"]["test"]
    assert 0 <= test["map50_95"] <= test["map50"] <= 1
    assert set(test["per_class"]) == {"red", "blue"}
    assert (run_dir / "plots" / "precision_recall.png").stat().st_size > 1000


def test_tflite_has_builtin_ops_only_and_matches_keras(detect_run):
    from ai_edge_litert.interpreter import Interpreter

    from dlkit.engine import runner_for

    run_dir, _ = detect_run
    for name in ("model.tflite", "model.int8.tflite"):
        interpreter = Interpreter(model_path=str(run_dir / name))
        ops = {op["op_name"] for op in interpreter._get_ops_details()}
        assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    # int8: the network is quantized, decode (sigmoid/exp of the raw fields) and NMS are not.
    interpreter = Interpreter(model_path=str(run_dir / "model.int8.tflite"))
    dtype = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    by_op = {}
    for op in interpreter._get_ops_details():
        by_op.setdefault(op["op_name"], []).append(dtype[op["outputs"][0]])
    assert set(by_op["CONV_2D"]) == {np.int8}
    for name in ("EXP", "LOGISTIC", "SOFTMAX", "NON_MAX_SUPPRESSION_V4"):
        assert set(by_op[name]) <= {np.float32, np.int32}, (name, by_op[name])
    golden = np.load(run_dir / "model.golden.npz")
    inputs = golden["inputs"]
    keras_out = runner_for(APP, ModelBundle.load(run_dir, prefer="keras"))(inputs)
    tflite_out = runner_for(APP, ModelBundle.load(run_dir / "model.tflite"))(inputs)
    assert [o.shape for o in tflite_out] == [
        (len(inputs), 50, 4),
        (len(inputs), 50),
        (len(inputs), 50),
        (len(inputs),),
    ]
    np.testing.assert_array_equal(tflite_out[3], keras_out[3])  # same number of detections
    for k in range(3):
        np.testing.assert_allclose(tflite_out[k], keras_out[k], atol=1e-3)
    int8 = json.loads((run_dir / "model.json").read_text())["exports"]["int8"]
    assert int8["val"]["metric"] == "map50"
    assert (run_dir / "model.int8.tflite").stat().st_size < (run_dir / "model.tflite").stat().st_size


def test_predict_writes_annotated_images_and_json(detect_run, tmp_path):
    run_dir, data = detect_run
    images = data.parent / "images" / "test"
    bad = tmp_path / "in" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not an image")
    good = tmp_path / "in" / "wide.png"
    Image.new("RGB", (120, 60), (220, 20, 20)).save(good)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "detect",
            "predict",
            str(images),
            str(bad),
            str(good),
            "--model",
            str(run_dir),
            "--out",
            str(out),
            "--conf",
            "0",
        ],
    )
    assert result.exit_code == 2, result.output  # one bad file: reported, the rest done
    assert "skipped:" in result.output and "broken.jpg" in result.output
    records = json.loads((out / "predictions.json").read_text())
    assert len(records) == len(list(images.iterdir())) + 1
    wide = [r for r in records if r["input"].endswith("wide.png")][0]
    assert (wide["width"], wide["height"]) == (120, 60)
    for det in wide["detections"]:
        x0, y0, x1, y1 = det["box_pixels"]
        assert 0 <= x0 <= x1 <= 120 and 0 <= y0 <= y1 <= 60
        assert det["label"] in ("red", "blue")
    assert Image.open(out / "wide.jpg").size == (120, 60)


def test_bad_data_is_a_one_line_error(tmp_path):
    (tmp_path / "data.yaml").write_text("names: [a]\ntrain: images/train\n")
    result = CliRunner().invoke(
        cli, ["detect", "train", "--tiny", "--data", str(tmp_path), "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "does not exist" in result.output
    (tmp_path / "data.yaml").write_text(": : not yaml [")
    result = CliRunner().invoke(cli, ["detect", "data", "check", str(tmp_path)])
    assert result.exit_code == 2 and "not valid YAML" in result.output


def test_evaluate_cli_reports_map_and_per_class_ap(detect_run, tmp_path):
    run_dir, data = detect_run
    result = CliRunner().invoke(
        cli,
        [
            "detect",
            "evaluate",
            "--model",
            str(run_dir / "model.int8.tflite"),
            "--data",
            str(data),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "map50_95" in result.output and "ap50" in result.output
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert report["split"] == "test" and 0 <= report["map50"] <= 1
    assert (tmp_path / "precision_recall.png").exists()
    # The confusion matrix adds up to the split's boxes: each one right, named wrong or missed.
    confusion = report["confusion"]
    matrix = np.array(confusion["matrix"])
    assert confusion["labels"] == ["red", "blue", "background"] and matrix.shape == (3, 3)
    assert confusion["right"] + confusion["wrong_class"] + confusion["missed"] == report["boxes"]
    assert confusion["false_positives"] == matrix[-1].sum() and matrix[-1, -1] == 0
    assert confusion["right_share"] == pytest.approx(confusion["right"] / report["boxes"])
    for i, row in enumerate(report["per_class"].values()):  # P and R at the matrix's threshold
        if matrix[i].sum():
            assert row["recall"] == pytest.approx(matrix[i, i] / matrix[i].sum())
        if matrix[:, i].sum():
            assert row["precision"] == pytest.approx(matrix[i, i] / matrix[:, i].sum())
    assert "false_positives" in result.output
    # The images with the most errors, worst first, named by their files and drawn.
    worst = report["worst_images"]
    errors = [w["missed"] + w["wrong_class"] + w["false_positives"] for w in worst]
    assert errors == sorted(errors, reverse=True) and all(errors) and len(worst) <= 16
    assert all(Path(w["path"]).is_file() for w in worst) and "rows" not in report
    assert not worst or (tmp_path / "worst_images.png").stat().st_size > 1000
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000


def test_class_ids_read_from_an_int8_model_are_rounded_not_truncated():
    from dlkit.apps.detect.model import predictions

    # An int8 model dequantizes its float class output: 2 comes back as 1.992157.
    outputs = (
        np.zeros((1, 3, 4)),
        np.array([[0.9, 0.8, 0.0]]),
        np.array([[1.992157, 1.0039216, 0.0]]),
        np.array([2]),
    )
    ((boxes, scores, classes),) = predictions(outputs)
    assert classes.tolist() == [2, 1] and len(boxes) == 2


def test_learning_rate_follows_a_cosine_in_each_stage():
    from dlkit.apps.detect.model import training_stages

    config = Config(epochs=4, learning_rate=1e-3, fine_tune_epochs=2, fine_tune_learning_rate=1e-4)
    head, tune = training_stages(config, meta={})

    def expected(epoch, start, epochs, peak, floor):
        return floor + (peak - floor) * 0.5 * (1 + np.cos(np.pi * min(epoch - start, epochs) / epochs))

    head_rates = [head.callbacks[0].schedule(e) for e in range(4)]
    np.testing.assert_allclose(head_rates, [expected(e, 0, 4, 1e-3, 1e-4) for e in range(4)])
    assert head_rates[0] == pytest.approx(1e-3) and np.all(np.diff(head_rates) < 0)
    tune_rates = [tune.callbacks[0].schedule(e) for e in (4, 5, 6)]
    np.testing.assert_allclose(tune_rates, [1e-4, 5e-5, 0.0], atol=1e-12)


def test_fresh_scenes_replace_the_stored_fraction_and_map_classes_to_the_model(tmp_path):
    from dlkit.data.detection import read_yolo

    source = read_yolo(write_sample_yolo(tmp_path / "data", count=20))
    meta = {"labels": ["blue", "red"], "grids": [4, 2], "anchors": [[[0.1, 0.1]] * 3, [[0.4, 0.4]] * 3]}

    def scenes(rng):  # every new scene: grey, one "red" box (data id 0)
        return np.full((64, 64, 3), 77, np.uint8), np.array([[0.1, 0.1, 0.5, 0.5]], np.float32), np.array([0])

    scenes.labels = source.labels
    source.scenes = scenes
    stored = APP.data.load_split(Config.tiny(), source, "val", meta=meta)
    assert stored.scenes is None
    for fraction, expected in ((0.0, 0), (1.0, 12), (0.5, None)):
        config = dataclasses.replace(Config.tiny(), augment=False, fresh_scenes=fraction, scene_pool=False)
        loaded = APP.data.load_split(config, source, "train", meta=meta)
        batches = APP.data.make_dataset(config, loaded, training=True, meta=meta)
        images, targets = next(iter(batches.unbatch().batch(99)))
        fresh = np.all(images.numpy() == 77, axis=(1, 2, 3))
        assert fresh.sum() == expected if expected is not None else 0 < fresh.sum() < len(fresh)
        if fraction == 1.0:
            # The scene's class 0 ("red") is the model's class 1 (column 5 holds the class id).
            rows = targets.numpy()[fresh]
            assert np.all(rows[rows[:, :, 4] > 0][:, 5] == 1)
    images, _ = next(iter(APP.data.make_dataset(config, stored, meta=meta)))
    assert not np.any(np.all(images.numpy() == 77, axis=(1, 2, 3)))  # validation: stored scenes only


def test_scene_workers_feed_the_examples_the_pipeline_threads_make():
    """`scene_workers`: fresh scenes drawn in worker processes, called from tf.data's
    parallel map, make the same training batches (scenes, zoom, colours, targets) as
    scenes drawn in its threads."""
    from dlkit.apps.detect.config import SCENE_RENDERS
    from dlkit.data.scenes import TrainingScenes

    batches = []
    for workers in (0, 2):
        config = dataclasses.replace(Config.tiny(), image_data=2, scene_workers=workers, scene_pool=False)
        source = APP.open_source(config, None)
        meta = APP.make_meta(config, source)
        loaded = APP.load_split(config, source, "train", meta=meta)
        images, targets = next(iter(APP.make_dataset(config, loaded, training=True, meta=meta)))
        batches.append((images.numpy(), targets.numpy()))
        assert (source.scenes._pool is not None) == bool(workers)  # drawn where configured
        source.scenes.close()
    np.testing.assert_array_equal(batches[0][0], batches[1][0])
    np.testing.assert_array_equal(batches[0][1], batches[1][1])
    assert SCENE_RENDERS == TrainingScenes.RENDERS and Config().scene_render == TrainingScenes().render
    assert batches[0][0].std() > 10 and batches[0][1][..., 4].sum() > 0  # scenes with objects


def test_a_scene_pool_gives_the_examples_drawn_during_training(tmp_path, monkeypatch):
    """`scene_pool`: every fresh scene drawn before training, then read back: the same
    examples (boxes, classes, targets and the stored scenes exactly; fresh images through
    one JPEG coding), epochs past the pool drawn as before, and a second run draws none."""
    from dlkit.data.pool import fresh_draws

    config = dataclasses.replace(Config.tiny(), image_data=2, scene_workers=0, fresh_scenes=0.5)
    source = APP.open_source(config, None)
    meta = APP.make_meta(config, source)
    loaded = APP.load_split(config, source, "train", meta=meta)
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path))  # the pool only: the scenes are loaded
    epochs = {}
    for pooled in (False, True):
        data = APP.make_dataset(
            dataclasses.replace(config, scene_pool=pooled), loaded, training=True, meta=meta
        )
        epochs[pooled] = [[t.numpy() for t in next(iter(data.unbatch().batch(999)))] for _ in range(3)]
    count = len(loaded.inputs)
    for epoch, ((drawn, y_drawn), (read, y_read)) in enumerate(zip(epochs[False], epochs[True])):
        np.testing.assert_array_equal(y_drawn, y_read)
        if epoch == config.epochs + config.fine_tune_epochs:  # past the pool: drawn again
            np.testing.assert_array_equal(drawn, read)
            continue
        fresh = np.zeros(count, bool)
        fresh[[i for i, _ in fresh_draws(config.seed, epoch, count, 0.5)]] = True
        pooled = fresh[np.random.default_rng([config.seed, epoch]).permutation(count)]  # the epoch's order
        assert 0 < pooled.sum() < count
        np.testing.assert_array_equal(drawn[~pooled], read[~pooled])
        difference = np.abs(drawn[pooled].astype(np.float32) - read[pooled])
        assert 0 < difference.mean() < 4  # one JPEG coding, at 64 px
    (folder,) = tmp_path.glob("datasets/*-pool-*")
    assert sorted(p.name for p in folder.glob("epoch_*.pkl")) == ["epoch_00000.pkl", "epoch_00001.pkl"]

    def nothing_drawn(rng):
        raise AssertionError("a pooled scene was drawn again")

    loaded.scenes = nothing_drawn
    again = APP.make_dataset(dataclasses.replace(config, scene_pool=True), loaded, training=True, meta=meta)
    np.testing.assert_array_equal(next(iter(again.unbatch().batch(999)))[1].numpy(), epochs[True][0][1])


def test_ship_tool_measures_without_touching_the_shipped_record(contract_run, tmp_path, monkeypatch):
    """`tools/ship_detect.py --measure-only` scores Keras, float32 and int8 into the run's
    ship_metrics.json; the shipped model and tools/results/detect.json stay as they are."""
    import shutil

    from conftest import load_tool
    from dlkit.paths import shipped_model_dir

    tool = load_tool("ship_detect")
    run = tmp_path / "run"
    run.mkdir()
    for name in tool.RUN_FILES:
        shutil.copy2(contract_run("detect").run_dir / name, run / name)
    monkeypatch.setattr(tool, "RESULTS", tmp_path / "detect.json")
    shipped = shipped_model_dir("detect") / "model.int8.tflite"
    before = shipped.stat().st_mtime_ns if shipped.exists() else None
    tool.main(run, measure_only=True, description="a tiny run")
    measured = json.loads((run / "ship_metrics.json").read_text())
    assert measured["run"] == "a tiny run"
    for label in ("keras", "tflite_float32", "tflite_int8"):
        assert 0.0 <= measured[f"{label}_pooled_map50"] <= 1.0
    assert measured["keras_pooled_map50"] == pytest.approx(measured["tflite_float32_pooled_map50"], abs=0.02)
    assert not (tmp_path / "detect.json").exists()
    assert (shipped.stat().st_mtime_ns if shipped.exists() else None) == before


def test_ship_tool_on_an_unfinished_run_is_a_one_line_error(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).parents[2] / "tools" / "ship_detect.py"
    (tmp_path / "model.keras").write_bytes(b"")
    done = subprocess.run(
        [sys.executable, str(tool), str(tmp_path), "--measure-only"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"error: {tmp_path}: not a finished detect run (no model.json, metrics.json)"
    )


@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("backbone", ["mobilenet_v2", "efficientnet_lite0", "efficientnet_lite2"])
def test_each_backbone_feeds_the_heads_at_strides_8_16_and_32(backbone, levels):
    from dlkit.apps.detect.model import backbone_of, build_model

    alpha = 0.35 if backbone == "mobilenet_v2" else 1.0
    config = dataclasses.replace(Config.tiny(), backbone=backbone, alpha=alpha, levels=levels)
    grids = [config.image_size // s for s in (8, 16, 32)[-levels:]]
    anchors = [[[0.1 * (k + 1)] * 2] * 3 for k in range(levels)]
    model = build_model(config, {"labels": ["a", "b"], "grids": grids, "anchors": anchors})
    features = backbone_of(model).outputs
    assert [tuple(f.shape[1:3]) for f in features] == [(g, g) for g in grids]
    assert tuple(model.output.shape[1:]) == (3 * sum(g * g for g in grids), 5 + 2)
    heads = {layer.name for layer in model.layers if layer.name.endswith("_head2_conv")}
    assert heads == {f"p{k}_head2_conv" for k in (3, 4, 5)[-levels:]}
    if levels == 3:  # the stride-8 head is half as wide
        assert model.get_layer("p3_head2_conv").filters == config.head_channels // 2


def test_three_levels_give_the_smallest_anchors_to_the_stride_8_grid():
    from types import SimpleNamespace

    from dlkit.apps.detect.model import make_meta

    rng = np.random.default_rng(0)
    records = []
    for _ in range(40):
        xy = rng.uniform(0, 0.5, (3, 2))
        records.append(SimpleNamespace(boxes=np.concatenate([xy, xy + rng.uniform(0.02, 0.5, (3, 2))], 1)))
    source = SimpleNamespace(records={"train": records}, labels=["a", "b"], description="boxes")
    config = dataclasses.replace(Config.tiny(), image_size=128, levels=3)
    meta = make_meta(config, source)
    assert meta["grids"] == [16, 8, 4]
    areas = np.array(meta["anchors"]).prod(-1)  # (levels, anchors)
    assert areas.shape == (3, 3) and areas[0].max() <= areas[1].min() and areas[1].max() <= areas[2].min()


def int8_output_types(model, config, meta, folder):
    """{TFLite op name: [output dtype of each such op]} of the model converted to int8
    (calibrated on noise images)."""
    from ai_edge_litert.interpreter import Interpreter

    from dlkit.apps.detect.model import convert

    images = np.random.default_rng(0).uniform(0, 255, (8, 64, 64, 3)).astype(np.float32)
    path = folder / "model.int8.tflite"
    path.write_bytes(convert(model, config, meta, "int8", images))
    interpreter = Interpreter(model_path=str(path))
    dtype = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    by_op = {}
    for op in interpreter._get_ops_details():
        by_op.setdefault(op["op_name"], []).append(dtype[op["outputs"][0]])
    return by_op


def test_a_three_level_model_exports_int8_with_every_decode_in_float(tmp_path):
    from dlkit.apps.detect.model import build_model

    config = dataclasses.replace(Config.tiny(), levels=3)
    meta = {
        "labels": ["a", "b"],
        "grids": [8, 4, 2],
        "anchors": [[[0.1 * (k + 1)] * 2] * 3 for k in range(3)],
    }
    by_op = int8_output_types(build_model(config, meta), config, meta, tmp_path)
    assert set(by_op["CONV_2D"]) == {np.int8}
    # Each of the three scales decodes its sizes (EXP) and scores (LOGISTIC) in float.
    assert len(by_op["EXP"]) == 3 and set(by_op["EXP"]) == {np.float32}
    assert set(by_op["LOGISTIC"]) == {np.float32}


def test_an_anchor_free_model_exports_int8_with_its_decode_in_float(tmp_path):
    from dlkit.apps.detect.model import adapt_model, build_model

    config = dataclasses.replace(Config.tiny(), levels=3, head="anchor_free", reg_max=8)
    meta = {
        "labels": ["a", "b"],
        "grids": [8, 4, 2],
        "anchors": [[], [], []],
        "head": {"type": "anchor_free", "reg_max": 8},
    }
    model = build_model(config, meta)
    assert tuple(model.output.shape[1:]) == (64 + 16 + 4, 4 * 8 + 2)  # per cell: bins, classes
    by_op = int8_output_types(model, config, meta, tmp_path)
    assert set(by_op["CONV_2D"]) == {np.int8}
    # Each scale's bins (SOFTMAX) and class scores (LOGISTIC) are decoded in float.
    assert len(by_op["SOFTMAX"]) == 3 and set(by_op["SOFTMAX"]) == {np.float32}
    assert set(by_op["LOGISTIC"]) == {np.float32} and "EXP" not in by_op
    # New classes: only the class predictions start again.
    other = adapt_model(model, meta, config, {**meta, "labels": ["a", "b", "c"]}, log=lambda _: None)
    for name in ("p3_box", "p3_cls1_conv", "p5_box2_conv"):
        np.testing.assert_array_equal(
            other.get_layer(name).get_weights()[0], model.get_layer(name).get_weights()[0]
        )
    assert other.get_layer("p3_cls").get_weights()[0].shape[-1] == 3


def test_an_anchor_free_head_needs_no_anchor_shapes():
    from dlkit.apps.detect.model import make_meta

    config = dataclasses.replace(Config.tiny(), head="anchor_free")
    source = SimpleNamespace(
        labels=["a"],
        description="one box",
        records={"train": [SimpleNamespace(boxes=np.array([[0.1, 0.1, 0.3, 0.3]]))]},
    )
    meta = make_meta(config, source)  # one box: too few for k-means anchors, enough here
    assert meta["head"] == {"type": "anchor_free", "reg_max": 16} and meta["anchors"] == [[], []]
    with pytest.raises(DlkitError, match="need at least 6 for the anchors"):
        make_meta(Config.tiny(), source)
    with pytest.raises(DlkitError, match="head must be one of anchors, anchor_free"):
        Config(head="anchorless")


def test_levels_other_than_2_or_3_are_a_one_line_error():
    with pytest.raises(DlkitError, match="levels must be 2"):
        dataclasses.replace(Config.tiny(), levels=4)


def test_backbone_weights_come_from_a_trained_classifier_file(tmp_path):
    """`--weights model.keras` of a classify run starts detect from its tuned backbone."""
    from dlkit.apps.classify.config import Config as ClassifyConfig
    from dlkit.apps.classify.model import build_model as build_classifier
    from dlkit.apps.detect.model import backbone_of, build_model

    classify_config = dataclasses.replace(ClassifyConfig.tiny(), backbone="efficientnet_lite0", alpha=1.0)
    classifier = build_classifier(classify_config, {"labels": ["a", "b", "c"]})
    path = tmp_path / "classifier.keras"
    classifier.save(path)
    config = dataclasses.replace(Config.tiny(), backbone="efficientnet_lite0", alpha=1.0, weights=str(path))
    meta = {"labels": ["a", "b"], "grids": [4, 2], "anchors": [[[0.1, 0.1]] * 3, [[0.4, 0.4]] * 3]}
    detector = build_model(config, meta)
    source = classifier.get_layer("efficientnet_lite0").get_layer("block11_expand_conv").get_weights()[0]
    loaded = backbone_of(detector).get_layer("block11_expand_conv").get_weights()[0]
    np.testing.assert_array_equal(loaded, source)
    fresh = build_model(dataclasses.replace(config, weights="none"), meta)
    assert np.any(loaded != backbone_of(fresh).get_layer("block11_expand_conv").get_weights()[0])


def test_the_shipped_model_finds_held_out_objects_without_a_model_option(tmp_path):
    """`dlkit detect predict` right after install: the shipped int8 model on scenes made
    of test cut-outs no training scene uses, scored against the pasted boxes."""
    from dlkit.data.scenes import compose
    from dlkit.data.tuxpaint import find_cutouts, load_backgrounds, load_cutout, split_cutouts
    from dlkit.edge.boxes import iou
    from dlkit.paths import shipped_model_dir

    folder = shipped_model_dir("detect")
    if not (folder / "model.int8.tflite").exists():
        pytest.skip("no shipped detect model")
    meta = json.loads((folder / "model.json").read_text())
    cutouts = split_cutouts(find_cutouts())["test"]
    objects = [(load_cutout(c.path), meta["labels"].index(c.label)) for c in cutouts]
    rng = np.random.default_rng(0)
    truth, paths = [], []
    for index in range(12):
        image, boxes, classes = compose(load_backgrounds(), objects, rng, 256, max_objects=3)
        paths.append(tmp_path / f"scene{index}.png")
        Image.fromarray(image).save(paths[-1])
        truth.append((boxes / 256, classes))
    result = CliRunner().invoke(
        cli, ["detect", "predict", *map(str, paths), "--json", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    found = named = total = 0
    for record, (boxes, classes) in zip(records, truth):
        predicted = np.array([d["box"] for d in record["detections"]], np.float32).reshape(
            -1, 4
        )  # normalised
        labels = [d["label"] for d in record["detections"]]
        for box, cls in zip(boxes, classes):
            total += 1
            overlaps = iou(box[None], predicted)[0] if len(predicted) else np.zeros(0)
            found += bool(np.any(overlaps >= 0.5))
            named += bool(np.any((overlaps >= 0.5) & (np.array(labels) == meta["labels"][cls])))
    # The model as shipped finds 20 of these 24 objects and names 19 (held-out scenes:
    # class-agnostic mAP@0.5 0.82, mAP@0.5 0.63); a model finding fewer than 6 in 10 is broken.
    assert total >= 20 and found / total >= 0.6 and named / total >= 0.5, (found, named, total)


def test_crops_are_the_boxes_grown_as_ultralytics_cuts_them_and_clipped():
    from dlkit.apps.detect.edge import crops

    image = np.arange(80 * 100 * 3, dtype=np.uint32).reshape(80, 100, 3).astype(np.uint8)
    result = {
        "detections": [
            {"label": "a", "box_pixels": [10, 20, 30, 40]},  # centre (20, 30), sides 20 * 1.02 + 10
            {"label": "b", "box_pixels": [90, 70, 100, 80]},  # at the corner: clipped
            {"label": "c", "box_pixels": [50, 50, 50.5, 60]},  # under a pixel wide: no crop
        ]
    }
    cut = list(crops(image, result))
    assert [label for label, _ in cut] == ["a", "b"]
    np.testing.assert_array_equal(cut[0][1], image[14:46, 4:36])  # 20 -+ 15.2 = 4.8, 35.2 (outward)
    np.testing.assert_array_equal(cut[1][1], image[64:80, 84:100])  # 95 - 10.1 = 84.9, to the edges


def test_save_crop_and_classes(tmp_path):
    """`predict --save-crop` cuts every reported box into crops/<class>/<name>_<k>.jpg, a
    folder classify reads as its classes; `--classes` (names or ids) reports only those,
    and an unknown one stops before any work in one line."""
    from dlkit.apps.detect.edge import crops
    from dlkit.data.image_classes import open_folder
    from dlkit.data.scenes import compose
    from dlkit.data.tuxpaint import find_cutouts, load_backgrounds, load_cutout, split_cutouts
    from dlkit.paths import shipped_model_dir

    labels = json.loads((shipped_model_dir("detect") / "model.json").read_text())["labels"]
    cutouts = split_cutouts(find_cutouts())["test"]
    objects = [(load_cutout(c.path), labels.index(c.label)) for c in cutouts]
    rng, images = np.random.default_rng(5), tmp_path / "images"
    images.mkdir()
    for index in range(4):
        scene = compose(load_backgrounds(), objects, rng, 256, max_objects=4)
        Image.fromarray(scene.image).save(images / f"scene{index}.png")

    def predict(*extra):
        result = CliRunner().invoke(
            cli, ["detect", "predict", str(images), "--json", "--conf", "0.1", *extra]
        )
        assert result.exit_code == 0, result.output
        lines = [line for line in result.output.splitlines() if line.startswith("{")]
        return {Path(r["input"]).stem: r["detections"] for r in map(json.loads, lines)}

    out = tmp_path / "out"
    every = predict("--save-crop", "--out", str(out))
    found = [(stem, k, d) for stem, dets in every.items() for k, d in enumerate(dets, 1)]
    assert len({d["label"] for _, _, d in found}) >= 2  # the shipped model names several classes
    written = sorted(p.relative_to(out / "crops").as_posix() for p in (out / "crops").rglob("*.jpg"))
    assert written == sorted(f"{d['label']}/{stem}_{k}.jpg" for stem, k, d in found)
    stem, k, det = found[0]
    raw = np.asarray(Image.open(images / f"{stem}.png").convert("RGB"))
    _, expected = list(crops(raw, {"detections": every[stem]}))[k - 1]
    with Image.open(out / "crops" / det["label"] / f"{stem}_{k}.jpg") as crop:
        assert crop.size == expected.shape[1::-1]
        assert np.abs(np.asarray(crop, np.float32) - expected).mean() < 8  # JPEG at quality 95
    crops_as_data = open_folder(out / "crops")
    assert crops_as_data.labels == sorted({d["label"] for _, _, d in found})

    # --classes: the same boxes, of the classes chosen (by name and by id) only.
    chosen = {found[0][2]["label"], labels[1]}
    only = predict("--classes", f"{found[0][2]['label']},1")
    assert only == {stem: [d for d in dets if d["label"] in chosen] for stem, dets in every.items()}
    # From Python the classes may be a list too.
    import dlkit

    stem = found[0][0]
    by_api = dlkit.load("detect").predict(images / f"{stem}.png", conf=0.1, classes=[found[0][2]["label"], 1])
    assert [d["label"] for d in by_api[0]["detections"]] == [d["label"] for d in only[stem]]
    wrong = CliRunner().invoke(cli, ["detect", "predict", str(images), "--classes", "birds,cars"])
    assert wrong.exit_code == 2 and "Traceback" not in wrong.output
    assert wrong.output.strip().splitlines()[-1] == (
        "Error: --classes: 'cars' is not a class of this model; it has "
        + ", ".join(f"{i} {label}" for i, label in enumerate(labels))
    )


def test_save_txt_writes_yolo_labels_that_read_back_as_a_dataset_of_the_predicted_boxes(tmp_path):
    """`predict --save-txt`: one YOLO label file per image, read back by the project's own
    YOLO reader as the boxes and classes predict printed (auto-labelling: predictions
    become training data once checked), and one per frame of a video."""
    import shutil

    from dlkit.data.detection import read_yolo
    from dlkit.data.scenes import compose
    from dlkit.data.tuxpaint import find_cutouts, load_backgrounds, load_cutout, split_cutouts
    from dlkit.paths import shipped_model_dir

    meta = json.loads((shipped_model_dir("detect") / "model.json").read_text())
    cutouts = split_cutouts(find_cutouts())["test"]
    objects = [(load_cutout(c.path), meta["labels"].index(c.label)) for c in cutouts]
    rng, images = np.random.default_rng(3), tmp_path / "data" / "images"
    images.mkdir(parents=True)
    for index in range(4):
        scene = compose(load_backgrounds(), objects, rng, 256, max_objects=3)
        Image.fromarray(scene.image).save(images / f"scene{index}.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["detect", "predict", str(images), "--json", "--save-txt", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    records = {Path(r["input"]).stem: r for r in map(json.loads, lines)}
    assert sum(len(r["detections"]) for r in records.values()) >= 4  # the shipped model finds objects
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"scene{i}.txt" for i in range(4)]

    # Labels already there (a dataset's own, or an earlier run's) are never replaced.
    truth = out / "labels" / "scene0.txt"
    before = truth.read_text()
    again = CliRunner().invoke(cli, ["detect", "predict", str(images), "--save-txt", "--out", str(out)])
    assert again.exit_code == 2 and "Traceback" not in again.output, again.output
    assert f"Error: {truth}: exists, and predict does not replace it" in again.output
    assert truth.read_text() == before

    shutil.copytree(out / "labels", tmp_path / "data" / "labels")
    (tmp_path / "data" / "data.yaml").write_text(
        "train: images\nnames:\n" + "".join(f"  - {name}\n" for name in meta["labels"])
    )
    source = read_yolo(tmp_path / "data")
    assert not source.skipped
    read_back = [r for split in source.records.values() for r in split]
    assert len(read_back) == 4
    for record in read_back:
        detections = records[Path(record.image).stem]["detections"]
        np.testing.assert_allclose(
            record.boxes, [d["box"] for d in detections] or np.zeros((0, 4)), atol=2e-6
        )
        assert [meta["labels"][c] for c in record.classes] == [d["label"] for d in detections]

    # A video's frames: labels/clip_<frame>.txt, each the frame's printed detections.
    import cv2

    from dlkit.apps.detect.edge import yolo_label_text

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (256, 256))
    for index in range(2):
        writer.write(cv2.imread(str(images / f"scene{index}.png")))
    writer.release()
    out = tmp_path / "v"
    args = ["detect", "predict", str(video), "--json", "--save-txt", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    frames = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["clip_0.txt", "clip_1.txt"]
    assert sum(len(f["detections"]) for f in frames) >= 2
    for frame in frames:
        text = (out / "labels" / f"clip_{frame['frame']}.txt").read_text()
        assert text == yolo_label_text(frame, meta["labels"])


def test_augmented_views_map_their_boxes_back_to_the_input():
    """A fake detector that boxes the bright rectangle of whatever it is given: through
    `--augment`'s six views (three scales, each mirrored) every view's box maps back onto
    the rectangle in the input, and the six agree, so the fused box keeps its score."""
    calls = []

    def run(batch):
        calls.append(batch.shape)
        boxes = np.zeros((len(batch), 50, 4), np.float32)
        for i, image in enumerate(batch):
            rows, cols = np.nonzero(image.mean(axis=-1) > 170)
            boxes[i, 0] = [cols.min() / 256, rows.min() / 256, (cols.max() + 1) / 256, (rows.max() + 1) / 256]
        scores = np.zeros((len(batch), 50), np.float32)
        scores[:, 0] = 0.9
        classes = np.ones((len(batch), 50), np.float32)
        return [boxes, scores, classes, np.ones(len(batch), np.int32)]

    images = np.random.default_rng(0).uniform(0, 100, (2, 256, 256, 3)).astype(np.float32)
    images[0, 40:120, 60:200] = 255.0
    images[1, 150:250, 10:90] = 255.0
    boxes, scores, classes, counts = APP.edge.augmented(run, {"config": {"max_detections": 50}})(images)
    assert len(calls) == 6 and counts.tolist() == [1, 1]
    np.testing.assert_allclose(boxes[:, 0] * 256, [[60, 40, 200, 120], [10, 150, 90, 250]], atol=2.0)
    np.testing.assert_allclose(scores[:, 0], 0.9, rtol=1e-6)
    assert classes[:, 0].tolist() == [1, 1] and not scores[:, 1:].any()


def test_augment_on_evaluate_and_predict(detect_run, tmp_path):
    run_dir, data = detect_run
    model = str(run_dir / "model.int8.tflite")
    args = ["detect", "evaluate", "--model", model, "--data", str(data), "--json"]

    def report_of(result):
        assert result.exit_code == 0, result.output
        return json.loads(result.output[result.output.index("{") :])

    plain, augmented = (
        report_of(CliRunner().invoke(cli, args)),
        report_of(CliRunner().invoke(cli, [*args, "--augment"])),
    )
    assert "options" not in plain and augmented["options"] == {"augment": True}
    assert 0 <= augmented["map50"] <= 1 and augmented["images"] == plain["images"]
    image = sorted(Path(data).parent.rglob("*.png"))[0]
    command = [
        "detect",
        "predict",
        str(image),
        "--model",
        model,
        "--augment",
        "--json",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    record = json.loads(result.output[result.output.index("{") :].splitlines()[0])
    assert record["width"] > 0 and all(0 <= v <= 1 for d in record["detections"] for v in d["box"])


def test_compare_tool_scores_two_detectors_pairwise(detect_run):
    """tools/compare_detect.py on the tiny run: its Keras model against its int8 file gives
    each model's own report and a pooled difference equal to the difference of the two
    pooled reports, inside its paired interval; a model against itself differs by 0."""
    tool = load_tool("compare_detect")
    run_dir, data = detect_run
    result = tool.compare(APP, [run_dir / "model.keras", run_dir / "model.int8.tflite"], str(data))
    keras_pooled, int8_pooled = (r["pooled"] for r in result["reports"])
    for key in ("map50", "map50_95", "class_agnostic_map50"):
        difference = result["pooled_difference"][key]
        assert difference == pytest.approx(keras_pooled[key] - int8_pooled[key], abs=1e-9)
        low, high = result["pooled_difference"][f"{key}_ci95"]
        assert low <= difference <= high
    same = tool.compare(APP, [run_dir / "model.int8.tflite"] * 2, str(data))["pooled_difference"]
    assert same["map50"] == 0 and same["map50_ci95"] == [0.0, 0.0]
    # --augment scores each model through test-time augmentation, as evaluate --augment does.
    from dlkit.engine import config_of, held_out_splits, score_splits
    from dlkit.predict import Predictor

    augmented = tool.compare(APP, [run_dir / "model.int8.tflite"] * 2, str(data), augment=True)
    predictor = Predictor.load(APP, run_dir / "model.int8.tflite", augment=True)
    config = config_of(APP, predictor.meta)
    expected = score_splits(
        APP, config, predictor.meta, predictor.run, held_out_splits(APP, config, predictor.meta, str(data))
    )
    assert augmented["augment"] and augmented["pooled_difference"]["map50"] == 0
    assert augmented["reports"][0]["pooled"]["map50"] == pytest.approx(expected["pooled"]["map50"], abs=1e-12)


def test_worst_images_are_those_with_the_most_errors_at_the_threshold():
    from dlkit.apps.detect.model import worst_images
    from dlkit.metrics.detection import confusion_matrix

    box, other = [0.1, 0.1, 0.4, 0.4], [0.6, 0.6, 0.9, 0.9]
    truth = [(np.array([box]), np.array([0])), (np.array([box, other]), np.array([0, 1]))] * 2
    found = [
        (np.array([box]), np.array([0.9]), np.array([0])),  # right
        (np.array([box, other]), np.array([0.9, 0.2]), np.array([0, 1])),  # one under 0.25: missed
        (np.array([box, [0.5, 0.0, 0.6, 0.1]]), np.array([0.9, 0.8]), np.array([1, 0])),  # misnamed, false
        (np.array([box, other]), np.array([0.9, 0.8]), np.array([0, 1])),  # right
    ]
    per_image = confusion_matrix(found, truth, 2, per_image=True)
    worst = worst_images(per_image, found, truth, ["a", "b"])
    assert [w["index"] for w in worst] == [2, 1]  # 2 errors, then 1; the right images never
    assert [(w["right"], w["wrong_class"], w["missed"], w["false_positives"]) for w in worst] == [
        (0, 1, 0, 1),
        (1, 0, 1, 0),
    ]
    assert [d["score"] for d in worst[1]["found"]] == [0.9]  # what the matrix counted, above 0.25
    assert [t["label"] for t in worst[1]["truth"]] == ["a", "b"]
    assert worst_images(per_image, found, truth, ["a", "b"], count=1)[0]["index"] == 2
