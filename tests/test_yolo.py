"""YOLO layers and loss: target assignment, decoding (numpy vs Keras), loss terms by hand."""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlkit.data.detection import encode_targets  # noqa: E402
from dlkit.edge import boxes as B  # noqa: E402
from dlkit.layers.yolo import YOLODecode, YOLOPostprocess, anchor_table  # noqa: E402
from dlkit.losses.yolo import YOLOLoss, ciou  # noqa: E402

GRIDS = [4, 2]
ANCHORS = [[[0.1, 0.1], [0.2, 0.15]], [[0.4, 0.4], [0.7, 0.6]]]


def test_targets_go_to_the_centre_cell_and_best_anchor():
    boxes = np.array([[0.05, 0.05, 0.25, 0.2], [0.3, 0.3, 0.95, 0.9]], np.float32)  # small; large
    y = encode_targets(boxes, np.array([1, 0]), GRIDS, ANCHORS, max_boxes=3)
    table = anchor_table(GRIDS, ANCHORS)
    assert y.shape == (len(table) + 3, 6)
    positives = np.flatnonzero(y[: len(table), 4])
    assert len(positives) == 2
    small, large = positives
    # small box: centre (0.15, 0.125) -> fine grid cell (0, 0), anchor [0.2, 0.15]
    assert np.allclose(table[small], [0, 0, 0.2, 0.15, 4])
    # large box: centre (0.625, 0.6) -> coarse grid cell (row 1, col 1), anchor [0.7, 0.6]
    assert np.allclose(table[large], [1, 1, 0.7, 0.6, 2])
    np.testing.assert_allclose(y[large, :4], B.xyxy_to_cxcywh(boxes[1]), atol=1e-6)
    assert y[small, 5] == 1 and y[large, 5] == 0
    np.testing.assert_allclose(y[len(table) : len(table) + 2, :4], boxes)  # the box list
    assert y[-1].sum() == 0


def test_assign_threshold_adds_every_anchor_of_similar_shape():
    box = np.array([[0.3, 0.3, 0.45, 0.45]], np.float32)  # 0.15 square, centre (0.375, 0.375)
    table = anchor_table(GRIDS, ANCHORS)
    ious = B.shape_iou([[0.15, 0.15]], [a for scale in ANCHORS for a in scale])[0]
    assert np.sum(ious >= 0.4) == 2  # [0.1, 0.1] (0.44) and [0.2, 0.15] (0.75)
    best_only = encode_targets(box, np.array([1]), GRIDS, ANCHORS, max_boxes=1)
    several = encode_targets(box, np.array([1]), GRIDS, ANCHORS, max_boxes=1, assign_threshold=0.4)
    assert np.flatnonzero(best_only[: len(table), 4]).tolist() == [11]  # (row 1 * 4 + col 1) * 2 + 1
    positives = np.flatnonzero(several[: len(table), 4])
    assert positives.tolist() == [10, 11]  # the same cell, both fine-grid anchors
    np.testing.assert_array_equal(several[10], several[11])


def test_a_smaller_box_keeps_a_slot_two_boxes_claim():
    big = [0.02, 0.02, 0.22, 0.17]  # centre (0.12, 0.095): cell (0, 0), anchor [0.2, 0.15]
    small = [0.05, 0.05, 0.24, 0.19]  # 0.19 x 0.14: same cell, same anchor
    for order in ([big, small], [small, big]):
        y = encode_targets(
            np.array(order, np.float32),
            np.array([0, 1] if order[0] is big else [1, 0]),
            GRIDS,
            ANCHORS,
            max_boxes=2,
        )
        assert y[1, 5] == 1  # class of the smaller box, whatever the order
        np.testing.assert_allclose(y[1, :4], B.xyxy_to_cxcywh(np.array(small)), atol=1e-6)


def test_decode_of_split_fields_equals_decode_of_raw():
    table = anchor_table(GRIDS, ANCHORS)
    raw = np.random.default_rng(1).normal(size=(2, len(table), 5 + 3)).astype(np.float32)
    layer = YOLODecode(GRIDS, ANCHORS)
    whole = layer(raw)
    split = layer([raw[..., 0:2], raw[..., 2:4], raw[..., 4:5], raw[..., 5:]])
    for a, b in zip(whole, split):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


@pytest.mark.parametrize("static_batch", [True, False])
def test_postprocess_equals_numpy_class_aware_nms(static_batch):
    import tensorflow as tf

    rng = np.random.default_rng(2)
    batch, count, classes = 2, 60, 3
    centres = rng.uniform(0.2, 0.8, (batch, count, 2))
    sizes = rng.uniform(0.1, 0.4, (batch, count, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)
    objectness = rng.uniform(0, 1, (batch, count)).astype(np.float32)
    probs = rng.dirichlet(np.ones(classes), (batch, count)).astype(np.float32)
    layer = YOLOPostprocess(max_detections=10, iou_threshold=0.45, score_threshold=0.1)
    if static_batch:
        out = layer(boxes, objectness, probs)
    else:
        out = tf.function(
            layer,
            input_signature=[
                tf.TensorSpec((None, count, 4)),
                tf.TensorSpec((None, count)),
                tf.TensorSpec((None, count, classes)),
            ],
        )(boxes, objectness, probs)
    out_boxes, out_scores, out_classes, counts = (np.asarray(o) for o in out)
    for i in range(batch):
        scores = (objectness[i, :, None] * probs[i]).max(-1)
        labels = (objectness[i, :, None] * probs[i]).argmax(-1)
        clipped = np.clip(boxes[i], 0, 1)
        keep = B.class_aware_nms(clipped, scores, labels, 0.45, 0.1, max_output=10)
        assert counts[i] == len(keep)
        np.testing.assert_allclose(out_scores[i, : len(keep)], scores[keep], atol=1e-6)
        np.testing.assert_array_equal(out_classes[i, : len(keep)], labels[keep])
        np.testing.assert_allclose(out_boxes[i, : len(keep)], clipped[keep], atol=1e-6)
        assert not out_scores[i, len(keep) :].any() and not out_boxes[i, len(keep) :].any()


def test_decode_layer_matches_numpy_decode_box():
    table = anchor_table(GRIDS, ANCHORS)
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(2, len(table), 5 + 3)).astype(np.float32)
    boxes, objectness, probs = (np.asarray(t) for t in YOLODecode(GRIDS, ANCHORS)(raw))
    for i in (0, 7, len(table) - 1):
        col, row, aw, ah, grid = table[i]
        expected = B.cxcywh_to_xyxy(B.decode_box(row, col, raw[1, i, :4], (aw, ah), int(grid)))
        np.testing.assert_allclose(boxes[1, i], expected, atol=1e-5)
    np.testing.assert_allclose(objectness, 1 / (1 + np.exp(-raw[..., 4])), atol=1e-6)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def numpy_ciou(a, b):
    aw, ah, bw, bh = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    iou = inter / (aw * ah + bw * bh - inter)
    c2 = (max(a[2], b[2]) - min(a[0], b[0])) ** 2 + (max(a[3], b[3]) - min(a[1], b[1])) ** 2
    rho2 = ((a[0] + a[2] - b[0] - b[2]) ** 2 + (a[1] + a[3] - b[1] - b[3]) ** 2) / 4
    v = 4 / math.pi**2 * (math.atan(bw / bh) - math.atan(aw / ah)) ** 2
    return iou - rho2 / c2 - v / (1 - iou + v) * v


def test_ciou_matches_the_formula():
    a = np.array([[0.1, 0.2, 0.5, 0.7], [0.0, 0.0, 0.3, 0.3]], np.float32)
    b = np.array([[0.2, 0.1, 0.6, 0.5], [0.5, 0.5, 0.9, 0.6]], np.float32)
    ours = np.asarray(ciou(a, b))
    np.testing.assert_allclose(ours, [numpy_ciou(x, y) for x, y in zip(a, b)], atol=1e-5)
    np.testing.assert_allclose(np.asarray(ciou(a, a)), 1.0, atol=1e-5)


def single_anchor_loss(**kwargs):
    return YOLOLoss([1], [[[0.5, 0.5]]], **kwargs)


def test_loss_positive_anchor_hand_computed():
    # raw zeros decode to centre (0.5, 0.5), size = anchor (0.5, 0.5): the true box itself.
    y_pred = np.zeros((1, 1, 5 + 2), np.float32)
    y_true = np.array([[[0.5, 0.5, 0.5, 0.5, 1, 1], [0.25, 0.25, 0.75, 0.75, 1, 1]]], np.float32)
    loss = single_anchor_loss()
    box, obj, noobj, cls = (float(t[0]) for t in loss.terms(y_true, y_pred))
    assert box == pytest.approx(0.0, abs=1e-5)  # CIoU of identical boxes is 1
    assert obj == pytest.approx(math.log(2), rel=1e-5)  # BCE(sigmoid(0), 1)
    assert noobj == 0.0
    assert cls == pytest.approx(math.log(2), rel=1e-5)  # CE of uniform over 2 classes
    assert float(loss(y_true, y_pred)) == pytest.approx(2 * math.log(2), rel=1e-5)


def test_loss_without_object_counts_only_objectness():
    y_pred = np.zeros((1, 1, 7), np.float32)
    y_pred[0, 0, 5:] = [3.0, -2.0]  # class logits must not matter
    y_pred[0, 0, :4] = [1.0, -1.0, 0.5, 0.2]  # nor box logits
    y_true = np.zeros((1, 2, 6), np.float32)  # no assigned box, empty box list
    box, obj, noobj, cls = (float(t[0]) for t in single_anchor_loss().terms(y_true, y_pred))
    assert (box, obj, cls) == (0.0, 0.0, 0.0)
    assert noobj == pytest.approx(math.log(2), rel=1e-5)


def test_loss_ignores_negatives_that_already_overlap_a_true_box():
    y_pred = np.zeros((1, 1, 7), np.float32)  # predicts [0.25, 0.25, 0.75, 0.75]
    y_true = np.zeros((1, 2, 6), np.float32)
    y_true[0, 1] = [0.26, 0.25, 0.76, 0.75, 1, 0]  # listed (IoU ~ 0.96) but assigned elsewhere
    assert float(single_anchor_loss()(y_true, y_pred)) == pytest.approx(0.0, abs=1e-6)
    assert float(single_anchor_loss(ignore_threshold=0.99)(y_true, y_pred)) == pytest.approx(
        math.log(2), rel=1e-5
    )
