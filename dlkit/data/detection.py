"""Object-detection data: YOLO txt + YAML, COCO JSON, Pascal VOC XML and TFDS readers,
detection-safe augmentation, and YOLO target encoding.

Every reader returns a `DetectionSource` whose records hold normalised `xyxy` boxes.
Bad annotations (coordinates out of range, unknown classes, missing images, unreadable
files) are skipped and reported, never fatal for the rest of the data.
"""

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.console import counted
from dlkit.data.splits import hash_split as split_by_name
from dlkit.edge.image import IMAGE_SUFFIXES
from dlkit.errors import InvalidInputError, MissingSourceError

SPLITS = ("train", "val", "test")


@dataclass
class Record:
    image: str  # path, or a key of `DetectionSource.arrays` (TFDS)
    boxes: np.ndarray  # (n, 4) float32 normalised xyxy
    classes: np.ndarray  # (n,) int64


@dataclass
class DetectionSource:
    description: str
    labels: list
    records: dict  # split -> list of Record
    skipped: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    fingerprint: str = ""
    arrays: dict = field(default_factory=dict)  # in-memory images (TFDS)
    # callable(rng) -> (image uint8, boxes normalised xyxy, classes): new training scenes
    # on demand (the offline default data); None for files on disk.
    scenes: object = None


def _fingerprint(records):
    digest = hashlib.sha1()
    for split in sorted(records):
        for r in records[split]:
            digest.update(
                f"{split}|{Path(r.image).name}|{np.round(r.boxes, 5).tolist()}|{r.classes.tolist()}".encode()
            )
    return digest.hexdigest()[:16]


def hash_split(records, val_fraction=0.15, test_fraction=0.15):
    """Records of a dataset without held-out splits, split by a hash of each image's file
    name (`dlkit.data.splits.hash_split`: stable as the folder grows, no split left empty
    when it can spare one)."""
    return split_by_name(records, lambda record: Path(record.image).name, val_fraction, test_fraction)


def check_boxes(boxes, classes, num_classes, where, skipped, tolerance=1e-3):
    """Keeps valid boxes; reports out-of-range, degenerate boxes and unknown classes."""
    keep = []
    for i, (box, cls) in enumerate(zip(boxes, classes)):
        if not 0 <= cls < num_classes:
            skipped.append(f"{where}: box {i + 1}: unknown class {cls} (classes 0-{num_classes - 1})")
        elif np.any(box < -tolerance) or np.any(box > 1 + tolerance) or not np.all(np.isfinite(box)):
            skipped.append(f"{where}: box {i + 1}: coordinates outside the image {np.round(box, 4).tolist()}")
        elif box[2] - box[0] <= 1e-4 or box[3] - box[1] <= 1e-4:
            skipped.append(f"{where}: box {i + 1}: degenerate (zero width or height)")
        else:
            keep.append(i)
    boxes = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4)[keep], 0.0, 1.0)
    return boxes, np.asarray(classes, np.int64)[keep]


# ---------------------------------------------------------------- YOLO txt + YAML


def _read_yaml(path):
    try:
        import yaml
    except ImportError:
        raise MissingSourceError("reading data.yaml needs PyYAML: pip install pyyaml") from None

    class Loader(yaml.SafeLoader):
        """Refuses aliases: a few lines of them expand to billions of names ("billion laughs")."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                event = self.peek_event()
                raise yaml.YAMLError(
                    f"aliases (*{event.anchor}) are not allowed, line {event.start_mark.line + 1}"
                )
            return super().compose_node(parent, index)

    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 (safe loader)
    except Exception as error:
        raise InvalidInputError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict) or "names" not in data:
        raise InvalidInputError(f"{path}: a YOLO data.yaml needs 'names' (and train/val image folders)")
    names = data["names"]
    if isinstance(names, dict):
        try:
            names = [names[k] for k in sorted(names)]
        except TypeError:  # ids of mixed types
            names = None
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
        raise InvalidInputError(
            f"{path}: 'names' must list the class names (a list, or a dict of id: name), got {str(names)[:60]}"
        )
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"{path}: 'names' lists a class twice")
    return data, names


def _label_path(image_path):
    """Ultralytics rule: the last `images` folder in the path becomes `labels`, suffix .txt."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image_path.with_suffix(".txt")


def read_yolo_labels(path, num_classes, skipped, warnings):
    """One YOLO label file -> (boxes xyxy, classes); rows `class cx cy w h` (normalised)."""
    where = str(path)
    if not path.exists():
        warnings.append(f"{where}: no label file (image used as background)")
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            cls, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:5])
            if len(parts) != 5:
                raise ValueError
        except (ValueError, IndexError):
            skipped.append(f"{where}:{number}: expected 'class cx cy w h', got {line.strip()[:60]!r}")
            continue
        rows.append((cls, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    if not rows:
        warnings.append(f"{where}: empty label file (image used as background)")
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    array = np.array(rows, np.float64)
    return check_boxes(array[:, 1:], array[:, 0].astype(np.int64), num_classes, where, skipped)


def read_yolo(path, val_fraction=0.15, test_fraction=0.15):
    """A YOLO dataset: `data.yaml` (or a folder holding one) with `names` and image folders
    per split (`train: images/train`); labels in the parallel `labels/` folders."""
    path = Path(path)
    yaml_path = (
        path
        if path.is_file()
        else next((path / n for n in ("data.yaml", "dataset.yaml") if (path / n).exists()), None)
    )
    if yaml_path is None:
        raise InvalidInputError(f"{path}: no data.yaml")
    data, names = _read_yaml(yaml_path)
    root = (yaml_path.parent / str(data.get("path", "."))).resolve()
    skipped, warnings, records = [], [], {}
    for split in SPLITS:
        entry = data.get(split) or (data.get("valid") if split == "val" else None)
        if not entry:
            continue
        folder = root / str(entry)
        if not folder.is_dir():
            raise InvalidInputError(f"{yaml_path}: {split} folder {folder} does not exist")
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        records[split] = []
        for image in images:
            boxes, classes = read_yolo_labels(_label_path(image), len(names), skipped, warnings)
            records[split].append(Record(str(image), boxes, classes))
    if not records.get("train"):
        raise InvalidInputError(f"{yaml_path}: no training images")
    if not records.get("val"):
        records = hash_split(records["train"], val_fraction, test_fraction)
    return DetectionSource(
        f"YOLO dataset {yaml_path}", names, records, skipped, warnings, _fingerprint(records)
    )


# ---------------------------------------------------------------- COCO JSON


def read_coco_json(json_path, images_dir=None, names=None, skipped=None, warnings=None):
    """One COCO instances JSON -> (records, names). Images that do not exist, image
    entries without a usable name or size, and annotations without a usable `bbox` are
    skipped and listed."""
    from dlkit.data.coco import image_entry, read_document

    json_path = Path(json_path)
    skipped = [] if skipped is None else skipped
    warnings = [] if warnings is None else warnings
    images, by_image, category_names = read_document(json_path)
    names = names or [category_names[k] for k in sorted(category_names)]
    index = {name: i for i, name in enumerate(names)}
    images_dir = Path(images_dir) if images_dir else json_path.parent
    records = []
    for image in images:
        entry = image_entry(image, json_path, images_dir, skipped)
        if entry is None:
            continue
        path, w, h = entry
        where = f"{json_path.name}: {image['file_name']}"
        boxes, classes = [], []
        for ann in by_image.get(image.get("id"), []):
            if ann.get("iscrowd", 0):
                continue
            try:
                x, y, bw, bh = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                skipped.append(
                    f"{where}: annotation {ann.get('id')}: bbox {str(ann.get('bbox'))[:40]} is not [x, y, w, h]"
                )
                continue
            boxes.append([x / w, y / h, (x + bw) / w, (y + bh) / h])
            name = category_names.get(ann.get("category_id"))
            classes.append(index.get(name, -1) if name is not None else -1)
        b, c = check_boxes(
            np.array(boxes).reshape(-1, 4), np.array(classes, np.int64), len(names), where, skipped
        )
        if not len(c):
            warnings.append(f"{where}: no objects (image used as background)")
        records.append(Record(str(path), b, c))
    return records, names


def read_coco(path, val_fraction=0.15, test_fraction=0.15):
    """A folder with `annotations/instances_<split>*.json` and images under
    `<split>*/` or `images/`, or one COCO JSON file (split by hash)."""
    path = Path(path)
    skipped, warnings = [], []
    if path.is_file():
        records, names = read_coco_json(path, skipped=skipped, warnings=warnings)
        splits = hash_split(records, val_fraction, test_fraction)
    else:
        files = sorted((path / "annotations").glob("instances_*.json"))
        if not files:
            raise InvalidInputError(f"{path}: no annotations/instances_*.json")
        splits, names = {}, None
        for file in files:
            tag = file.stem.removeprefix("instances_")
            split = "train" if tag.startswith("train") else "val" if tag.startswith("val") else "test"
            folder = next(
                (d for d in (path / tag, path / "images" / tag, path / "images") if d.is_dir()), path
            )
            records, names = read_coco_json(file, folder, names, skipped, warnings)
            splits[split] = splits.get(split, []) + records
        if "val" not in splits:
            splits = hash_split(splits.get("train", []), val_fraction, test_fraction)
    return DetectionSource(f"COCO dataset {path}", names, splits, skipped, warnings, _fingerprint(splits))


# ---------------------------------------------------------------- Pascal VOC XML


def read_voc_xml(xml_path, images_dir, names, skipped, warnings):
    where = xml_path.name
    try:
        root = ET.parse(xml_path).getroot()
        filename = root.findtext("filename")
        w = float(root.find("size").findtext("width"))
        h = float(root.find("size").findtext("height"))
    except (ET.ParseError, AttributeError, TypeError, ValueError) as error:
        skipped.append(f"{where}: unreadable VOC annotation ({type(error).__name__})")
        return None
    if not filename or io.leaves_folder(filename):
        skipped.append(f"{where}: filename {filename!r} is missing or outside {images_dir}")
        return None
    if not (0 < w < float("inf") and 0 < h < float("inf")):
        skipped.append(f"{where}: image size {w:g}x{h:g}")
        return None
    path = Path(images_dir) / filename
    if not path.exists():
        skipped.append(f"{where}: image {filename} not found in {images_dir}")
        return None
    boxes, classes = [], []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        try:
            x0, y0, x1, y1 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            skipped.append(f"{where}: object {name!r}: bad bndbox")
            continue
        boxes.append([x0 / w, y0 / h, x1 / w, y1 / h])
        classes.append(names.index(name) if name in names else -1)
        if name not in names:
            skipped.append(f"{where}: unknown class {name!r}")
            boxes.pop()
            classes.pop()
    b, c = check_boxes(
        np.array(boxes).reshape(-1, 4), np.array(classes, np.int64), len(names), where, skipped
    )
    if not len(c):
        warnings.append(f"{where}: no objects (image used as background)")
    return Record(str(path), b, c)


def read_voc(path, names=None, val_fraction=0.15, test_fraction=0.15):
    """A VOC folder: `Annotations/*.xml`, `JPEGImages/`, optional `ImageSets/Main/<split>.txt`
    and optional `labels.txt` (class names, one per line; default: the names found)."""
    path = Path(path)
    xml_files = sorted((path / "Annotations").glob("*.xml"))
    if not xml_files:
        raise InvalidInputError(f"{path}: no Annotations/*.xml")
    if names is None and (path / "labels.txt").exists():
        names = [n.strip() for n in (path / "labels.txt").read_text().splitlines() if n.strip()]
    if names is None:
        found = set()
        for file in xml_files:
            try:
                found |= {(o.findtext("name") or "").strip() for o in ET.parse(file).getroot().iter("object")}
            except ET.ParseError:
                continue
        names = sorted(n for n in found if n)
    skipped, warnings = [], []
    by_stem = {}
    for file in xml_files:
        record = read_voc_xml(file, path / "JPEGImages", names, skipped, warnings)
        if record:
            by_stem[file.stem] = record
    sets = path / "ImageSets" / "Main"
    if (sets / "train.txt").exists() and (sets / "val.txt").exists():
        splits = {}
        for split in SPLITS:
            file = sets / f"{split}.txt"
            stems = file.read_text().split() if file.exists() else []
            splits[split] = [by_stem[s] for s in stems if s in by_stem]
    else:
        splits = hash_split(list(by_stem.values()), val_fraction, test_fraction)
    return DetectionSource(f"VOC dataset {path}", names, splits, skipped, warnings, _fingerprint(splits))


# ---------------------------------------------------------------- TFDS


def read_tfds(name, max_images=None):
    """`tfds:voc/2007`, `tfds:coco/2017`, or any TFDS set with `objects/bbox` + `objects/label`.

    TFDS boxes are normalised `[ymin, xmin, ymax, xmax]`; they become `xyxy`. The TFDS
    `validation` split is `val`; without one, `train` is split by hash. COCO crowd boxes
    (`objects/is_crowd`) are dropped. Images are held in memory, so for COCO pass
    `max_images` (or convert a subset to YOLO files first).
    """
    import tensorflow_datasets as tfds

    from dlkit.data.tfds_source import prepared_builder

    builder = prepared_builder(name)
    names = list(builder.info.features["objects"]["label"].names)
    available = list(builder.info.splits)
    wanted = {"train": "train", "val": "validation", "test": "test"}
    records, arrays = {}, {}
    for split, tfds_split in wanted.items():
        if tfds_split not in available:
            continue
        records[split] = []
        for i, example in enumerate(tfds.as_numpy(builder.as_dataset(split=tfds_split))):
            if max_images and i >= max_images:
                break
            key = f"tfds:{name}/{tfds_split}/{i}"
            arrays[key] = example["image"]
            objects = example["objects"]
            ymin, xmin, ymax, xmax = np.moveaxis(objects["bbox"].reshape(-1, 4), -1, 0)
            boxes = np.stack([xmin, ymin, xmax, ymax], axis=-1).astype(np.float32)
            labels = objects["label"].astype(np.int64)
            if "is_crowd" in objects:  # COCO crowd regions are not objects to find
                keep = ~objects["is_crowd"].astype(bool)
                boxes, labels = boxes[keep], labels[keep]
            records[split].append(Record(key, boxes, labels))
    if not records.get("val") and records.get("train"):
        records = hash_split(records["train"])
    return DetectionSource(f"tfds:{name}", names, records, fingerprint=_fingerprint(records), arrays=arrays)


def open_detection_source(source, cache_builder=None):
    """Dispatches on the format: `tfds:NAME`, a data.yaml/YOLO folder, a COCO JSON or
    folder, a VOC folder; None builds (once) and reads the offline default scenes."""
    if source is None:
        return read_yolo(cache_builder())
    source = str(source)
    if source.startswith("tfds:"):
        return read_tfds(source[5:])
    path = Path(source)
    if not path.exists():
        raise InvalidInputError(f"{path}: no such file or folder")
    if (
        path.suffix.lower() in (".yaml", ".yml")
        or (path / "data.yaml").exists()
        or (path / "dataset.yaml").exists()
    ):
        return read_yolo(path)
    if path.suffix.lower() == ".json" or (path / "annotations").is_dir():
        return read_coco(path)
    if (path / "Annotations").is_dir():
        return read_voc(path)
    raise InvalidInputError(
        f"{path}: not a detection dataset (expected data.yaml, a COCO annotations/ folder or JSON, "
        "or a VOC Annotations/ folder)"
    )


# ---------------------------------------------------------------- augmentation and targets


def augment(image, boxes, classes, rng, flip=True, scale=(0.6, 1.4), color=0.25, min_visible=0.4):
    """Detection-safe augmentation of a square uint8 image and its normalised xyxy boxes:
    horizontal flip, random zoom in (crop) or out (pad), brightness/contrast/saturation.

    Boxes follow the image; boxes cut to less than `min_visible` of their area are dropped.
    The training pipeline draws the same numbers (`zoom_draws`, `color_factors`) and
    moves the pixels of a whole batch at once (`apps.detect.data`).
    """
    view = zoom_draws(rng, flip, scale)
    image = zoom_image(image, view)
    boxes, classes = zoom_boxes(boxes, classes, view, min_visible)
    if color:
        image = recolor(image, color_factors(rng, color))
    return image, boxes, classes


def zoom_draws(rng, flip=True, scale=(0.6, 1.4)):
    """(mirror, x0, y0, side) as float32: mirror 1 half the time (with `flip`), then a
    square window of side 1 / zoom (zoom within `scale`: > 1 zooms in, < 1 out) at
    (x0, y0), in image units, of the mirrored image."""
    mirror = bool(flip and rng.random() < 0.5)
    side = 1.0 / rng.uniform(*scale)
    x0 = rng.uniform(min(0.0, 1 - side), max(0.0, 1 - side))
    y0 = rng.uniform(min(0.0, 1 - side), max(0.0, 1 - side))
    return np.array([mirror, x0, y0, side], np.float32)


def zoom_image(image, view):
    """The `zoom_draws` window of a square uint8 image, resized back to its size; what
    falls outside the image is its mean colour."""
    from PIL import Image

    mirror, x0, y0, side = (float(v) for v in view)
    size = image.shape[0]
    if mirror:
        image = image[:, ::-1]
    pixels = Image.fromarray(np.ascontiguousarray(image))
    fill = tuple(int(v) for v in image.reshape(-1, 3).mean(0))
    extent = (x0 * size, y0 * size, (x0 + side) * size, (y0 + side) * size)
    return np.asarray(pixels.transform((size, size), Image.EXTENT, extent, Image.BILINEAR, fillcolor=fill))


def zoom_boxes(boxes, classes, view, min_visible=0.4):
    """Normalised xyxy boxes moved with `zoom_image`; those cut to less than
    `min_visible` of their area (or thinner than 1% of the image) are dropped."""
    mirror, x0, y0, side = (float(v) for v in view)
    boxes = boxes.astype(np.float32, copy=True)
    if mirror:
        boxes[:, [0, 2]] = 1.0 - boxes[:, [2, 0]]
    if len(boxes):
        before = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes = (boxes - [x0, y0, x0, y0]) / side
        clipped = np.clip(boxes, 0.0, 1.0)
        after = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) * side**2
        keep = (
            (after >= min_visible * before)
            & (clipped[:, 2] - clipped[:, 0] > 0.01)
            & (clipped[:, 3] - clipped[:, 1] > 0.01)
        )
        boxes, classes = clipped[keep], classes[keep]
    return boxes.astype(np.float32), classes


def mosaic(images, targets, center, min_visible=0.4):
    """Ultralytics' mosaic at the images' own scale: four square images of one size tiled
    2 x 2 on a canvas twice as wide, and the window of that size centred at `center` (x, y
    in image units, each within [0.5, 1.5]) cut out of it.

    Args:
        images: four (size, size, 3) uint8 arrays, placed top-left, top-right, bottom-left,
            bottom-right.
        targets: four (normalised xyxy boxes, classes) pairs, one per image.
        center: (x, y) float.
        min_visible: float. Boxes cut to less of their area are dropped (`zoom_boxes`'s rule).

    Returns:
        (image, boxes, classes): the window, and the boxes in it, normalised to it.
    """
    size = images[0].shape[0]
    canvas = np.empty((2 * size, 2 * size, 3), np.uint8)
    placed, labels = [], []
    for k, (image, (boxes, classes)) in enumerate(zip(images, targets)):
        row, column = divmod(k, 2)
        canvas[row * size : (row + 1) * size, column * size : (column + 1) * size] = image
        placed.append(np.asarray(boxes, np.float32).reshape(-1, 4) + [column, row, column, row])
        labels.append(np.asarray(classes).reshape(-1))
    left = int(round((float(center[0]) - 0.5) * size))
    top = int(round((float(center[1]) - 0.5) * size))
    window = np.array([0, left / size, top / size, 1.0], np.float32)
    classes = np.concatenate(labels).astype(np.int64)
    boxes, classes = zoom_boxes(np.concatenate(placed), classes, window, min_visible)
    return np.ascontiguousarray(canvas[top : top + size, left : left + size]), boxes, classes


def color_factors(rng, color):
    """(saturation, contrast, brightness) drawn for `recolor`: factors within 1 +- `color`,
    and a brightness shift within +- `color` of half the range."""
    if not color:
        return np.array([1.0, 1.0, 0.0], np.float32)
    return np.array(
        [rng.uniform(1 - color, 1 + color), rng.uniform(1 - color, 1 + color), rng.uniform(-color, color)],
        np.float32,
    )


def recolor(image, factors):
    """A uint8 image's saturation (a blend with its grey), contrast (about its mean) and
    brightness changed by `color_factors`. `apps.detect.data` does the same on batches."""
    saturation, contrast, brightness = (float(f) for f in factors)
    x = image.astype(np.float32)
    gray = x.mean(axis=-1, keepdims=True)
    x = gray + (x - gray) * saturation
    x = (x - x.mean()) * contrast + x.mean()
    x = x + brightness * 255 * 0.5
    return np.clip(x, 0, 255).astype(np.uint8)


def encode_targets(boxes, classes, grids, anchors, max_boxes, assign_threshold=None):
    """Normalised xyxy boxes -> the (A + max_boxes, 6) `y_true` of `dlkit.losses.YOLOLoss`.

    Each box goes to the grid cell holding its centre, at the scale and anchor whose
    shape has the best IoU with the box's shape. With `assign_threshold`, it also goes to
    every other anchor (at that anchor's scale) whose shape IoU reaches the threshold
    (YOLOv4's multi-anchor assignment): a box halfway between two anchor shapes then
    trains both, instead of teaching one "object" and the other "nothing here". With no
    anchors (an anchor-free head) A is 0: the (max_boxes, 6) box list of
    `dlkit.losses.TaskAlignedLoss`.
    """
    from dlkit.edge.boxes import shape_iou, xyxy_to_cxcywh

    sizes = [g * g * len(a) for g, a in zip(grids, anchors)]
    offsets = np.cumsum([0] + sizes)
    flat = np.array([a for scale in anchors for a in scale], np.float32)
    scale_of = np.repeat(np.arange(len(grids)), [len(a) for a in anchors])
    first = np.concatenate([[0], np.cumsum([len(a) for a in anchors])])
    y = np.zeros((offsets[-1] + max_boxes, 6), np.float32)
    if len(boxes) and len(flat):  # no anchors (an anchor-free head): the list only
        centre = xyxy_to_cxcywh(boxes)
        ious = shape_iou(centre[:, 2:], flat)
        best = np.argmax(ious, axis=1)
        # Larger boxes first, so where two boxes claim one slot the smaller one (drawn on
        # top in a scene, and harder to find) keeps it.
        for i in np.argsort(-(centre[:, 2] * centre[:, 3]), kind="stable"):
            box, cls = centre[i], classes[i]
            chosen = {int(best[i])}
            if assign_threshold is not None:
                chosen |= {int(a) for a in np.flatnonzero(ious[i] >= assign_threshold)}
            for anchor in sorted(chosen):
                s = scale_of[anchor]
                grid = grids[s]
                col = min(int(box[0] * grid), grid - 1)
                row = min(int(box[1] * grid), grid - 1)
                index = offsets[s] + (row * grid + col) * len(anchors[s]) + (anchor - first[s])
                y[index] = [*box, 1.0, cls]
    if len(boxes):
        n = min(len(boxes), max_boxes)
        y[offsets[-1] : offsets[-1] + n] = np.concatenate(
            [boxes[:n], np.ones((n, 1)), np.asarray(classes[:n], np.float32)[:, None]], axis=1
        )
    return y


def check_dataset(source, max_listed=20):
    """A dataset report: images and boxes per split and class, boxes per image, empty
    images, skipped (bad) annotations, unreadable and duplicate images.

    Returns:
        dict with `lines` (the printed report), `errors` (count) and the numbers.
    """
    from dlkit.edge.image import load_image

    lines, errors = (
        [f"dataset: {source.description}", f"classes ({len(source.labels)}): {', '.join(source.labels)}"],
        0,
    )
    counts, hashes, unreadable, duplicates = {}, {}, [], []
    for split, records in source.records.items():
        per_class = np.zeros(len(source.labels), np.int64)
        per_image = [len(r.classes) for r in records]
        for r in records:
            np.add.at(per_class, r.classes, 1)
            if r.image in source.arrays:
                continue
            try:
                data = Path(r.image).read_bytes()
                load_image(r.image)
            except (OSError, InvalidInputError) as error:
                unreadable.append(str(error))
                continue
            digest = hashlib.sha1(data).hexdigest()
            if digest in hashes:
                duplicates.append(f"{r.image} = {hashes[digest]}")
            hashes.setdefault(digest, r.image)
        empty = sum(1 for n in per_image if n == 0)
        counts[split] = {
            "images": len(records),
            "boxes": int(per_class.sum()),
            "empty_images": empty,
            "per_class": dict(zip(source.labels, per_class.tolist())),
        }
        spread = f"{min(per_image)}-{max(per_image)}, mean {np.mean(per_image):.1f}" if per_image else "-"
        lines.append(
            f"{split}: {len(records)} images, {int(per_class.sum())} boxes ({spread} per image), {empty} empty"
        )
        lines.append("  " + ", ".join(f"{name} {n}" for name, n in zip(source.labels, per_class.tolist())))
        missing = [name for name, n in zip(source.labels, per_class.tolist()) if n == 0]
        if missing and split == "train":
            lines.append(f"  error: no training boxes for {', '.join(missing)}")
            errors += 1
    for title, items, is_error in (
        ("bad annotations (skipped)", source.skipped, True),
        ("unreadable images", unreadable, True),
        ("duplicate images", duplicates, True),
        ("notes", source.warnings, False),
    ):
        if items:
            lines.append(f"{title}: {len(items)}")
            lines += [f"  {item}" for item in items[:max_listed]]
            if len(items) > max_listed:
                lines.append(f"  ... {len(items) - max_listed} more")
            errors += len(items) if is_error else 0
    lines.append("ok" if not errors else f"{counted(errors, 'problem')} found")
    return {
        "lines": lines,
        "errors": errors,
        "splits": counts,
        "skipped": source.skipped,
        "unreadable": unreadable,
        "duplicates": duplicates,
        "warnings": source.warnings,
    }
