"""Real photos from GCompris's resource bundles (Debian `gcompris-qt-data`), with the
licence of each file from the bundle's README files.

What the image data takes from it:
- fish cut-outs: the xfishtank sprites of the click game (public domain), photographs of
  24 fish, a shark and a manta ray with an alpha mask; the first frame of each sprite
  sheet (the game's table gives the number of frames);
- underwater background photos (CC0 and public domain; the one of a starfish is left
  out: sea creatures are fish here);
- whole-scene photos of the classes, for classification only (no mask): the 28 fish
  photos of the categorization game and the mammals and birds of the two animal
  explorers (public domain and CC0; the three reptiles are left out).

Files are cached as PNG under the dlkit cache the first time, so later runs read plain
files. A bundle that cannot be read is skipped and reported; a missing package is a
one-line message naming it.
"""

import io
import re
from dataclasses import dataclass
from pathlib import Path

from dlkit.data.rcc import RccBundle, RccError
from dlkit.errors import MissingSourceError
from dlkit.io import atomic_path

GCOMPRIS_ROOT = Path("/usr/share/gcompris-qt/rcc")
INSTALL_HINT = "sudo apt-get install -y gcompris-qt-data"
CLICKGAME = "gcompris/src/activities/clickgame"
# Sprites that are not one fish: an animation of jaws.
NOT_FISH = {"teeth"}
# Underwater backgrounds: no fish, coral or sea creature in the foreground (sea6 is a
# basket starfish).
SEA_BACKGROUNDS = ("sea1", "sea2", "sea3", "sea4", "sea5")
# Whole-scene photos: (bundle, folder) -> {file stem: class}; None takes every .webp.
WORLD_ANIMALS = "gcompris/src/activities/explore_world_animals/resource/animals"
FARM_ANIMALS = "gcompris/src/activities/explore_farm_animals/resource/animals"
PHOTO_SETS = {
    ("categorization.rcc", "gcompris/src/activities/categorization/resource/images/fishes"): "fish",
    ("explore_world_animals.rcc", WORLD_ANIMALS): {
        **dict.fromkeys(
            ("bison", "giraffe", "hedgehog", "jaguar", "kangaroo", "koala", "lemur", "moose")
            + ("narwhal", "panda", "polar_bear"),
            "mammals",
        ),
        "scarlet_macaw": "birds",
    },
    ("explore_farm_animals.rcc", FARM_ANIMALS): {
        **dict.fromkeys(("cat", "cow", "dog", "horse", "pig", "sheep"), "mammals"),
        **dict.fromkeys(("chicken", "duck", "owl"), "birds"),
    },
}
# Photos are stored with their longer side at most this (the animals are 1024 wide).
PHOTO_SIDE = 512


@dataclass(frozen=True)
class Licence:
    copyright: str
    licence: str
    source: str = ""


def parse_readme(text):
    """GCompris's README blocks ("Copyright:", "License:", "Source:", then "Files:" and
    one file per line) -> {file name: Licence}."""
    licences = {}
    for block in re.split(r"\n\s*\n", text):
        fields, files, in_files = {}, [], False
        for line in block.splitlines():
            line = line.strip()
            key, _, value = line.partition(":")
            if in_files and line:
                files.append(line)
            elif key.lower() in ("copyright", "license", "source"):
                fields[key.lower()] = value.strip()
            elif key.lower() == "files":
                in_files = True
        for name in files:
            licences[name] = Licence(
                fields.get("copyright", ""), fields.get("license", ""), fields.get("source", "")
            )
    return licences


def open_bundle(name, root=None):
    """The bundle `root/name` (GCOMPRIS_ROOT by default); MissingSourceError when
    GCompris's data is not installed."""
    root = GCOMPRIS_ROOT if root is None else root
    path = Path(root) / name
    if not Path(root).is_dir():
        raise MissingSourceError(f"GCompris's photos not found in {root}; install them: {INSTALL_HINT}")
    if not path.exists():
        raise MissingSourceError(f"{path} not found; reinstall it: {INSTALL_HINT}")
    return RccBundle(path)


def sprite_frames(script):
    """The click game's fish table (clickgame.js) -> {image file: number of frames}."""
    entries = re.findall(r'"imgName"\s*:\s*"([^"]+)"\s*,\s*"nbFrame"\s*:\s*(\d+)', script)
    return {name: int(frames) for name, frames in entries}


def export_fish(out_dir, root=None, skipped=None):
    """Writes each fish sprite's first frame as `out_dir/<name>.png` (RGBA) once; returns
    {path: Licence} of the files written or already there. Unreadable sprites are left
    out and described in `skipped` (a list)."""
    from PIL import Image

    out_dir = Path(out_dir)
    bundle = open_bundle("clickgame.rcc", root)
    frames = sprite_frames(bundle.read(f"{CLICKGAME}/clickgame.js").decode("utf-8", "replace"))
    licences = parse_readme(bundle.read(f"{CLICKGAME}/resource/README").decode("utf-8", "replace"))
    found = {}
    for file, count in sorted(frames.items()):
        stem = Path(file).stem
        if stem in NOT_FISH:
            continue
        path = out_dir / f"{stem}.png"
        if not path.exists():
            try:
                image = Image.open(io.BytesIO(bundle.read(f"{CLICKGAME}/resource/{file}")))
                image = image.convert("RGBA")
            except (RccError, OSError, ValueError) as error:
                if skipped is not None:
                    skipped.append(f"gcompris {file}: {str(error).splitlines()[0]}")
                continue
            frame = image.crop((0, 0, image.size[0] // max(1, count), image.size[1]))
            with atomic_path(path) as tmp:
                frame.save(tmp)
        found[path] = licences.get(file, Licence("xfishtank", "Public domain"))
    return found


def sea_backgrounds(root=None, skipped=None):
    """The underwater background photos as RGB uint8 arrays, {name: array}."""
    import numpy as np
    from PIL import Image

    bundle = open_bundle("clickgame.rcc", root)
    images = {}
    for stem in SEA_BACKGROUNDS:
        try:
            data = bundle.read(f"{CLICKGAME}/resource/{stem}.webp")
            images[f"gcompris/{stem}"] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        except (RccError, OSError, ValueError) as error:
            if skipped is not None:
                skipped.append(f"gcompris {stem}.webp: {str(error).splitlines()[0]}")
    return images


def export_photos(out_dir, root=None, skipped=None):
    """Writes the whole-scene photos as `out_dir/<class>/<bundle>-<name>.jpg` once (longer
    side at most PHOTO_SIDE); returns {path: (class, Licence)} of the files written or
    already there. A bundle or photo that cannot be read is left out and described in
    `skipped` (a list)."""
    from PIL import Image

    out_dir = Path(out_dir)
    found = {}
    for (bundle_name, folder), classes in PHOTO_SETS.items():
        try:
            bundle = open_bundle(bundle_name, root)
            names = [f for f in bundle.files() if f.startswith(f"{folder}/") and f.endswith(".webp")]
            licences = parse_readme(bundle.read(f"{folder}/README").decode("utf-8", "replace"))
        except (RccError, OSError) as error:
            if skipped is not None:
                skipped.append(f"gcompris {bundle_name}: {str(error).splitlines()[0]}")
            continue
        for name in sorted(names):
            stem = Path(name).stem
            label = classes if isinstance(classes, str) else classes.get(stem)
            if label is None:
                continue
            path = out_dir / label / f"{Path(bundle_name).stem}-{stem}.jpg"
            if not path.exists():
                try:
                    image = Image.open(io.BytesIO(bundle.read(name))).convert("RGB")
                except (RccError, OSError, ValueError) as error:
                    if skipped is not None:
                        skipped.append(f"gcompris {Path(name).name}: {str(error).splitlines()[0]}")
                    continue
                image.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.LANCZOS)
                with atomic_path(path) as tmp:
                    image.save(tmp, quality=92)
            found[path] = (label, licences.get(Path(name).name, Licence("", "")))
    return found
