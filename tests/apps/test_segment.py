"""What is particular to segment (train/resume/evaluate/export/edge predict come from the
contract kit): overlays and label maps, image and mask kept aligned, mask problems
reported per file, both encoders and the no-skip baseline, the offline scenes."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, run_cli
from dlkit.apps.segment.config import Config
from dlkit.apps.segment.data import SAMPLE_COLORS, load_split, make_dataset, open_source, write_sample_folder
from dlkit.errors import InvalidInputError

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def segment_run(contract_run):
    run = contract_run("segment")
    return run.run_dir, run.folder


def test_training_writes_sample_overlays_every_epoch(segment_run):
    run_dir, _ = segment_run
    epochs = sum(1 for line in (run_dir / "history.jsonl").read_text().splitlines() if '"epoch"' in line)
    samples = sorted((run_dir / "samples").glob("epoch_*.png"))
    assert epochs and len(samples) == epochs
    with Image.open(
        samples[-1]
    ) as image:  # 4 validation images (fewer if the split is smaller), 3 panels each
        size = json.loads((run_dir / "model.json").read_text())["input"]["shape"][0]
        assert image.width == 3 * size and image.height % size == 0 and 1 <= image.height // size <= 4


def test_predict_writes_overlays_and_label_maps_at_the_image_size(segment_run, tmp_path):
    run_dir, folder = segment_run
    image = tmp_path / "wide.png"
    Image.new("RGB", (90, 40), SAMPLE_COLORS[0]).save(image)
    out = tmp_path / "out"
    result = run_cli("segment", "predict", image, "--model", run_dir / "model.tflite", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[0])
    assert (record["width"], record["height"]) == (90, 40)
    assert set(record["classes"]) == {"background", "red", "blue"}
    assert sum(record["classes"].values()) == pytest.approx(1.0, abs=1e-3)
    labels = np.asarray(Image.open(out / "wide_labels.png"))
    assert labels.shape == (40, 90) and labels.max() <= 2
    shares = np.bincount(labels.reshape(-1), minlength=3) / labels.size
    np.testing.assert_allclose(
        [record["classes"][k] for k in ("background", "red", "blue")], shares, atol=1e-4
    )
    assert Image.open(out / "wide.png").size == (90, 40)
    assert json.loads((out / "predictions.json").read_text())[0]["input"] == str(image)
    # The confidence is the mean top probability of the model's own output, overall and
    # over each predicted class's pixels.
    from dlkit.apps.segment.edge import preprocess

    meta = json.loads((run_dir / "model.json").read_text())
    model = keras.saving.load_model(run_dir / "model.keras")
    pixels = preprocess(np.asarray(Image.open(image).convert("RGB")), meta)
    probs = np.asarray(model(pixels[None]))[0]
    top, labels = probs.max(-1), probs.argmax(-1)
    assert record["confidence"] == pytest.approx(top.mean(), abs=2e-3)
    present = {meta["labels"][c]: top[labels == c].mean() for c in np.unique(labels)}
    assert record["class_confidence"].keys() == present.keys()
    for label, value in present.items():
        assert record["class_confidence"][label] == pytest.approx(value, abs=2e-3)
    assert (
        f"pixel confidence {record['confidence']:.2f}"
        in run_cli("segment", "predict", image, "--model", run_dir / "model.tflite").output
    )


def test_a_predict_line_lists_object_shares_largest_first_and_never_a_zero():
    from dlkit.apps.segment.edge import format_result

    shares = {"background": 0.9996, "birds": 0.0001, "fish": 0.0003, "flowers": 0.0}
    line = format_result("a.jpg", {"classes": shares, "confidence": 0.987})
    assert line == "a.jpg: fish <0.1%, birds <0.1% (background >99.9%, pixel confidence 0.99)"
    shares = {"background": 0.75, "birds": 0.125, "fish": 0.125}
    assert format_result("b.jpg", {"classes": shares}) == "b.jpg: fish 12.5%, birds 12.5% (background 75.0%)"
    assert format_result("c.jpg", {"classes": {"background": 1.0}}) == "c.jpg: no objects (background 100.0%)"


def test_overlay_tints_object_pixels_only_by_the_blend_formula():
    from dlkit.apps.segment.edge import COLORS, overlay

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), np.uint8)
    labels = rng.integers(0, 14, (30, 40)).astype(np.uint8)  # ids past the palette wrap round
    labels[:10] = 0
    blend = 0.7 * image + 0.3 * COLORS[labels % len(COLORS)].astype(np.float32)
    expected = np.where(labels[..., None] > 0, blend, image)
    got = np.asarray(overlay(image, labels, alpha=0.3)).astype(np.float32)
    assert np.abs(got - expected).max() < 1.001  # truncated to uint8
    np.testing.assert_array_equal(got[:10], image[:10])
    np.testing.assert_array_equal(np.asarray(overlay(image, np.zeros((30, 40), np.uint8))), image)


def test_flips_and_zooms_keep_image_and_mask_aligned(tmp_path):
    folder = write_sample_folder(tmp_path / "data", per_split=(6, 2, 2))
    config = dataclasses.replace(Config.tiny(), image_size=32, batch_size=6, zoom=0.5, color=0.0)
    keras.utils.set_random_seed(0)  # the same flips and zooms on every run
    split = load_split(config, open_source(config, str(folder)), "train")
    for _ in range(3):  # random flips each pass
        for images, masks in make_dataset(config, split, training=True):
            images, masks = np.asarray(images), np.asarray(masks)
            for cls, colour in enumerate(SAMPLE_COLORS, start=1):
                painted = np.all(np.abs(images - colour) < 40, axis=-1)
                # Interpolation (and zoom) blurs edges; inside the objects, colour and label agree.
                assert np.mean(masks[painted] == cls) > 0.9
                assert np.mean(painted[masks == cls]) > 0.75


def test_mask_problems_are_skipped_and_reported_or_one_line_errors(tmp_path):
    folder = write_sample_folder(tmp_path / "data", per_split=(6, 2, 2))
    masks = folder / "masks" / "train"
    Image.new("L", (10, 10)).save(masks / "train_000.png")  # wrong size
    Image.new("RGB", (48, 48), (200, 10, 10)).save(masks / "train_001.png")  # a colour mask
    (masks / "train_002.png").unlink()  # missing
    config = Config.tiny()
    source = open_source(config, str(folder))
    split = load_split(config, source, "train")
    assert len(split.inputs) == 3
    messages = "\n".join(split.skipped)
    assert "train_000.png: mask is 10x10 but its image train_000.png is 48x48" in messages
    assert "train_001.png: an RGB colour mask" in messages and "train_002.png: no mask" in messages
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="expected images/ and masks/"):
        open_source(config, str(tmp_path / "empty" / "images"))
    result = run_cli(
        "segment", "train", "--tiny", "--data", tmp_path / "nothing", "--run-dir", tmp_path / "r"
    )
    assert_one_line_error(result, "nothing: no such file or folder")


@pytest.mark.parametrize("size", [64, 96])
@pytest.mark.parametrize("encoder, skips", [("backbone", True), ("backbone", False), ("unet", True)])
def test_both_encoders_and_the_no_skip_baseline_give_per_pixel_probabilities(size, encoder, skips):
    from dlkit.apps.segment.model import build_model

    config = dataclasses.replace(Config.tiny(), image_size=size, encoder=encoder, skips=skips)
    model = build_model(config, {"labels": ["background", "a", "b"]})
    probs = np.asarray(model(np.zeros((2, size, size, 3), np.float32)))
    assert probs.shape == (2, size, size, 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    names = {layer.name for layer in model.layers}
    assert ("up1_concat" in names) == skips
    with pytest.raises(Exception, match="multiple of 32"):
        build_model(dataclasses.replace(config, image_size=size + 8), {"labels": ["background", "a"]})


@pytest.mark.parametrize(
    "backbone, widths",
    [("efficientnet_lite0", (96, 144, 240, 672, 1280)), ("efficientnet_lite2", (96, 144, 288, 720, 1280))],
)
def test_efficientnet_lite_encoder_skips_sit_at_strides_2_to_16(backbone, widths):
    from dlkit.apps.segment.model import build_model

    config = dataclasses.replace(Config.tiny(), backbone=backbone, alpha=1.0, image_size=64)
    model = build_model(config, {"labels": ["background", "a"]})
    encoder = model.get_layer("encoder")
    shapes = [tuple(output.shape[1:]) for output in encoder.outputs]
    # The expansions before each downsampling block (6 x the stage's input width), then
    # the last activation.
    assert shapes == [(64 // s, 64 // s, w) for s, w in zip((2, 4, 8, 16, 32), widths)]
    probs = np.asarray(model(np.zeros((1, 64, 64, 3), np.float32)))
    assert probs.shape == (1, 64, 64, 2)


def test_a_classifier_hands_its_backbone_to_segment(tiny_run):
    from dlkit.edge.bundle import ModelBundle
    from dlkit.registry import get_app
    from dlkit.runner import inheritable_parts, initial_model

    segment, source = get_app("segment"), ModelBundle.load(tiny_run, prefer="keras")
    parts = inheritable_parts(segment, source)
    config = dataclasses.replace(Config.tiny(), alpha=source.meta["config"]["alpha"])
    model = initial_model(segment, config, {"labels": ["background", "a"]}, source, parts)
    given = get_app("classify").parts(keras.saving.load_model(source.path, compile=False), source.meta)
    layer = segment.parts(model, {})["image_backbone"].get_layer("block_1_expand")
    np.testing.assert_array_equal(
        layer.get_weights()[0], given["image_backbone"].get_layer("block_1_expand").get_weights()[0]
    )


@pytest.mark.realdata
def test_offline_scenes_come_with_masks_of_the_pasted_objects():
    from dlkit.data.tuxpaint import STAMPS_ROOT

    if not STAMPS_ROOT.is_dir():
        pytest.skip("needs: apt-get install tuxpaint-stamps-default")
    config = dataclasses.replace(Config.tiny(), train_images=4, val_images=2, test_images=2)
    source = open_source(config, None)
    assert source.labels == ["background", "birds", "fish", "flowers", "fruit_veg", "mammals"]
    split = load_split(config, source, "val")
    assert split.inputs.shape == (2, 64, 64, 3) and split.targets.shape == (2, 64, 64)
    assert all(len(np.unique(mask)) >= 2 for mask in split.targets)  # background and an object


@pytest.mark.realdata
def test_fresh_scenes_replace_stored_ones_from_a_seed_of_their_own():
    """`fresh_scenes`: each training example is a new scene with that probability, its
    mask the scene's own, the same from the same seed; 0 keeps the stored scenes."""
    from dlkit.data.tuxpaint import STAMPS_ROOT

    if not STAMPS_ROOT.is_dir():
        pytest.skip("needs: apt-get install tuxpaint-stamps-default")
    config = dataclasses.replace(
        Config.tiny(), train_images=4, val_images=2, test_images=2, augment=False, batch_size=4
    )

    def first_batch(fresh):
        settings = dataclasses.replace(config, fresh_scenes=fresh)
        loaded = load_split(settings, open_source(settings, None), "train")
        images, masks = next(iter(make_dataset(settings, loaded, training=True)))
        return loaded, images.numpy(), masks.numpy()

    loaded, images, masks = first_batch(1.0)
    stored = {loaded.inputs[k].astype(np.float32).tobytes() for k in range(len(loaded.inputs))}
    assert images.shape == (4, 64, 64, 3) and masks.shape == (4, 64, 64)
    assert not any(image.tobytes() in stored for image in images)  # every scene is new
    assert set(np.unique(masks)) <= set(range(6)) and all(len(np.unique(m)) >= 2 for m in masks)
    _, again, again_masks = first_batch(1.0)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(masks, again_masks)
    _, kept, _ = first_batch(0.0)
    assert all(image.tobytes() in stored for image in kept)


def test_shipped_model_replays_its_golden_vectors_on_the_edge_path():
    from dlkit.edge.bundle import ModelBundle
    from dlkit.engine import runner_for
    from dlkit.paths import shipped_model_dir
    from dlkit.registry import get_app

    folder = shipped_model_dir("segment")
    if not (folder / "model.int8.tflite").exists():
        pytest.skip("no shipped segment model")
    bundle = ModelBundle.load(folder / "model.int8.tflite")
    golden = np.load(folder / "model.int8.golden.npz")
    outputs = runner_for(get_app("segment"), bundle)(golden["inputs"])
    np.testing.assert_allclose(outputs[0], golden["tflite_output_0"], atol=1e-5)
    agree = np.mean(np.argmax(outputs[0], -1) == np.argmax(golden["keras_output_0"], -1))
    assert agree > 0.97  # int8 labels against the Keras model's, pixel by pixel


def test_argmax_export_gives_label_maps_on_device(contract_run, tmp_path):
    from dlkit.edge import EdgeModel
    from dlkit.edge.bundle import ModelBundle
    from dlkit.engine import runner_for
    from dlkit.registry import get_app

    run = contract_run("segment")
    out = tmp_path / "argmax"
    result = run_cli("segment", "export", "--model", run.run_dir, "--argmax", "--out", out)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "model.json").read_text())
    assert "float32.argmax" in meta["exports"] and "argmax" not in meta  # the flag lives in the file
    labels_model = EdgeModel(out / "model.argmax.tflite")
    ops = {op["op_name"] for op in labels_model.interpreter._get_ops_details()}
    assert "ARG_MAX" in ops
    # A static batch: the transposed convolutions' output shapes are constants, so no
    # SHAPE op splits LiteRT's XNNPACK partition (the runner feeds 3 images one by one).
    for model in (labels_model, EdgeModel(run.run_dir / "model.tflite")):
        assert model.interpreter.get_input_details()[0]["shape_signature"][0] == 1
        ops = {op["op_name"] for op in model.interpreter._get_ops_details()}
        assert "TRANSPOSE_CONV" in ops and "SHAPE" not in ops
    app = get_app("segment")
    images = np.random.default_rng(0).uniform(0, 255, (3, *meta["input"]["shape"])).astype(np.float32)
    scores = runner_for(app, ModelBundle.load(run.run_dir / "model.tflite"))(images)[0]
    label_maps = labels_model.predict(images)[0]
    assert label_maps.shape == scores.shape[:3] and label_maps.dtype == np.int32
    assert np.mean(label_maps == np.argmax(scores, axis=-1)) >= 0.995
    sample = app.sample_inputs(run.folder)[0]
    predicted = run_cli(
        "segment",
        "predict",
        sample,
        "--model",
        out / "model.argmax.tflite",
        "--json",
        "--out",
        tmp_path / "p",
    )
    assert predicted.exit_code == 0, predicted.output
    record = json.loads(predicted.output.splitlines()[0])
    assert record["confidence"] is None and record["class_confidence"] is None  # label maps only
    refused = run_cli("segment", "predict", sample, "--model", out / "model.argmax.tflite", "--augment")
    assert_one_line_error(refused, "without .argmax")


def test_augmented_runner_averages_the_mirrored_view_mapped_back():
    """A fake segmenter that calls bright pixels class 1: its mirrored view, mirrored back,
    lands on the same pixels, so the average equals the plain output wherever the two
    agree; a segmenter that ignores the mirror (class 1 on the left half, whatever it is
    shown) averages to one half on both halves."""
    from dlkit.apps.segment.edge import augmented
    from dlkit.errors import DlkitError

    seen = []

    def bright(batch):
        seen.append(batch.copy())
        on = (batch.mean(axis=-1) > 170).astype(np.float32) * 0.8 + 0.1
        return [np.stack([1 - on, on], axis=-1)]

    images = np.random.default_rng(0).uniform(0, 100, (2, 32, 48, 3)).astype(np.float32)
    images[0, 5:20, 3:17] = 255.0  # off-centre, so a missing flip-back would show
    images[1, 20:30, 30:46] = 255.0
    plain = bright(images)[0]
    seen.clear()
    (averaged,) = augmented(bright)(images)
    assert len(seen) == 2 and np.array_equal(seen[1], images[:, :, ::-1])
    np.testing.assert_allclose(averaged, plain, atol=1e-6)

    def left_half(batch):
        scores = np.zeros((*batch.shape[:3], 2), np.float32)
        scores[:, :, : batch.shape[2] // 2, 1] = 1
        scores[:, :, batch.shape[2] // 2 :, 0] = 1
        return [scores]

    np.testing.assert_allclose(augmented(left_half)(images)[0], 0.5)

    with pytest.raises(DlkitError, match="without .argmax"):
        augmented(lambda batch: [np.zeros(batch.shape[:3], np.int32)])(images)


def test_augment_on_evaluate_and_predict(segment_run, tmp_path):
    run_dir, folder = segment_run
    model = run_dir / "model.tflite"
    plain, augmented = (
        json.loads(result.output[result.output.index("{") :])
        for result in (
            run_cli("segment", "evaluate", "--model", model, "--data", folder, "--json", "--out", tmp_path),
            run_cli("segment", "evaluate", "--model", model, "--data", folder, "--json", "--augment"),
        )
    )
    assert "options" not in plain and augmented["options"] == {"augment": True}
    assert augmented["images"] == plain["images"] and 0 <= augmented["miou"] <= 1
    # --out keeps the pixels' confusion matrix as a plot too: one row per true class.
    assert np.array(plain["confusion_matrix"]).shape == (len(plain["per_class"]),) * 2
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    worst = plain["worst_images"]  # the lowest foreground IoU first, named by their files
    assert 0 < len(worst) <= 16 and "rows" not in plain
    assert [w["foreground_iou"] for w in worst] == sorted(w["foreground_iou"] for w in worst)
    assert all(Path(w["path"]).is_file() for w in worst)
    assert len((tmp_path / "worst_images.tsv").read_text().splitlines()) == len(worst) + 1
    image = sorted((Path(folder) / "images" / "test").glob("*.png"))[0]
    records = [
        json.loads(
            run_cli("segment", "predict", image, "--model", model, "--json", *extra).output.splitlines()[0]
        )
        for extra in ((), ("--augment",))
    ]
    assert records[1]["classes"].keys() == records[0]["classes"].keys()
    assert sum(records[1]["classes"].values()) == pytest.approx(1.0, abs=1e-3)
    # The pixel confidence is the top probability of the two views' mean, computed here by hand.
    from dlkit.apps.segment.edge import preprocess
    from dlkit.edge import EdgeModel

    meta = json.loads((run_dir / "model.json").read_text())
    pixels = preprocess(np.asarray(Image.open(image).convert("RGB")), meta)[None]
    edge = EdgeModel(model)
    mean = (edge.predict(pixels)[0] + edge.predict(pixels[:, :, ::-1].copy())[0][:, :, ::-1]) / 2
    assert records[1]["confidence"] == pytest.approx(mean.max(-1).mean(), abs=1e-4)


def _voc_folder(root):
    """A VOC2012 layout from the sample squares: JPEGs, palette masks with a void border
    round each object (255), the train/val lists."""
    sample = write_sample_folder(root / "sample", per_split=(8, 4, 0))
    voc = root / "VOCdevkit" / "VOC2012"
    for name in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / name).mkdir(parents=True)
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (3 * 252) + [224, 224, 192]
    for split in ("train", "val"):
        stems = []
        for image_path in sorted((sample / "images" / split).glob("*.png")):
            mask = np.asarray(Image.open(sample / "masks" / split / image_path.name))
            grown = np.pad(mask, 1, mode="edge")
            edge = (grown[:-2, 1:-1] != grown[2:, 1:-1]) | (grown[1:-1, :-2] != grown[1:-1, 2:])
            voc_mask = Image.fromarray(np.where(edge, 255, mask).astype(np.uint8), "P")
            voc_mask.putpalette(palette)
            voc_mask.save(voc / "SegmentationClass" / image_path.name)
            Image.open(image_path).convert("RGB").save(voc / "JPEGImages" / f"{image_path.stem}.jpg")
            stems.append(image_path.stem)
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return voc


def test_pascal_voc_folders_read_with_void_borders_kept(tmp_path):
    from dlkit.data.masks import VOC_CLASSES

    voc = _voc_folder(tmp_path)
    config = dataclasses.replace(Config.tiny(), image_size=48, val_split=0.25)
    source = open_source(config, str(tmp_path / "VOCdevkit"))
    assert source.labels == VOC_CLASSES and len(source.labels) == 21
    # VOC's val list is the test split; validation is carved from its train list (8 images).
    assert len(source.splits["test"]) == 4 and len(source.splits["val"]) >= 1
    assert len(source.splits["train"]) + len(source.splits["val"]) == 8
    test = load_split(config, source, "test")
    assert set(np.unique(test.targets)) <= {0, 1, 2, 255} and (test.targets == 255).any()
    # void stays void at the model's size; objects keep their palette index
    truth = np.asarray(Image.open(voc / "SegmentationClass" / Path(test.paths[0]).with_suffix(".png").name))
    np.testing.assert_array_equal(test.targets[0], truth)
    (voc / "JPEGImages" / f"{Path(test.paths[0]).stem}.jpg").unlink()
    assert "listed in val.txt but missing" in "\n".join(open_source(config, str(voc)).skipped)


def test_coco_polygons_and_rle_become_class_masks(tmp_path, monkeypatch):
    from pycocotools import mask as coco_mask

    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))
    images = tmp_path / "coco" / "images" / "train2017"
    images.mkdir(parents=True)
    records, annotations = [], []
    blob = np.zeros((40, 50), np.uint8)
    blob[5:15, 30:45] = 1
    rle = coco_mask.encode(np.asfortranarray(blob))
    rle["counts"] = rle["counts"].decode()
    for i in range(10):
        Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(images / f"{i:03d}.jpg")
        records.append({"id": i + 1, "file_name": f"{i:03d}.jpg", "width": 50, "height": 40})
        annotations += [  # a big dog square, a cat square on top of it, an RLE cat, a crowd
            {"id": 4 * i + 1, "image_id": i + 1, "category_id": 18, "area": 400, "iscrowd": 0,
             "segmentation": [[0, 0, 20, 0, 20, 20, 0, 20]]},
            {"id": 4 * i + 2, "image_id": i + 1, "category_id": 17, "area": 25, "iscrowd": 0,
             "segmentation": [[5, 5, 10, 5, 10, 10, 5, 10]]},
            {"id": 4 * i + 3, "image_id": i + 1, "category_id": 17, "area": 150, "iscrowd": 0, "segmentation": rle},
            {"id": 4 * i + 4, "image_id": i + 1, "category_id": 18, "area": 30, "iscrowd": 1,
             "segmentation": [[0, 30, 10, 30, 10, 33, 0, 33]]},
        ]  # fmt: skip
    categories = [{"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}]
    (tmp_path / "coco" / "annotations").mkdir()
    (tmp_path / "coco" / "annotations" / "instances_train2017.json").write_text(
        json.dumps({"images": records, "annotations": annotations, "categories": categories})
    )
    config = dataclasses.replace(Config.tiny(), image_size=40, val_split=0.2, test_split=0.2)
    source = open_source(config, str(tmp_path / "coco"))
    assert source.labels == ["background", "cat", "dog"]
    assert [len(source.splits[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    mask = np.asarray(Image.open(source.splits["train"][0][1]))
    assert mask.shape == (40, 50)
    assert (mask[6:10, 6:10] == 1).all() and (mask[12:19, 12:19] == 2).all()  # cat drawn over dog
    np.testing.assert_array_equal(mask[5:15, 30:45], 1)  # RLE, exact
    assert (mask[31:33, 1:9] == 255).all() and (mask[25:29] == 0).all()  # crowd is void
    with pytest.raises(
        InvalidInputError, match="10 skipped, e.g. instances_train2017.json: image 000.jpg not found"
    ):
        open_source(
            config, str(tmp_path / "coco" / "annotations" / "instances_train2017.json")
        )  # images elsewhere


def test_the_split_of_user_data_does_not_follow_the_training_seed_nor_the_folder_size():
    """A run fine-tuned (--init) with another seed, or on the folder grown, validates and
    tests on the same images, never on images the first run trained on."""
    from dlkit.apps.segment.data import _three_splits

    pairs = [(Path(f"images/image{k}.jpg"), Path(f"masks/image{k}.png")) for k in range(60)]
    first, second = (_three_splits(dataclasses.replace(Config.tiny(), seed=s), pairs[:40]) for s in (0, 7))
    assert first == second
    assert 2 <= len(first["val"]) <= 12 and 2 <= len(first["test"]) <= 12
    assert not set(first["train"]) & (set(first["val"]) | set(first["test"]))
    grown = _three_splits(Config.tiny(), pairs)
    for split in ("train", "val", "test"):
        assert set(first[split]) == set(grown[split]) & set(pairs[:40])


def test_compare_tool_scores_two_segmenters_pairwise(segment_run):
    """tools/compare_segment.py on the tiny run: its Keras model against its int8 file gives
    each model's own report and a pooled difference equal to the difference of the two
    pooled reports, inside its paired interval; a model against itself differs by 0."""
    from conftest import load_tool
    from dlkit.registry import get_app

    tool, app = load_tool("compare_segment"), get_app("segment")
    run_dir, data = segment_run
    result = tool.compare(app, [run_dir / "model.keras", run_dir / "model.int8.tflite"], str(data))
    for split in ("val", "test", "pooled"):  # each split's difference is its two reports'
        keras_report, int8_report = (r[split] for r in result["reports"])
        for key in ("miou", "foreground_iou"):
            difference = result["differences"][split][key]
            assert difference == pytest.approx(keras_report[key] - int8_report[key], abs=1e-9), split
            low, high = result["differences"][split][f"{key}_ci95"]
            assert low <= difference <= high
    same = tool.compare(app, [run_dir / "model.int8.tflite"] * 2, str(data))["differences"]["pooled"]
    assert same["miou"] == 0 and same["miou_ci95"] == [0.0, 0.0]
