"""The wheel installs the apps as dlkit.apps (no top-level `apps`) and carries the shipped
edge bundles, so a plain (non-editable) install predicts with the shipped models."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from conftest import EDGE_BLOCKED

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    listed = set(pyproject()["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dlkit").rglob("__init__.py")}
    found |= {
        "dlkit." + ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "apps").rglob("__init__.py")
    }
    found.add("dlkit.models")
    assert listed == found


def test_saved_models_stay_within_their_budget():
    """DESIGN's budget for every shipped model together: 150 MiB of files in the tree."""
    files = [p for p in (ROOT / "saved_models").rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    largest = sorted(files, key=lambda p: p.stat().st_size)[-3:]
    assert total <= 150 * 2**20, [
        f"{p.relative_to(ROOT)}: {p.stat().st_size / 2**20:.1f} MiB" for p in largest
    ]


def test_wheel_installs_apps_inside_dlkit_and_predicts_with_shipped_models(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            tmp_path,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = tmp_path.glob("dlkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"dlkit", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "dlkit/apps/classify/__init__.py" in names and "dlkit/models/translate/model.tflite" in names
    assert not any(name.endswith(".keras") for name in names)  # edge bundles only
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    import skimage.data
    from PIL import Image

    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "astronaut.png")
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        f"for name in {EDGE_BLOCKED!r}:\n"
        "    sys.modules[name] = None\n"
        "import dlkit\n"
        f"assert dlkit.__file__.startswith({str(site)!r}), dlkit.__file__\n"
        "print(dlkit.load('translate').predict(['3 May 1979'])[0]['translation'])\n"
        "print(dlkit.load('sentiment').predict(['a wonderful, moving film'])[0]['label'])\n"
        "print(len(dlkit.load('mlm').predict(['the [MASK] returns a [MASK]'])[0]['masks']))\n"
        "print(len(dlkit.load('face').predict(['astronaut.png'], gallery='none')[0]['faces']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # sentiment and mlm read their vocab.txt; face runs the detector it ships beside its model
    assert result.stdout.split() == ["1979-05-03", "positive", "2", "1"]
