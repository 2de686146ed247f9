"""Would several classes per box lift detect's class-aware mAP? (Ultralytics' validation
NMS keeps every class above the score threshold for each box, `multi_label=True`.)

Runs the shipped detector's Keras graph up to its decoded boxes, objectness and class
probabilities on image data v2's held-out validation and test scenes, and applies the
exported graph's class-aware NMS in numpy (`dlkit.edge.boxes.class_aware_nms`, same IoU
threshold, score threshold, 300 best boxes in, `max_detections` out) two ways: one class
per box, its best (what the model ships with; the graph's own output is scored beside it
as a check of this re-implementation), and every class per box whose score passes the
threshold. Pooled mAPs with 95% intervals, and the difference with a paired interval.

    python tools/probe_detect_multilabel.py [--out tools/results/detect_multilabel.json]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.edge.boxes import class_aware_nms
from dlkit.engine import config_of, held_out_splits, load_keras
from dlkit.metrics.detection import class_agnostic_map, coco_map, map_difference
from dlkit.paths import shipped_model_dir

PRE_NMS = 300  # the exported graph's YOLOPostprocess default


def postprocess(boxes, objectness, class_probs, config, multi_label):
    """(boxes, scores, classes) of one image after class-aware NMS: the best class of each
    box, or with `multi_label` every class whose score passes the threshold."""
    scores_all = objectness[:, None] * class_probs  # (anchors, classes)
    top = np.argsort(-scores_all.max(axis=1), kind="stable")[:PRE_NMS]
    boxes, scores_all = np.clip(boxes[top], 0.0, 1.0), scores_all[top]
    if multi_label:
        rows, classes = np.nonzero(scores_all > config.score_threshold)
    else:
        rows, classes = np.arange(len(top)), scores_all.argmax(axis=1)
    scores = scores_all[rows, classes]
    keep = class_aware_nms(
        boxes[rows], scores, classes, config.iou_threshold, config.score_threshold, config.max_detections
    )
    return boxes[rows][keep], scores[keep], classes[keep].astype(np.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "detect_multilabel.json"))
    args = parser.parse_args()
    from dlkit.quiet import import_tensorflow

    import_tensorflow()  # quietly, after the arguments: --help needs none of it
    import keras

    from dlkit.apps.detect.model import inference_model, predictions
    from dlkit.registry import get_app

    app = get_app("detect")
    folder = shipped_model_dir("detect")
    meta = io.read_json(folder / "model.json")
    config = config_of(app, meta)
    graph = inference_model(load_keras(folder / "model.keras"), config, meta)
    parts = [graph.get_layer(f"all_{part}").output for part in ("boxes", "objectness", "classes")]
    decoded = keras.Model(graph.inputs, [*graph.outputs, *parts])
    splits = held_out_splits(app, config, meta)
    found = {"graph": [], "single": [], "multi": []}
    for split in splits.values():
        inputs = np.asarray(split.inputs)
        for start in range(0, len(inputs), 16):
            outputs = [np.asarray(o) for o in decoded.predict_on_batch(inputs[start : start + 16])]
            found["graph"] += predictions(outputs[:4])
            for image in zip(*outputs[4:]):
                found["single"].append(postprocess(*image, config, multi_label=False))
                found["multi"].append(postprocess(*image, config, multi_label=True))
    truth = [t for split in splits.values() for t in split.targets]
    classes = len(meta["labels"])
    results = {"model": str(folder / "model.keras"), "scenes": len(truth), "pooled": {}}
    for name, rows in found.items():
        aware = coco_map(rows, truth, classes, bootstrap=1000)
        agnostic = class_agnostic_map(rows, truth, bootstrap=1000)
        results["pooled"][name] = {
            **{k: aware[k] for k in ("map50", "map50_95", "map50_ci95", "map50_95_ci95")},
            **{f"class_agnostic_{k}": v for k, v in agnostic.items()},
            "detections": int(sum(len(s) for _, s, _ in rows)),
        }
        print(name, results["pooled"][name], flush=True)
    results["multi_minus_single"] = map_difference(found["multi"], found["single"], truth, classes)
    print("multi - single", results["multi_minus_single"], flush=True)
    io.write_json(Path(args.out), results)


if __name__ == "__main__":
    main()
