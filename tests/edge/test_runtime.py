import builtins

import numpy as np
import pytest

from conftest import run_without_tensorflow
from dlkit.edge.bundle import ModelBundle, find_model
from dlkit.edge.runtime import EdgeModel, dequantize, load_interpreter, quantize
from dlkit.errors import DlkitError, InvalidInputError


def test_quantize_round_trip_within_half_a_step():
    detail = {"dtype": np.int8, "quantization": (0.05, -3)}
    values = np.linspace(-8, 8, 161, dtype=np.float32)
    q = quantize(values, detail)
    assert q.dtype == np.int8
    back = dequantize(q, detail)
    inside = (values >= (-128 + 3) * 0.05) & (values <= (127 + 3) * 0.05)
    assert np.max(np.abs(back[inside] - values[inside])) <= 0.025 + 1e-6
    assert q.min() == -128 and q.max() == 127  # saturates outside the range


def test_float_tensor_passes_through():
    detail = {"dtype": np.float32, "quantization": (0.0, 0)}
    x = np.array([1.5, -2.0])
    assert quantize(x, detail).dtype == np.float32
    np.testing.assert_array_equal(dequantize(x, detail), x)


def test_missing_runtime_says_what_to_install(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith(("ai_edge_litert", "tflite_runtime")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install ai-edge-litert"):
        load_interpreter(tmp_path / "model.tflite")


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(InvalidInputError, match="not a valid TFLite model"):
        EdgeModel(path)


def test_edge_model_matches_golden_vectors(tiny_run):
    for name in ("model.tflite", "model.int8.tflite"):
        golden = np.load(tiny_run / name.replace(".tflite", ".golden.npz"))
        outputs = EdgeModel(tiny_run / name).predict(golden["inputs"], batch_size=3)[0]
        np.testing.assert_allclose(outputs, golden["tflite_output_0"], atol=1e-5)
        # Keras vs TFLite parity on the same inputs.
        atol = 1e-4 if name == "model.tflite" else 0.1
        np.testing.assert_allclose(outputs, golden["keras_output_0"], atol=atol)


def test_edge_model_rejects_wrong_shapes(tiny_run):
    model = EdgeModel(tiny_run / "model.tflite")
    with pytest.raises(InvalidInputError, match="input shape"):
        model.predict(np.zeros((2, 10, 10, 3), np.float32))


def test_find_model_prefers_int8_tflite_then_keras(tiny_run):
    assert find_model(tiny_run).name == "model.int8.tflite"
    assert find_model(tiny_run, prefer="keras").name == "model.keras"
    assert ModelBundle.load(tiny_run).labels == ["blue", "green", "red"]
    with pytest.raises(DlkitError, match="not 'detect'"):
        ModelBundle.load(tiny_run, app="detect")


def test_edge_predict_runs_with_tensorflow_unimportable(tiny_run, bad_files):
    """As on a device with only `pip install dlkit`: importing TF or Keras would fail."""
    model = tiny_run / "model.int8.tflite"
    result = run_without_tensorflow(["classify", "predict", bad_files["good"], "--model", model, "--json"])
    assert result.returncode == 0, result.stderr
    assert "edge-ok" in result.stdout
    assert '"label"' in result.stdout


def test_latest_run_picks_the_newest_with_its_marker(tmp_path):
    import os

    from dlkit.edge.bundle import latest_run

    with pytest.raises(DlkitError, match="no finished run"):
        latest_run("classify", root=tmp_path)
    for index, name in enumerate(("train", "train2", "train3")):
        run = tmp_path / "classify" / name
        run.mkdir(parents=True)
        (run / "config.json").write_text("{}")
        os.utime(run / "config.json", (1000 + index, 1000 + index))
    (tmp_path / "classify" / "train" / "model.json").write_text("{}")
    assert latest_run("classify", root=tmp_path).name == "train"  # the only finished one
    assert latest_run("classify", root=tmp_path, marker="config.json").name == "train3"
