"""Segmentation masks in user folders: `images/<stem>.<ext>` beside `masks/<stem>.png`,
each mask one channel of class indices (0 = background), as Pascal VOC's palette PNGs
and most labelling tools write them.

Every problem is a one-line InvalidInputError naming the file: a missing mask, a mask of
another size than its image, class ids the dataset does not have, or an RGB colour mask
where indices are expected (with how to convert it).
"""

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dlkit.edge.image import IMAGE_SUFFIXES
from dlkit.errors import InvalidInputError

# Pascal VOC marks object borders "void" with 255: those pixels are not scored or trained.
VOID = 255


def read_mask(path, num_classes=None):
    """A mask PNG as an (h, w) uint8 array of class ids (VOID kept as 255).

    Args:
        path: str or Path.
        num_classes: int or None. Ids must be below it (VOID excepted).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            array = np.asarray(image)
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such mask file") from None
    except Image.DecompressionBombError:
        raise InvalidInputError(f"{path}: mask image too large (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InvalidInputError(f"{path}: not a readable mask image ({error})") from None
    if array.ndim == 3:
        channels = array[..., :3]
        if np.all(channels == channels[..., :1]):  # grey saved as RGB: the indices are there
            array = channels[..., 0]
        else:
            raise InvalidInputError(
                f"{path}: an RGB colour mask ({mode}); expected one channel of class indices "
                "(0 = background). Convert it with a colour -> index table, e.g. "
                "np.argmax(np.all(rgb[..., None, :] == palette, -1), -1), and save as a grey or palette PNG"
            )
    if array.dtype != np.uint8:
        if array.max(initial=0) > 255:
            raise InvalidInputError(
                f"{path}: class ids up to {array.max()}; at most 255 classes are supported"
            )
        array = array.astype(np.uint8)
    if num_classes is not None:
        ids = np.unique(array)
        bad = ids[(ids >= num_classes) & (ids != VOID)]
        if len(bad):
            raise InvalidInputError(
                f"{path}: class id {int(bad[0])} but the dataset has {num_classes} classes (0-{num_classes - 1})"
            )
    return array


def pair_images_and_masks(images_dir, masks_dir):
    """[(image path, mask path)] matched by file stem, and the images without a mask (as
    one-line messages; the caller skips and reports them)."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    masks = {p.stem: p for p in masks_dir.iterdir() if p.is_file() and p.suffix.lower() == ".png"}
    pairs, missing = [], []
    for image in sorted(
        p for p in images_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    ):
        if image.stem in masks:
            pairs.append((image, masks[image.stem]))
        else:
            missing.append(f"{image}: no mask {masks_dir / (image.stem + '.png')}")
    return pairs, missing


def check_same_size(image, mask, image_path, mask_path):
    """Raises a one-line error when a mask does not cover its image pixel for pixel."""
    if image.shape[:2] != mask.shape[:2]:
        raise InvalidInputError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {Path(image_path).name} "
            f"is {image.shape[1]}x{image.shape[0]}"
        )


# ---------------------------------------------------------------- Pascal VOC

VOC_CLASSES = (
    "background aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse "
    "motorbike person pottedplant sheep sofa train tvmonitor"
).split()


def find_voc_root(folder):
    """The VOC year folder (with `JPEGImages/` and `SegmentationClass/`) at or under
    `folder` (`VOC2012/`, `VOCdevkit/VOC2012/`), or None."""
    folder = Path(folder)
    for candidate in (folder, *sorted(folder.glob("VOC*")), *sorted(folder.glob("VOCdevkit/VOC*"))):
        if (candidate / "SegmentationClass").is_dir() and (candidate / "JPEGImages").is_dir():
            return candidate
    return None


def voc_pairs(root):
    """{"train": pairs, "val": pairs} from `ImageSets/Segmentation/{train,val}.txt` (all
    masks in "train" without them), and the images listed without an image or mask (as
    one-line messages). Masks are VOC's palette PNGs: the palette index is the class id."""
    root = Path(root)
    lists = root / "ImageSets" / "Segmentation"
    if (lists / "train.txt").is_file():
        wanted = {
            split: [s.strip() for s in (lists / f"{split}.txt").read_text().split() if s.strip()]
            for split in ("train", "val")
            if (lists / f"{split}.txt").is_file()
        }
    else:
        wanted = {"train": sorted(p.stem for p in (root / "SegmentationClass").glob("*.png"))}
    splits, missing = {}, []
    for split, stems in wanted.items():
        pairs = []
        for stem in stems:
            image, mask = root / "JPEGImages" / f"{stem}.jpg", root / "SegmentationClass" / f"{stem}.png"
            if image.is_file() and mask.is_file():
                pairs.append((image, mask))
            else:
                missing.append(f"{mask if image.is_file() else image}: listed in {split}.txt but missing")
        splits[split] = pairs
    return splits, missing


# ---------------------------------------------------------------- COCO polygons / RLE


def coco_class_masks(json_path, images_dir, out_dir, names=None):
    """Rasterizes a COCO instances file into class-index mask PNGs in `out_dir` (one per
    image, numbered by its place in the file) with pycocotools: polygons and RLE alike, larger objects
    first so smaller ones stay on top, crowd regions VOID.

    Returns:
        (pairs [(image path, mask path)], class names background first, skipped messages).
    """
    from dlkit.data.coco import image_entry, read_document

    try:
        from pycocotools import mask as coco_mask
    except ImportError:
        raise InvalidInputError("COCO masks need pycocotools: pip install pycocotools") from None
    json_path, out_dir = Path(json_path), Path(out_dir)
    images, by_image, category_names = read_document(json_path)
    names = names or ["background", *(category_names[k] for k in sorted(category_names))]
    index = {name: i for i, name in enumerate(names)}
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs, skipped = [], []
    for position, image in enumerate(images):
        entry = image_entry(image, json_path, images_dir, skipped)
        if entry is None:
            continue
        path = entry[0]
        width, height = int(entry[1]), int(entry[2])
        mask = np.zeros((height, width), np.uint8)
        objects = sorted(by_image.get(image.get("id"), []), key=_area, reverse=True)
        for ann in objects:
            segmentation = ann.get("segmentation")
            if not segmentation:
                continue
            try:
                if isinstance(segmentation, list):  # polygons
                    rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
                elif isinstance(segmentation["counts"], list):  # uncompressed RLE
                    rle = coco_mask.frPyObjects(segmentation, height, width)
                else:  # compressed RLE
                    rle = dict(segmentation, counts=str(segmentation["counts"]).encode())
                pixels = coco_mask.decode(rle) > 0
                if pixels.shape != mask.shape:
                    raise ValueError(f"size {pixels.shape[::-1]} but the image is {width}x{height}")
            except Exception as error:  # noqa: BLE001 (pycocotools raises bare Exception too)
                skipped.append(
                    f"{json_path.name}: annotation {ann.get('id')}: unreadable segmentation ({error})"
                )
                continue
            if ann.get("iscrowd", 0):
                mask[pixels] = VOID
            elif ann.get("category_id") in category_names:
                mask[pixels] = index[category_names[ann["category_id"]]]
        mask_path = out_dir / f"{position:06d}.png"  # not the id: ids are the file's to choose
        Image.fromarray(mask, "L").save(mask_path)
        pairs.append((path, mask_path))
    return pairs, names, skipped


def _area(annotation):
    """An annotation's `area` for drawing order (0 when missing or not a number)."""
    try:
        return float(annotation.get("area", 0))
    except (TypeError, ValueError):
        return 0.0


# ---------------------------------------------------------------- TFDS


def tfds_mask_folder(name, out_dir, progress=None):
    """Writes a TFDS set with `image` and `segmentation_mask` features as `images/<split>/`
    JPEGs and `masks/<split>/` PNGs, and `labels.txt`. Oxford-IIIT Pet's trimaps (1 pet,
    2 background, 3 border) become background / cat / dog (from `species`), border VOID;
    other sets keep their mask values as class ids.

    Returns:
        {split: images written}.
    """
    import tensorflow_datasets as tfds

    from dlkit.data.tfds_source import prepared_builder

    builder = prepared_builder(name)
    features = builder.info.features
    if "image" not in features or "segmentation_mask" not in features:
        raise InvalidInputError(f"tfds:{name}: no image and segmentation_mask features")
    trimap = "species" in features
    labels = ["background", *(s.lower() for s in features["species"].names)] if trimap else None
    out_dir, counts, highest = Path(out_dir), {}, 0
    for split in builder.info.splits:
        counts[split] = 0
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "masks" / split).mkdir(parents=True, exist_ok=True)
        total = builder.info.splits[split].num_examples
        for i, example in enumerate(tfds.as_numpy(builder.as_dataset(split=split))):
            mask = np.asarray(example["segmentation_mask"])[..., 0].astype(np.uint8)
            if trimap:
                pet = mask == 1
                mask = np.where(mask == 3, VOID, 0).astype(np.uint8)
                mask[pet] = int(example["species"]) + 1
            else:
                highest = max(highest, int(mask[mask != VOID].max(initial=0)))
            Image.fromarray(example["image"]).save(out_dir / "images" / split / f"{i:06d}.jpg", quality=95)
            Image.fromarray(mask, "L").save(out_dir / "masks" / split / f"{i:06d}.png")
            counts[split] += 1
            if progress and (i + 1) % 500 == 0:
                progress(i + 1, total, f"writing tfds:{name} {split}")
    labels = labels or ["background", *(f"class_{k}" for k in range(1, max(highest, 1) + 1))]
    (out_dir / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return counts
