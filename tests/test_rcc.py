"""The Qt resource bundle reader against bundles made by Qt's own `rcc` tool (Debian
`qt6-base-dev-tools`), in every format version and compression it writes, and on the
GCompris bundles the image data reads."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dlkit.data.rcc import RccBundle, RccError

RCC_TOOL = shutil.which("rcc") or next(
    (str(p) for p in (Path("/usr/lib/qt6/libexec/rcc"), Path("/usr/lib/qt5/bin/rcc")) if p.exists()), None
)
needs_rcc = pytest.mark.skipif(RCC_TOOL is None, reason="Qt's rcc tool: apt-get install qt6-base-dev-tools")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Files to bundle: compressible text, incompressible bytes, nested folders, an empty
    file and a non-ASCII name; returns (folder, {path in the bundle: bytes})."""
    folder = tmp_path_factory.mktemp("tree")
    rng = np.random.default_rng(0)
    files = {
        "notes.txt": b"the same line again and again\n" * 400,
        "images/noise.bin": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "images/deep/er/leaf.txt": "é à ü\n".encode() * 50,
        "empty.txt": b"",
        "images/fïsh.dat": b"\x00\x01" * 1000,
    }
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    entries = "\n".join(f"<file>{name}</file>" for name in files)
    (folder / "bundle.qrc").write_text(f'<RCC><qresource prefix="/res">\n{entries}\n</qresource></RCC>\n')
    return folder, {f"res/{name}": data for name, data in files.items()}


def build(folder, out, *options):
    subprocess.run([RCC_TOOL, "--binary", *options, "-o", str(out), "bundle.qrc"], cwd=folder, check=True)
    return out


@needs_rcc
@pytest.mark.parametrize(
    "options",
    [
        ("--format-version", "1", "--compress-algo", "zlib"),
        ("--format-version", "2", "--compress-algo", "zlib"),
        ("--format-version", "3", "--compress-algo", "zlib"),
        ("--format-version", "3", "--no-compress"),
        ("--format-version", "3", "--compress-algo", "zstd"),
    ],
)
def test_reads_every_file_qt_bundled(tree, tmp_path, options):
    folder, files = tree
    path = build(folder, tmp_path / "bundle.rcc", *options)
    bundle = RccBundle(path)
    assert bundle.version == int(options[1])
    assert bundle.files() == sorted(files)
    for name, data in files.items():
        assert bundle.read(name) == data, name
    flags = {bundle._index[name][0] for name in files}
    if "--no-compress" in options:
        assert flags == {0}
    else:  # the text compresses, the noise does not: both kinds are read
        assert 0 in flags and len(flags) == 2


@needs_rcc
def test_damaged_bundles_are_one_line_errors(tree, tmp_path):
    folder, files = tree
    good = build(folder, tmp_path / "good.rcc", "--compress-algo", "zlib").read_bytes()
    (tmp_path / "text.rcc").write_text("not a bundle at all")
    (tmp_path / "short.rcc").write_bytes(good[: len(good) // 3])
    header = bytearray(good)
    header[4:8] = (9).to_bytes(4, "big")
    (tmp_path / "future.rcc").write_bytes(bytes(header))
    for name, message in (
        ("text.rcc", "not a Qt resource bundle"),
        ("short.rcc", "truncated Qt resource bundle"),
        ("future.rcc", "version 9"),
        ("missing.rcc", "cannot read it"),
    ):
        with pytest.raises(RccError, match=message) as raised:
            RccBundle(tmp_path / name).files()
        assert "\n" not in str(raised.value)
    with pytest.raises(RccError, match="no file 'res/absent.txt'"):
        RccBundle(tmp_path / "good.rcc").read("res/absent.txt")


GCOMPRIS = Path("/usr/share/gcompris-qt/rcc")


@pytest.mark.skipif(not GCOMPRIS.is_dir(), reason="apt-get install gcompris-qt-data")
def test_reads_the_gcompris_photos():
    from PIL import Image

    bundle = RccBundle(GCOMPRIS / "categorization.rcc")
    photos = [f for f in bundle.files() if "/images/fishes/" in f and f.endswith(".webp")]
    assert len(photos) == 28
    import io

    image = Image.open(io.BytesIO(bundle.read(photos[0])))
    image.load()
    assert image.mode == "RGB" and min(image.size) > 100
    readme = bundle.read("gcompris/src/activities/categorization/resource/images/fishes/README").decode()
    assert "License:" in readme
