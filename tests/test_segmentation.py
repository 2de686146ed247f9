"""Segmentation building blocks: the transposed convolution by hand, U-Net block shapes,
soft Dice against numpy, IoU/Dice accumulated over batches against direct counts."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlkit.layers.unet import apply_conv_block, apply_up_block  # noqa: E402
from dlkit.losses import DiceCrossEntropy, soft_dice_loss  # noqa: E402
from dlkit.metrics.segmentation import SegmentationEvaluator, iou_difference  # noqa: E402


def test_transposed_convolution_by_hand():
    # Each input value stamps the kernel, scaled, at its position (stride 1, no padding):
    # a 2x2 input and a 2x2 kernel give a 3x3 output whose cells sum the overlaps.
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32).reshape(1, 2, 2, 1)
    kernel = np.array([[1.0, 10.0], [100.0, 1000.0]], np.float32)
    expected = np.array(
        [
            [1 * 1, 1 * 10 + 2 * 1, 2 * 10],
            [1 * 100 + 3 * 1, 1 * 1000 + 2 * 100 + 3 * 10 + 4 * 1, 2 * 1000 + 4 * 10],
            [3 * 100, 3 * 1000 + 4 * 100, 4 * 1000],
        ],
        np.float32,
    )
    layer = keras.layers.Conv2DTranspose(1, 2, strides=1, padding="valid", use_bias=False)
    layer.build((1, 2, 2, 1))
    layer.set_weights([kernel.reshape(2, 2, 1, 1)])  # (kh, kw, out, in)
    np.testing.assert_allclose(np.asarray(layer(x))[0, :, :, 0], expected)
    # 3x3 kernel: output (2 - 1) * 1 + 3 = 4 on a side, the same stamping rule.
    big = np.arange(9, dtype=np.float32).reshape(3, 3)
    layer = keras.layers.Conv2DTranspose(1, 3, strides=1, padding="valid", use_bias=False)
    layer.build((1, 2, 2, 1))
    layer.set_weights([big.reshape(3, 3, 1, 1)])
    stamped = np.zeros((4, 4), np.float32)
    for i in range(2):
        for j in range(2):
            stamped[i : i + 3, j : j + 3] += x[0, i, j, 0] * big
    np.testing.assert_allclose(np.asarray(layer(x))[0, :, :, 0], stamped)


@pytest.mark.parametrize("size", [32, 48, 64])
def test_up_block_doubles_resolution_and_joins_the_skip(size):
    bottom = keras.Input((size // 2, size // 2, 16))
    skip = keras.Input((size, size, 8))
    out = apply_up_block(bottom, skip, 12, name="up1")
    no_skip = apply_up_block(bottom, None, 12, name="up2")
    model = keras.Model([bottom, skip], [out, no_skip])
    assert model.output_shape == [(None, size, size, 12), (None, size, size, 12)]
    assert model.get_layer("up1_concat").output.shape == (None, size, size, 12 + 8)
    assert {"up1_up", "up1_conv1", "up1_bn2", "up1_relu2"} <= {layer.name for layer in model.layers}
    block = apply_conv_block(keras.Input((size, size, 3)), 5, name="enc")
    assert block.shape == (None, size, size, 5)


def dice_numpy(y_true, probs, smooth=1.0):
    classes = probs.shape[-1]
    one_hot = np.eye(classes)[y_true]
    inter = (one_hot * probs).sum(axis=(1, 2))
    total = one_hot.sum(axis=(1, 2)) + probs.sum(axis=(1, 2))
    return 1 - ((2 * inter + smooth) / (total + smooth)).mean(-1)


def test_soft_dice_and_combined_loss_against_numpy():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, (2, 6, 6))
    probs = rng.dirichlet(np.ones(3), (2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(soft_dice_loss(y_true, probs)), dice_numpy(y_true, probs), rtol=1e-5
    )
    perfect = np.eye(3, dtype=np.float32)[y_true]
    assert np.allclose(np.asarray(soft_dice_loss(y_true, perfect, smooth=0.0)), 0.0, atol=1e-6)
    ce = -np.log(np.take_along_axis(probs, y_true[..., None], -1)[..., 0]).mean()
    loss = DiceCrossEntropy(ce_weight=0.5, dice_weight=2.0)
    expected = 0.5 * ce + 2.0 * dice_numpy(y_true, probs).mean()
    assert float(loss(y_true, probs)) == pytest.approx(expected, rel=1e-5)


def test_void_pixels_count_in_neither_loss_term():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, (2, 6, 6))
    probs = rng.dirichlet(np.ones(3), (2, 6, 6)).astype(np.float32)
    void = rng.random((2, 6, 6)) < 0.3
    valid = ~void
    labelled = np.where(void, 255, y_true)
    ce = -np.log(np.take_along_axis(probs, y_true[..., None], -1)[..., 0])
    ce_per_image = (ce * valid).sum(axis=(1, 2)) / valid.sum(axis=(1, 2))
    one_hot = np.eye(3)[y_true] * valid[..., None]
    kept = probs * valid[..., None]
    dice = 1 - ((2 * (one_hot * kept).sum((1, 2)) + 1) / (one_hot.sum((1, 2)) + kept.sum((1, 2)) + 1)).mean(
        -1
    )
    loss = DiceCrossEntropy(ce_weight=0.5, dice_weight=2.0)
    assert float(loss(labelled, probs)) == pytest.approx((0.5 * ce_per_image + 2.0 * dice).mean(), rel=1e-5)
    # whatever a model predicts on void pixels changes nothing
    other = np.where(void[..., None], rng.dirichlet(np.ones(3), (2, 6, 6)), probs).astype(np.float32)
    assert float(loss(labelled, other)) == pytest.approx(float(loss(labelled, probs)), rel=1e-6)


def test_iou_and_dice_accumulate_over_batches_like_direct_counts():
    truth = np.zeros((2, 4, 4), np.int64)
    truth[0, :2, :2] = 1  # 4 pixels of class 1
    truth[1, 2:, 2:] = 2  # 4 pixels of class 2
    predicted = truth.copy()
    predicted[0, 0, 0] = 0  # one class-1 pixel missed
    predicted[1, 0, 0] = 2  # one background pixel called class 2
    evaluator = SegmentationEvaluator(["background", "cat", "dog"])
    evaluator.update([predicted[:1]], truth[:1])
    evaluator.update([np.eye(3)[predicted[1:]]], truth[1:])  # scores in the second batch
    report = evaluator.result()
    # class 1: 3 hits, union 4; class 2: 4 hits, union 5; background: 23 hits, union 25.
    assert report["per_class"]["cat"]["iou"] == pytest.approx(3 / 4)
    assert report["per_class"]["dog"]["iou"] == pytest.approx(4 / 5)
    assert report["per_class"]["background"]["iou"] == pytest.approx(23 / 25)
    assert report["miou"] == pytest.approx((3 / 4 + 4 / 5 + 23 / 25) / 3)
    assert report["per_class"]["cat"]["dice"] == pytest.approx(2 * 3 / (4 + 3))
    # foreground: 7 object pixels called an object, of 9 labelled or predicted object pixels
    assert report["foreground_iou"] == pytest.approx(7 / 9)
    assert report["pixel_accuracy"] == pytest.approx(30 / 32) and report["images"] == 2
    low, high = report["miou_ci95"]  # resampling the two images
    assert low <= report["miou"] <= high and low < high
    # Void pixels (255, Pascal VOC's borders) are not scored.
    void = truth.copy()
    void[0, 3, 3] = 255
    evaluator = SegmentationEvaluator(["background", "cat", "dog"])
    evaluator.update([predicted], void)
    assert int(np.sum(evaluator.result()["confusion_matrix"])) == 31


def test_paired_iou_difference_of_two_models_on_the_same_images():
    """The difference equals the two reports' difference, its interval brackets it and is
    narrower than either model's own interval (the images' difficulty cancels out), and a
    model against itself differs by exactly 0."""
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 16, 16), np.int64)
    for i in range(40):  # objects of varied size: some images far easier than others
        side = 2 + i % 12
        truth[i, :side, :side] = 1 + i % 2
    labels = ["background", "cat", "dog"]
    # Each image has its own difficulty (the share of pixels wrong), shared by the two
    # models; the second gets half as many again wrong, always including the first's.
    difficulty = rng.uniform(0.02, 0.4, (40, 1, 1))
    draw, wrong = rng.random(truth.shape), (truth + rng.integers(1, 3, truth.shape)) % 3
    evaluators = []
    for factor in (1.0, 1.5):
        predicted = np.where(draw < factor * difficulty, wrong, truth)
        evaluator = SegmentationEvaluator(labels)
        evaluator.update([predicted], truth)
        evaluators.append(evaluator)
    first, second = (e.result(bootstrap=500) for e in evaluators)
    difference = iou_difference(*evaluators, bootstrap=500)
    for key in ("miou", "foreground_iou"):
        assert difference[key] == pytest.approx(first[key] - second[key])
        low, high = difference[f"{key}_ci95"]
        assert 0 < low <= difference[key] <= high
        assert high - low < min(np.diff(first[f"{key}_ci95"])[0], np.diff(second[f"{key}_ci95"])[0])
    same = iou_difference(evaluators[0], evaluators[0], bootstrap=50)
    assert same["miou"] == 0 and same["miou_ci95"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="not the same images"):
        shorter = SegmentationEvaluator(labels)
        shorter.update([truth[:3]], truth[:3])
        iou_difference(evaluators[0], shorter)


def test_pixel_calibration_against_the_formula():
    """ECE over scored pixels: with 15 bins, |hit rate - mean top probability| per bin,
    weighted by the bin's pixels; void pixels left out; label maps give none."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([0.5, 0.5, 0.5], size=(3, 8, 8)).astype(np.float32)
    truth = rng.integers(0, 3, (3, 8, 8))
    truth[0, 0, :] = 255
    evaluator = SegmentationEvaluator(["background", "cat", "dog"])
    evaluator.update([probs[:2]], truth[:2])
    evaluator.update([probs[2:]], truth[2:])
    valid = truth < 3
    top, hit = probs.max(-1)[valid], (probs.argmax(-1) == truth)[valid]
    bins = np.minimum((top * 15).astype(int), 14)
    expected = sum(
        abs(hit[bins == b].mean() - top[bins == b].mean()) * np.sum(bins == b) for b in set(bins)
    ) / len(top)
    assert evaluator.result(bootstrap=0)["ece"] == pytest.approx(expected)
    maps_only = SegmentationEvaluator(["background", "cat", "dog"])
    maps_only.update([probs.argmax(-1)], truth)
    assert np.isnan(maps_only.result(bootstrap=0)["ece"])


def test_boundary_f_score_on_hand_made_masks():
    from dlkit.metrics.segmentation import boundary, boundary_f_score

    square = np.zeros((20, 20), np.int64)
    square[5:15, 5:15] = 1
    assert boundary(square == 1).sum() == 36  # the 10x10 square's rim
    assert boundary(square == 0).sum() == 40  # the background pixels 4-adjacent to it
    assert not boundary(np.ones((4, 4), bool)).any()  # the image border is not a boundary
    assert boundary_f_score(square, square, 2) == 1.0
    assert boundary_f_score(square, np.roll(square, 2, axis=1), 2) == 1.0  # within 2 pixels
    assert boundary_f_score(square, np.zeros_like(square), 2) == 0.0
    # 4 pixels to the right, counted by hand (square neighbourhood of 2 pixels): of the
    # square's 36 rim pixels 20 lie near the other rim (8 + 8 on the top and bottom rows,
    # 4 on the near side), of the background's 40 rim pixels 22 (9 + 9 + 4); both ways alike.
    expected = (20 / 36 + 22 / 40) / 2
    assert abs(boundary_f_score(square, np.roll(square, 4, axis=1), 2) - expected) < 1e-12
    void = square.copy()
    void[0, :] = 255  # void pixels belong to no class
    assert boundary_f_score(void, void, 2) == 1.0


def test_worst_images_are_the_lowest_foreground_iou_first_without_empty_scenes():
    from dlkit.metrics.segmentation import SegmentationEvaluator, scores

    truth = np.zeros((4, 4, 4), np.int64)
    truth[0, :2, :2] = 1  # four object pixels in each image but the last
    truth[1, :2, :2] = 1
    truth[2, :2, :2] = 1
    predicted = truth.copy()
    predicted[1, 0, 0] = 0  # one object pixel lost: foreground IoU 3/4
    predicted[2, :2, :2] = 0
    predicted[2, 3, 3] = 1  # the object missed, one pixel invented: 0
    evaluator = SegmentationEvaluator(["background", "thing"])
    evaluator.update([predicted], truth)
    worst = evaluator.worst()
    assert [w["index"] for w in worst] == [2, 1, 0]  # the empty last image has no foreground IoU
    assert [w["foreground_iou"] for w in worst] == [0.0, 0.75, 1.0]
    assert worst[1]["miou"] == scores(evaluator.per_image[1])["miou"]
    assert [w["index"] for w in evaluator.worst(count=1)] == [2]
