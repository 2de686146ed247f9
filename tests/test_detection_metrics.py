"""COCO-style mAP against pycocotools on the same predictions (agreement within 0.001), and
the confusion matrix with a background class."""

import contextlib
import io
import warnings

import numpy as np
import pytest

from dlkit.edge.boxes import iou
from dlkit.metrics import classification
from dlkit.metrics.detection import (
    average_precision,
    class_agnostic_map,
    coco_map,
    confusion_matrix,
    confusion_shares,
)


def random_case(seed, images=40, classes=3):
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(images):
        m = rng.integers(0, 6)
        xy = rng.uniform(0, 150, (m, 2))
        gb = np.concatenate([xy, xy + rng.uniform(4, 60, (m, 2))], 1)
        gc = rng.integers(0, classes, m)
        gts.append((gb, gc))
        boxes, labels = [], []
        for _ in range(rng.integers(0, 9)):
            if m and rng.random() < 0.7:
                t = rng.integers(m)
                b = gb[t] + rng.normal(0, 4, 4)
                c = gc[t] if rng.random() < 0.8 else rng.integers(classes)
            else:
                xy2 = rng.uniform(0, 150, 2)
                b = np.concatenate([xy2, xy2 + rng.uniform(4, 60, 2)])
                c = rng.integers(classes)
            boxes.append([min(b[0], b[2] - 1), min(b[1], b[3] - 1), b[2], b[3]])
            labels.append(c)
        preds.append(
            (np.array(boxes).reshape(-1, 4), rng.uniform(0, 1, len(boxes)).round(2), np.array(labels))
        )
    return preds, gts


def pycocotools_map(preds, gts, classes):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dataset = {
        "images": [{"id": i + 1, "width": 300, "height": 300} for i in range(len(gts))],
        "categories": [{"id": c + 1, "name": str(c)} for c in range(classes)],
        "annotations": [],
    }
    for i, (boxes, labels) in enumerate(gts):
        for b, c in zip(boxes, labels):
            w, h = b[2] - b[0], b[3] - b[1]
            dataset["annotations"].append(
                {
                    "id": len(dataset["annotations"]) + 1,
                    "image_id": i + 1,
                    "category_id": int(c) + 1,
                    "bbox": [b[0], b[1], w, h],
                    "area": float(w * h),
                    "iscrowd": 0,
                }
            )
    detections = [
        {
            "image_id": i + 1,
            "category_id": int(c) + 1,
            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
            "score": float(s),
        }
        for i, (boxes, scores, labels) in enumerate(preds)
        for b, s, c in zip(boxes, scores, labels)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(detections), "bbox")
        evaluation.params.areaRng, evaluation.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluation.params.maxDets = [100]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, 0]  # (IoU, recall, class)
    ap = np.where(precision > -1, precision, np.nan).mean(axis=1)  # (IoU, class)
    return float(np.nanmean(ap[0])), float(np.nanmean(ap)), ap.T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_agrees_with_pycocotools(seed):
    preds, gts = random_case(seed)
    ours = coco_map(preds, gts, 3)
    map50, map50_95, ap = pycocotools_map(preds, gts, 3)
    assert abs(ours["map50"] - map50) < 1e-3
    assert abs(ours["map50_95"] - map50_95) < 1e-3
    np.testing.assert_allclose(ours["ap"], ap, atol=1e-3)


def test_perfect_and_empty_predictions():
    gts = [(np.array([[0, 0, 10, 10], [20, 20, 40, 40]]), np.array([0, 1]))]
    perfect = [(gts[0][0], np.array([0.9, 0.8]), gts[0][1])]
    assert coco_map(perfect, gts, 2)["map50_95"] == pytest.approx(1.0)
    nothing = [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))]
    assert coco_map(nothing, gts, 2)["map50"] == 0.0
    # a class with no ground truth is left out of the mean, not counted as 0
    assert np.isnan(coco_map(perfect, gts, 3)["ap"][2, 0])
    assert coco_map(perfect, gts, 3)["map50"] == pytest.approx(1.0)


def test_average_precision_of_a_half_right_ranking():
    # 2 ground truths; detections: hit, miss, hit -> precision 1 up to recall 0.5, 2/3 after.
    ap, sampled = average_precision([True, False, True], [0.9, 0.8, 0.7], num_gt=2)
    assert ap == pytest.approx((51 * 1.0 + 50 * (2 / 3)) / 101)
    assert sampled[0] == 1.0 and sampled[-1] == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_class_agnostic_map_is_coco_map_with_every_class_merged(seed):
    preds, gts = random_case(seed)
    merged = coco_map(
        [(b, s, np.zeros_like(c)) for b, s, c in preds], [(b, np.zeros_like(c)) for b, c in gts], 1
    )
    agnostic = class_agnostic_map(preds, gts)
    assert agnostic == {"map50": merged["map50"], "map50_95": merged["map50_95"]}
    # Right boxes, wrong classes: perfect localisation, no class-aware AP.
    truth = [(np.array([[0, 0, 10, 10], [20, 20, 40, 40]]), np.array([0, 1]))]
    swapped = [(truth[0][0], np.array([0.9, 0.8]), np.array([1, 0]))]
    assert class_agnostic_map(swapped, truth)["map50_95"] == pytest.approx(1.0)
    assert coco_map(swapped, truth, 2)["map50"] == 0.0


def test_a_bootstrap_sample_is_the_map_of_the_resampled_images():
    """Matching once per image, then AP over any multiset of images: the same as scoring
    the resampled list from scratch; the interval brackets the estimate."""
    from dlkit.metrics.detection import average_precisions, matches

    preds, gts = random_case(3)
    table = matches(preds, gts, 3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        picked = rng.integers(0, len(gts), len(gts))
        ap, _ = average_precisions(table, picked)
        direct = coco_map([preds[i] for i in picked], [gts[i] for i in picked], 3)["ap"]
        np.testing.assert_allclose(ap, direct, atol=1e-12)
    result = coco_map(preds, gts, 3, bootstrap=200)
    for key in ("map50", "map50_95"):
        low, high = result[f"{key}_ci95"]
        assert low <= result[key] <= high and low < high
    assert "map50_ci95" not in coco_map(preds, gts, 3)


def test_a_paired_map_difference_is_the_difference_with_a_narrower_interval():
    """Two detectors on the same images: the difference of their mAPs, its interval from
    resampling the images once for both (so it brackets the difference and is narrower
    than the two intervals apart); a detector against itself differs by exactly 0."""
    from dlkit.metrics.detection import map_difference

    preds, gts = random_case(5)
    rng = np.random.default_rng(1)
    # The second: the same boxes, jittered and with their scores shuffled a little.
    other = [(b + rng.normal(0, 3, np.shape(b)), s * rng.uniform(0.7, 1.0, len(s)), c) for b, s, c in preds]
    first, second = coco_map(preds, gts, 3, bootstrap=300), coco_map(other, gts, 3, bootstrap=300)
    difference = map_difference(preds, other, gts, 3, bootstrap=300)
    for key in ("map50", "map50_95"):
        assert difference[key] == pytest.approx(first[key] - second[key], abs=1e-12)
        low, high = difference[f"{key}_ci95"]
        assert low <= difference[key] <= high
        apart = (first[f"{key}_ci95"][1] - first[f"{key}_ci95"][0]) + (
            second[f"{key}_ci95"][1] - second[f"{key}_ci95"][0]
        )
        assert high - low < apart / 2
    same = map_difference(preds, preds, gts, 3, bootstrap=50)
    assert same == {"map50": 0.0, "map50_95": 0.0, "map50_ci95": [0.0, 0.0], "map50_95_ci95": [0.0, 0.0]}


def test_confusion_matrix_by_hand():
    truth = [
        (
            np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]),
            np.array([0, 1, 1, 2]),
        ),
        (np.zeros((0, 4)), np.zeros(0, int)),
    ]
    found = [
        (
            np.array(
                [
                    [0, 0, 10, 10],  # class 0 on the class-0 box: right
                    [20, 0, 30, 10],  # class 0 on a class-1 box: named wrong
                    [0, 0, 10, 9],  # a second box on the class-0 box (IoU 0.9): a false positive
                    [40, 0, 50, 10],  # class 1 on the class-1 box, but score 0.25: not above, dropped
                    [60, 0, 65, 10],  # IoU 0.5 with the class-2 box, above 0.45: right
                    [80, 0, 90, 10],  # over nothing: a false positive
                ]
            ),
            np.array([0.9, 0.8, 0.7, 0.25, 0.6, 0.5]),
            np.array([0, 0, 0, 1, 2, 1]),
        ),
        (np.array([[0, 0, 5, 5]]), np.array([0.9]), np.array([2])),  # an image without objects
    ]
    expected = np.array(
        [
            [1, 0, 0, 0],
            [1, 0, 0, 1],  # the class-1 box under the dropped detection is missed
            [0, 0, 1, 0],
            [1, 1, 1, 0],  # false positives
        ]
    )
    np.testing.assert_array_equal(confusion_matrix(found, truth, 3), expected)
    # IoU 0.5 is not above 0.5: the class-2 box is missed and its detection is a false positive.
    stricter = confusion_matrix(found, truth, 3, iou_threshold=0.5)
    assert stricter[2, 2] == 0 and stricter[2, 3] == 1 and stricter[3, 2] == expected[3, 2] + 1


def test_confusion_matrix_pairs_the_highest_overlaps_first():
    # Detection A overlaps the first box best; B overlaps the first box less and the
    # second box too. Pairing the highest IoU first gives A the first box and B the
    # second: both found. (Ultralytics' validation keeps each detection's best box
    # before pairing, so there B loses the first box to A and the second box is missed.)
    truth = [(np.array([[0, 0, 10, 10], [6, 0, 16, 10]]), np.array([0, 1]))]
    a, b = [0, 0, 10, 9], [2, 0, 12, 10]
    np.testing.assert_allclose(iou([a, b], truth[0][0]), [[90 / 100, 36 / 154], [80 / 120, 60 / 140]])
    found = [(np.array([a, b]), np.array([0.5, 0.9]), np.array([0, 1]))]
    matrix = confusion_matrix(found, truth, 2, iou_threshold=0.4)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize("seed", range(3))
def test_confusion_matrix_counts_every_box_and_detection_once(seed):
    preds, gts = random_case(seed, classes=3)
    matrix = confusion_matrix(preds, gts, 3)
    true_classes = np.concatenate([c for _, c in gts])
    kept = np.concatenate([c[s > 0.25] for _, s, c in preds]).astype(int)
    np.testing.assert_array_equal(matrix[:3].sum(1), np.bincount(true_classes, minlength=3))
    np.testing.assert_array_equal(matrix[:, :3].sum(0), np.bincount(kept, minlength=3))
    assert matrix[3, 3] == 0 and matrix[:3, :3].sum() > 0


def test_confusion_matrix_of_exact_boxes_is_the_classification_matrix():
    # Every detection exactly on its own true box: what is left is naming, so the class
    # block is the classification confusion matrix of the same labels.
    rng = np.random.default_rng(0)
    truth, found, y_true, y_pred = [], [], [], []
    for _ in range(30):
        m = rng.integers(1, 5)
        boxes = np.array([[40.0 * i, 0, 40.0 * i + 30, 30] for i in range(m)])
        true, named = rng.integers(0, 4, m), rng.integers(0, 4, m)
        truth.append((boxes, true))
        found.append((boxes, np.full(m, 0.9), named))
        y_true += list(true)
        y_pred += list(named)
    matrix = confusion_matrix(found, truth, 4)
    np.testing.assert_array_equal(matrix[:4, :4], classification.confusion_matrix(y_true, y_pred, 4))
    assert matrix[4].sum() == 0 and matrix[:, 4].sum() == 0


def test_confusion_shares_and_their_intervals_resample_the_images():
    preds, gts = random_case(1, images=60, classes=3)
    per_image = confusion_matrix(preds, gts, 3, per_image=True)
    assert per_image.shape == (60, 4, 4)
    np.testing.assert_array_equal(per_image.sum(0), confusion_matrix(preds, gts, 3))
    matrix = per_image.sum(0)
    shares = confusion_shares(per_image, bootstrap=200)
    boxes, detections = matrix[:3].sum(), matrix[:, :3].sum()
    assert shares["right_share"] == pytest.approx(np.trace(matrix[:3, :3]) / boxes)
    assert shares["missed_share"] == pytest.approx(matrix[:3, 3].sum() / boxes)
    assert shares["right_share"] + shares["wrong_class_share"] + shares["missed_share"] == pytest.approx(1)
    assert shares["false_positive_share"] == pytest.approx(matrix[3, :3].sum() / detections)
    for name in ("right_share", "wrong_class_share", "missed_share", "false_positive_share"):
        low, high = shares[f"{name}_ci95"]
        assert low < shares[name] < high
    # One resampling, by hand: the shares of the images it drew, summed.
    draw = np.random.default_rng(0).integers(0, 60, 60)
    one = confusion_shares(per_image[draw], bootstrap=0)
    redrawn = per_image[draw].sum(0)
    assert one["right_share"] == pytest.approx(np.trace(redrawn[:3, :3]) / redrawn[:3].sum())


def test_confusion_shares_of_nothing_are_nan_without_an_interval():
    nothing_found = [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))] * 3
    truth = [(np.array([[0, 0, 10, 10]]), np.array([0]))] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shares = confusion_shares(confusion_matrix(nothing_found, truth, 1, per_image=True), bootstrap=50)
    assert shares["missed_share"] == 1 and shares["missed_share_ci95"] == [1, 1]
    assert np.isnan(shares["false_positive_share"]) and "false_positive_share_ci95" not in shares
