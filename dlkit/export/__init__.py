"""Keras -> TFLite export (float32, float16, dynamic range, full int8) with a parity gate."""

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")


def tflite_name(quantize, variant=""):
    """File name of an export: `model.tflite` for float32, `model.<quantize>.tflite`
    otherwise; an app's export variant (e.g. "argmax") goes before the suffix."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    parts = ["model"] + ([quantize] if quantize != "float32" else []) + ([variant] if variant else [])
    return ".".join(parts) + ".tflite"
