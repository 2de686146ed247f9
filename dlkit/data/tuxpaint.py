"""Real photo cut-outs from Tux Paint composited on real background photos.

The Debian package `tuxpaint-stamps-default` ships photographs of objects with an exact
alpha mask, filed in category folders. Pasting them at random scale and position onto
real photos (scikit-image's bundled images and the opencv-doc sample photos) gives
natural-looking scenes whose labels, masks and boxes are exact. The split is by source
cut-out, so no object is seen in two splits and the held-out score measures
generalisation to unseen objects, not to unseen backgrounds.

Version 2 of the image data (`version=2`) widens it with real material from other Debian
packages: 26 fish cut-outs from GCompris (`dlkit.data.gcompris`; the fish class had 11),
about 75 Tux Paint photo cut-outs of other things (insects, tools, instruments, trees and
mushrooms, planets, vehicles, sports gear, nuts) pasted unlabelled as distractors, and
underwater and nature photos (GCompris, `mate-backgrounds`) as more backgrounds. In
version 2 the backgrounds are split like the cut-outs, so validation and test scenes
also use backgrounds no training scene uses, and classification also gets 49 whole-scene
photos of fish, mammals and birds from GCompris (crops of real photos, split by photo
like the cut-outs). Version 1 stays as it was, scene for scene.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dlkit.console import report_skipped
from dlkit.data import draws
from dlkit.data.rcc import RccError
from dlkit.errors import DlkitError, MissingSourceError

STAMPS_ROOT = Path("/usr/share/tuxpaint/stamps")
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
INSTALL_HINT = "sudo apt-get install -y tuxpaint-stamps-default"
BACKGROUNDS_HINT = "sudo apt-get install -y opencv-doc"
MATE_BACKGROUNDS = Path("/usr/share/backgrounds/mate/nature")
MATE_HINT = "sudo apt-get install -y mate-backgrounds"
VERSIONS = (1, 2)

# Class name -> stamp folders (recursive). Only photographs: cartoon, toy and plastic
# sub-folders are drawings or figurines and are left out. Fruit and vegetables are one
# class: the boundary is culinary, not visual (peppers, pumpkins and tomatoes are
# botanical fruit filed as vegetables), and with ~20 of each no model can learn it.
PHOTO_CLASSES = {
    "birds": ["animals/birds"],
    "fish": ["animals/fish"],
    "flowers": ["plants/flowers"],
    "fruit_veg": ["food/fruit", "food/vegetables"],
    "mammals": ["animals/mammals"],
}
EXCLUDED_PARTS = {"cartoon", "toys", "plastic"}
# Drawings filed among the photos.
NON_PHOTOS = {"animals/mammals/hedgehog.png"}

# Backgrounds without any object of the classes above (no cat, baboon, fruit bowl...).
SKIMAGE_BACKGROUNDS = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "rocket",
    "text",
)
OPENCV_BACKGROUNDS = (
    "aero1.jpg",
    "aero3.jpg",
    "blox.jpg",
    "board.jpg",
    "box_in_scene.png",
    "building.jpg",
    "graf1.png",
    "home.jpg",
    "left01.jpg",
    "leuvenA.jpg",
    "leuvenB.jpg",
    "messi5.jpg",
    "rubberwhale1.png",
    "starry_night.jpg",
    "stuff.jpg",
    "sudoku.png",
)


# Version 2's distractors: photo cut-outs of things outside the classes (folders not
# searched recursively, so their cartoon sub-folders stay out).
DISTRACTOR_FOLDERS = (
    "animals/amphibians",
    "animals/insects",
    "animals/lizards",
    "food/nuts",
    "hobbies/music/brass",
    "hobbies/music/percussion",
    "hobbies/music/string",
    "hobbies/music/wind",
    "household/tools",
    "military/vehicles",
    "plants/mushrooms",
    "plants/trees",
    "space/planets",
    "sports",
    "vehicles/auto",
    "vehicles/construction",
    "vehicles/emergency",
)
# A fruit filed among trees, a glow and a goal's thin lines are no objects to ignore;
# "*_mirror" stamps are flipped copies of others.
NOT_DISTRACTORS = {"plants/trees/rambutan.png", "space/planets/0_sun.png", "sports/rugby_goal_posts.png"}
# Nature photos of mate-backgrounds without flowers or insects in them.
MATE_NATURE = (
    "Aqua.jpg",
    "Blinds.jpg",
    "Dune.jpg",
    "GreenMeadow.jpg",
    "RainDrops.jpg",
    "Storm.jpg",
    "Wood.jpg",
)


@dataclass(frozen=True)
class Cutout:
    path: Path
    label: str
    ident: str = ""  # what the split hashes; by default the path under STAMPS_ROOT

    @property
    def key(self) -> str:
        ident = self.ident or str(self.path.relative_to(STAMPS_ROOT))
        return hashlib.sha1(ident.encode()).hexdigest()


def check_version(version):
    if version not in VERSIONS:
        raise DlkitError(
            f"image data version {version!r}: there are versions {', '.join(map(str, VERSIONS))}"
        )
    return version


def find_cutouts(classes=None, root=STAMPS_ROOT, version=1):
    """Lists the photo cut-outs per class, sorted. Raises MissingSourceError if absent.

    Version 2 adds GCompris's fish (written once as PNG files under the dlkit cache)."""
    if not root.is_dir():
        raise MissingSourceError(f"Tux Paint stamps not found in {root}; install them: {INSTALL_HINT}")
    classes = classes or sorted(PHOTO_CLASSES)
    found = {}
    for name in classes:
        paths = []
        for folder in PHOTO_CLASSES[name]:
            for path in sorted((root / folder).rglob("*.png")):
                relative = path.relative_to(root)
                if not EXCLUDED_PARTS & set(relative.parts) and str(relative) not in NON_PHOTOS:
                    paths.append(Cutout(path, name))
        if not paths:
            raise MissingSourceError(f"no photos for class {name!r} under {root}; {INSTALL_HINT}")
        found[name] = paths
    if check_version(version) == 2 and "fish" in found:
        found["fish"] = found["fish"] + gcompris_fish()
    return found


def gcompris_fish():
    """GCompris's fish cut-outs as Cutouts (PNG files in the dlkit cache, made once)."""
    from dlkit.data import gcompris
    from dlkit.paths import cache_dir

    skipped = []
    try:
        files = gcompris.export_fish(cache_dir() / "gcompris-fish", skipped=skipped)
    except RccError as error:  # a damaged bundle: no GCompris fish (a missing one stops)
        files, skipped = {}, [str(error)]
    report_skipped(skipped)
    return [Cutout(path, "fish", f"gcompris/clickgame/{path.stem}") for path in sorted(files)]


def gcompris_photos():
    """Version 2's whole-scene photos (classification only): {class: [Cutout]} (JPEG
    files in the dlkit cache, made once)."""
    from dlkit.data import gcompris
    from dlkit.paths import cache_dir

    skipped = []
    files = gcompris.export_photos(cache_dir() / "gcompris-photos", skipped=skipped)
    report_skipped(skipped)
    found = {}
    for path, (label, _) in sorted(files.items()):
        found.setdefault(label, []).append(Cutout(path, label, f"gcompris/photos/{path.stem}"))
    return found


def photo_view(image, rng, size):
    """A view of a whole photo as a user's photo reaches the model: a random crop keeping
    80-100% of its width and height, flipped half the time, resized to (size, size)."""
    width, height = image.size
    crop_w, crop_h = (int(round(side * rng.uniform(0.8, 1.0))) for side in (width, height))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    view = image.crop((left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        view = view.transpose(Image.FLIP_LEFT_RIGHT)
    return view.resize((size, size), Image.BILINEAR)


def find_distractors(root=STAMPS_ROOT):
    """Version 2's unlabelled photo cut-outs of other things, sorted, as Cutouts labelled
    "other"."""
    if not root.is_dir():
        raise MissingSourceError(f"Tux Paint stamps not found in {root}; install them: {INSTALL_HINT}")
    found = []
    for folder in DISTRACTOR_FOLDERS:
        for path in sorted((root / folder).glob("*.png")):
            relative = str(path.relative_to(root))
            if relative not in NOT_DISTRACTORS and not path.stem.endswith("_mirror"):
                found.append(Cutout(path, "other", relative))
    return found


def split_cutouts(cutouts, val_fraction=0.15, test_fraction=0.15):
    """Assigns each cut-out to one split by a stable hash of its path.

    Every class gets at least one validation and one test cut-out; the assignment does
    not depend on the order or the number of other files.
    """
    splits = {"train": [], "val": [], "test": []}
    for items in cutouts.values():
        for split, part in _ranked_split(items, lambda c: c.key, val_fraction, test_fraction).items():
            splits[split] += part
    return splits


def _ranked_split(items, key, val_fraction, test_fraction):
    """{split: items}: sorted by `key` (a hash), the first round(n * test_fraction) go to
    test, the next round(n * val_fraction) to val (at least one each), the rest to train."""
    ordered = sorted(items, key=key)
    n_test = max(1, round(len(ordered) * test_fraction))
    n_val = max(1, round(len(ordered) * val_fraction))
    return {
        "test": ordered[:n_test],
        "val": ordered[n_test : n_test + n_val],
        "train": ordered[n_test + n_val :],
    }


def load_backgrounds(version=1):
    """Real background photos as RGB uint8 arrays: scikit-image's and opencv-doc's; in
    version 2 also GCompris's underwater photos and mate-backgrounds' nature photos (a
    dict split -> list, split by a stable hash of each photo's name: 70/15/15).

    All are required, so the dataset is the same on every machine.
    """
    if check_version(version) == 2:
        return _split_backgrounds(_named_backgrounds())
    return list(_named_backgrounds(v1_only=True).values())


def _named_backgrounds(v1_only=False):
    try:
        import skimage.data
    except ImportError:
        raise MissingSourceError("scikit-image is needed for backgrounds: pip install scikit-image") from None
    backgrounds = {}
    for name in SKIMAGE_BACKGROUNDS:
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        backgrounds[f"skimage/{name}"] = image[..., :3].astype(np.uint8)
    for name in OPENCV_BACKGROUNDS:
        path = OPENCV_DATA / name
        if not path.exists():
            raise MissingSourceError(f"background photo {path} not found; install it: {BACKGROUNDS_HINT}")
        backgrounds[f"opencv/{name}"] = np.asarray(Image.open(path).convert("RGB"))
    if v1_only:
        return backgrounds
    from dlkit.data import gcompris

    skipped = []
    try:
        backgrounds.update(gcompris.sea_backgrounds(skipped=skipped))
    except RccError as error:  # a damaged bundle: no underwater photos (a missing one stops)
        skipped.append(str(error))
    for name in MATE_NATURE:
        path = MATE_BACKGROUNDS / name
        if not path.exists():
            raise MissingSourceError(f"background photo {path} not found; install it: {MATE_HINT}")
        try:
            with Image.open(path) as image:
                image.draft("RGB", (image.size[0] // 4, image.size[1] // 4))  # 4K photos: decode at 1/4
                backgrounds[f"mate/{name}"] = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            skipped.append(f"{path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
    report_skipped(skipped)
    return backgrounds


def _split_backgrounds(named, val_fraction=0.15, test_fraction=0.15):
    """{name: image} -> {split: [images]} by a stable hash of the names, as the cut-outs
    are split (at least one per held-out split)."""
    parts = _ranked_split(
        named, lambda name: hashlib.sha1(name.encode()).hexdigest(), val_fraction, test_fraction
    )
    return {split: [named[name] for name in names] for split, names in parts.items()}


def random_background(backgrounds, rng, size):
    """A random crop of a random background, resized to (size, size)."""
    image = backgrounds[rng.integers(len(backgrounds))]
    side, top, left, mirror = draws.crop(rng, *image.shape[:2])
    crop = Image.fromarray(image[top : top + side, left : left + side])
    if mirror:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return crop.resize((size, size), Image.BILINEAR).convert("RGBA")


def load_cutout(path) -> Image.Image:
    """The cut-out as RGBA, cropped to the extent of its alpha mask."""
    image = Image.open(path).convert("RGBA")
    box = image.getchannel("A").point(lambda a: 255 if a > 16 else 0).getbbox()
    return image.crop(box) if box else image


def paste(canvas: Image.Image, cutout: Image.Image, rng, scale_range=(0.45, 0.9)):
    """Pastes `cutout` on `canvas` at a random scale and position; returns the alpha box.

    The longer side of the object becomes `scale` times the canvas side; the object
    stays inside the canvas.
    """
    size = canvas.size[0]
    scale = rng.uniform(*scale_range)
    factor = scale * size / max(cutout.size)
    width = max(4, int(cutout.size[0] * factor))
    height = max(4, int(cutout.size[1] * factor))
    obj = cutout.resize((width, height), Image.LANCZOS)
    if rng.random() < 0.5:
        obj = obj.transpose(Image.FLIP_LEFT_RIGHT)
    left = int(rng.integers(0, size - width + 1))
    top = int(rng.integers(0, size - height + 1))
    canvas.alpha_composite(obj, (left, top))
    return left, top, left + width, top + height


def build_classification(
    out_dir, image_size=224, views=None, seed=0, scale_range=(0.6, 0.95), progress=None, version=1
):
    """Writes the composited classification dataset as `out_dir/<split>/<class>/*.jpg`.

    Args:
        out_dir: Path. Created; existing files are overwritten.
        image_size: int. Side of the square scenes.
        views: dict split -> number of scenes per cut-out.
        seed: int. Everything is determined by it.
        scale_range: (low, high). The object's longer side as a fraction of the scene: the
            object dominates, as in a photo of it, while the background stays in view.
        progress: callable(done, total) or None.
        version: int. The image data's version (module docstring).

    Returns:
        dict with counts per split and class.
    """
    views = views or {"train": 10, "val": 5, "test": 6}
    out_dir = Path(out_dir)
    splits = split_cutouts(find_cutouts(version=version))
    photos = split_cutouts(gcompris_photos()) if version == 2 else {}
    backgrounds = load_backgrounds(version)
    total = sum(len(items) * views[split] for part in (splits, photos) for split, items in part.items())

    def cutout_views(item, split):  # the cut-out pasted on a background of its split
        obj = load_cutout(item.path)
        pool = backgrounds if version == 1 else backgrounds[split]

        def draw(rng):
            canvas = random_background(pool, rng, image_size)
            paste(canvas, obj, rng, scale_range)
            return canvas

        return draw

    def whole_photo_views(item, split):
        image = Image.open(item.path).convert("RGB")
        return lambda rng: photo_view(image, rng, image_size)

    done = 0
    counts = {}
    for part, views_of in ((splits, cutout_views), (photos, whole_photo_views)):
        for split, items in part.items():
            for item in items:
                rng = np.random.default_rng([seed, int(item.key[:12], 16)])
                draw = views_of(item, split)
                folder = out_dir / split / item.label
                folder.mkdir(parents=True, exist_ok=True)
                for view in range(views[split]):
                    draw(rng).convert("RGB").save(folder / f"{item.path.stem}_{view}.jpg", quality=92)
                    done += 1
                    counts.setdefault(split, {}).setdefault(item.label, 0)
                    counts[split][item.label] += 1
                if progress:
                    progress(done, total)
    return counts
