"""TFLite interpreter loading and batched, quantization-aware inference (numpy only)."""

import os
import re
import struct
from pathlib import Path

import numpy as np

from dlkit.errors import InvalidInputError
from dlkit.quiet import native_output_silenced


def tflite_metadata(data):
    """{name: bytes} of a TFLite flatbuffer's metadata entries (the converter writes
    `min_runtime_version` there), read with `struct`: no TensorFlow, no flatbuffers.

    Raises:
        ValueError: `data` is not a TFLite flatbuffer.
    """
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")

    def u32(at):
        return struct.unpack_from("<I", data, at)[0]

    def field(table, index):
        """Position of field `index` of the table at `table`, or None when absent."""
        vtable = table - struct.unpack_from("<i", data, table)[0]
        if 4 + 2 * index >= struct.unpack_from("<H", data, vtable)[0]:
            return None
        offset = struct.unpack_from("<H", data, vtable + 4 + 2 * index)[0]
        return table + offset if offset else None

    def vector(at):
        start = at + u32(at)
        return start + 4, u32(start)

    def tables(at):
        start, count = vector(at)
        return [start + 4 * i + u32(start + 4 * i) for i in range(count)]

    model = u32(0)
    buffers_at, metadata_at = field(model, 4), field(model, 6)
    if buffers_at is None or metadata_at is None:
        return {}
    buffers = tables(buffers_at)
    found = {}
    for entry in tables(metadata_at):
        name_at, buffer_at = field(entry, 0), field(entry, 1)
        if name_at is None or buffer_at is None:
            continue
        start, length = vector(name_at)
        name = data[start : start + length].decode("utf-8", "replace")
        index = u32(buffer_at)
        data_at = field(buffers[index], 0) if index < len(buffers) else None
        if data_at is not None:
            start, length = vector(data_at)
            found[name] = bytes(data[start : start + length])
    return found


def min_runtime_version(model):
    """The oldest TFLite runtime that runs `model` (a `.tflite` path, or its bytes), such
    as "2.17.0", as its converter recorded it; None when the file does not say."""
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    try:
        raw = tflite_metadata(data).get("min_runtime_version")
    except (ValueError, struct.error, IndexError):
        return None
    return raw.split(b"\0", 1)[0].decode("ascii", "replace") or None if raw else None


# The last release of the `tflite-runtime` package (it needs numpy < 2).
FROZEN_RUNTIME = "2.14.0"


def version_tuple(text):
    """ "2.17.0" -> (2, 17, 0), for comparing runtime versions."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def load_interpreter(path, num_threads=None):
    """Returns a TFLite `Interpreter` for `path`, from LiteRT or else `tflite_runtime`.

    Args:
        path: str. A `.tflite` file.
        num_threads: int or None. CPU threads; default $DLKIT_THREADS, else all cores.

    Raises:
        ImportError: when neither runtime is installed; the message says what to install.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            # Frozen at 2.14: needs numpy<2 and runs int8 far slower, hence second choice.
            import tflite_runtime
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ImportError(
                "no TFLite runtime found; install one with: pip install ai-edge-litert"
            ) from None
        needed = min_runtime_version(path)
        if needed and version_tuple(needed) > version_tuple(tflite_runtime.__version__):
            raise InvalidInputError(
                f"{path}: needs TFLite runtime {needed} or newer, and tflite-runtime "
                f"{tflite_runtime.__version__} is installed: pip install ai-edge-litert"
            ) from None
    num_threads = num_threads or int(os.environ.get("DLKIT_THREADS") or 0) or os.cpu_count()
    try:
        with native_output_silenced():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
            return interpreter
    except (ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InvalidInputError(f"{path}: not a valid TFLite model ({first})") from None


class EdgeModel:
    """Runs a `.tflite` model on numpy batches, quantizing inputs and outputs as needed.

    Inputs are given as real values (for an image model, pixels 0..255); when the
    model's input tensor is int8/uint8 they are quantized with the tensor's own scale and
    zero point, and quantized outputs are dequantized, so callers never see the
    difference between a float32 and an int8 model.

    Args:
        path: str or Path. The `.tflite` file.
        num_threads: int or None. CPU threads.

    Example:
        >>> model = EdgeModel("saved_models/classify/model.int8.tflite")
        >>> probs = model.predict(images)[0]  # images: (n, 160, 160, 3)
    """

    def __init__(self, path, num_threads=None):
        self.path = str(path)
        self.interpreter = load_interpreter(path, num_threads)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self._ordered_outputs()
        self._batch = None

    def _ordered_outputs(self):
        """Output details in the Keras model's output order.

        The converter may list a SavedModel's outputs in any order; its serving
        signature names them `output_0`, `output_1`, ... in the Keras order, or by the
        keys of a model's dict of outputs, which Keras flattens in key order.
        """
        details = self.interpreter.get_output_details()
        signatures = self.interpreter.get_signature_list()
        if len(details) < 2 or len(signatures) != 1:
            return details
        runner = self.interpreter.get_signature_runner(next(iter(signatures)))
        by_index = {det["index"]: det for det in details}
        named = runner.get_output_details()
        if all(re.fullmatch(r"output_\d+", name) for name in named):
            order = sorted(named, key=lambda name: int(name.removeprefix("output_")))
        else:
            order = sorted(named)
        ordered = [by_index.get(named[name]["index"]) for name in order]
        return ordered if all(ordered) else details

    @property
    def input_names(self):
        """The inputs' names, in `input_details` order: the serving signature's names
        (the Keras input names) when the file has one signature, else the tensor names."""
        names = [det["name"] for det in self.input_details]
        signatures = self.interpreter.get_signature_list()
        if len(signatures) == 1:
            runner = self.interpreter.get_signature_runner(next(iter(signatures)))
            by_index = {det["index"]: name for name, det in runner.get_input_details().items()}
            names = [by_index.get(det["index"], det["name"]) for det in self.input_details]
        return names

    @property
    def input_shapes(self):
        return [tuple(int(d) for d in det["shape_signature"]) for det in self.input_details]

    @property
    def input_dtypes(self):
        return [np.dtype(det["dtype"]).name for det in self.input_details]

    def _resize(self, batch):
        if batch == self._batch:
            return
        for det in self.input_details:
            shape = list(det["shape"])
            signature = list(det["shape_signature"])
            if signature[0] == -1:
                shape[0] = batch
                self.interpreter.resize_tensor_input(det["index"], shape)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self._ordered_outputs()
        self._batch = batch

    def _static_batch(self):
        signature = self.input_details[0]["shape_signature"]
        return None if signature[0] == -1 else int(signature[0])

    def predict(self, *inputs, batch_size=32):
        """Runs the model; returns one numpy array per output, batched along axis 0.

        Inputs are arrays in the model's input order, or one dict of arrays by input name
        (`input_names`), e.g. `{"token_ids": ..., "mask": ...}`.
        """
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            given, names = inputs[0], self.input_names
            missing = [name for name in names if name not in given]
            if missing:
                raise InvalidInputError(
                    f"model inputs {', '.join(names)}; missing {', '.join(missing)} (given {', '.join(given)})"
                )
            inputs = tuple(given[name] for name in names)
        count = len(inputs[0])
        if len(inputs) != len(self.input_details):
            raise InvalidInputError(f"model takes {len(self.input_details)} inputs, got {len(inputs)}")
        step = self._static_batch() or batch_size
        parts = []
        for start in range(0, count, step):
            chunk = [np.asarray(x[start : start + step]) for x in inputs]
            parts.append(self._invoke(chunk))
        return [np.concatenate([p[i] for p in parts], axis=0) for i in range(len(parts[0]))]

    def _invoke(self, chunk):
        n = len(chunk[0])
        static = self._static_batch()
        if static is None:
            self._resize(n)
        elif n < static:  # a static-batch model (e.g. LSTMs): pad the last chunk
            chunk = [np.concatenate([x, np.zeros((static - n, *x.shape[1:]), x.dtype)]) for x in chunk]
        elif n != static:
            raise InvalidInputError(f"model takes batches of {static}, got {n}")
        for det, value in zip(self.input_details, chunk):
            expected = tuple(det["shape"][1:])
            if tuple(value.shape[1:]) != expected:
                raise InvalidInputError(
                    f"input shape {tuple(value.shape[1:])} does not match the model's {expected}"
                )
            self.interpreter.set_tensor(det["index"], quantize(value, det))
        self.interpreter.invoke()
        return [dequantize(self.interpreter.get_tensor(det["index"]), det)[:n] for det in self.output_details]

    def signature(self, key):
        """A named signature of a multi-graph model (e.g. `encode`, `decode`), called
        with keyword arrays and returning a dict of arrays."""
        return Signature(self.interpreter, key)


class Signature:
    """One signature of a `.tflite` file (float inputs and outputs)."""

    def __init__(self, interpreter, key):
        names = interpreter.get_signature_list()
        if key not in names:
            raise InvalidInputError(f"model has no {key!r} signature (has: {', '.join(names)})")
        self.runner = interpreter.get_signature_runner(key)
        details = self.runner.get_input_details()
        self.input_shapes = {name: tuple(int(d) for d in det["shape"]) for name, det in details.items()}

    def __call__(self, **inputs):
        return self.runner(**inputs)


def quantize(value, detail):
    """Converts real values to the tensor's dtype, using its scale/zero point if quantized."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if dtype.kind in "iu" and scale:
        info = np.iinfo(dtype)
        q = np.round(np.asarray(value, np.float32) / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)
    return np.asarray(value).astype(dtype)


def dequantize(value, detail):
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.dtype(detail["dtype"]).kind in "iu" and scale:
        return (value.astype(np.float32) - zero_point) * scale
    return value
