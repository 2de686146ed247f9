"""The probe tools' own logic: probe_detect_naming (crops, naming), probe_detect_multilabel
(several classes per box), probe_segment_bias (a bias on the argmax),
probe_classify_backgrounds (views composed as the classify data composes them),
compare_classify (paired accuracies over held-out objects)."""

import numpy as np
import pytest

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


def test_multilabel_postprocess_gives_a_box_every_class_above_the_threshold():
    """tools/probe_detect_multilabel.py: one class per box, or each class that passes."""
    from types import SimpleNamespace

    tool = load_tool("probe_detect_multilabel")
    config = SimpleNamespace(score_threshold=0.05, iou_threshold=0.5, max_detections=10)
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.52], [0.6, 0.6, 0.9, 1.2]])
    objectness = np.array([0.9, 0.5, 0.8])
    probs = np.array([[0.6, 0.4], [0.3, 0.7], [0.02, 0.98]])
    # scores: box 0 (0.54, 0.36), box 1 (0.15, 0.35), box 2 (0.016, 0.784); box 2 clipped to 1
    b, s, c = tool.postprocess(boxes, objectness, probs, config, multi_label=False)
    assert list(c) == [1, 0, 1] and np.allclose(s, [0.784, 0.54, 0.35])
    assert np.allclose(b[0], [0.6, 0.6, 0.9, 1.0])
    b, s, c = tool.postprocess(boxes, objectness, probs, config, multi_label=True)
    # class 1: boxes 2, 0 (0.36) and 1 (0.35, IoU 0.9 with box 0: suppressed); class 0: box 0
    # (0.54), box 1 (0.15: suppressed by box 0); box 2's class 0 (0.016) is under the threshold
    assert list(zip(c.tolist(), np.round(s, 3).tolist())) == [(1, 0.784), (0, 0.54), (1, 0.36)]


def test_a_class_bias_moves_the_argmax_and_the_confusion_matrix():
    """tools/probe_segment_bias.py: labels are the argmax of log p + bias."""
    tool = load_tool("probe_segment_bias")
    log_probs = np.log(np.array([[[[0.6, 0.4], [0.2, 0.8]]]], np.float32))  # (1, 1, 2, 2)
    masks = np.array([[[1, 1]]])
    plain = tool.scored(["background", "object"], log_probs, masks, [0.0, 0.0])
    assert plain.matrix.tolist() == [[0, 0], [1, 1]]  # the first pixel called background
    shifted = tool.scored(["background", "object"], log_probs, masks, [np.log(0.5), 0.0])
    assert shifted.matrix.tolist() == [[0, 0], [0, 2]]  # 0.6 * 0.5 < 0.4: now an object
    assert tool.figures(shifted)["foreground_iou"] == 1.0


def test_background_probe_views_paste_the_object_as_the_dataset_does():
    """probe_classify_backgrounds composes a view as the classify data does: the object's
    side 60-95% of the scene, on a crop of a background of the pool, JPEG, then resized."""
    from PIL import Image

    tool = load_tool("probe_classify_backgrounds")
    red = Image.new("RGBA", (50, 50), (255, 0, 0, 255))
    blue = [np.full((300, 400, 3), (0, 0, 255), np.uint8)]
    views = tool.views(red, blue, 8, seed=[3, 0], side=160)
    assert views.shape == (8, 160, 160, 3) and views.dtype == np.uint8
    redness = ((views[..., 0] > 128) & (views[..., 2] < 128)).mean(axis=(1, 2))
    assert np.all((redness > 0.6**2 * 0.9) & (redness < 0.95**2 * 1.1)), redness
    np.testing.assert_array_equal(views, tool.views(red, blue, 8, seed=[3, 0], side=160))


def test_compare_classify_scores_what_training_measured_and_a_model_ties_itself(contract_run, tmp_path):
    """The tool's pooled accuracy is the run's own val and test accuracies pooled, the
    float32 TFLite export ties the Keras model image for image, and a model minus itself
    is zero with a zero-width interval."""
    import json

    tool = load_tool("compare_classify")
    run = contract_run("classify")
    tflite = run.run_dir / json.loads((run.run_dir / "model.json").read_text())["exports"]["float32"]["file"]
    result = tool.compare([run.run_dir, tflite, run.run_dir], run.data, image_data=1)
    measured = json.loads((run.run_dir / "metrics.json").read_text())["keras"]
    right = sum(measured[s]["accuracy"] * measured[s]["count"] for s in ("val", "test"))
    keras, lite, again = result["models"]
    assert len(result["images"]) == sum(measured[s]["count"] for s in ("val", "test"))
    assert keras["accuracy"] == pytest.approx(right / len(result["images"]))
    assert keras["accuracy_ci95"][0] <= keras["accuracy"] <= keras["accuracy_ci95"][1]
    assert lite["right"] == keras["right"] and lite["minus_reference"] == 0.0
    assert again["minus_reference"] == 0.0 and again["minus_reference_ci95"] == [0.0, 0.0]
