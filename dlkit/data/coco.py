"""COCO instances files as detect and segment read them: the document's structure checked
once, each image entry checked on its own (numpy-free, no pycocotools).

A file whose structure is wrong (no `images`, a category without a name, JSON nested too
deep) is a one-line InvalidInputError naming it; an image entry without a usable name or
size, or naming a file outside the images folder, is skipped with a line.
"""

from pathlib import Path

from dlkit import io
from dlkit.errors import InvalidInputError

# A declared size beyond this is refused before a mask of that size is allocated (Pillow
# refuses images over 2 x 89.5 million pixels as decompression bombs).
MAX_PIXELS = 2 * 89_478_485


def read_document(json_path):
    """A COCO instances file -> (image entries, {image id: [annotations]}, {category id: name})."""
    try:
        data = io.read_json(json_path)
        images, annotations, categories = data["images"], data.get("annotations", []), data["categories"]
        for key, value in (("images", images), ("annotations", annotations), ("categories", categories)):
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise TypeError(f"'{key}' must be a list of objects")
        category_names = {c["id"]: str(c["name"]) for c in categories}
        if not all(isinstance(key, int) for key in category_names):
            raise TypeError("category ids must be integers")
        by_image = {}
        for annotation in annotations:
            hash(annotation.get("category_id"))  # a list here is a TypeError, as in image_id
            by_image.setdefault(annotation.get("image_id"), []).append(annotation)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidInputError(
            f"{json_path}: not a COCO instances file ({type(error).__name__}: {error})"
        ) from None
    return images, by_image, category_names


def image_entry(image, json_path, images_dir, skipped):
    """(path, width, height) of one image entry, or None after adding a line to `skipped`:
    a missing or non-numeric size, a size under 1 or over MAX_PIXELS, a file name that leaves `images_dir`
    (absolute, or with `..`), or a file that does not exist."""
    where = f"{Path(json_path).name}: image {image.get('id')}"
    name = image.get("file_name")
    try:
        width, height = float(image["width"]), float(image["height"])
    except (KeyError, TypeError, ValueError):
        skipped.append(f"{where}: no numeric width and height")
        return None
    if not isinstance(name, str) or not name:
        skipped.append(f"{where}: no file_name")
    elif io.leaves_folder(name):
        skipped.append(f"{where}: file_name {name!r} is outside {images_dir}")
    elif not (1 <= width and 1 <= height and width * height <= MAX_PIXELS):
        skipped.append(f"{where}: size {image['width']}x{image['height']}")
    elif not (Path(images_dir) / name).is_file():
        skipped.append(f"{Path(json_path).name}: image {name} not found in {images_dir}")
    else:
        return Path(images_dir) / name, width, height
    return None
