"""Training options of the runner (every app's): two seeded `--deterministic` runs end with
identical weights; `--devices 2 --mixed-precision` trains in bfloat16 on the CPU split
into two logical devices (TensorFlow's MirroredStrategy) and saves a float32 model;
`--multi-worker` trains on two workers on 127.0.0.1 (MultiWorkerMirroredStrategy), which
end with the same weights, equal to one worker's with the same global batch. Each run is
a process of its own: determinism, the dtype policy and the device split are process-wide.
"""

import json
import os
import socket
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from dlkit.distribute import TrainOptions, float32_config

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from dlkit.registry import get_app

    return get_app("classify").write_sample_data(tmp_path_factory.mktemp("data"))


def start(run_dir, data, *flags, env=None, app="classify"):
    command = [sys.executable, "-m", "dlkit.cli", app, "train", "--tiny", "--data", str(data)]
    return subprocess.Popen(
        [*command, "--run-dir", str(run_dir), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_configs(count):
    """TF_CONFIG of each of `count` workers on 127.0.0.1."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    return [
        {"TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}
        for i in range(count)
    ]


def finished(process):
    stderr = process.communicate(timeout=600)[1]
    assert process.returncode == 0, stderr[-3000:]
    return stderr


@pytest.fixture(scope="module")
def runs(sample, tmp_path_factory):
    """The training processes, started at once (the options are process-wide, and
    overlapping their start-up costs less than running them one after another). Of each
    pair of seeded `--deterministic` runs (classify: augmentation, BatchNorm, two stages;
    sentiment: dropout), one is killed once it has checkpointed an epoch and resumed; so
    are both multi-worker processes."""
    root = tmp_path_factory.mktemp("runs")
    deterministic = ("--deterministic", "--seed", "3")
    # classify's pair also keeps a moving average of the weights, which must resume too.
    averaged = (*deterministic, "--set", "ema=0.9")
    # Two devices and the workers train sentiment (an embedding and an LSTM, no BatchNorm
    # to synchronize: seconds, where classify's 50 BatchNorm all-reduces a step take
    # minutes here).
    from dlkit.registry import get_app

    texts = get_app("sentiment").write_sample_data(root / "texts")
    workers = ("--multi-worker", "--seed", "3", "--epochs", "3")
    two = tf_configs(2)
    sentiment = (*deterministic, "--epochs", "4")
    started = {
        "a": start(root / "a", sample, *averaged),
        "b": start(root / "b", sample, *averaged),
        "sentiment_a": start(root / "sentiment_a", texts, *sentiment, app="sentiment"),
        "sentiment_b": start(root / "sentiment_b", texts, *sentiment, app="sentiment"),
        "mirrored": start(root / "mirrored", texts, "--devices", "2", "--mixed-precision", app="sentiment"),
        "worker0": start(root / "workers", texts, *workers, env=two[0], app="sentiment"),
        "worker1": start(root / "workers", texts, *workers, env=two[1], app="sentiment"),
    }
    # Killed once their run has checkpointed an epoch, then started again with --resume.
    watched = {"b": ("b",), "sentiment_b": ("sentiment_b",), "workers": ("worker0", "worker1")}
    killed_after = {}
    deadline = time.monotonic() + 600
    while len(killed_after) < len(watched) and time.monotonic() < deadline:
        for run, names in watched.items():
            state = root / run / "checkpoint" / "state.json"
            if run not in killed_after and state.exists():
                for name in names:
                    started[name].kill()
                    started[name].communicate()
                killed_after[run] = json.loads(state.read_text())["epochs_done"]
        time.sleep(0.02)
    two = tf_configs(2)
    for index, name in enumerate(("worker0", "worker1")):
        started[name] = start(root / "workers", texts, "--resume", env=two[index], app="sentiment")
    for name in ("b", "sentiment_b"):
        app = "sentiment" if name.startswith("sentiment") else "classify"
        started[name] = start(root / name, texts if app == "sentiment" else sample, "--resume", app=app)
    logs = {name: finished(process) for name, process in started.items()}
    return root, logs, killed_after


def weights(path):
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


def policies(path):
    return json.dumps(json.loads(zipfile.ZipFile(path).read("config.json")))


@pytest.mark.parametrize("run", ["", "sentiment_"])
def test_a_deterministic_run_killed_and_resumed_ends_with_the_uninterrupted_runs_weights(runs, run):
    """Bit for bit: the resumed epochs draw the uninterrupted run's data (each epoch's
    from the seed and the epoch) and dropout masks (the seed generators' states are in
    the checkpoint), and classify's moving average of the weights goes on from its
    saved state (the model holds the best epoch's average)."""
    root, logs, killed_after = runs
    assert "training with: deterministic" in logs[f"{run}a"]
    assert 1 <= killed_after[f"{run}b"] < (2 if not run else 4)
    assert f"continuing after epoch {killed_after[run + 'b']}" in logs[f"{run}b"]
    # The last epoch's checkpoint as well as the model (the best epoch's weights, maybe
    # from before the kill).
    runs_ = [root / f"{run}a", root / f"{run}b"]
    last = next((runs_[0] / "checkpoint").glob("epoch*.keras")).relative_to(runs_[0])
    for file in (last, "model.keras"):
        first, second = [weights(folder / file) for folder in runs_]
        assert len(first) == len(second)
        differences = [
            float(np.max(np.abs(x - y))) for x, y in zip(first, second) if not np.array_equal(x, y)
        ]
        assert not differences, f"{file}: {len(differences)} weights differ, by up to {max(differences)}"
    if not run:  # the average after the last epoch, which went on from the saved one
        last_average = max((runs_[0] / "checkpoint").glob("ema_epoch*.npz")).relative_to(runs_[0])
        first, second = [np.load(folder / last_average) for folder in runs_]
        assert int(first["updates"]) > 0 and sorted(first.files) == sorted(second.files)
        assert all(np.array_equal(first[key], second[key]) for key in first.files)


def test_deterministic_runs_record_their_options(runs):
    root, _, _ = runs
    saved = json.loads((root / "a" / "config.json").read_text())
    assert saved["options"] == {
        "deterministic": True,
        "jit": False,
        "mixed_precision": False,
        "devices": 1,
        "multi_worker": False,
    }


def test_two_devices_in_mixed_precision_save_a_float32_model(runs):
    root, logs, _ = runs
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
    # Deflated: the weights file shrinks, and the checkpoint Keras wrote stays as it was.
    with zipfile.ZipFile(run / "model.keras") as saved:
        assert {m.compress_type for m in saved.infolist()} == {zipfile.ZIP_DEFLATED}
        weights_member = saved.getinfo("model.weights.h5")
        assert weights_member.compress_size < weights_member.file_size


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


def test_multi_worker_without_a_valid_tf_config_is_one_clear_error(monkeypatch):
    from dlkit.distribute import tf_config
    from dlkit.errors import DlkitError

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DlkitError, match="--multi-worker needs TF_CONFIG"):
        tf_config()
    for bad in (
        "{",
        '{"cluster": {}}',
        '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
    ):
        monkeypatch.setenv("TF_CONFIG", bad)
        with pytest.raises(DlkitError, match="TF_CONFIG must be JSON"):
            tf_config()


def digest(log):
    return [line for line in log.splitlines() if line.startswith("weights sha256")]


def test_two_workers_resume_together_end_with_the_same_weights_and_only_the_chief_writes(runs):
    root, logs, killed_after = runs
    killed_after = killed_after["workers"]
    assert 1 <= killed_after < 3
    assert "worker 0 of 2" in logs["worker0"] and "worker 1 of 2" in logs["worker1"]
    assert f"continuing after epoch {killed_after}" in logs["worker0"]
    assert f"continuing after epoch {killed_after}" in logs["worker1"]
    assert len(digest(logs["worker0"])) == 1 and digest(logs["worker0"]) == digest(logs["worker1"])
    assert "worker 1 done; the chief writes" in logs["worker1"]
    run = root / "workers"
    assert (run / "model.json").exists() and (run / "metrics.json").exists()
    saved = json.loads((run / "config.json").read_text())
    assert saved["options"]["multi_worker"] is True
    # Three epochs, one history line each: the other worker wrote nothing here, and the
    # resumed epochs were not logged twice.
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history if r.get("event") == "epoch"] == [0, 1, 2]


def test_a_worker_loop_trains_as_keras_fit_and_two_workers_as_one(tmp_path):
    """The training loop of `fit_workers` on a small network with BatchNorm and class
    weights: one worker takes Keras `fit`'s steps (no shuffle: fit's reshuffling order
    is its own), two workers take one worker's (shuffled), to float rounding; so does the
    moving average of the weights, updated by the loop's per-step callbacks."""
    script = tmp_path / "train.py"
    script.write_text(WORKER_SCRIPT)

    def start_run(count, shuffle, out):
        return [
            subprocess.Popen(
                [sys.executable, str(script), str(count), str(shuffle), str(tmp_path / out)],
                env={**os.environ, **env},
                stderr=subprocess.PIPE,
                text=True,
            )
            for env in (tf_configs(count) if count else [{}])
        ]

    started = {  # at once: each is mostly TensorFlow's start-up
        "fit": start_run(0, 0, "fit"),
        "one": start_run(1, 0, "one"),
        "shuffled": start_run(1, 1, "shuffled"),
        "two": start_run(2, 1, "two"),
    }
    for processes in started.values():
        for process in processes:
            finished(process)
    fit, one, shuffled = (np.load(tmp_path / f"{name}.0.npy") for name in ("fit", "one", "shuffled"))
    first, second = np.load(tmp_path / "two.0.npy"), np.load(tmp_path / "two.1.npy")
    np.testing.assert_allclose(one, fit, atol=1e-5)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, shuffled, atol=1e-5)
    assert np.abs(first - one).max() > 1e-3  # the shuffled runs did train on another order
    half = len(one) // 2  # the trained weights, then their average: it lags behind them
    assert np.abs(one[:half] - one[half:]).max() > 1e-3 and np.abs(fit[:half] - fit[half:]).max() > 1e-3


WORKER_SCRIPT = """
import sys
count, shuffle, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
from dlkit.distribute import even_batches, fit_workers, synchronize_batch_norm, worker_strategy
from dlkit.quiet import import_tensorflow
import_tensorflow(before_start=worker_strategy if count else None)
import numpy as np, keras, tensorflow as tf
from dlkit.distribute import worker_task
tf.config.experimental.enable_op_determinism()
strategy = worker_strategy() if count else tf.distribute.get_strategy()
keras.utils.set_random_seed(1)
x = np.random.default_rng(0).normal(size=(48, 5)).astype("float32")
y = (x.sum(1) > 0).astype("int32")
data = tf.data.Dataset.from_tensor_slices((x, y))
data = (data.shuffle(48, seed=2) if shuffle else data).batch(12)
with strategy.scope():
    model = keras.Sequential([
        keras.Input((5,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    weights = {0: 1.0, 1: 2.0}
    from dlkit.callbacks import WeightAverage
    average = WeightAverage(0.5)  # its per-step updates run in either loop
    callbacks = [average, average.swap_back]
    if count:
        synchronize_batch_norm(model)
        train = even_batches(data, strategy.num_replicas_in_sync, 12, training=True)
        fit_workers(model, train, data, epochs=3, class_weight=weights, callbacks=callbacks)
    else:
        model.fit(data, validation_data=data, epochs=3, verbose=0, shuffle=False, class_weight=weights,
                  callbacks=callbacks)
index = worker_task()[1] if count else 0
trained = [w.ravel() for w in model.get_weights()]
average.swap_in()
np.save(f"{out}.{index}.npy", np.concatenate(trained + [w.ravel() for w in model.get_weights()]))
"""
