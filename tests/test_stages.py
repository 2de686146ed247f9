"""Stages' start: the optimizer is built before `fit`, so the training step is traced once."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")


@pytest.fixture
def traces(monkeypatch):
    """Counts traces of Keras' training step (a Python call each)."""
    from keras.src.backend.tensorflow import trainer

    counted = []
    original = trainer.TensorFlowTrainer.train_step

    def train_step(self, data):
        counted.append(1)
        return original(self, data)

    monkeypatch.setattr(trainer.TensorFlowTrainer, "train_step", train_step)
    return counted


def small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("build", [False, True])
def test_a_built_optimizer_leaves_one_trace_of_the_training_step(traces, build):
    from dlkit.stages import build_optimizer

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = small_model()
    if build:
        build_optimizer(model)
        assert len(model.optimizer.variables) > 2 * len(model.trainable_variables)
        build_optimizer(model)  # built already: nothing new
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    # Keras builds an unbuilt optimizer while tracing, and TensorFlow traces again.
    assert len(traces) == (1 if build else 2)


def test_the_runner_traces_each_training_step_once(traces, tmp_path):
    from dlkit import runner
    from dlkit.registry import get_app

    app = get_app("sentiment")
    config = app.default_config(tiny=True)
    data = app.write_sample_data(tmp_path / "data")
    runner.train(app, config, data=str(data), run_dir=tmp_path / "run")
    assert len(traces) == len(app.training_stages(config, {}))
