"""Conversion of a Keras model to TFLite through a SavedModel with a static signature."""

import re
import tempfile

import numpy as np

from dlkit.errors import DlkitError
from dlkit.export import QUANTIZATIONS


def convert(
    model, quantize="float32", representative=None, batch_size=None, int8_input=None, float_fallback=False
):
    """Converts `model` to TFLite flatbuffer bytes, builtin ops only.

    The model is exported as a SavedModel with a fixed input signature first: LSTM/GRU
    layers with a dynamic batch fail to convert and `from_concrete_functions` leaves
    resource variables unreadable at run time, while this path works for both.

    Args:
        model: keras.Model.
        quantize: str. "float32", "float16", "dynamic" (int8 weights) or "int8" (full
            integer, calibrated on `representative`).
        representative: iterable of input arrays (one sample each, no batch axis), for int8.
        batch_size: int or None. Static batch size of the signature; None keeps it dynamic.
        int8_input: str or None. For int8: "uint8" or "int8" to make the input tensor
            integer too (images), None to keep a float input.
        float_fallback: bool. For int8: ops without an int8 kernel (e.g. NMS) stay float
            builtins instead of failing the conversion.

    Raises:
        DlkitError: when conversion fails; the message names the Keras layer at fault.
    """
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise DlkitError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    signature = [
        tf.TensorSpec([batch_size, *x.shape[1:]], x.dtype, name=x.name.split(":")[0]) for x in model.inputs
    ]
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", input_signature=signature, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        float_options(converter, quantize)
        if quantize == "int8":
            if representative is None:
                raise DlkitError("int8 export needs representative data (the training split)")
            samples = [np.asarray(x) for x in representative]
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([s[None].astype(np.float32)] for s in samples)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if float_fallback:
                converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
            if int8_input:
                converter.inference_input_type = {"uint8": tf.uint8, "int8": tf.int8}[int8_input]
        try:
            return converter.convert()
        except Exception as error:
            raise DlkitError(conversion_error(model, error)) from None


def float_options(converter, quantize):
    """Builtin ops only; float16 weights or int8 weights (dynamic range) when asked."""
    import tensorflow as tf

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize in ("float16", "dynamic"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]


def conversion_error(model, error):
    """A one-line message naming the Keras layer whose ops failed to convert."""
    text = str(error)
    layer_names = [layer.name for layer in model.layers]
    for sub in model.layers:
        layer_names += [f"{sub.name}/{inner.name}" for inner in getattr(sub, "layers", [])]
    at_fault = [name for name in layer_names if re.search(rf"\b{re.escape(name)}\b", text)]
    ops = sorted(set(re.findall(r"'(tf\.[A-Za-z0-9_]+)'", text)))
    where = f" in layer '{at_fault[-1]}'" if at_fault else ""
    what = (
        f": unsupported ops {', '.join(ops)}"
        if ops
        else f": {text.strip().splitlines()[0][:200]}"
        if text.strip()
        else ""
    )
    return f"TFLite conversion failed{where}{what} (only builtin ops are allowed)"
