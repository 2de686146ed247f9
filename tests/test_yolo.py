"""YOLO layers and loss: target assignment, decoding (numpy vs Keras), loss terms by hand."""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlkit.data.detection import encode_targets  # noqa: E402
from dlkit.edge import boxes as B  # noqa: E402
from dlkit.layers.yolo import (  # noqa: E402
    AnchorFreeDecode,
    YOLODecode,
    YOLOPostprocess,
    anchor_table,
    decode_distances,
    point_table,
)
from dlkit.losses.yolo import (  # noqa: E402
    TaskAlignedLoss,
    YOLOLoss,
    ciou,
    distribution_focal_loss,
    task_aligned_assignment,
)

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


# --- anchor-free head ------------------------------------------------------------------


def test_point_table_lists_cell_centres_finest_grid_first():
    table = point_table([2, 1])
    np.testing.assert_allclose(
        table,
        [[0.25, 0.25, 2], [0.75, 0.25, 2], [0.25, 0.75, 2], [0.75, 0.75, 2], [0.5, 0.5, 1]],
    )


def test_distances_decode_to_the_expected_bins_hand_computed():
    reg_max = 4
    logits = np.full((1, 5, 4, reg_max), -30.0, np.float32)  # one bin per side wins outright
    logits[0, 0, [0, 1, 2, 3], [1, 2, 0, 3]] = 30.0  # cell (0, 0) of the 2x2 grid: l=1, t=2, r=0, b=3
    logits[0, 4, :, 1] = 30.0  # the 1x1 grid's cell: one cell (the whole image) each side
    boxes = np.asarray(decode_distances(logits.reshape(1, 5, -1), point_table([2, 1]), reg_max))
    np.testing.assert_allclose(boxes[0, 0], [0.25 - 0.5, 0.25 - 1.0, 0.25, 0.25 + 1.5], atol=1e-5)
    np.testing.assert_allclose(boxes[0, 4], [-0.5, -0.5, 1.5, 1.5], atol=1e-5)
    # Two equal bins: the side sits halfway between them (an expectation, not an argmax).
    logits[0, 4] = -30.0
    logits[0, 4, :, 1:3] = 30.0
    boxes = np.asarray(decode_distances(logits.reshape(1, 5, -1), point_table([2, 1]), reg_max))
    np.testing.assert_allclose(boxes[0, 4], [-1.0, -1.0, 2.0, 2.0], atol=1e-5)


def test_anchor_free_decode_layer_gives_sigmoid_scores_and_unit_objectness():
    rng = np.random.default_rng(0)
    box_logits = rng.normal(size=(2, 20, 4 * 8)).astype(np.float32)
    class_logits = rng.normal(size=(2, 20, 3)).astype(np.float32)
    boxes, objectness, probs = (
        np.asarray(t) for t in AnchorFreeDecode([4, 2], 8)([box_logits, class_logits])
    )
    np.testing.assert_allclose(boxes, decode_distances(box_logits, point_table([4, 2]), 8), atol=1e-6)
    np.testing.assert_allclose(objectness, 1.0)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-class_logits)), atol=1e-6)


def numpy_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-7)


def numpy_task_aligned(scores, boxes, points, gt_boxes, gt_classes, top_k, alpha=0.5, beta=6.0):
    """One image, loops: YOLOv8's TaskAlignedAssigner as its paper and code describe it."""
    count, classes = scores.shape
    align = np.zeros((len(gt_boxes), count))
    iou = np.zeros_like(align)
    for m, (g, c) in enumerate(zip(gt_boxes, gt_classes)):
        for p, (x, y) in enumerate(points):
            if g[0] < x < g[2] and g[1] < y < g[3]:
                iou[m, p] = numpy_iou(boxes[p], g)
                align[m, p] = scores[p, int(c)] ** alpha * iou[m, p] ** beta
    positive = np.zeros_like(align)
    for m in range(len(gt_boxes)):
        for p in np.argsort(-align[m])[:top_k]:
            positive[m, p] = align[m, p] > 0
    conflicts = int((positive.sum(axis=0) > 1).sum())
    for p in range(count):
        if positive[:, p].sum() > 1:  # claimed by several boxes: the best-overlapping one
            positive[:, p] = 0
            positive[np.argmax(iou[:, p]), p] = 1
    target_boxes, target_scores = np.zeros((count, 4)), np.zeros((count, classes))
    for p in range(count):
        if positive[:, p].any():
            m = int(np.argmax(positive[:, p]))
            target_boxes[p] = gt_boxes[m]
            strength = align[m, p] * (iou[m] * positive[m]).max() / ((align[m] * positive[m]).max() + 1e-9)
            target_scores[p, int(gt_classes[m])] = strength
    return (target_boxes, target_scores, positive.any(axis=0).astype(float)), conflicts


def test_task_aligned_assignment_matches_a_loop_reference():
    rng = np.random.default_rng(3)
    points = point_table([8, 4])[:, :2]
    count = len(points)
    centres = rng.uniform(0.2, 0.8, (2, count, 2))
    sizes = rng.uniform(0.1, 0.5, (2, count, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)
    scores = rng.uniform(0.01, 0.99, (2, count, 3)).astype(np.float32)
    gt = np.zeros((2, 4, 6), np.float32)  # image 0: three boxes, two overlapping; image 1: one
    gt[0, :3] = [[0.1, 0.1, 0.6, 0.6, 1, 0], [0.2, 0.2, 0.7, 0.8, 1, 2], [0.05, 0.6, 0.3, 0.95, 1, 0]]
    gt[1, 0] = [0.4, 0.2, 0.7, 0.9, 1, 1]
    ours = task_aligned_assignment(scores, boxes, points, gt[..., :4], gt[..., 5], gt[..., 4], top_k=20)
    for image in range(2):
        real = gt[image, :, 4] > 0
        expected, conflicts = numpy_task_aligned(
            scores[image], boxes[image], points, gt[image, real, :4], gt[image, real, 5], top_k=20
        )
        for got, want in zip(ours, expected):
            np.testing.assert_allclose(np.asarray(got[image]), want, atol=1e-5)
        assert conflicts > 0 if image == 0 else conflicts == 0  # the overlap rule was exercised


def test_distribution_focal_loss_is_the_cross_entropy_to_the_two_nearest_bins():
    logits = np.random.default_rng(0).normal(size=(1, 4, 6)).astype(np.float32)
    targets = np.array([[2.3, 0.0, 4.99, 7.0]], np.float32)  # the last is clipped to 4.99
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    by_hand = [
        -(0.7 * log_p[0, 0, 2] + 0.3 * log_p[0, 0, 3]),
        -log_p[0, 1, 0],
        -(0.01 * log_p[0, 2, 4] + 0.99 * log_p[0, 2, 5]),
        -(0.01 * log_p[0, 3, 4] + 0.99 * log_p[0, 3, 5]),
    ]
    np.testing.assert_allclose(
        np.asarray(distribution_focal_loss(logits, targets, 6)), [np.mean(by_hand)], rtol=1e-4
    )


def test_task_aligned_loss_pulls_a_free_prediction_onto_the_true_box():
    """Gradient steps on the raw output alone (no network): the best-scoring cell must end
    on the true box, with the right class, and every term must fall."""
    import tensorflow as tf

    grids, reg_max = [8, 4], 8
    loss = TaskAlignedLoss(grids, reg_max)
    count = point_table(grids).shape[0]
    y_true = np.zeros((1, 3, 6), np.float32)
    y_true[0, 0] = [0.2, 0.3, 0.55, 0.8, 1, 1]
    raw = tf.Variable(np.random.default_rng(0).normal(0, 0.1, (1, count, 4 * reg_max + 2)).astype(np.float32))
    optimizer = keras.optimizers.Adam(0.05)
    first = float(loss(y_true, raw))
    for _ in range(150):
        with tf.GradientTape() as tape:
            value = loss(y_true, raw)
        optimizer.apply_gradients([(tape.gradient(value, raw), raw)])
    assert float(loss(y_true, raw)) < first / 4
    boxes, _, probs = (
        np.asarray(t)[0]
        for t in AnchorFreeDecode(grids, reg_max)([raw[..., : 4 * reg_max], raw[..., 4 * reg_max :]])
    )
    best = int(np.argmax(probs.max(-1)))
    assert int(np.argmax(probs[best])) == 1
    assert numpy_iou(boxes[best], y_true[0, 0, :4]) > 0.9
    # DFL sharpened the best cell's bins around its sides' true distances.
    cx, cy, grid = point_table(grids)[best]
    sides = np.array([cx - 0.2, cy - 0.3, 0.55 - cx, 0.8 - cy], np.float32) * grid
    bins = raw[0, best, : 4 * reg_max].numpy().reshape(1, 4, reg_max)
    assert float(distribution_focal_loss(bins, sides[None], reg_max)[0]) < 1.0
