import keras
import numpy as np
import pytest

from dlkit.edge import EdgeModel
from dlkit.errors import DlkitError
from dlkit.export import tflite_name
from dlkit.export.tflite import conversion_error, convert


@pytest.fixture(scope="module")
def small_cnn():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "quantize, atol", [("float32", 1e-5), ("float16", 2e-3), ("dynamic", 2e-2), ("int8", 5e-2)]
)
def test_every_quantization_converts_and_matches_keras(tmp_path, small_cnn, quantize, atol):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (40, 16, 16, 3)).astype("float32")
    flatbuffer = convert(small_cnn, quantize, representative=images, int8_input="uint8")
    path = tmp_path / tflite_name(quantize)
    path.write_bytes(flatbuffer)
    model = EdgeModel(path)
    if quantize == "int8":
        assert model.input_dtypes == ["uint8"]
    out = model.predict(images)[0]
    np.testing.assert_allclose(out, small_cnn.predict(images, verbose=0), atol=atol)


def test_dynamic_batch_and_static_batch(tmp_path, small_cnn):
    (tmp_path / "static.tflite").write_bytes(convert(small_cnn, batch_size=1))
    static = EdgeModel(tmp_path / "static.tflite")
    assert static.input_shapes[0][0] == 1
    images = np.zeros((3, 16, 16, 3), np.float32)
    assert static.predict(images)[0].shape == (3, 4)  # runs one row at a time


def test_int8_needs_representative_data(small_cnn):
    with pytest.raises(DlkitError, match="representative"):
        convert(small_cnn, "int8")


def test_unknown_quantization(small_cnn):
    with pytest.raises(DlkitError, match="--quantize must be one of"):
        convert(small_cnn, "int4")
    with pytest.raises(ValueError):
        tflite_name("int4")


def test_conversion_error_names_the_layer(small_cnn):
    error = Exception(
        'loc(fused["RandomUniform:", "functional/conv/RandomUniform"]): \'tf.RandomUniform\' op is neither a custom op nor a flex op\nmore'
    )
    message = conversion_error(small_cnn, error)
    assert (
        message
        == "TFLite conversion failed in layer 'conv': unsupported ops tf.RandomUniform (only builtin ops are allowed)"
    )
