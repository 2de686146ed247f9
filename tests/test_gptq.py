"""dlkit.export.gptq: GPTQ rounding of a dynamic-range model's int8 weights."""

import numpy as np

from dlkit.export.gptq import gptq_round


def correlated_inputs(rng, rows, width):
    mixing = rng.normal(size=(width, width)) / np.sqrt(width)
    return rng.normal(size=(rows, width)) @ mixing + 0.3 * rng.normal(size=(1, width))


def test_with_a_diagonal_covariance_gptq_is_rounding_to_nearest():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(16, 32))
    scale = np.abs(weights).max(axis=1) / 127
    nearest = np.clip(np.round(weights / scale[:, None]), -127, 127)
    covariance = np.diag(rng.uniform(0.5, 2.0, size=32))
    np.testing.assert_array_equal(gptq_round(weights, covariance, scale), nearest)


def test_gptq_outputs_are_closer_than_rounding_to_nearest_on_correlated_inputs():
    """The layer's output error on the inputs the covariance came from, not the weights'
    own, is what GPTQ lowers; every value stays on the int8 grid of the scales given."""
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(64, 48))
    scale = np.abs(weights).max(axis=1) / 127
    x = correlated_inputs(rng, 4000, 48)
    q = gptq_round(weights, x.T @ x / len(x), scale)
    assert q.dtype == np.int8 and np.abs(q.astype(int)).max() <= 127
    nearest = np.clip(np.round(weights / scale[:, None]), -127, 127)

    def output_error(values):
        return np.mean((x @ (values * scale[:, None]).T - x @ weights.T) ** 2)

    assert output_error(q) < 0.7 * output_error(nearest)
    assert np.mean(q != nearest) > 0.05  # it moved values, by a step at most mostly
    assert np.mean(np.abs(q.astype(int) - nearest) <= 1) > 0.99


def test_dynamic_export_with_calibration_inputs_rounds_by_gptq():
    """A dynamic-range file converted with training inputs holds the same graph, size and
    scales as the converter's, other int8 values, and outputs closer to Keras's."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from dlkit.export.tflite import convert

    rng = np.random.default_rng(2)
    keras.utils.set_random_seed(2)
    inputs = keras.Input((48,))
    hidden = keras.layers.Dense(64, activation="gelu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(40)(hidden))
    x = correlated_inputs(rng, 512, 48).astype(np.float32)
    plain = convert(model, "dynamic")
    rounded = convert(model, "dynamic", representative=x)
    assert len(rounded) == len(plain)

    def constants(flatbuffer):
        interpreter = Interpreter(model_content=flatbuffer)
        found = {}
        for detail in interpreter.get_tensor_details():
            if detail["dtype"] == np.int8 and len(detail["quantization_parameters"]["scales"]) > 1:
                found[detail["name"]] = (detail["quantization_parameters"]["scales"], detail["index"])
        return interpreter, found

    (_, before), (_, after) = constants(plain), constants(rounded)
    assert before.keys() == after.keys() and len(before) == 2
    for name in before:
        np.testing.assert_array_equal(before[name][0], after[name][0])

    def outputs(flatbuffer):
        interpreter = Interpreter(model_content=flatbuffer)
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    reference = model.predict(x, verbose=0)
    error_plain = np.mean((outputs(plain) - reference) ** 2)
    error_rounded = np.mean((outputs(rounded) - reference) ** 2)
    assert error_rounded < error_plain
