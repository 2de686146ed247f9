"""What naming costs segment: perfect outlines named by the shipped classifier.

The offline scenes' validation and test objects are the cut-outs that classify holds out
too (one split of the Tux Paint photos for every app). This probe takes each scene's true
foreground, splits it into connected objects, names each object with the shipped classify
model (TFLite, on a crop of the object) and scores the resulting label maps like a
segmentation model's. Its mean IoU is what perfect outlines plus classify's naming would
reach: a reference for the mean IoU target, beside the shipped U-Net's own numbers and
classify's accuracy on the crops (95% Wilson interval).

    python tools/probe_segment_naming.py [--out tools/results/segment_naming.json]
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.data.masks import VOID, read_mask
from dlkit.edge.image import load_image
from dlkit.engine import config_of
from dlkit.metrics.intervals import wilson_interval
from dlkit.metrics.segmentation import SegmentationEvaluator
from dlkit.paths import shipped_model_dir
from dlkit.predict import Predictor
from dlkit.registry import get_app


def objects_of(mask, min_pixels=30):
    """[(component pixels (h, w) bool, true class)] of the connected foreground regions;
    a region of several touching classes takes its majority class."""
    from scipy import ndimage

    regions, count = ndimage.label((mask > 0) & (mask != VOID))
    found = []
    for index in range(1, count + 1):
        pixels = regions == index
        if pixels.sum() >= min_pixels:
            found.append((pixels, int(np.bincount(mask[pixels]).argmax())))
    return found


def crop(image, pixels, pad=0.1):
    rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    dy, dx = int((bottom - top) * pad), int((right - left) * pad)
    return image[max(0, top - dy) : bottom + dy, max(0, left - dx) : right + dx]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "segment_naming.json"))
    args = parser.parse_args()
    segment = get_app("segment")
    meta = io.read_json(shipped_model_dir("segment") / "model.json")
    config = config_of(segment, meta)
    source = segment.open_source(config, None)
    labels = meta["labels"]
    classify = Predictor.load(get_app("classify"), str(shipped_model_dir("classify")), prefer="tflite")
    class_labels = classify.meta["labels"]
    to_segment = {i: labels.index(name) for i, name in enumerate(class_labels) if name in labels}
    results = {"labels": labels, "classifier": classify.bundle.path.name}
    pooled, named, total = SegmentationEvaluator(labels), 0, 0
    for split in ("val", "test"):
        evaluator = SegmentationEvaluator(labels)
        right = count = 0
        for image_path, mask_path in source.splits[split]:
            image, mask = load_image(image_path), read_mask(mask_path)
            found = objects_of(mask)
            guessed = np.zeros_like(mask)
            guessed[mask == VOID] = VOID
            crops = [crop(image, pixels) for pixels, _ in found]
            for (pixels, truth), prediction in zip(found, classify(crops)):
                label = to_segment[class_labels.index(prediction.result["label"])]
                guessed[pixels] = label
                right += label == truth
                count += 1
            evaluator.update([guessed[None]], mask[None])
            pooled.update([guessed[None]], mask[None])
        report = evaluator.result()
        results[split] = {
            "oracle_outline_miou": report["miou"],
            "oracle_outline_miou_ci95": report["miou_ci95"],
            "per_class_iou": {k: v["iou"] for k, v in report["per_class"].items()},
            "objects": count,
            "objects_named_right": right / count,
            "objects_named_right_ci95": wilson_interval(right, count),
        }
        named, total = named + right, total + count
        print(split, {k: v for k, v in results[split].items() if k != "per_class_iou"}, flush=True)
    report = pooled.result()
    results["pooled"] = {
        "oracle_outline_miou": report["miou"],
        "oracle_outline_miou_ci95": report["miou_ci95"],
        "per_class_iou": {k: v["iou"] for k, v in report["per_class"].items()},
        "objects": total,
        "objects_named_right": named / total,
        "objects_named_right_ci95": wilson_interval(named, total),
    }
    print("pooled", {k: v for k, v in results["pooled"].items() if k != "per_class_iou"})
    io.write_json(Path(args.out), results)


if __name__ == "__main__":
    main()
