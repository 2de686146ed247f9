"""Box utilities in numpy (dlkit.edge.boxes) against TensorFlow and hand-computed values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlkit.edge import boxes as B


def random_boxes(rng, n, scale=1.0):
    xy = rng.uniform(0, 0.8, (n, 2)) * scale
    wh = rng.uniform(0.02, 0.4, (n, 2)) * scale
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def test_iou_hand_computed():
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    np.testing.assert_allclose(B.iou(a, b), [[1 / 7, 1.0, 0.0]])
    np.testing.assert_allclose(B.cxcywh_to_xyxy([[1, 1, 2, 2]]), [[0, 0, 2, 2]])
    np.testing.assert_allclose(B.xyxy_to_cxcywh([[0, 0, 2, 4]]), [[1, 2, 2, 4]])


def test_iou_matches_a_tensorflow_computation():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 7), random_boxes(rng, 9)
    # tf.image has no public pairwise IoU op: compare with the same definition in TF ops
    # here, and with TF's own NMS (which uses its internal IoU) below.
    ta, tb = tf.constant(a)[:, None], tf.constant(b)[None]
    inter = tf.reduce_prod(
        tf.maximum(tf.minimum(ta[..., 2:], tb[..., 2:]) - tf.maximum(ta[..., :2], tb[..., :2]), 0), -1
    )
    union = (
        tf.reduce_prod(ta[..., 2:] - ta[..., :2], -1) + tf.reduce_prod(tb[..., 2:] - tb[..., :2], -1) - inter
    )
    np.testing.assert_allclose(B.iou(a, b), (inter / union).numpy(), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40), st.sampled_from([0.3, 0.5, 0.7]))
def test_nms_matches_tensorflow(seed, n, threshold):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, n)
    scores = rng.permutation(n).astype(np.float32) / n + 0.01  # distinct scores: one valid order
    ours = B.nms(boxes, scores, iou_threshold=threshold, max_output=20)
    # TF takes (y0, x0, y1, x1); IoU is symmetric in the axes, so xyxy works as is.
    theirs = tf.image.non_max_suppression(boxes, scores, 20, iou_threshold=threshold).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_class_aware_nms_keeps_overlapping_boxes_of_other_classes():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0.05, 0, 1, 1]], np.float32)
    scores = np.array([0.9, 0.8, 0.7])
    assert B.class_aware_nms(boxes, scores, np.array([0, 1, 0])).tolist() == [0, 1]
    assert B.nms(boxes, scores).tolist() == [0]


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.001, 0.999),
    st.floats(0.001, 0.999),
    st.floats(0.01, 1.0),
    st.floats(0.01, 1.0),
    st.sampled_from([8, 13, 16]),
)
def test_encode_then_decode_gives_the_box_back(cx, cy, w, h, grid):
    anchor = (0.2, 0.3)
    row, col, *t = B.encode_box((cx, cy, w, h), anchor, grid)
    assert col == min(int(cx * grid), grid - 1) and row == min(int(cy * grid), grid - 1)
    np.testing.assert_allclose(B.decode_box(row, col, t, anchor, grid), [cx, cy, w, h], rtol=1e-4, atol=1e-5)


def test_weighted_box_fusion_hand_computed():
    """Two of two views find box A (scores 0.9 and 0.6): one box, their score-weighted mean,
    score 0.75. One view finds B: its score halves. C overlaps A but is another class,
    and D is A's class far away: neither joins A."""
    a1, a2 = [0.0, 0.0, 0.5, 0.5], [0.02, 0.0, 0.52, 0.5]
    b, c, d = [0.6, 0.6, 0.9, 0.9], [0.01, 0.0, 0.5, 0.5], [0.6, 0.0, 0.9, 0.3]
    boxes, scores, classes = B.weighted_box_fusion(
        [a1, b, a2, c, d], [0.9, 0.8, 0.6, 0.7, 0.2], [0, 1, 0, 2, 0], views=2
    )
    np.testing.assert_allclose(scores, [0.75, 0.4, 0.35, 0.1])
    assert classes.tolist() == [0, 1, 2, 0]
    np.testing.assert_allclose(
        boxes[0], [(0.9 * 0.0 + 0.6 * 0.02) / 1.5, 0.0, (0.9 * 0.5 + 0.6 * 0.52) / 1.5, 0.5]
    )
    np.testing.assert_allclose(boxes[1:], [b, c, d])
    # More members than views: the plain mean score, never above the best member.
    _, more, _ = B.weighted_box_fusion([a1, a1, a2], [0.9, 0.6, 0.3], [0, 0, 0], views=2)
    np.testing.assert_allclose(more, [0.6])
    # A box joins the fused box it overlaps most, not the first it overlaps enough: left
    # and right overlap by 0.45 (two boxes), middle overlaps left by 0.6, right by 0.78.
    left, right, middle = [0.0, 0.0, 0.4, 0.4], [0.15, 0.0, 0.55, 0.4], [0.1, 0.0, 0.5, 0.4]
    boxes, scores, _ = B.weighted_box_fusion(
        [left, right, middle], [0.9, 0.8, 0.7], [0, 0, 0], views=2, iou_threshold=0.5
    )
    np.testing.assert_allclose(boxes, [(0.8 * np.array(right) + 0.7 * np.array(middle)) / 1.5, left])
    np.testing.assert_allclose(scores, [0.75, 0.45])


def test_weighted_box_fusion_of_identical_views_is_the_view():
    rng = np.random.default_rng(3)
    boxes = random_boxes(rng, 8)
    scores, classes = rng.uniform(0.1, 1, 8), rng.integers(0, 3, 8)
    keep = B.class_aware_nms(boxes, scores, classes, iou_threshold=0.5)
    one = boxes[keep], scores[keep], classes[keep]
    fused = B.weighted_box_fusion(*(np.concatenate([part] * 3) for part in one), views=3, iou_threshold=0.5)
    for got, want in zip(fused, one):
        np.testing.assert_allclose(got, want, atol=1e-12)
