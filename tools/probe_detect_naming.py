"""What a second-stage classifier adds to detect: the shipped classifier names its boxes.

Two-stage pipelines (YOLOv5's `apply_classifier`) crop every detection and let a
classifier name it. The shipped classify model was trained on the same five classes' training
cut-outs and names unseen ones 90% right when they fill the frame, so this probe asks
whether it names the detector's boxes better than the detector does. On the held-out
validation and test scenes it runs the shipped detector (Keras), crops each detection
(a square 10% wider than the box's longer side, from the scene the detector saw) and
classifies the crop with the shipped classify model (TFLite int8). It reports:

- for every true object the detector finds (its best detection above score 0.2 with IoU
  >= 0.5), how often the detector's class, the classifier's class, both and either are
  right (95% Wilson intervals);
- class-aware mAP when the classifier names every box (`classifier`) and when the two
  are combined (`combined`: the geometric mean of the detector's class (smoothed one-hot)
  and the classifier's probabilities, the best two classes per box, class-aware NMS
  again), beside the detector alone (95% intervals by resampling the images).

    python tools/probe_detect_naming.py [--out tools/results/detect_naming.json]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.edge.boxes import class_aware_nms, iou
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import batches, begin, config_of, runner_for
from dlkit.metrics.intervals import wilson_interval
from dlkit.paths import shipped_model_dir
from dlkit.predict import Predictor
from dlkit.registry import get_app

FOUND_SCORE, FOUND_IOU = 0.2, 0.5


def square_crop(image, box, pad=0.1):
    """The square around a normalised xyxy box, `pad` wider than its longer side, cut at
    the image's edges."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    side = max((x1 - x0) * width, (y1 - y0) * height) * (1 + pad)
    cx, cy = (x0 + x1) / 2 * width, (y0 + y1) / 2 * height
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(width, cx + side / 2 + 1)), int(min(height, cy + side / 2 + 1))
    return image[top : max(bottom, top + 2), left : max(right, left + 2)]


def relabel(boxes, scores, classes, probs, how, num_classes, keep=50):
    """One image's detections named again: `classifier` takes the classifier's class,
    `combined` the geometric mean of both (two classes per box, NMS again)."""
    if how == "detector" or not len(boxes):
        return boxes, scores, classes
    if how == "classifier":
        return boxes, scores, probs.argmax(axis=1)
    own = np.eye(num_classes)[classes] * 0.9 + 0.1 / num_classes
    mixed = np.sqrt(own * probs)
    mixed /= mixed.sum(axis=1, keepdims=True)
    order = np.argsort(-mixed, axis=1)[:, :2]
    rows = np.arange(len(boxes))
    best = mixed[rows, order[:, 0]]
    all_boxes = np.concatenate([boxes, boxes])
    all_classes = np.concatenate([order[:, 0], order[:, 1]])
    all_scores = np.concatenate([scores, scores * mixed[rows, order[:, 1]] / best])
    kept = class_aware_nms(all_boxes, all_scores, all_classes, max_output=keep)
    return all_boxes[kept], all_scores[kept], all_classes[kept]


def padded(found, keep=50):
    """[(boxes, scores, classes)] per image -> the detector's four output arrays."""
    out = [np.zeros((len(found), keep, 4)), np.zeros((len(found), keep)), np.zeros((len(found), keep))]
    counts = np.zeros(len(found), np.int32)
    for i, (boxes, scores, classes) in enumerate(found):
        n = min(keep, len(boxes))
        out[0][i, :n], out[1][i, :n], out[2][i, :n], counts[i] = boxes[:n], scores[:n], classes[:n], n
    return [*out, counts]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "detect_naming.json"))
    args = parser.parse_args()
    detect = get_app("detect")
    bundle = ModelBundle.load(shipped_model_dir("detect") / "model.keras", app="detect")
    meta = bundle.meta
    config = config_of(detect, meta)
    run = runner_for(detect, bundle, config)
    labels = meta["labels"]
    classify = Predictor.load(
        get_app("classify"), str(shipped_model_dir("classify")), prefer="tflite", top_k=len(labels)
    )
    if list(classify.meta["labels"]) != list(labels):
        raise SystemExit(
            f"the classifier's classes {classify.meta['labels']} are not the detector's {labels}"
        )
    source = detect.open_source(config, meta.get("data"))
    ways = ("detector", "classifier", "combined")
    pooled = {how: detect.evaluator(config, meta) for how in ways}
    counts = {"pooled": dict.fromkeys(("objects", "detector", "classifier", "both", "either"), 0)}
    results = {"labels": labels, "classifier": classify.bundle.path.name, "crop": "square, 10% wider"}
    for name in ("val", "test"):
        split = detect.load_split(config, source, name, meta=meta)
        evaluators = {how: detect.evaluator(config, meta) for how in ways}
        for evaluator in [*evaluators.values(), *pooled.values()]:
            begin(evaluator, split)
        tally = counts[name] = dict.fromkeys(counts["pooled"], 0)
        for inputs, targets in batches(split.inputs, split.targets):
            boxes, scores, classes, found = (np.asarray(o) for o in run(inputs))
            images = []
            for i in range(len(inputs)):
                n = int(found[i])
                crops = [square_crop(inputs[i].astype(np.uint8), box) for box in boxes[i][:n]]
                probs = np.zeros((n, len(labels)))
                for row, prediction in enumerate(classify(crops)):
                    for entry in prediction.result["top_k"]:
                        probs[row, labels.index(entry["label"])] = entry["score"]
                named = classes[i][:n].round().astype(int)
                images.append((boxes[i][:n], scores[i][:n], named, probs))
                true_boxes, true_classes = (np.asarray(t) for t in targets[i])
                if n and len(true_boxes):
                    overlap = iou(true_boxes, boxes[i][:n]) * (scores[i][:n] > FOUND_SCORE)
                    for g, j in enumerate(overlap.argmax(axis=1)):
                        if overlap[g, j] < FOUND_IOU:
                            continue
                        by_detector = named[j] == true_classes[g]
                        by_classifier = probs[j].argmax() == true_classes[g]
                        for part in (tally, counts["pooled"]):
                            part["objects"] += 1
                            part["detector"] += int(by_detector)
                            part["classifier"] += int(by_classifier)
                            part["both"] += int(by_detector and by_classifier)
                            part["either"] += int(by_detector or by_classifier)
            for how in ways:
                outputs = padded([relabel(*image, how, len(labels)) for image in images])
                evaluators[how].update(outputs, targets)
                pooled[how].update(outputs, targets)
        results[name] = {how: summary(evaluators[how].result()) for how in ways}
        print(name, results[name], tally, flush=True)
    results["pooled"] = {how: summary(pooled[how].result()) for how in ways}
    for name, tally in counts.items():
        total = tally["objects"]
        results[name]["found_objects"] = total
        for who in ("detector", "classifier", "both", "either"):
            results[name][f"named_right_by_{who}"] = tally[who] / total
            results[name][f"named_right_by_{who}_ci95"] = wilson_interval(tally[who], total)
    print("pooled", results["pooled"])
    io.write_json(Path(args.out), results)


def summary(report):
    return {
        "map50": report["map50"],
        "map50_ci95": report["map50_ci95"],
        "map50_95": report["map50_95"],
        "ap50_per_class": {k: v["ap50"] for k, v in report["per_class"].items()},
    }


if __name__ == "__main__":
    main()
