"""Detection data: YOLO, COCO and VOC readers on fixture files written here, bad
annotations skipped and reported, augmentation moving boxes with pixels, `data check`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dlkit.cli import cli
from dlkit.data import detection
from dlkit.errors import InvalidInputError


def write_image(path, size=(40, 30), color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture
def yolo_dir(tmp_path):
    root = tmp_path / "yolo"
    for i, (split, name) in enumerate((("train", "a"), ("train", "b"), ("train", "c"), ("val", "d"))):
        write_image(root / "images" / split / f"{name}.jpg", color=(40 * i, 100, 50))
    labels = root / "labels"
    (labels / "train").mkdir(parents=True)
    (labels / "val").mkdir(parents=True)
    (labels / "train" / "a.txt").write_text("0 0.5 0.5 0.4 0.2\n1 0.25 0.25 0.1 0.1\n")
    (labels / "train" / "b.txt").write_text(
        "5 0.5 0.5 0.2 0.2\n0 1.5 0.5 0.2 0.2\nnonsense\n0 0.5 0.5 0 0.3\n"
    )
    (labels / "train" / "c.txt").write_text("")
    (labels / "val" / "d.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n"
    )
    return root


def test_yolo_reader(yolo_dir):
    source = detection.read_yolo(yolo_dir / "data.yaml")
    assert source.labels == ["cat", "dog"]
    train = {r.image.split("/")[-1]: r for r in source.records["train"]}
    np.testing.assert_allclose(train["a.jpg"].boxes, [[0.3, 0.4, 0.7, 0.6], [0.2, 0.2, 0.3, 0.3]], atol=1e-6)
    assert train["a.jpg"].classes.tolist() == [0, 1]
    assert len(train["b.jpg"].boxes) == 0 and len(train["c.jpg"].boxes) == 0
    joined = "\n".join(source.skipped)
    assert "unknown class 5" in joined and "outside the image" in joined
    assert "b.txt:3: expected 'class cx cy w h'" in joined and "degenerate" in joined
    assert any("empty label file" in w for w in source.warnings)
    assert [r.classes.tolist() for r in source.records["val"]] == [[1]]


def test_coco_reader_skips_missing_images(tmp_path):
    write_image(tmp_path / "img1.jpg", (100, 50))
    data = {
        "images": [
            {"id": 1, "file_name": "img1.jpg", "width": 100, "height": 50},
            {"id": 2, "file_name": "missing.jpg", "width": 10, "height": 10},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 5, 30, 20], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [90, 40, 30, 30], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10], "iscrowd": 1},
        ],
        "categories": [{"id": 3, "name": "bird"}, {"id": 7, "name": "fish"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    skipped = []
    records, names = detection.read_coco_json(path, skipped=skipped)
    assert names == ["bird", "fish"]
    assert len(records) == 1
    np.testing.assert_allclose(records[0].boxes, [[0.1, 0.1, 0.4, 0.5]], atol=1e-6)
    assert records[0].classes.tolist() == [1]
    assert any("missing.jpg not found" in s for s in skipped)
    assert any("outside the image" in s for s in skipped)
    (tmp_path / "bad.json").write_text('{"images": 3}')
    with pytest.raises(InvalidInputError, match="not a COCO instances file"):
        detection.read_coco_json(tmp_path / "bad.json")


def test_voc_reader(tmp_path):
    root = tmp_path / "voc"
    write_image(root / "JPEGImages" / "x.jpg", (200, 100))
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "x.xml").write_text(
        "<annotation><filename>x.jpg</filename><size><width>200</width><height>100</height><depth>3</depth></size>"
        "<object><name>dog</name><bndbox><xmin>20</xmin><ymin>10</ymin><xmax>120</xmax><ymax>90</ymax></bndbox></object>"
        "<object><name>cat</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>50</xmax><ymax>50</ymax></bndbox></object>"
        "</annotation>"
    )
    (root / "Annotations" / "broken.xml").write_text("<annotation><filename>")
    (root / "labels.txt").write_text("dog\n")
    source = detection.read_voc(root)
    records = [r for split in source.records.values() for r in split]
    assert source.labels == ["dog"] and len(records) == 1
    np.testing.assert_allclose(records[0].boxes, [[0.1, 0.1, 0.6, 0.9]], atol=1e-6)
    assert any("unknown class 'cat'" in s for s in source.skipped)
    assert any("broken.xml: unreadable" in s for s in source.skipped)


def test_augment_moves_boxes_with_the_pixels():
    rng = np.random.default_rng(0)
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:32, 8:40] = 255  # a white box at x 8-40, y 16-32
    box = np.array([[8 / 64, 16 / 64, 40 / 64, 32 / 64]], np.float32)
    for _ in range(20):
        out, boxes, classes = detection.augment(image, box, np.array([3]), rng, color=0.0, scale=(0.8, 1.3))
        if not len(boxes):
            continue
        x0, y0, x1, y1 = np.round(boxes[0] * 64).astype(int)
        inside = out[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].mean()
        assert inside > 200, (boxes, inside)
        assert classes.tolist() == [3]


def test_data_check_reports_and_exits_nonzero(yolo_dir, tmp_path):
    result = CliRunner().invoke(cli, ["detect", "data", "check", str(yolo_dir)])
    assert result.exit_code == 1, result.output
    assert "train: 3 images, 2 boxes" in result.output
    assert "bad annotations (skipped): 4" in result.output and "empty label file" in result.output
    # fix the labels, add a duplicate image: still an error
    (yolo_dir / "labels" / "train" / "b.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    Image.open(yolo_dir / "images" / "train" / "a.jpg").save(yolo_dir / "images" / "train" / "a.png")
    (yolo_dir / "images" / "train" / "a.png").write_bytes(
        (yolo_dir / "images" / "train" / "a.jpg").read_bytes()
    )
    result = CliRunner().invoke(cli, ["detect", "data", "check", str(yolo_dir), "--json"])
    report = json.loads(result.output)
    assert report["duplicates"] and result.exit_code == 1
    (yolo_dir / "images" / "train" / "a.png").unlink()
    result = CliRunner().invoke(cli, ["detect", "data", "check", str(yolo_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("ok")
    missing = CliRunner().invoke(cli, ["detect", "data", "check", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such file" in missing.output


@pytest.mark.parametrize(
    "names, message",
    [
        ("3", "'names' must list the class names"),
        ("[]", "'names' must list the class names"),
        ("{0: cat, b: dog}", "'names' must list the class names"),
        ("[[cat], dog]", "'names' must list the class names"),
        ("[cat, cat]", "'names' lists a class twice"),
    ],
)
def test_a_data_yaml_with_bad_names_is_one_line(yolo_dir, names, message):
    yaml_path = yolo_dir / "data.yaml"
    yaml_path.write_text(f"path: .\ntrain: images/train\nval: images/val\nnames: {names}\n")
    with pytest.raises(InvalidInputError, match=message) as error:
        detection.read_yolo(yaml_path)
    assert str(yaml_path) in str(error.value) and "\n" not in str(error.value)


def test_recolor_against_the_formula_and_the_opencv_version():
    """`recolor` (numpy) is saturation about each pixel's grey, contrast about the image
    mean, then a brightness shift; the training pipeline's OpenCV pass gives the same
    pixels (rounding can move one truncation by 1)."""
    from dlkit.data.render import zoom_and_recolor

    no_zoom = np.array([0.0, 0.0, 0.0, 1.0], np.float32)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, 9, 9, 3), dtype=np.uint8)
    factors = np.stack([detection.color_factors(rng, 0.4) for _ in range(4)])
    assert np.all(np.abs(factors[:, :2] - 1) <= 0.4) and np.all(np.abs(factors[:, 2]) <= 0.4)
    saturation, contrast, brightness = factors[0]
    x = images[0].astype(np.float64)
    grey = x.mean(-1, keepdims=True)
    x = grey + saturation * (x - grey)
    x = contrast * (x - x.mean()) + x.mean() + brightness * 127.5
    expected = np.clip(x, 0, 255).astype(np.uint8)
    numpy_out = np.stack([detection.recolor(i, f) for i, f in zip(images, factors)])
    assert np.abs(numpy_out[0].astype(int) - expected).max() <= 1
    fast = np.stack([zoom_and_recolor(i, no_zoom, f) for i, f in zip(images, factors)])
    assert fast.dtype == np.uint8 and fast.shape == images.shape
    # Floored sums of float32 terms: the two orders of summation truncate apart now and then.
    assert np.abs(fast.astype(int) - numpy_out).max() <= 1 and np.mean(fast == numpy_out) > 0.9
    assert np.abs(fast[0].astype(int) - expected).max() <= 1
    identity = detection.color_factors(rng, 0.0)
    assert np.array_equal(detection.recolor(images[1], identity), images[1])
    assert np.array_equal(zoom_and_recolor(images[1], no_zoom, identity), images[1])


def test_the_opencv_zoom_moves_pixels_as_the_numpy_augment_does():
    """The training pipeline's OpenCV zoom gives the pixels of `detection.zoom_image`
    (PIL) for the same draws: mirrored or not, zoomed in (crop) or out (padded with the
    image's mean colour); and the boxes `zoom_boxes` moves still frame their objects."""
    from PIL import Image

    from dlkit.data.render import zoom_and_recolor

    size = 48
    rng = np.random.default_rng(0)
    smooth = np.asarray(
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
    )
    image = smooth.copy()
    image[10:20, 6:30] = (255, 255, 255)  # a white box at x 6-30, y 10-20
    box = np.array([[6 / size, 10 / size, 30 / size, 20 / size]], np.float32)
    no_zoom = np.array([0.0, 0.0, 0.0, 1.0], np.float32)
    views = [no_zoom] + [detection.zoom_draws(rng, scale=(0.6, 1.4)) for _ in range(30)]
    assert {bool(v[0]) for v in views} == {True, False} and min(v[3] for v in views) < 1 < max(
        v[3] for v in views
    )
    same = detection.color_factors(None, 0.0)
    batched = np.stack([zoom_and_recolor(image, view, same) for view in views]).astype(np.float32)
    assert np.array_equal(batched[0], image)  # the whole image, unmoved
    fill = np.floor(image.reshape(-1, 3).mean(axis=0))
    assert any(view[3] > 1.1 and view[1] < 0 and view[2] < 0 for view in views)
    for view, out in zip(views, batched):
        if view[3] > 1.1 and view[1] < 0 and view[2] < 0:  # zoomed out: a corner outside
            np.testing.assert_array_equal(out[0, 0], fill)
    for view, out in zip(views, batched):
        reference = detection.zoom_image(image, view).astype(np.float32)
        # The same pixels to within rounding, except on the lines where the image's edge
        # lands (PIL reads half a pixel past the edge as the edge, OpenCV as the fill).
        _, x0, y0, side = view
        edges = np.concatenate([(np.array([0.0, 1.0]) - start) / side * size for start in (x0, y0)])
        lines = np.arange(size) + 0.5
        near_x = np.min(np.abs(lines[None, :] - edges[:2, None]), axis=0) < 1.5
        near_y = np.min(np.abs(lines[:, None] - edges[None, 2:]), axis=1) < 1.5
        away = ~near_y[:, None] & ~near_x[None, :]
        assert np.abs(out - reference)[away].max() <= 2.0, view
        boxes, _ = detection.zoom_boxes(box, np.array([0]), view)
        if len(boxes):
            x0, y0, x1, y1 = np.round(boxes[0] * size).astype(int)
            assert out[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].mean() > 200, view


def test_a_large_jpeg_loads_at_a_reduced_scale_with_its_object_where_the_box_says(tmp_path):
    """Boxes are normalised, so a large photo decoded at the JPEG decoder's reduced scale
    (twice the input side) still puts its object under its box after the resize."""
    import dataclasses

    from dlkit.apps.detect.config import Config
    from dlkit.apps.detect.data import load_split
    from dlkit.edge.image import load_image, resize

    root = tmp_path / "big"
    pixels = np.full((1536, 2048, 3), 40, np.uint8)
    pixels[384:768, 512:1536] = (230, 200, 20)  # the box 0.25-0.75 wide, 0.25-0.5 high
    (root / "images" / "train").mkdir(parents=True)
    Image.fromarray(pixels).save(root / "images" / "train" / "a.jpg", quality=90)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.375 0.5 0.25\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames:\n  0: sign\n")
    config = dataclasses.replace(Config.tiny(), image_size=128)
    loaded = load_split(config, detection.read_yolo(root / "data.yaml"), "train")
    image = loaded.inputs[0]
    assert load_image(root / "images" / "train" / "a.jpg", at_least=256).shape == (384, 512, 3)  # 1/4
    np.testing.assert_array_equal(
        image, resize(load_image(root / "images" / "train" / "a.jpg", at_least=256), (128, 128))
    )
    x1, y1, x2, y2 = (loaded.targets[0][0][0] * 128).astype(int)
    assert (image[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2, 0] > 200).all() and (image[: y1 - 2, :, 0] < 60).all()


def test_a_mosaic_window_holds_the_pixels_and_boxes_of_its_four_images():
    """`detection.mosaic`: the window's pixels are the 2 x 2 canvas's at its place; each
    box moves with its image's pixels (a coloured rectangle stays under its box), boxes
    cut below 40% of their area are dropped, and none leaves the window."""
    size, rng = 40, np.random.default_rng(1)
    images, targets = [], []
    for k in range(4):
        image = np.full((size, size, 3), 20 * k, np.uint8)
        x0, y0 = rng.integers(0, size - 12, 2)
        image[y0 : y0 + 12, x0 : x0 + 12] = (250, 30 + 50 * k, 90)
        images.append(image)
        targets.append((np.array([[x0, y0, x0 + 12, y0 + 12]], np.float32) / size, np.array([k])))
    canvas = np.concatenate([np.concatenate(images[:2], axis=1), np.concatenate(images[2:], axis=1)], axis=0)
    kept = set()
    for center in [(1.0, 1.0), (0.5, 0.5), (1.5, 1.5), (0.5, 1.5)] + list(rng.uniform(0.5, 1.5, (40, 2))):
        window, boxes, classes = detection.mosaic(images, targets, center)
        left, top = round((center[0] - 0.5) * size), round((center[1] - 0.5) * size)
        np.testing.assert_array_equal(window, canvas[top : top + size, left : left + size])
        assert window.shape == (size, size, 3) and len(boxes) == len(classes) <= 4
        assert np.all((boxes >= 0) & (boxes <= 1)) and classes.dtype == np.int64
        for box, k in zip(boxes, classes):
            x0, y0, x1, y1 = np.round(box * size).astype(int)
            assert (x1 - x0) * (y1 - y0) >= 0.4 * 144  # at least 40% of its 12 x 12 pixels
            np.testing.assert_array_equal(window[y0:y1, x0:x1].reshape(-1, 3)[0], (250, 30 + 50 * k, 90))
            kept.add(int(k))
        for k in set(range(4)) - set(classes.tolist()):  # a dropped box: under 40% of it in view
            x0, y0, x1, y1 = targets[k][0][0] * size + [size * (k % 2), size * (k // 2)] * 2
            visible = max(0, min(x1, left + size) - max(x0, left)) * max(
                0, min(y1, top + size) - max(y0, top)
            )
            assert visible < 0.4 * 144 + 1e-3
    assert kept == {0, 1, 2, 3}


def test_mosaic_tiles_training_images_until_its_last_epochs():
    """`mosaic` in detect's pipeline: at 1.0 every training image is a mosaic (it differs
    from the image alone) until the last `close_mosaic` epochs, whose examples are those of
    a run without it; validation is never tiled; its tiles are fresh scenes in the share
    `fresh_scenes` gives."""
    import dataclasses

    from dlkit.apps.detect import data as detect_data
    from dlkit.apps.detect.config import Config

    size = 32
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 256, (6, size, size, 3), dtype=np.uint8)
    targets = np.empty(6, dtype=object)
    targets[:] = [(np.array([[0.2, 0.2, 0.6, 0.6]], np.float32), np.array([i % 2])) for i in range(6)]
    loaded = detect_data.LoadedDetection(inputs, targets, [f"{i}.jpg" for i in range(6)], [])
    meta = {"labels": ["a", "b"], "grids": [4, 2], "anchors": [[[0.1, 0.1]] * 3, [[0.4, 0.4]] * 3]}
    base = dataclasses.replace(
        Config.tiny(), image_size=size, batch_size=6, color=0.0, zoom_min=1.0, zoom_max=1.0, epochs=1
    )

    def epochs(config, count, training=True):
        data = detect_data.make_dataset(config, loaded, training=training, meta=meta)
        return [images.numpy() for (images, _), _ in zip(data.repeat(), range(count))]

    plain = epochs(base, 2)
    tiled = epochs(dataclasses.replace(base, mosaic=1.0, close_mosaic=1), 2)  # 2 epochs: the first tiled
    assert not any(
        np.array_equal(a, b) or np.array_equal(a[:, :, ::-1], b) for a, b in zip(plain[0], tiled[0])
    )
    np.testing.assert_array_equal(plain[1], tiled[1])
    closed = epochs(dataclasses.replace(base, mosaic=1.0, close_mosaic=2), 2)
    np.testing.assert_array_equal(np.stack(plain), np.stack(closed))
    np.testing.assert_array_equal(
        epochs(dataclasses.replace(base, mosaic=1.0), 1, training=False)[0],
        epochs(base, 1, training=False)[0],
    )
    # Where every training image is a new scene, so is every tile of a mosaic.
    loaded.scenes = lambda rng: (
        np.full((size, size, 3), 77, np.uint8),
        np.array([[0.1, 0.1, 0.5, 0.5]], np.float32),
        np.array([1]),
    )
    config = dataclasses.replace(base, mosaic=1.0, close_mosaic=0, fresh_scenes=1.0, scene_pool=False)
    fresh = epochs(config, 1)[0]
    assert np.all(fresh == 77)
