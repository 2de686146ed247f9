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
