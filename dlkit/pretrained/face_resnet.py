"""dlib's face descriptor (a ResNet-34-like network, 150 x 150 aligned face -> 128 numbers)
in Keras, and its port from the TensorFlow.js weights of the npm package
`@vladmandic/face-api` (MIT: `model/face_recognition_model.bin` with its weights manifest).

dlib publishes 99.38% on the LFW benchmark for it. Its layers, as face-api runs them:
- the pixels less the mean RGB (122.782, 117.001, 104.298), divided by 255;
- `conv32_down`: 7x7 convolution, stride 2, valid padding, then a 3x3 max pool, stride 2;
- residual blocks: 3x3 conv + ReLU, 3x3 conv, plus the input, ReLU; a `_down` block
  starts with a stride-2 valid conv, and its shortcut is a 2x2 average pool whose new
  channels are zero; where the two differ by a row and a column, the conv path gets a
  zero row and column at the bottom and right;
- global average, then a 128 x 256 matrix with no bias.

Each tfjs convolution is `conv + bias`, then a per-channel `* weights + biases` (dlib's
affine layer, its frozen batch norm); the port folds both into one Conv2D.
"""

import json
from pathlib import Path

import numpy as np

from dlkit.errors import DlkitError

MEAN_RGB = (122.782, 117.001, 104.298)
INPUT_SIZE = 150
# (block name, filters, downsampling) in order, after `conv32_down`.
BLOCKS = (
    ("conv32_1", 32, False),
    ("conv32_2", 32, False),
    ("conv32_3", 32, False),
    ("conv64_down", 64, True),
    ("conv64_1", 64, False),
    ("conv64_2", 64, False),
    ("conv64_3", 64, False),
    ("conv128_down", 128, True),
    ("conv128_1", 128, False),
    ("conv128_2", 128, False),
    ("conv256_down", 256, True),
    ("conv256_1", 256, False),
    ("conv256_2", 256, False),
    ("conv256_down_out", 256, True),
)
DESCRIPTOR_SIZE = 128
# The weights as face-api ships them (uint8 with a scale per tensor: 6.4 MB), kept in
# saved_models/backbones/face/ and checked on load.
MANIFEST = "face_recognition_model-weights_manifest.json"
WEIGHTS_SHA256 = {
    MANIFEST: "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
    "face_recognition_model.bin": "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
}


def shipped_weights_dir():
    from dlkit.paths import saved_models_dir

    return saved_models_dir() / "backbones" / "face"


def pretrained_face_resnet(name="face_resnet"):
    """`build_face_resnet` with the shipped face-api weights (checksums checked)."""
    from dlkit.io import sha256_file

    folder = shipped_weights_dir()
    for file, digest in WEIGHTS_SHA256.items():
        path = folder / file
        if not path.is_file():
            raise DlkitError(f"{path}: the face descriptor's weights are missing (reinstall dlkit)")
        if sha256_file(path) != digest:
            raise DlkitError(f"{path}: the face descriptor's weights do not match their checksum")
    return port_face_api(build_face_resnet(name), read_tfjs_weights(folder / MANIFEST))


def _residual(x, filters, down, name):
    from keras import layers

    from dlkit.layers.pooling import ConvAveragePooling2D

    strides, padding = (2, "valid") if down else (1, "same")
    out = layers.Conv2D(filters, 3, strides=strides, padding=padding, name=f"{name}_conv1")(x)
    out = layers.ReLU(name=f"{name}_relu1")(out)
    out = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(out)
    shortcut = x
    if down:
        shortcut = ConvAveragePooling2D(2, name=f"{name}_pool")(x)  # kept whole by XNNPACK in int8
        if shortcut.shape[-1] != filters:
            shortcut = _pad_channels(shortcut, filters - shortcut.shape[-1], f"{name}_widen")
        if shortcut.shape[1] != out.shape[1]:
            out = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_grow")(out)
    out = layers.Add(name=f"{name}_add")([out, shortcut])
    return layers.ReLU(name=f"{name}_relu2")(out)


def _pad_channels(x, extra, name):
    from dlkit.layers.pad_channels import PadChannels

    return PadChannels(extra, name=name)(x)


def apply_face_resnet(pixels):
    """The network on `pixels` (b, 150, 150, 3) in [0, 255]: features (b, 256) before the
    final matrix, so a caller can put its own head on them."""
    from keras import layers

    x = layers.Normalization(mean=list(MEAN_RGB), variance=[255.0**2] * 3, name="normalize")(
        pixels
    )  # (p - mean) / 255
    x = layers.Conv2D(32, 7, strides=2, padding="valid", name="conv32_down")(x)
    x = layers.ReLU(name="conv32_down_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="conv32_down_pool")(x)
    for name, filters, down in BLOCKS:
        x = _residual(x, filters, down, name)
    return layers.GlobalAveragePooling2D(name="global_average")(x)


def build_face_resnet(name="face_resnet"):
    """Pixels (b, 150, 150, 3) in [0, 255] -> dlib's 128-d descriptor (not normalised)."""
    import keras
    from keras import layers

    pixels = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="image")
    features = apply_face_resnet(pixels)
    descriptor = layers.Dense(DESCRIPTOR_SIZE, use_bias=False, name="fc")(features)
    return keras.Model(pixels, descriptor, name=name)


# --- the TensorFlow.js weights ------------------------------------------------------------
TFJS_DTYPES = {"float32": (np.float32, 4), "int32": (np.int32, 4)}
TFJS_QUANTIZED = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def read_tfjs_weights(manifest_path):
    """{name: float32 array} from a tfjs weights manifest and the `.bin` files it lists
    (next to it), dequantized (`q * scale + min` for uint8/uint16, or float16).

    Raises:
        DlkitError: a missing or short file, or a dtype tfjs does not write.
    """
    manifest_path = Path(manifest_path)
    try:
        groups = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DlkitError(f"{manifest_path}: not a tfjs weights manifest ({error})") from None
    weights = {}
    for group in groups:
        try:
            data = b"".join((manifest_path.parent / path).read_bytes() for path in group["paths"])
        except OSError as error:
            raise DlkitError(f"{manifest_path}: a weights file it lists cannot be read ({error})") from None
        offset = 0
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"], dtype=np.int64))
            quantization = spec.get("quantization")
            if quantization:
                dtype = TFJS_QUANTIZED.get(quantization["dtype"])
                if dtype is None:
                    raise DlkitError(
                        f"{manifest_path}: {spec['name']}: unknown quantization {quantization['dtype']}"
                    )
                width = np.dtype(dtype).itemsize
            else:
                if spec["dtype"] not in TFJS_DTYPES:
                    raise DlkitError(f"{manifest_path}: {spec['name']}: unknown dtype {spec['dtype']}")
                dtype, width = TFJS_DTYPES[spec["dtype"]]
            end = offset + count * width
            if end > len(data):
                raise DlkitError(f"{manifest_path}: the weights end before {spec['name']} (truncated .bin)")
            values = np.frombuffer(data[offset:end], dtype=dtype).astype(np.float32)
            if quantization and quantization["dtype"] != "float16":
                values = values * np.float32(quantization["scale"]) + np.float32(quantization["min"])
            weights[spec["name"]] = values.reshape(spec["shape"])
            offset = end
    return weights


def _folded(weights, prefix):
    """One tfjs conv + scale pair as a Conv2D's (kernel, bias)."""
    filters, bias = weights[f"{prefix}/conv/filters"], weights[f"{prefix}/conv/bias"]
    gain, shift = weights[f"{prefix}/scale/weights"], weights[f"{prefix}/scale/biases"]
    return filters * gain, bias * gain + shift


def port_face_api(model, weights):
    """Sets the weights of a `build_face_resnet` model from face-api's tfjs weights
    (`read_tfjs_weights`); every tensor must be used and every shape match.

    Raises:
        DlkitError: a tensor missing, left over, or of another shape (one line naming it).
    """
    plan = {"conv32_down": "conv32_down"}
    for name, _, _ in BLOCKS:
        plan[f"{name}_conv1"] = f"{name}/conv1"
        plan[f"{name}_conv2"] = f"{name}/conv2"
    used = set()
    try:
        for layer_name, prefix in plan.items():
            values = _folded(weights, prefix)
            used |= {
                f"{prefix}/conv/filters",
                f"{prefix}/conv/bias",
                f"{prefix}/scale/weights",
                f"{prefix}/scale/biases",
            }
            _assign(model.get_layer(layer_name), values)
        _assign(model.get_layer("fc"), [weights["fc"]])
        used.add("fc")
    except KeyError as error:
        raise DlkitError(f"the face-api weights have no tensor {error}") from None
    left = sorted(set(weights) - used)
    if left:
        raise DlkitError(
            f"the face-api weights hold tensors this network does not use: {', '.join(left[:5])}"
        )
    return model


def _assign(layer, values):
    expected = [tuple(w.shape) for w in layer.weights]
    given = [tuple(v.shape) for v in values]
    if expected != given:
        raise DlkitError(f"face-api weights for {layer.name}: shapes {given}, the layer needs {expected}")
    layer.set_weights(values)
