"""On-device detect (numpy and Pillow): pre/post-processing and drawing.

Used by on-device predict and by the evaluation of Keras and TFLite models alike. The
model itself decodes boxes and runs NMS; this file only resizes and reads its outputs.
"""

import numpy as np

from dlkit.console import counted
from dlkit.edge.image import load_image, resize

COLORS = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)


def read_input(path, meta):
    """Reads one image file as an RGB uint8 array (raises InvalidInputError)."""
    return load_image(path)


def preprocess(raw, meta):
    """(h, w, 3) uint8 -> (size, size, 3) float32 pixels in [0, 255] (plain resize)."""
    height, width = meta["input"]["shape"][:2]
    return resize(raw, (height, width)).astype(np.float32)


def chosen_classes(classes, labels):
    """The labels that `--classes` keeps (Ultralytics' `classes=`): names or ids, given as
    "birds,fish", "0,2" or a list; None keeps every class. An unknown one raises
    DlkitError naming the model's classes."""
    from dlkit.errors import DlkitError

    if classes is None:
        return None
    items = classes.split(",") if isinstance(classes, str) else list(classes)
    chosen = set()
    for item in (str(i).strip() for i in items):
        if item in labels:
            chosen.add(item)
        elif item.isdigit() and int(item) < len(labels):
            chosen.add(labels[int(item)])
        else:
            raise DlkitError(
                f"--classes: {item!r} is not a class of this model; it has "
                + ", ".join(f"{i} {label}" for i, label in enumerate(labels))
            )
    return chosen


def postprocess(outputs, meta, conf=0.25, classes=None, **options):
    """Model outputs (boxes, scores, classes, num_detections) -> per image a list of
    `{"label", "score", "box"}` with `box` = normalised [x0, y0, x1, y1], best first:
    the boxes scoring `conf` or more, of the `classes` chosen (`chosen_classes`)."""
    boxes, scores, found_classes, counts = (np.asarray(o) for o in outputs)
    labels = meta["labels"]
    kept = chosen_classes(classes, labels)
    results = []
    for b, s, c, n in zip(boxes, scores, found_classes, counts.reshape(-1)):
        found = []
        for box, score, cls in zip(b[: int(n)], s[: int(n)], c[: int(n)]):
            label = labels[int(round(float(cls)))]
            if score < conf or (kept is not None and label not in kept):
                continue
            found.append(
                {
                    "label": label,
                    "score": float(score),
                    "box": [float(v) for v in np.clip(box, 0.0, 1.0)],
                }
            )
        results.append({"detections": found})
    return results


# Test-time augmentation (`--augment`): the input at each scale, shrunk into the middle of
# a grey frame, plain and mirrored; Ultralytics's scales (its `augment=True`), each view
# mirrored. Their boxes are mapped back and fused (weighted box fusion) per image.
AUGMENT_SCALES = (1.0, 0.83, 0.67)
AUGMENT_FILL = 114.0
AUGMENT_IOU = 0.6


def augmented(run, meta, scales=AUGMENT_SCALES, iou_threshold=AUGMENT_IOU):
    """fn(batch of preprocessed inputs) -> the detector's four outputs, like `run`, from
    len(scales) x 2 views of each input (`run` once per view) fused into one set."""
    from dlkit.edge.boxes import weighted_box_fusion

    keep = int(meta.get("config", {}).get("max_detections", 50))

    def call(inputs):
        inputs = np.asarray(inputs, np.float32)
        count, height, width = inputs.shape[:3]
        found = [([], [], []) for _ in range(count)]
        for scale in scales:
            view, (top, left, rows, cols) = shrunk(inputs, scale)
            for mirrored in (False, True):
                outputs = run(np.ascontiguousarray(view[:, :, ::-1]) if mirrored else view)
                boxes, scores, classes, counts = (np.asarray(o) for o in outputs)
                boxes = boxes.astype(np.float64)
                if mirrored:
                    boxes[..., [0, 2]] = 1.0 - boxes[..., [2, 0]]
                boxes[..., [0, 2]] = (boxes[..., [0, 2]] * width - left) / cols
                boxes[..., [1, 3]] = (boxes[..., [1, 3]] * height - top) / rows
                for i, n in enumerate(counts.reshape(-1).astype(int)):
                    for part, values in zip(
                        found[i], (np.clip(boxes[i, :n], 0, 1), scores[i, :n], classes[i, :n])
                    ):
                        part.append(values)
        out_boxes = np.zeros((count, keep, 4), np.float32)
        out_scores, out_classes = np.zeros((count, keep), np.float32), np.zeros((count, keep), np.float32)
        out_counts = np.zeros(count, np.int32)
        for i, (boxes, scores, classes) in enumerate(found):
            fused = weighted_box_fusion(
                np.concatenate(boxes),
                np.concatenate(scores),
                np.concatenate(classes).round().astype(int),
                views=2 * len(scales),
                iou_threshold=iou_threshold,
                max_output=keep,
            )
            n = len(fused[0])
            out_boxes[i, :n], out_scores[i, :n], out_classes[i, :n], out_counts[i] = *fused, n
        return [out_boxes, out_scores, out_classes, out_counts]

    return call


def shrunk(inputs, scale):
    """(batch at `scale` in the middle of a grey frame of the same size, (top, left, rows,
    cols) of the image inside it)."""
    count, height, width = inputs.shape[:3]
    rows, cols = max(1, round(height * scale)), max(1, round(width * scale))
    if (rows, cols) == (height, width):
        return inputs, (0, 0, height, width)
    top, left = (height - rows) // 2, (width - cols) // 2
    view = np.full_like(inputs, AUGMENT_FILL)
    for i in range(count):
        image = np.clip(inputs[i], 0, 255).astype(np.uint8)
        view[i, top : top + rows, left : left + cols] = resize(image, (rows, cols))
    return view, (top, left, rows, cols)


def to_pixels(result, width, height):
    """Adds `box_pixels` ([x0, y0, x1, y1] in the original image) to each detection."""
    for det in result["detections"]:
        x0, y0, x1, y1 = det["box"]
        det["box_pixels"] = [
            round(x0 * width, 1),
            round(y0 * height, 1),
            round(x1 * width, 1),
            round(y1 * height, 1),
        ]
    return result


def crops(image, result, gain=1.02, pad=10):
    """(label, crop) per detection of `result` (with `box_pixels`), best first: each side
    of the box times `gain` plus `pad` pixels, for a little context, as Ultralytics'
    `save_crop` cuts them, and clipped to the image. A box under a pixel gives none."""
    height, width = image.shape[:2]
    for det in result["detections"]:
        x0, y0, x1, y1 = det["box_pixels"]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half_w, half_h = ((x1 - x0) * gain + pad) / 2, ((y1 - y0) * gain + pad) / 2
        left, top = max(int(cx - half_w), 0), max(int(cy - half_h), 0)
        right, bottom = min(int(np.ceil(cx + half_w)), width), min(int(np.ceil(cy + half_h)), height)
        if x1 - x0 >= 1 and y1 - y0 >= 1 and right > left and bottom > top:
            yield det["label"], image[top:bottom, left:right]


def yolo_label_text(result, labels):
    """The detections as a YOLO label file: a row `class x_center y_center width height`
    (normalised, 6 decimals) per box, what `dlkit.data.detection.read_yolo_labels` reads."""
    rows = []
    for det in result["detections"]:
        x0, y0, x1, y1 = det["box"]
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        rows.append(f"{labels.index(det['label'])} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "".join(row + "\n" for row in rows)


def format_result(name, result):
    """`street.jpg: 3 objects (birds 0.91, fish 0.85, mammals 0.40)`."""
    dets = result["detections"]
    listed = ", ".join(f"{d['label']} {d['score']:.2f}" for d in dets[:8]) + (
        ", ..." if len(dets) > 8 else ""
    )
    return f"{name}: {counted(len(dets), 'object')}" + (f" ({listed})" if dets else "")


def draw(image, result, labels):
    """The image (RGB uint8) with labelled boxes drawn, as a Pillow image."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image).convert("RGB")
    pen = ImageDraw.Draw(canvas)
    thickness = max(2, round(max(canvas.size) / 300))
    for det in result["detections"]:
        color = COLORS[labels.index(det["label"]) % len(COLORS)]
        x0, y0, x1, y1 = det["box_pixels"]
        pen.rectangle([x0, y0, x1, y1], outline=color, width=thickness)
        text = f"{det['label']} {det['score']:.2f}"
        left, top, right, bottom = pen.textbbox((x0, y0), text)
        pen.rectangle([x0, y0 - (bottom - top) - 4, x0 + (right - left) + 4, y0], fill=color)
        pen.text((x0 + 2, y0 - (bottom - top) - 3), text, fill=(0, 0, 0))
    return canvas
