import io as stdio

import keras
import numpy as np

from dlkit import io
from dlkit.callbacks import BestCheckpoint, JSONLLogger, Progress, ResumeCheckpoint
from dlkit.callbacks.resume import read_state


def tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data():
    rng = np.random.default_rng(0)
    return rng.random((16, 3)).astype("float32"), rng.integers(0, 2, 16)


def test_jsonl_logger_and_progress_without_tty(tmp_path):
    x, y = data()
    stream = stdio.StringIO()
    history = tmp_path / "history.jsonl"
    tiny_model().fit(
        x,
        y,
        epochs=3,
        verbose=0,
        validation_data=(x, y),
        callbacks=[JSONLLogger(history, stage="head"), Progress(3, stage="head", stream=stream)],
    )
    records = [r for r in io.read_jsonl(history) if r["event"] == "epoch"]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert all(r["stage"] == "head" and "val_loss" in r for r in records)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("head epoch 1/3 ")
    assert "\r" not in stream.getvalue()


def test_progress_live_bar_redraws_in_place():
    x, y = data()
    stream = stdio.StringIO()
    progress = Progress(1, stream=stream, live=True)
    progress._last_draw = -1e9
    tiny_model().fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[progress])
    assert "\r" in stream.getvalue() and stream.getvalue().endswith("\n")


def test_best_checkpoint_saves_only_improvements(tmp_path):
    model = tiny_model()
    best = BestCheckpoint(tmp_path / "best.npz", monitor="val_accuracy", mode="max")
    best.set_model(model)
    best.on_epoch_end(0, {"val_accuracy": 0.5})
    first = (tmp_path / "best.npz").stat().st_mtime_ns
    best.on_epoch_end(1, {"val_accuracy": 0.4})
    assert (tmp_path / "best.npz").stat().st_mtime_ns == first
    assert best.best == 0.5 and best.best_epoch == 0
    best.on_epoch_end(2, {"val_accuracy": float("nan")})
    assert best.best == 0.5
    best.on_epoch_end(3, {"val_accuracy": 0.9})
    assert best.best_epoch == 3


def test_resume_checkpoint_keeps_optimizer_and_dropout_state(tmp_path):
    from dlkit.callbacks.resume import restore_seed_states, seed_states

    x, y = data()
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dropout(0.5), keras.layers.Dense(2, activation="softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[ResumeCheckpoint(tmp_path, stage_index=1, extra=lambda: {"best": 0.7})],
    )
    state = read_state(tmp_path)
    dropout = [np.asarray(v).tolist() for v in seed_states(model)]
    assert len(dropout) == 1
    assert state == {
        "epochs_done": 2,
        "stage": 1,
        "model": "epoch2.keras",
        "best": 0.7,
        "seed_states": dropout,
    }
    # The state names its model; the previous epoch's is gone.
    assert sorted(p.name for p in tmp_path.glob("*.keras")) == ["epoch2.keras"]
    restored = keras.saving.load_model(tmp_path / "epoch2.keras")
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) > 0
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The loaded model's dropout starts afresh; the recorded state puts it back.
    assert [np.asarray(v).tolist() for v in seed_states(restored)] != dropout
    restore_seed_states(restored, state)
    assert [np.asarray(v).tolist() for v in seed_states(restored)] == dropout


def test_read_state_without_checkpoint(tmp_path):
    assert read_state(tmp_path) is None


def test_best_weights_restore_after_the_optimizer_changed(tmp_path, recwarn):
    x, y = data()
    model = tiny_model()
    model.fit(x, y, epochs=1, verbose=0)
    best = BestCheckpoint(tmp_path / "best.npz", monitor="val_accuracy", mode="max")
    best.set_model(model)
    best.on_epoch_end(0, {"val_accuracy": 0.9})
    saved = [w.copy() for w in model.get_weights()]
    model.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")  # a new stage
    model.fit(x, y, epochs=2, verbose=0)
    assert best.restore(model)
    for a, b in zip(model.get_weights(), saved):
        np.testing.assert_array_equal(a, b)
    assert not [w for w in recwarn if "Skipping variable loading" in str(w.message)]
    assert not BestCheckpoint(tmp_path / "none.npz").restore(model)
