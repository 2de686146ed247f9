"""The offline default faces: real photos with identities for evaluation, and real faces
without identities for training, fetched once into the dlkit cache.

- People (evaluation only): dlib's `examples/johns/`, 5 people x 11 different aligned
  150 x 150 photos, from the Debian `dlib` source package; Barack Obama (3 photos) and
  Joe Biden (1) from the tests of the `face_recognition==1.3.0` source distribution. The
  photos come from a celebrity face set of unclear provenance: they are fetched at run
  time and never committed.
- Faces without identities (training, each face its own pseudo-identity): the group
  photos of dlib's `examples/faces/`, scikit-image's astronaut and the 100 faces of its
  `lfw_subset`, and matplotlib's `grace_hopper.jpg`.

`dlkit face data fetch` (or the first run that needs them) downloads the two source
packages with apt-get and pip; the Debian one needs `deb-src` lines (FETCH_HINT).
"""

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from dlkit.errors import MissingSourceError

VERSION = "face-real-v1"
PEOPLE = "people"  # a folder per person
UNLABELLED = "unlabelled"  # photos whose faces are each a pseudo-identity
SDIST = "face_recognition==1.3.0"
SDIST_PHOTOS = {
    "obama.jpg": "Barack_Obama",
    "obama2.jpg": "Barack_Obama",
    "obama3.jpg": "Barack_Obama",
    "biden.jpg": "Joe_Biden",
}
DLIB_MEMBERS = ("examples/johns/", "examples/faces/")
FETCH_HINT = (
    "enable Debian source packages (as root: sed 's/^Types: deb$/Types: deb-src/' "
    "/etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/debian-src.sources "
    "&& apt-get update), then run: dlkit face data fetch"
)


def _run(command, cwd, what):
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or ["no reason given"])[-1][:200]
        raise MissingSourceError(f"cannot fetch {what} ({reason}); {FETCH_HINT}")


def fetch_dlib_examples(target, work):
    """examples/johns and examples/faces of the Debian dlib source package into `target`."""
    print(
        "fetching dlib's example faces: apt-get source --download-only dlib (about 210 MB, once)",
        file=sys.stderr,
    )
    _run(["apt-get", "source", "--download-only", "dlib"], work, "the dlib source package")
    archives = [p for p in Path(work).glob("dlib_*.orig.tar.*") if "models" not in p.name]
    if not archives:
        raise MissingSourceError(f"the dlib source package has no orig tarball; {FETCH_HINT}")
    with tarfile.open(archives[0]) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/", 1)
            inner = parts[1] if len(parts) == 2 else ""
            # Regular image files under the two folders only: no links, no '..'.
            if not (member.isfile() and inner.startswith(DLIB_MEMBERS) and ".." not in inner):
                continue
            if not inner.lower().endswith(".jpg") or "dogs" in inner:
                continue
            kind, rest = inner[len("examples/") :].split("/", 1)
            out = target / (PEOPLE if kind == "johns" else UNLABELLED) / rest
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(archive.extractfile(member).read())


def fetch_sdist_photos(target, work):
    """Obama and Biden from the face_recognition source distribution into `target`."""
    print(f"fetching two more people: pip download {SDIST} (3 MB, once)", file=sys.stderr)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            SDIST,
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(work),
            "-q",
        ],
        work,
        f"the {SDIST} source distribution",
    )
    archives = list(Path(work).glob("face_recognition-*.tar.gz"))
    if not archives:
        raise MissingSourceError(f"pip gave no {SDIST} source distribution")
    with tarfile.open(archives[0]) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if member.isfile() and "/tests/test_images/" in member.name and name in SDIST_PHOTOS:
                out = target / PEOPLE / SDIST_PHOTOS[name] / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(archive.extractfile(member).read())


def write_package_faces(target):
    """The faces that Python packages carry (scikit-image, matplotlib) as image files."""
    import matplotlib
    import skimage.data
    from PIL import Image

    folder = target / UNLABELLED
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(skimage.data.astronaut()).save(folder / "astronaut.png")
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.is_file():
        shutil.copyfile(hopper, folder / "grace_hopper.jpg")
    for index, face in enumerate(lfw_faces()):
        Image.fromarray(face).save(folder / f"lfw_subset_{index:03d}.png")


def lfw_faces(size=150):
    """scikit-image's 100 LFW faces (25 x 25 grey) enlarged to `size` and centred on a
    black square twice as large, so the detector sees a whole face with room around it."""
    import skimage.data
    from PIL import Image

    faces = []
    for face in skimage.data.lfw_subset()[:100]:
        grey = Image.fromarray((face * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
        canvas = np.zeros((2 * size, 2 * size, 3), np.uint8)
        canvas[size // 2 : size // 2 + size, size // 2 : size // 2 + size] = np.asarray(grey)[..., None]
        faces.append(canvas)
    return faces


def default_folder():
    """The cached dataset folder (PEOPLE/ and UNLABELLED/), fetched on first use."""
    from dlkit.data.cache import build_once

    def build(folder):
        with tempfile.TemporaryDirectory(prefix="dlkit-face-") as work:
            fetch_dlib_examples(folder, work)
            fetch_sdist_photos(folder, work)
        write_package_faces(folder)
        people = sorted(p.name for p in (folder / PEOPLE).iterdir())
        return {
            "people": {name: len(list((folder / PEOPLE / name).iterdir())) for name in people},
            "unlabelled_photos": len(list((folder / UNLABELLED).iterdir())),
        }

    return build_once(VERSION, build)
