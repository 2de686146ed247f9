"""The face descriptor port: tfjs weights written by the test (uint8, float16 and float32
tensors), read, folded into Keras, and run against face-api's forward pass transcribed in
TensorFlow ops. tools/check_face_port.py compares the shipped weights with face-api itself
(TensorFlow.js) on real faces."""

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dlkit.errors import DlkitError  # noqa: E402
from dlkit.pretrained.face_resnet import (  # noqa: E402
    BLOCKS,
    MEAN_RGB,
    build_face_resnet,
    port_face_api,
    read_tfjs_weights,
)


def tensor_specs():
    """face-api's tensor names and shapes for this network, in its manifest order."""
    specs = []

    def conv(prefix, kernel, cin, cout):
        specs.extend(
            [
                (f"{prefix}/conv/filters", [kernel, kernel, cin, cout]),
                (f"{prefix}/conv/bias", [cout]),
                (f"{prefix}/scale/weights", [cout]),
                (f"{prefix}/scale/biases", [cout]),
            ]
        )

    conv("conv32_down", 7, 3, 32)
    channels = 32
    for name, filters, _ in BLOCKS:
        conv(f"{name}/conv1", 3, channels, filters)
        conv(f"{name}/conv2", 3, filters, filters)
        channels = filters
    specs.append(("fc", [256, 128]))
    return specs


def write_tfjs(folder, seed=0, drop=None, extra=False, truncate=False):
    """A manifest + .bin like face-api's: most tensors uint8 with scale/min, a few float16
    and float32. Returns the manifest path and the exact float values written."""
    rng = np.random.default_rng(seed)
    entries, chunks, values = [], [], {}
    for index, (name, shape) in enumerate(tensor_specs()):
        if name == drop:
            continue
        count = int(np.prod(shape))
        fan_in = np.prod(shape[:-1]) if len(shape) > 1 else 1
        if name.endswith("scale/weights"):
            real = rng.uniform(0.5, 1.5, count)
        else:
            real = rng.normal(0, 1 / np.sqrt(fan_in), count) if len(shape) > 1 else rng.normal(0, 0.1, count)
        entry = {"name": name, "shape": shape, "dtype": "float32"}
        if index % 7 == 3:  # float32 as it is
            data = real.astype(np.float32)
            values[name] = data
        elif index % 7 == 5:
            data = real.astype(np.float16)
            entry["quantization"] = {"dtype": "float16"}
            values[name] = data.astype(np.float32)
        else:
            low, high = real.min(), real.max()
            scale = (high - low) / 255 if high > low else 1.0
            data = np.round((real - low) / scale).astype(np.uint8)
            entry["quantization"] = {"dtype": "uint8", "scale": float(scale), "min": float(low)}
            values[name] = data.astype(np.float32) * np.float32(scale) + np.float32(low)
        entries.append(entry)
        chunks.append(data.tobytes())
    if extra:
        entries.append({"name": "unused", "shape": [2], "dtype": "float32"})
        chunks.append(np.zeros(2, np.float32).tobytes())
    blob = b"".join(chunks)
    (folder / "w.bin").write_bytes(blob[:-100] if truncate else blob)
    manifest = folder / "w.json"
    manifest.write_text(json.dumps([{"paths": ["w.bin"], "weights": entries}]))
    return manifest, {
        name: value.reshape(shape)
        for (name, shape) in tensor_specs()
        if (value := values.get(name)) is not None
    }


def face_api_forward(x, w):
    """FaceRecognitionNet.forwardInput of face-api, op for op (conv + bias, then scale)."""

    def conv(x, prefix, stride, relu, padding="SAME"):
        out = tf.nn.conv2d(x, w[f"{prefix}/conv/filters"], stride, padding) + w[f"{prefix}/conv/bias"]
        out = out * w[f"{prefix}/scale/weights"] + w[f"{prefix}/scale/biases"]
        return tf.nn.relu(out) if relu else out

    def residual(x, name):
        out = conv(conv(x, f"{name}/conv1", 1, True), f"{name}/conv2", 1, False)
        return tf.nn.relu(out + x)

    def residual_down(x, name):
        out = conv(conv(x, f"{name}/conv1", 2, True, "VALID"), f"{name}/conv2", 1, False)
        pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")
        if pooled.shape[1] != out.shape[1]:
            out = tf.pad(out, [[0, 0], [0, 1], [0, 1], [0, 0]])
        if pooled.shape[3] != out.shape[3]:
            pooled = tf.concat([pooled, tf.zeros_like(pooled)], 3)
        return tf.nn.relu(pooled + out)

    x = (tf.cast(x, tf.float32) - MEAN_RGB) / 255.0
    x = tf.nn.max_pool2d(conv(x, "conv32_down", 2, True, "VALID"), 3, 2, "VALID")
    for name, _, down in BLOCKS:
        x = residual_down(x, name) if down else residual(x, name)
    return tf.reduce_mean(x, [1, 2]) @ w["fc"]


def test_read_dequantizes_every_dtype(tmp_path):
    manifest, expected = write_tfjs(tmp_path)
    weights = read_tfjs_weights(manifest)
    assert set(weights) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(weights[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


def test_the_port_runs_face_apis_forward_pass(tmp_path):
    manifest, expected = write_tfjs(tmp_path, seed=1)
    model = port_face_api(build_face_resnet(), read_tfjs_weights(manifest))
    images = np.random.default_rng(2).integers(0, 256, (2, 150, 150, 3)).astype(np.float32)
    reference = face_api_forward(images, {k: tf.constant(v) for k, v in expected.items()}).numpy()
    ours = model.predict(images, verbose=0)
    assert ours.shape == (2, 128)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())


@pytest.mark.parametrize(
    "damage, message",
    [
        ({"drop": "conv64_2/conv1/scale/biases"}, "no tensor"),
        ({"extra": True}, "does not use"),
        ({"truncate": True}, "truncated"),
    ],
)
def test_a_damaged_weights_file_is_one_clear_error(tmp_path, damage, message):
    manifest, _ = write_tfjs(tmp_path, **damage)
    with pytest.raises(DlkitError, match=message):
        port_face_api(build_face_resnet(), read_tfjs_weights(manifest))


def test_a_wrong_shape_is_named(tmp_path):
    manifest, _ = write_tfjs(tmp_path)
    weights = read_tfjs_weights(manifest)
    weights["fc"] = weights["fc"][:, :64]
    with pytest.raises(DlkitError, match="fc"):
        port_face_api(build_face_resnet(), weights)


@pytest.mark.parametrize(
    ("shape", "pool", "strides"), [((1, 17, 17, 4), 2, None), ((2, 9, 8, 3), (3, 2), (2, 1))]
)
def test_conv_average_pooling_equals_average_pooling(shape, pool, strides):
    """The depthwise form gives AveragePooling2D's numbers (valid padding) and shape."""
    import keras

    from dlkit.layers import ConvAveragePooling2D

    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    expected = keras.layers.AveragePooling2D(pool, strides=strides)(x)
    layer = ConvAveragePooling2D(pool, strides=strides)
    got = layer(x)
    assert tuple(got.shape) == tuple(expected.shape) == layer.compute_output_shape(shape)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-6)
    assert not layer.weights


def test_int8_face_descriptor_runs_in_one_xnnpack_partition_before_its_norm(tmp_path):
    """In int8 every layer up to the descriptor's L2 normalisation is one delegated
    partition: no AVERAGE_POOL_2D left for the builtin kernels."""
    import collections

    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from dlkit.pretrained.face_resnet import build_face_resnet

    model = build_face_resnet()
    rng = np.random.default_rng(1)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(model.input, model.output))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(0, 255, (1, 150, 150, 3)).astype(np.float32)] for _ in range(4)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path / "face.int8.tflite"
    path.write_bytes(converter.convert())
    interpreter = Interpreter(str(path), num_threads=1)
    interpreter.allocate_tensors()
    ops = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
    assert ops["AVERAGE_POOL_2D"] == 0 and ops["DEPTHWISE_CONV_2D"] == 4
    assert ops["DELEGATE"] == 1, ops
