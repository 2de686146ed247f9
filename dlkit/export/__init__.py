"""Keras -> TFLite export (float32, float16, dynamic range, full int8) with a parity gate."""

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")


def tflite_name(quantize):
    """File name of an export: `model.tflite` for float32, `model.<quantize>.tflite` otherwise."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    return "model.tflite" if quantize == "float32" else f"model.{quantize}.tflite"
