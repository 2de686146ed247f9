"""Where segment's foreground errors lie: on the outline, or whole objects missed or invented.

Scores segment models on the held-out validation and test scenes at the scenes' own
resolution (256 px), the way `dlkit segment predict` hands label maps to a user, two ways:
the model's label map resized nearest-neighbour (what predict writes) and its class
scores resized bilinearly before the argmax. Then it splits the foreground errors (pixels
where "object or not" is wrong):

- by distance to the true outline: what foreground IoU would be if every error within
  1, 2 or 4 pixels of an outline were forgiven (the outline's share of the gap to 1.0);
- by object: true objects the model finds less than half of (missed) and predicted
  blobs with almost nothing true under them (invented), and the foreground IoU with those
  objects' errors forgiven;
- on image data v2's scenes, by distractor: the held-out scenes are composited again
  (their masks checked against the stored ones) for the pixels of the unlabelled
  distractor objects the files do not keep: the share of those painted as objects, the
  invented blobs lying mostly on a distractor, and the foreground IoU with those
  pixels forgiven.

    python tools/probe_segment_outlines.py [MODEL_DIR ...] [--out tools/results/segment_outlines.json]

Without a model directory it probes the shipped model.
"""

import argparse
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.data.masks import VOID, read_mask
from dlkit.edge.bundle import ModelBundle
from dlkit.edge.image import load_image, resize
from dlkit.engine import config_of, runner_for
from dlkit.metrics.segmentation import SegmentationEvaluator
from dlkit.paths import shipped_model_dir
from dlkit.registry import get_app

BANDS = (1, 2, 4)
MIN_OBJECT = 30  # pixels: smaller true fragments and predicted specks count only by outline


def upsample(probs, height, width, how):
    """(h, w, k) scores -> (height, width) labels: nearest on labels, or bilinear on scores."""
    import tensorflow as tf

    if how == "nearest":
        labels = np.argmax(probs, axis=-1).astype(np.uint8)
        return tf.image.resize(labels[..., None], (height, width), method="nearest").numpy()[..., 0]
    return np.argmax(tf.image.resize(probs[None], (height, width), method="bilinear").numpy()[0], axis=-1)


def lonely_regions(mask, other, share, whole, error, near=None):
    """(regions of `mask` of MIN_OBJECT pixels or more, those with less than `share` of
    their pixels in `other`, the lonely ones with at least half their pixels in `near`);
    the error pixels of the lonely ones are added to `whole`."""
    from scipy import ndimage

    regions, count = ndimage.label(mask)
    found = lonely = lonely_near = 0
    for index in range(1, count + 1):
        pixels = regions == index
        if pixels.sum() < MIN_OBJECT:
            continue
        found += 1
        if (pixels & other).sum() < share * pixels.sum():
            lonely += 1
            whole |= pixels & error
            if near is not None and (pixels & near).sum() >= 0.5 * pixels.sum():
                lonely_near += 1
    return found, lonely, lonely_near


class OutlineErrors:
    """Foreground error pixels bucketed by distance to the true outline and by object."""

    def __init__(self):
        self.intersection = self.union = 0
        self.errors_within = dict.fromkeys(BANDS, 0)
        self.object_errors = 0
        self.true_objects = self.missed = self.predicted_blobs = self.invented = 0
        self.distractor_pixels = self.distractor_errors = self.invented_on_distractors = 0
        self.saw_distractors = False

    def update(self, truth, predicted, distractors=None):
        """`distractors`: (h, w) bool, the pixels of unlabelled distractor objects, or None."""
        from scipy import ndimage

        valid = truth != VOID
        true_fg, predicted_fg = (truth > 0) & valid, (predicted > 0) & valid
        error = (true_fg != predicted_fg) & valid
        self.intersection += int((true_fg & predicted_fg).sum())
        self.union += int((true_fg | predicted_fg).sum())
        # Distance of every pixel to the nearest pixel on the other side of the true outline.
        distance = np.where(
            true_fg, ndimage.distance_transform_edt(true_fg), ndimage.distance_transform_edt(~true_fg)
        )
        for band in BANDS:
            self.errors_within[band] += int((error & (distance <= band)).sum())
        whole = np.zeros_like(error)
        found, missed, _ = lonely_regions(true_fg, predicted_fg, 0.5, whole, error)
        self.true_objects, self.missed = self.true_objects + found, self.missed + missed
        found, invented, on = lonely_regions(predicted_fg, true_fg, 0.1, whole, error, distractors)
        self.predicted_blobs, self.invented = self.predicted_blobs + found, self.invented + invented
        self.object_errors += int(whole.sum())
        if distractors is not None:
            self.saw_distractors = True
            self.distractor_pixels += int((distractors & valid).sum())
            self.distractor_errors += int((distractors & error).sum())
            self.invented_on_distractors += on

    def result(self):
        iou = self.intersection / self.union
        errors = self.union - self.intersection  # every error pixel is in the union, outside the intersection

        def forgiven(pixels):
            return (self.intersection + pixels) / self.union

        return {
            "foreground_iou": iou,
            "error_pixels": errors,
            "iou_if_outline_errors_forgiven": {
                f"{band}px": forgiven(self.errors_within[band]) for band in BANDS
            },
            "share_of_errors_within": {f"{band}px": self.errors_within[band] / errors for band in BANDS},
            "true_objects": self.true_objects,
            "missed_objects": self.missed,
            "predicted_blobs": self.predicted_blobs,
            "invented_blobs": self.invented,
            "share_of_errors_in_missed_or_invented": self.object_errors / errors,
            "iou_if_missed_and_invented_forgiven": forgiven(self.object_errors),
            **(
                {
                    "distractor_pixels": self.distractor_pixels,
                    "share_of_distractor_pixels_painted": self.distractor_errors / self.distractor_pixels,
                    "share_of_errors_on_distractors": self.distractor_errors / errors,
                    "invented_blobs_on_distractors": self.invented_on_distractors,
                    "iou_if_distractor_errors_forgiven": forgiven(self.distractor_errors),
                }
                if self.saw_distractors
                else {}
            ),
        }


def held_out_distractors(config, pairs):
    """{scene name: its distractors' pixels} of the offline v2 scenes in `pairs` (none on
    v1, which pastes no distractors), composited again and checked against the stored
    masks."""
    from dlkit.data.scenes import stored_scenes_again

    if config.image_data != 2:
        return {}
    return {name: scene.distractors for name, scene in stored_scenes_again(pairs, version=2).items()}


def probe(app, model_dir):
    model_dir = Path(model_dir)
    meta = io.read_json(model_dir / "model.json")
    config = config_of(app, meta)
    source = app.open_source(config, meta.get("data"))
    run = runner_for(app, ModelBundle.load(model_dir / "model.keras", app=app.name), config)
    size = config.image_size
    evaluators = {how: SegmentationEvaluator(meta["labels"]) for how in ("nearest", "bilinear")}
    outlines = {how: OutlineErrors() for how in evaluators}
    pairs = [pair for split in ("val", "test") for pair in source.splits[split]]
    distractors = held_out_distractors(config, pairs) if meta.get("data") is None else {}
    for start in range(0, len(pairs), 32):
        chunk = pairs[start : start + 32]
        images = [load_image(image) for image, _ in chunk]
        masks = [read_mask(mask) for _, mask in chunk]
        probs = run(np.stack([resize(image, (size, size)).astype(np.float32) for image in images]))[0]
        for scores, mask, (image, _) in zip(np.asarray(probs), masks, chunk):
            for how, evaluator in evaluators.items():
                labels = upsample(scores, *mask.shape, how)
                evaluator.update([labels[None]], mask[None])
                outlines[how].update(mask, labels, distractors.get(Path(image).stem))
    result = {
        "model": str(model_dir),
        "image_size": size,
        "scored_at": list(masks[0].shape),
        "scenes": len(pairs),
    }
    for how, evaluator in evaluators.items():
        report = evaluator.result()
        result[how] = {
            "miou": report["miou"],
            "miou_ci95": report["miou_ci95"],
            "foreground_iou_ci95": report["foreground_iou_ci95"],
            "boundary_f": report["boundary_f"],
            **outlines[how].result(),
        }
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model directories (default: the shipped model)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "segment_outlines.json"))
    args = parser.parse_args()
    app = get_app("segment")
    results = []
    for model_dir in args.models or [shipped_model_dir("segment")]:
        results.append(probe(app, model_dir))
        print(results[-1], flush=True)
    io.write_json(Path(args.out), {"models": results})


if __name__ == "__main__":
    main()
