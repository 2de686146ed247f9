"""The export forms of the audio front end and the GRU: `Spectrogram(fft="matmul")` and
`UnrolledGRU` compute what the FFT and Keras's GRU compute, in ops LiteRT runs faster,
and stay float in a dynamic-range file."""

import collections

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlkit.layers import Spectrogram, UnrolledGRU  # noqa: E402
from dlkit.layers.audio import dft_matrices  # noqa: E402


def numpy_log_stft(audio, frame_length, frame_step, fft_length):
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame_length) / frame_length)  # periodic Hann
    count = 1 + (audio.shape[1] - frame_length) // frame_step
    frames = np.stack([audio[:, i * frame_step : i * frame_step + frame_length] for i in range(count)], 1)
    return np.abs(np.fft.rfft(frames.astype(np.float64) * window, n=fft_length))


@pytest.mark.parametrize(
    "frame_length, frame_step, fft_length",
    [(400, 160, 512), (400, 160, 400), (256, 128, 256), (300, 100, 509), (100, 50, 128)],
)
def test_matmul_spectrogram_equals_the_fft(frame_length, frame_step, fft_length):
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 16000
    audio = np.stack(
        [
            rng.normal(0, 0.1, 4000),
            0.5 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.normal(size=4000),  # a tone: quiet bins
            np.zeros(4000),  # silence: every bin log(1e-6)
        ]
    ).astype(np.float32)
    layer = Spectrogram(frame_length, frame_step, fft_length, fft="matmul")
    got = np.asarray(layer(keras.ops.convert_to_tensor(audio)))
    magnitude = numpy_log_stft(audio, frame_length, frame_step, fft_length)
    assert got.shape == magnitude.shape == layer.compute_output_shape(audio.shape)
    # Magnitudes to float32 rounding, relative to the largest a frame can have.
    sound, magnitude = got[:2].astype(np.float64), magnitude[:2]
    scale = np.abs(audio[:2]).max(axis=1)[:, None, None] * np.sqrt(frame_length)
    error = np.abs(np.exp(sound) - 1e-6 - magnitude) / scale
    assert error.max() < 1e-5, error.max()  # float32 sums of a few hundred products
    np.testing.assert_allclose(got[2], np.log(1e-6), atol=1e-6)
    loud = magnitude > 1e-2 * scale  # where the log is not dominated by rounding
    np.testing.assert_allclose(sound[loud], np.log(magnitude[loud] + 1e-6), atol=1e-4)


def test_dft_matrices_split_the_length_near_its_square_root():
    first, second, (n1, n2, rows) = dft_matrices(400, 512)
    assert (n1, n2, rows) == (16, 32, 13)  # 13 rows of 32 hold the 400 samples
    assert first.shape == (2 * 16, 13) and second.shape == (16, 2 * 17, 2 * 32)  # 17 x 16 >= 257 bins
    assert dft_matrices(300, 509)[2] == (1, 509, 1)  # a prime length: one dense DFT
    with pytest.raises(ValueError, match="shorter than frame_length"):
        Spectrogram(400, 160, 256)
    with pytest.raises(ValueError, match="'rfft' or 'matmul'"):
        Spectrogram(400, 160, 512, fft="fast")


def trained_like_gru(units=6, features=5, **kwargs):
    gru = keras.layers.GRU(units, return_sequences=True, return_state=True, **kwargs)
    gru.build((None, None, features))
    rng = np.random.default_rng(3)
    gru.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32) for w in gru.get_weights()])
    return gru


def test_unrolled_gru_equals_keras_gru_step_for_step():
    gru = trained_like_gru()
    x = np.random.default_rng(4).normal(size=(3, 7, 5)).astype(np.float32)
    h0 = np.random.default_rng(5).normal(size=(3, 6)).astype(np.float32)
    want_sequence, want_state = gru(x, initial_state=h0)
    unrolled = UnrolledGRU.from_gru(gru)
    unrolled.build(x.shape)
    unrolled.set_weights(gru.get_weights())
    sequence, state = unrolled(x, initial_state=h0)
    np.testing.assert_allclose(np.asarray(sequence), np.asarray(want_sequence), atol=1e-6)
    np.testing.assert_allclose(np.asarray(state), np.asarray(want_state), atol=1e-6)
    assert unrolled.compute_output_shape(x.shape, h0.shape) == [(3, 7, 6), (3, 6)]


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"reset_after": False}, "reset_after=False"),
        ({"activation": "relu"}, "activation relu"),
        ({"recurrent_activation": "hard_sigmoid"}, "recurrent_activation hard_sigmoid"),
        ({"go_backwards": True}, "go_backwards"),
    ],
)
def test_unrolled_gru_refuses_a_gru_it_would_compute_differently(kwargs, named):
    with pytest.raises(ValueError, match=named):
        UnrolledGRU.from_gru(trained_like_gru(**kwargs))


def test_exported_fast_forms_hold_no_fft_stay_float_and_match_keras(tmp_path):
    """Spectrogram -> GRU as the trigger streaming model uses them: no RFFT2D, 11 ops a
    GRU step, the float file equal to the FFT + Keras GRU model, and in a dynamic-range
    file the DFT matrices kept in float (the converter quantizes a product's constant
    second operand, not its first)."""
    from ai_edge_litert.interpreter import Interpreter

    from dlkit.export.tflite import convert

    gru = trained_like_gru(units=8, features=65)
    audio = keras.Input((1600,), batch_size=1)
    state = keras.Input((8,), batch_size=1)
    spectrogram = Spectrogram(100, 50, 128, fft="matmul")(audio)  # 31 frames of 65 bins
    unrolled = UnrolledGRU.from_gru(gru)
    sequence, last = unrolled(spectrogram, initial_state=state)
    fast = keras.Model([audio, state], [sequence, last])
    unrolled.set_weights(gru.get_weights())

    rng = np.random.default_rng(6)
    clip = rng.normal(0, 0.2, (1, 1600)).astype(np.float32)
    h0 = rng.normal(0, 0.5, (1, 8)).astype(np.float32)
    want_sequence, want_state = gru(Spectrogram(100, 50, 128)(clip), initial_state=h0)
    for quantize in ("float32", "dynamic"):
        path = tmp_path / f"{quantize}.tflite"
        path.write_bytes(convert(fast, quantize, batch_size=1))
        interpreter = Interpreter(model_path=str(path))
        details = interpreter._get_ops_details()
        ops = collections.Counter(op["op_name"] for op in details)
        assert "RFFT2D" not in ops and "WHILE" not in ops and ops["BATCH_MATMUL"] == 2
        # A GRU step: its FULLY_CONNECTED, SPLIT_V, ADD, LOGISTIC, SPLIT (one sigmoid for
        # both gates), MUL, ADD, TANH, then n + z (h - n): SUB, MUL, ADD. Besides the steps:
        # the input projection (FULLY_CONNECTED, SPLIT_V), the window (MUL), the power
        # and the log's floor (ADD, ADD).
        steps = {
            "FULLY_CONNECTED": 1,
            "SPLIT_V": 1,
            "ADD": 3,
            "LOGISTIC": 1,
            "SPLIT": 1,
            "MUL": 2,
            "TANH": 1,
            "SUB": 1,
        }
        outside = {"FULLY_CONNECTED": 1, "SPLIT_V": 1, "MUL": 1, "ADD": 2}
        assert {name: ops[name] for name in steps} == {
            name: 31 * count + outside.get(name, 0) for name, count in steps.items()
        }
        tensors = interpreter.get_tensor_details()
        dft = [tensors[op["inputs"][0]]["dtype"] for op in details if op["op_name"] == "BATCH_MATMUL"]
        assert dft == [np.float32, np.float32]
        layers = {tensors[op["inputs"][1]]["dtype"] for op in details if op["op_name"] == "FULLY_CONNECTED"}
        # The GRU's input projection (65 x 24 weights) is quantized in the dynamic file; its
        # recurrent weights (8 x 24) are under the converter's 1,024-weight minimum.
        assert (np.int8 in layers) == (quantize == "dynamic")
        if quantize == "float32":  # (dynamic range rounds the GRU's weights and inputs to int8)
            interpreter.allocate_tensors()
            inputs = {detail["shape"][-1]: detail["index"] for detail in interpreter.get_input_details()}
            interpreter.set_tensor(inputs[1600], clip)
            interpreter.set_tensor(inputs[8], h0)
            interpreter.invoke()
            outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
            got_sequence, got_state = sorted(outputs, key=np.ndim, reverse=True)
            np.testing.assert_allclose(got_sequence, np.asarray(want_sequence), atol=1e-4)
            np.testing.assert_allclose(got_state, np.asarray(want_state), atol=1e-4)
