"""The edge path on the frozen `tflite-runtime` 2.14 with numpy 1.26 (a device that cannot
take LiteRT): each shipped model either gives the same predictions as under LiteRT, or
is refused in one line naming the runtime it needs, as its converter recorded it.

The virtualenv is built here with pip (skipped when no package index answers).
"""

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlkit.edge.bundle import ModelBundle
from dlkit.edge.runtime import FROZEN_RUNTIME, min_runtime_version, tflite_metadata, version_tuple
from dlkit.paths import shipped_model_dir
from dlkit.registry import app_names, get_app

ROOT = Path(__file__).resolve().parents[2]
OLD_STACK = [
    f"tflite-runtime=={FROZEN_RUNTIME}",
    "numpy==1.26.4",
    "pillow>=10",
    "click>=8.1",
]


def shipped_tflite(name):
    try:
        bundle = ModelBundle.load(shipped_model_dir(name), app=name, prefer="tflite")
    except Exception:
        return None
    return bundle.path if bundle.is_tflite else None


SHIPPED = [name for name in app_names() if shipped_tflite(name)]


def test_metadata_reader_agrees_with_the_tflite_schema():
    """Our struct-based reader against TensorFlow's generated flatbuffer classes."""
    schema = pytest.importorskip("tensorflow.lite.python.schema_py_generated")
    for name in SHIPPED:
        data = shipped_tflite(name).read_bytes()
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        expected = {
            entry.name.decode(): bytes(model.buffers[entry.buffer].data) for entry in model.metadata or []
        }
        assert tflite_metadata(data) == expected
        assert (
            min_runtime_version(shipped_tflite(name))
            == expected["min_runtime_version"].rstrip(b"\0").decode()
        )
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        tflite_metadata(b"PK\x03\x04 a zip file")
    assert min_runtime_version(ROOT / "README.md") is None


@pytest.fixture(scope="module")
def old_runtime(tmp_path_factory):
    """A virtualenv with tflite-runtime 2.14, numpy 1.26 and dlkit without its dependencies."""
    venv = tmp_path_factory.mktemp("old_runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    result = subprocess.run([*pip, *OLD_STACK], capture_output=True, text=True, timeout=600)
    if result.returncode:
        pytest.skip(f"cannot install the old runtime here: {result.stderr.strip().splitlines()[-1:]}")
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True, capture_output=True, timeout=600)
    return venv / "bin" / "dlkit"


def inputs_for(app, folder):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if app.input_kind == "image":
        paths = []
        for i in range(2):
            image = rng.integers(0, 255, (90, 120, 3), np.uint8)
            image[20:70, 30:90] = (200, 60 * i, 40)
            Image.fromarray(image).save(folder / f"scene{i}.png")
            paths.append(str(folder / f"scene{i}.png"))
        return paths
    if app.input_kind == "audio":
        path = folder / "noise.wav"
        with wave.open(str(path), "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(16000)
            f.writeframes((rng.normal(0, 0.05, 16000 * 3) * 32767).astype(np.int16).tobytes())
        return [str(path)]
    return app.sample_inputs(folder)


def predictions(dlkit, app, model, inputs, out):
    result = subprocess.run(
        [str(dlkit), app.name, "predict", *inputs, "--model", str(model), "--json", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_on_the_frozen_runtime(name, old_runtime, tmp_path):
    app, model = get_app(name), shipped_tflite(name)
    inputs = inputs_for(app, tmp_path / "inputs")
    needed = min_runtime_version(model)
    old, old_records = predictions(old_runtime, app, model, inputs, tmp_path / "old")
    if needed and version_tuple(needed) > version_tuple(FROZEN_RUNTIME):
        assert old.returncode == 2, old.stderr
        assert old.stderr.strip() == (
            f"Error: {model}: needs TFLite runtime {needed} or newer, and tflite-runtime "
            f"{FROZEN_RUNTIME} is installed: pip install ai-edge-litert"
        )
        return
    assert old.returncode == 0, old.stderr[-2000:]
    new, new_records = predictions(
        Path(sys.executable).parent / "dlkit", app, model, inputs, tmp_path / "new"
    )
    assert new.returncode == 0, new.stderr[-2000:]
    assert len(old_records) == len(new_records) == len(inputs)
    for a, b in zip(old_records, new_records):
        assert_records_close(a, b)
    for old_map in (tmp_path / "old").glob("*_labels.png"):  # segment: pixel by pixel
        new_map = np.asarray(Image.open(tmp_path / "new" / old_map.name))
        assert np.mean(np.asarray(Image.open(old_map)) == new_map) >= 0.9, old_map.name


def assert_records_close(a, b, tolerance=0.1):
    """`assert_close`, except for segment's `class_confidence` (the mean confidence of
    each class's pixels, for the classes with any pixel): a class covering under 5% of the
    image in both records may be listed in one only, and its mean is not compared: it is
    a few pixels that the two runtimes' rounding moves (on a noise image, for the
    EfficientNet-Lite0 U-Net), a mean over too few to agree to 0.1."""
    if "class_confidence" in a and "class_confidence" in b:
        a, b = dict(a), dict(b)
        ours, theirs = a.pop("class_confidence"), b.pop("class_confidence")
        shares = {
            name: max(a["classes"].get(name, 0.0), b["classes"].get(name, 0.0))
            for name in ours.keys() | theirs.keys()
        }
        for name in ours.keys() ^ theirs.keys():
            assert shares[name] < 0.05, (
                f"result.class_confidence: {name} covers {shares[name]:.1%} in one record only"
            )
        large = [name for name in ours.keys() & theirs.keys() if shares[name] >= 0.05]
        assert_close(
            {k: ours[k] for k in large}, {k: theirs[k] for k in large}, tolerance, "result.class_confidence"
        )
    assert_close(a, b, tolerance)


def assert_close(a, b, tolerance=0.1, path="result"):
    """Same keys, labels and strings; numbers within `tolerance`. The int8 kernels of the
    two runtimes round differently: on 39 held-out classify photos the top probability
    moved by 0.009-0.016 on average and by up to 0.074 (19 steps of 1/256), for the
    v1 and the v2 model alike, with every label the same; on the noise images here up to
    4% of segment's pixels change class (0.3-2% on real scenes), which moves its class
    shares by up to 3 points."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            if key == "top_k":
                assert_ranking_close(a[key], b[key], tolerance, f"{path}.{key}")
            else:
                assert_close(a[key], b[key], tolerance, f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, tolerance, f"{path}[{i}]")
    elif isinstance(a, float):
        assert abs(a - b) <= tolerance, f"{path}: {a} vs {b}"
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def assert_ranking_close(a, b, tolerance, path):
    """Two top-k lists of {label, score}: scores rank by rank within `tolerance`, and each
    label's score within it too. Near-tied labels may swap places (the classes after the
    first, at probabilities near 0), and a label that left the list scores at most its
    last entry."""
    assert len(a) == len(b), path
    for i, (x, y) in enumerate(zip(a, b)):
        assert abs(x["score"] - y["score"]) <= tolerance, f"{path}[{i}]: {x} vs {y}"
    scores_a = {e["label"]: e["score"] for e in a}
    scores_b = {e["label"]: e["score"] for e in b}
    for label in scores_a.keys() | scores_b.keys():
        x = scores_a.get(label, a[-1]["score"])
        y = scores_b.get(label, b[-1]["score"])
        assert abs(x - y) <= tolerance, f"{path}: {label} {x} vs {y}"
