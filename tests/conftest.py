"""Shared fixtures: tiny image datasets and bad files written by the tests themselves."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TINY_CLASSES = ("red", "green", "blue")
# Bad files of the `bad_files` fixture and the error each must give.
BAD_IMAGES = [
    ("corrupt", "corrupt image"),
    ("empty", "empty file"),
    ("text", "not an image file"),
    ("bomb", "too large"),
]


def write_tiny_folder(root, per_class=8, size=40, classes=TINY_CLASSES, seed=0):
    """A class-per-folder dataset that a tiny model can learn: coloured squares on noise."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
            top, left = rng.integers(0, size // 3, 2)
            image[top : top + size // 2, left : left + size // 2, index % 3] = 230
            Image.fromarray(image).save(folder / f"{name}_{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    return write_tiny_folder(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_folder):
    """A trained tiny classify run with float32 and int8 exports (shared, read-only)."""
    from apps.classify.config import Config
    from dlkit import runner
    from dlkit.apps import get_app
    from dlkit.export.bundle import export

    app = get_app("classify")
    config = Config.tiny()
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    runner.train(app, config, data=str(tiny_folder), run_dir=run_dir)
    export(app, run_dir, "float32")
    export(app, run_dir, "int8")
    return run_dir


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory):
    """Every kind of bad or unusual image the CLI must handle."""
    root = tmp_path_factory.mktemp("bad")
    files = {}
    good = Image.fromarray(np.full((30, 40, 3), 120, np.uint8))
    good.save(root / "good.jpg")
    files["good"] = root / "good.jpg"
    data = (root / "good.jpg").read_bytes()
    (root / "corrupt.jpg").write_bytes(data[: len(data) // 2])
    files["corrupt"] = root / "corrupt.jpg"
    (root / "empty.jpg").write_bytes(b"")
    files["empty"] = root / "empty.jpg"
    (root / "text.png").write_text("this is not an image\n")
    files["text"] = root / "text.png"
    Image.fromarray(np.full((20, 20), 77, np.uint8)).save(root / "gray.png")
    files["gray"] = root / "gray.png"
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:10, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    files["rgba"] = root / "rgba.png"
    Image.fromarray(np.full((20, 20), 65535 // 2, np.uint16)).save(root / "deep.png")
    files["deep"] = root / "deep.png"
    Image.new("1", (20000, 20000)).save(root / "bomb.png")
    files["bomb"] = root / "bomb.png"
    return files


EDGE_BLOCKED = ("tensorflow", "keras", "tensorflow_datasets", "tensorflow_text", "matplotlib")


def run_without_tensorflow(argv, blocked=EDGE_BLOCKED):
    """Runs `dlkit <argv>` in a fresh process where importing TF, Keras & co. fails, as on
    a device with only `pip install dlkit`; returns the CompletedProcess (stdout has
    `edge-ok` when the command exited 0)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        f"for name in {tuple(blocked)!r}:\n"
        "    sys.modules[name] = None  # any import of it now raises ImportError\n"
        "from dlkit.cli import cli\n"
        "try:\n"
        f"    cli({[str(a) for a in argv]!r})\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('edge-ok')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
