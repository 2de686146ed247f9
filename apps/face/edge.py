"""Face on device (numpy only): find and align the faces of a photo (BlazeFace, the bundle's
side model), embed each, match them against the gallery, draw the result."""

from dataclasses import dataclass

import numpy as np

from dlkit.apps.face.detector import MIN_FACE, align, detector_at, find_faces, shipped_detector
from dlkit.console import counted

MAX_FACES = 20


@dataclass
class FacePhoto:
    """A photo with its faces (largest first) and their aligned crops."""

    image: np.ndarray
    faces: list
    crops: list

    @property
    def nbytes(self):
        """Bytes held, as an array's `nbytes` (predict bounds a batch's decoded inputs)."""
        return self.image.nbytes + sum(crop.nbytes for crop in self.crops)


def detector_of(meta):
    """The bundle's own detector (side file `detector`), else the shipped one."""
    path = (meta.get("asset_paths") or {}).get("detector") or shipped_detector()
    return detector_at(str(path))


def image_size(meta):
    return int(meta["input"]["shape"][0])


def read_input(item, meta):
    """A photo (path or RGB array) -> FacePhoto with its faces (none in a photo without
    one, or smaller than the smallest face looked for); raises InvalidInputError when
    the file cannot be read as an image."""
    from dlkit.edge.image import image_array, load_image

    image = image_array(item) if hasattr(item, "shape") else load_image(item)
    min_face = int(meta.get("config", {}).get("min_face", MIN_FACE))
    faces = []
    if min(image.shape[:2]) >= min_face:
        faces = find_faces(detector_of(meta), image, min_face)[: meta.get("max_faces", MAX_FACES)]
    size = image_size(meta)
    return FacePhoto(image, faces, [align(image, face.keypoints, size) for face in faces])


def windows(raw):
    """Each face's aligned crop as a model input (float32 pixels), largest first."""
    return [crop.astype(np.float32) for crop in raw.crops]


def postprocess(outputs, meta, **options):
    return [{"embedding": row} for row in np.asarray(outputs[0], np.float32)]


def combine(results, raw):
    """One record per face, largest first: box, score, embedding."""
    return {
        "faces": [
            {
                "box": [round(float(v), 1) for v in face.box],
                "score": round(face.score, 3),
                "embedding": result["embedding"],
            }
            for face, result in zip(raw.faces, results)
        ]
    }


def identify(faces, gallery, threshold):
    """Each face's best gallery match: `name` (None above the threshold: unknown) and
    `distance`."""
    for face in faces:
        name, distance = gallery.match(face["embedding"])
        face["distance"] = round(distance, 4) if np.isfinite(distance) else None
        face["name"] = name if distance <= threshold else None
        if name is not None:
            face["nearest"] = name
    return faces


def draw(image, faces):
    """The photo with a box per face and its name (or "unknown") drawn on it."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(image)
    pen = ImageDraw.Draw(picture)
    width = max(2, round(min(image.shape[:2]) / 200))
    for face in faces:
        known = face.get("name") is not None
        colour = (40, 200, 80) if known else (230, 60, 40)
        x1, y1, x2, y2 = face["box"]
        pen.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        label = face.get("name") or ("unknown" if "distance" in face else f"face {face['score']:.2f}")
        if "distance" in face and face["distance"] is not None:
            label += f" {face['distance']:.2f}"
        left, top, right, bottom = pen.textbbox((x1, y1), label)
        pen.rectangle((x1, y1 - (bottom - top) - 4, x1 + (right - left) + 4, y1), fill=colour)
        pen.text((x1 + 2, y1 - (bottom - top) - 3), label, fill=(255, 255, 255))
    return picture


def format_result(name, result):
    faces = result["faces"]
    if not faces:
        return f"{name}: no face"
    parts = []
    for face in faces:
        if "distance" in face:
            who = face["name"] or "unknown"
            parts.append(f"{who} ({face['distance']:.3f})" if face["distance"] is not None else who)
        else:
            parts.append(f"face at {[round(v) for v in face['box']]} ({face['score']:.2f})")
    return f"{name}: {counted(len(faces), 'face')}: {', '.join(parts)}"
