"""tools/probe_detect_naming.py: the crops it classifies and the ways it names boxes."""

import numpy as np

from conftest import load_tool


def test_square_crop_is_the_padded_square_around_the_box_cut_at_the_edges():
    tool = load_tool("probe_detect_naming")
    image = np.zeros((100, 200, 3), np.uint8)
    # A 40 x 20 pixel box: a square of 44 pixels around its centre (and one of rounding).
    crop = tool.square_crop(image, [0.4, 0.4, 0.6, 0.6])
    assert crop.shape[:2] == (45, 45)
    # At a corner the square is cut by the image, never padded with pixels it has not.
    assert tool.square_crop(image, [0.3, 0.3, 0.5, 0.7]).shape[:2] == (45, 45)
    corner = tool.square_crop(image, [0.0, 0.0, 0.2, 0.4])  # 40 x 40 at the corner
    assert corner.shape[:2] == (43, 43)


def test_boxes_named_by_the_classifier_or_by_both():
    tool = load_tool("probe_detect_naming")
    boxes = np.array([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0.11, 0.1, 0.4, 0.41]])
    scores = np.array([0.9, 0.8, 0.3])
    classes = np.array([0, 1, 2])
    probs = np.array([[0.1, 0.9, 0.0], [0.0, 1.0, 0.0], [0.0, 0.98, 0.02]])
    same = tool.relabel(boxes, scores, classes, probs, "detector", 3)
    assert [list(part) for part in same[1:]] == [list(scores), list(classes)]
    named = tool.relabel(boxes, scores, classes, probs, "classifier", 3)
    assert list(named[2]) == [1, 1, 1] and list(named[1]) == list(scores)
    kept_boxes, kept_scores, kept_classes = tool.relabel(boxes, scores, classes, probs, "combined", 3)
    # The geometric mean of the smoothed one-hot and the classifier: box 0 stays class 0
    # (sqrt(0.92 * 0.1) > sqrt(0.02 * 0.9)), box 1 class 1; each box also gives its second
    # class at a lower score, and box 2 (class 1 first, IoU 0.94 with box 0's class-1
    # second) is suppressed by the higher-scored duplicate.
    own = np.eye(3)[classes] * 0.9 + 0.1 / 3
    mixed = np.sqrt(own * probs)
    mixed /= mixed.sum(axis=1, keepdims=True)
    first = mixed.argmax(axis=1)
    assert list(first) == [0, 1, 1]
    assert kept_scores[0] == 0.9 and kept_classes[0] == 0
    assert list(kept_scores) == sorted(kept_scores, reverse=True)
    pairs = {(tuple(b), c) for b, c in zip(kept_boxes.tolist(), kept_classes.tolist())}
    assert (tuple(boxes[2]), 1) not in pairs and (tuple(boxes[0]), 1) in pairs
