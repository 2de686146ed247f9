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


def test_int8_keeps_float_layers_in_float(tmp_path):
    """An exp after the network: quantized, its 8-bit output step swamps the small values;
    kept in float (`float_layers`), only the int8 error of its input remains."""
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, name="logits", kernel_initializer=keras.initializers.RandomNormal(0, 0.3))(x)
    x = keras.layers.Activation("exponential", name="sizes")(x)
    model = keras.Model(inputs, keras.layers.Rescaling(0.5, name="half")(x))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (64, 8, 8, 3)).astype("float32")
    expected = model.predict(images, verbose=0)
    assert expected.min() < 0.3 and expected.max() > 3  # a range an 8-bit step cannot cover
    errors = {}
    for kept in ((), ("sizes",)):
        path = tmp_path / f"{len(kept)}.tflite"
        path.write_bytes(convert(model, "int8", images, int8_input="uint8", float_layers=kept))
        interpreter = Interpreter(model_path=str(path))
        dtype = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
        ops = {op["op_name"]: op for op in interpreter._get_ops_details()}
        want = np.float32 if kept else np.int8
        for name in ("EXP", "MUL"):  # the kept layer and the one after it
            assert [dtype[i] for i in ops[name]["inputs"] if i >= 0][0] == want, name
        assert dtype[ops["CONV_2D"]["outputs"][0]] == np.int8
        edge = EdgeModel(path)
        assert edge.input_dtypes == ["uint8"]
        errors[kept] = np.median(np.abs(edge.predict(images)[0] / expected - 1))
    assert errors[("sizes",)] < 0.5 * errors[()], errors
    with pytest.raises(DlkitError, match="no op of layers nowhere"):
        convert(model, "int8", images, float_layers=("nowhere",))


def test_dynamic_batch_and_static_batch(tmp_path, small_cnn):
    (tmp_path / "static.tflite").write_bytes(convert(small_cnn, batch_size=1))
    static = EdgeModel(tmp_path / "static.tflite")
    assert static.input_shapes[0][0] == 1
    images = np.zeros((3, 16, 16, 3), np.float32)
    assert static.predict(images)[0].shape == (3, 4)  # runs one row at a time


def test_recurrent_layers_convert_unrolled_and_take_any_batch(tmp_path):
    """A masked Bi-LSTM returning sequences and a GRU over it (tokens padded at the end,
    as sentiment pads them) convert without WHILE loops and with a dynamic batch: one
    row, or five at once, equal Keras; the layers are set back afterwards."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(30, 8, mask_zero=True)(tokens)
    x = keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True))(x)
    x = keras.layers.GRU(5)(x)
    model = keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(x))
    ids = np.random.default_rng(0).integers(1, 30, (5, 12)).astype("int32")
    ids[1, 7:] = 0  # padding, masked
    path = tmp_path / "rnn.tflite"
    path.write_bytes(convert(model))
    edge = EdgeModel(path)
    assert edge.input_shapes == [(-1, 12)]
    assert "WHILE" not in {op["op_name"] for op in edge.interpreter._get_ops_details()}
    expected = model.predict(ids, verbose=0)
    np.testing.assert_allclose(edge.predict(ids)[0], expected, atol=1e-5)
    np.testing.assert_allclose(edge.predict(ids[1:2])[0], expected[1:2], atol=1e-5)
    recurrent = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.RNN)]
    assert recurrent and not any(layer.unroll for layer in recurrent)
    assert [layer.zero_output_for_mask for layer in recurrent if layer.go_backwards] == [True]


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


def test_named_inputs_convert_calibrate_and_run_by_name(tmp_path):
    """A two-input model: int8 calibration from a dict of named arrays, and the edge
    runtime and the engine's runners fed by input name give Keras's outputs."""
    import keras

    from dlkit.edge import EdgeModel
    from dlkit.engine import keras_runner, representative_inputs

    ids = keras.Input((6,), dtype="int32", name="token_ids")
    mask = keras.Input((6,), name="mask")
    x = keras.layers.Embedding(20, 4, name="embed")(ids)
    x = keras.layers.Multiply(name="masked")([x, keras.layers.Reshape((6, 1), name="mask3")(mask)])
    out = keras.layers.Dense(3, name="dense")(keras.layers.GlobalAveragePooling1D(name="pool")(x))
    model = keras.Model({"token_ids": ids, "mask": mask}, out)
    rng = np.random.default_rng(0)
    data = {
        "token_ids": rng.integers(0, 20, (40, 6)).astype(np.int32),
        "mask": (rng.random((40, 6)) > 0.3).astype(np.float32),
    }
    expected = keras_runner(model)(data)[0]
    for quantize, atol in (("float32", 1e-5), ("int8", 0.1)):
        path = tmp_path / f"{quantize}.tflite"
        path.write_bytes(
            convert(model, quantize, representative_inputs(data) if quantize == "int8" else None)
        )
        edge = EdgeModel(path)
        assert sorted(edge.input_names) == ["mask", "token_ids"]
        swapped = {"mask": data["mask"], "token_ids": data["token_ids"]}
        np.testing.assert_allclose(edge.predict(swapped)[0], expected, atol=atol)
    with pytest.raises(DlkitError, match="missing mask"):
        edge.predict({"token_ids": data["token_ids"]})


@pytest.mark.parametrize("dict_outputs", [False, True])
def test_every_conversion_route_gives_the_same_signature_and_outputs(tmp_path, monkeypatch, dict_outputs):
    """A model with BatchNorm, two named inputs and two outputs converts from its frozen
    function, without writing a SavedModel; were that refused, through a SavedModel of
    constants, then through Keras's SavedModel. Each file's serving signature names the
    inputs and outputs alike, and each gives Keras's outputs in Keras's order (a dict's in
    key order, as Keras flattens it)."""
    import keras

    from dlkit.export import tflite

    keras.utils.set_random_seed(1)
    image = keras.Input((8, 8, 3), name="image")
    scale = keras.Input((1,), name="scale")
    x = keras.layers.Conv2D(4, 3, name="conv")(image)
    x = keras.layers.BatchNormalization(name="bn")(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Multiply(name="scaled")([x, scale])
    first, second = keras.layers.Dense(3, name="a")(x), keras.layers.Dense(5, name="b")(x)
    outputs = {"logits": first, "extra": second} if dict_outputs else [first, second]
    model = keras.Model({"image": image, "scale": scale}, outputs)
    model.get_layer("bn").set_weights([np.full(4, w, np.float32) for w in (1.5, 0.2, 0.3, 2.0)])
    rng = np.random.default_rng(0)
    data = {"image": rng.random((5, 8, 8, 3), np.float32), "scale": rng.random((5, 1), np.float32)}
    expected = model(data)
    expected = [expected[k] for k in sorted(expected)] if dict_outputs else expected

    def edge_of(name):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(convert(model))
        return EdgeModel(path)

    def refused(*args, **kwargs):
        raise ValueError("refused")

    # Each route with the routes after it failing the test, and the routes before refused.
    routes = ("frozen_function", "constant_saved_model", "keras_saved_model")
    edges = {}
    for taken, name in enumerate(routes):
        with monkeypatch.context() as patched:
            for other, route in enumerate(routes):
                if other != taken:
                    patched.setattr(
                        tflite, route, refused if other < taken else lambda *a, r=route: pytest.fail(r)
                    )
            edges[name] = edge_of(name)
    signatures = [edge.interpreter.get_signature_list() for edge in edges.values()]
    assert signatures[0] == signatures[1] == signatures[2]
    names = ["extra", "logits"] if dict_outputs else ["output_0", "output_1"]
    assert signatures[0]["serving_default"]["outputs"] == names
    for edge in edges.values():
        assert sorted(edge.input_names) == ["image", "scale"]
        for got, want in zip(edge.predict(data), expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_converters_advice_stays_off_the_console(small_cnn, caplog):
    """The converter logs (absl) that a concrete function without its model is a
    deprecated path; convert keeps that line off the console, and other records pass."""
    import logging

    with caplog.at_level(logging.WARNING):
        convert(small_cnn)
        logging.getLogger("absl").warning("Please keep this one")
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "trackable_obj" in m]
    assert "Please keep this one" in messages


def test_nms_converts_to_the_builtin_op(monkeypatch):
    """`non_max_suppression_padded` is a composite function: the file holds TFLite's
    NON_MAX_SUPPRESSION_V4, not its loops, and gives TensorFlow's indices; the model's
    weights (a dense layer before the NMS) go in as constants, with no checkpoint written;
    `composites=True` gives the same bytes without the trace that finds the composite."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from dlkit.export import tflite

    class Suppress(keras.layers.Layer):
        def call(self, inputs):
            boxes, scores = inputs
            kept, _ = tf.image.non_max_suppression_padded(boxes[0], scores[0], 8, pad_to_max_output_size=True)
            return kept[None]

    boxes, scores = keras.Input((40, 4), batch_size=1), keras.Input((40,), batch_size=1)
    dense = keras.layers.Dense(4)
    model = keras.Model([boxes, scores], Suppress()([dense(boxes), scores]))
    # Seeded weights near the identity: the boxes stay boxes (x0 < x1, y0 < y1). Random
    # weights gave corners in any order, and a different kept set now and then.
    jitter = np.random.default_rng(1).normal(0, 0.02, (4, 4)).astype(np.float32)
    dense.set_weights([np.eye(4, dtype=np.float32) + jitter, np.full(4, 0.01, np.float32)])
    with monkeypatch.context() as patched:  # a SavedModel of constants: no checkpoint
        patched.setattr(keras.Model, "export", lambda *a, **k: pytest.fail("Keras's SavedModel was written"))
        flatbuffer = convert(model, batch_size=1)
        # Told the graph holds composites, convert skips the frozen-graph trace that refuses them.
        patched.setattr(tflite, "frozen_function", lambda *a: pytest.fail("traced for the frozen graph"))
        assert convert(model, batch_size=1, composites=True) == flatbuffer
    interpreter = Interpreter(model_content=flatbuffer)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "NON_MAX_SUPPRESSION_V4" in ops and "WHILE" not in ops
    rng = np.random.default_rng(0)
    corners = rng.random((1, 40, 2), np.float32)
    sides = rng.uniform(0.05, 0.3, (1, 40, 2)).astype(np.float32)
    x = [np.concatenate([corners, corners + sides], -1), rng.permutation(40).astype(np.float32)[None] / 40]
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], x[0] if detail["shape"][-1] == 4 else x[1])
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_array_equal(np.ravel(got), np.ravel(model(x)))


def test_a_tied_embedding_is_stored_once_in_a_dynamic_model(tmp_path, monkeypatch):
    """A table looked up by token ids and reused as the output layer's weight (tied,
    `ReversibleEmbedding`): the dynamic-range file keeps one int8 copy of it, the lookup
    dequantizing that copy, and gives the float model's logits within int8 error."""
    from tensorflow.lite.python.schema_py_generated import BuiltinOperator
    from tensorflow.lite.tools import flatbuffer_utils

    from dlkit.export.tflite import share_tied_tables
    from dlkit.layers.reversible_embedding import ReversibleEmbedding

    keras.utils.set_random_seed(0)
    vocab, width = 300, 32
    ids = keras.Input((6,), dtype="int32", name="ids")
    embedding = ReversibleEmbedding(vocab, width, name="tokens")
    hidden = keras.layers.Dense(width, activation="gelu", name="mix")(embedding(ids))
    model = keras.Model(ids, embedding(hidden, reverse=True))
    tokens = np.random.default_rng(1).integers(0, vocab, (20, 6)).astype("int32")

    def tables(flatbuffer):  # constant tensors holding the (vocab, width) table
        parsed = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
        graph = parsed.subgraphs[0]
        return [
            t
            for t in graph.tensors
            if list(t.shape) == [vocab, width] and parsed.buffers[t.buffer].data is not None
        ]

    from dlkit.export import tflite

    with monkeypatch.context() as patch:  # the converter alone quantizes the table twice
        patch.setattr(tflite, "share_tied_tables", lambda flatbuffer: flatbuffer)
        unshared = convert(model, "dynamic")
        assert len(tables(unshared)) == 2
    shared = convert(model, "dynamic")
    assert len(tables(shared)) == 1 and tables(shared)[0].type == 9  # one int8 table
    # The lookup and the output layer both read the one DEQUANTIZE of that table.
    parsed = flatbuffer_utils.convert_bytearray_to_object(bytearray(shared))
    graph = parsed.subgraphs[0]
    (dequantized,) = [
        int(op.outputs[0])
        for op in graph.operators
        if list(graph.tensors[int(op.outputs[0])].shape) == [vocab, width]
    ]
    readers = {
        parsed.operatorCodes[op.opcodeIndex].builtinCode for op in graph.operators if dequantized in op.inputs
    }
    assert readers == {BuiltinOperator.GATHER, BuiltinOperator.FULLY_CONNECTED}
    assert share_tied_tables(shared) == shared  # nothing left to share
    # A file shared before the layer read the dequantized table: its layer moves over.
    (dequantize,) = [op for op in graph.operators if int(op.outputs[0]) == dequantized]
    for op in graph.operators:
        if parsed.operatorCodes[op.opcodeIndex].builtinCode == BuiltinOperator.FULLY_CONNECTED:
            if op.inputs[1] == dequantized:
                op.inputs[1] = dequantize.inputs[0]
    older = bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))
    assert older != shared and share_tied_tables(older) == shared
    reference = model.predict(tokens, verbose=0)
    errors = {}
    for name, flatbuffer in (("unshared", unshared), ("shared", shared)):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(flatbuffer)
        errors[name] = np.abs(EdgeModel(path).predict(tokens)[0] - reference).max()
    assert errors["shared"] < 0.02 * np.abs(reference).max()
    # The output layer in float: its input is no longer quantized on the fly.
    assert errors["shared"] < errors["unshared"]
    # Sharing nothing is a no-op: the float model has one table already.
    float32 = convert(model, "float32")
    assert share_tied_tables(float32) == float32 and len(tables(float32)) == 1


def test_the_keras_runner_traces_once_for_every_batch_size(small_cnn):
    """A split's batches (a full one, then the smaller last one) run through one trace,
    with the batch size unknown to the graph, and give the model's outputs."""
    from dlkit.engine import keras_runner

    traced = []

    class Counting(keras.layers.Layer):
        def call(self, x):
            traced.append(x.shape[0])  # runs while tracing only
            return x

    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, small_cnn(Counting()(inputs)))
    traced.clear()  # building the model called it on a symbolic input
    run = keras_runner(model)
    images = np.random.default_rng(0).uniform(0, 255, (7, 16, 16, 3)).astype(np.float32)
    for batch in (images[:4], images[4:]):
        np.testing.assert_allclose(run(batch)[0], small_cnn(batch).numpy(), atol=1e-6)
    assert traced == [None]
