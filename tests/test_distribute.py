"""Training options of the runner (every app's): two seeded `--deterministic` runs end with
identical weights; `--devices 2 --mixed-precision` trains in bfloat16 on the CPU split
into two logical devices (TensorFlow's MirroredStrategy) and saves a float32 model. Each
run is a process of its own: determinism, the dtype policy and the device split are
process-wide.
"""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from dlkit.distribute import TrainOptions, float32_config

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from dlkit.registry import get_app

    return get_app("classify").write_sample_data(tmp_path_factory.mktemp("data"))


def start(run_dir, data, *flags):
    command = [sys.executable, "-m", "dlkit.cli", "classify", "train", "--tiny", "--data", str(data)]
    return subprocess.Popen(
        [*command, "--run-dir", str(run_dir), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process):
    stderr = process.communicate(timeout=600)[1]
    assert process.returncode == 0, stderr[-3000:]
    return stderr


@pytest.fixture(scope="module")
def runs(sample, tmp_path_factory):
    """The three training processes, started at once (the options are process-wide, and
    overlapping their start-up costs less than running them one after another)."""
    root = tmp_path_factory.mktemp("runs")
    deterministic = ("--deterministic", "--seed", "3")
    started = {
        "a": start(root / "a", sample, *deterministic),
        "b": start(root / "b", sample, *deterministic),
        "mirrored": start(root / "mirrored", sample, "--devices", "2", "--mixed-precision"),
    }
    return root, {name: finished(process) for name, process in started.items()}


def weights(path):
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


def policies(path):
    return json.dumps(json.loads(zipfile.ZipFile(path).read("config.json")))


def test_deterministic_runs_give_the_same_weights(runs):
    root, logs = runs
    assert "training with: deterministic" in logs["a"]
    first, second = weights(root / "a" / "model.keras"), weights(root / "b" / "model.keras")
    assert len(first) == len(second) and all(np.array_equal(x, y) for x, y in zip(first, second))
    saved = json.loads((root / "a" / "config.json").read_text())
    assert saved["options"] == {"deterministic": True, "jit": False, "mixed_precision": False, "devices": 1}


def test_two_devices_in_mixed_precision_save_a_float32_model(runs):
    root, logs = runs
    run = root / "mirrored"
    assert "training with: mixed_precision, 2 devices" in logs["mirrored"]
    metrics = json.loads((run / "metrics.json").read_text())["keras"]
    assert np.isfinite(metrics["val"]["accuracy"]) and np.isfinite(metrics["test"]["accuracy"])
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in history if r.get("event") == "epoch")
    # Trained in bfloat16 (the resume checkpoint keeps the policy); saved in float32.
    checkpoint = next((run / "checkpoint").glob("epoch*.keras"))
    assert "mixed_bfloat16" in policies(checkpoint)
    assert "bfloat16" not in policies(run / "model.keras")
    assert all(w.dtype == np.float32 for w in weights(run / "model.keras") if w.dtype.kind == "f")


def test_devices_after_tensorflow_started_is_one_clear_error():
    code = (
        "import tensorflow as tf\n"
        "tf.config.list_logical_devices()\n"
        "from dlkit.distribute import split_cpu\n"
        "from dlkit.errors import DlkitError\n"
        "try:\n"
        "    split_cpu(2)\n"
        "except DlkitError as error:\n"
        "    print('refused:', error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "refused: --devices 2: TensorFlow has already started" in done.stdout, done.stderr[-2000:]


def test_float32_config_replaces_every_policy():
    config = {
        "layers": [
            {"config": {"dtype": {"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}}},
            {"config": {"dtype": "float32", "units": 3}},
        ]
    }
    assert float32_config(config) == {
        "layers": [{"config": {"dtype": "float32"}}, {"config": {"dtype": "float32", "units": 3}}]
    }
    assert TrainOptions(jit=True, devices=2).describe() == "jit, 2 devices"
