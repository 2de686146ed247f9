"""Conversion of a Keras model to TFLite: its inference function traced with a static
signature, variables folded into constants (a SavedModel where that does not convert)."""

import contextlib
import logging
import re

import numpy as np

from dlkit import io
from dlkit.errors import DlkitError
from dlkit.export import QUANTIZATIONS
from dlkit.quiet import native_output_silenced


def convert(
    model,
    quantize="float32",
    representative=None,
    batch_size=None,
    int8_input=None,
    float_fallback=False,
    float_layers=(),
    composites=False,
    length=None,
):
    """Converts `model` to TFLite flatbuffer bytes, builtin ops only.

    The model's inference function is traced with a fixed input signature and its
    variables folded into constants, then converted (`from_concrete_functions`); the file
    gets the serving signature a SavedModel export would give it (inputs by Keras input
    name, outputs `output_0`, `output_1`, ... or the model's output keys). A model with
    composite functions (detect's NMS), which the converter fuses into one builtin op only
    when it reads a SavedModel, goes through a SavedModel whose weights are constants of
    its graph (`constant_saved_model`); a model that converts neither way, through
    `model.export`'s SavedModel, the path that is about five times slower for a
    MobileNetV2 (it writes, then reloads, a checkpoint of every variable). LSTM/GRU
    layers are unrolled over their static number of steps (`recurrent_unrolled`), so they
    take any batch too.

    Args:
        model: keras.Model.
        quantize: str. "float32", "float16", "dynamic" (int8 weights) or "int8" (full
            integer, calibrated on `representative`).
        representative: for int8, the calibration inputs: an array of samples (first axis),
            or a dict of such arrays by input name for a model with several inputs. Given
            for "dynamic", the int8 weights are rounded by GPTQ on them (dlkit.export.gptq).
        batch_size: int or None. Static batch size of the signature; None keeps it dynamic.
        int8_input: str or None. For int8: "uint8" or "int8" to make the input tensor
            integer too (images), None to keep a float input.
        float_fallback: bool. For int8: ops without an int8 kernel (e.g. NMS) stay float
            builtins instead of failing the conversion.
        float_layers: names of Keras layers whose ops stay float in an int8 model (e.g. box
            decoding, where 8-bit steps between ops cost more than they save). Implies
            `float_fallback`.
        composites: bool. The model holds composite functions (detect's NMS): go straight
            to the SavedModel path, without first tracing it for the frozen-graph path,
            which would refuse it (a fifth of detect's conversion time).
        length: int or None. The static size of input axes the Keras model leaves open
            after the batch (a text model taking any number of tokens); required for such
            a model.

    Raises:
        DlkitError: when conversion fails; the message names the Keras layer at fault.
    """
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise DlkitError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize == "int8" and representative is None:
        raise DlkitError("int8 export needs representative data (the training split)")
    if length is None and any(d is None for x in model.inputs for d in x.shape[1:]):
        raise DlkitError(f"{model.name} takes inputs of any length; convert needs a static length")
    specs = [
        tf.TensorSpec(
            [batch_size, *(length if d is None else d for d in x.shape[1:])],
            x.dtype,
            name=x.name.split(":")[0],
        )
        for x in model.inputs
    ]
    # A model called on a dict of named inputs takes its signature as one dict; a model of
    # several inputs as one list.
    if isinstance(model.input, dict):
        signature = [{spec.name: spec for spec in specs}]
    else:
        signature = [specs] if len(specs) > 1 else specs
    samples = calibration_samples(model, representative) if quantize == "int8" else None

    def configured(converter, samples):
        float_options(converter, quantize)
        if quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: iter(samples)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if float_fallback or float_layers:
                converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
            if int8_input:
                converter.inference_input_type = tf.as_dtype(int8_input)
            if float_layers:
                converter._experimental_calibrate_only = True  # quantized below, minus float_layers
        with native_output_silenced():  # the converter's C++ prints its settings
            return converter.convert()

    with recurrent_unrolled(model):
        flatbuffer = _convert(model, signature, samples, configured, composites)
    if quantize == "int8" and float_layers:
        flatbuffer = quantize_except(flatbuffer, float_layers, int8_input)
    if quantize == "dynamic":
        flatbuffer = share_tied_tables(flatbuffer)
        if representative is not None:  # GPTQ instead of rounding to nearest
            from dlkit.engine import count, take
            from dlkit.export.gptq import round_weights

            calibration = [
                take(representative, slice(i, i + 32)) for i in range(0, count(representative), 32)
            ]
            flatbuffer = round_weights(flatbuffer, model, calibration)
    return flatbuffer


def _convert(model, signature, samples, configured, composites):
    import tensorflow as tf

    flatbuffer = None
    if not composites:  # a graph with composite functions goes to the SavedModel paths below
        try:
            frozen, inputs, outputs = frozen_function(model, signature)
            # Without a signature, calibration feeds each sample's arrays in the graph's order.
            ordered = samples and [[s[n] for n in inputs] if isinstance(s, dict) else s for s in samples]
            # The converter advises passing the model too, with which it writes a SavedModel
            # (and calls this path deprecated: were it dropped, the SavedModel paths below run).
            with advice_dropped("Please consider providing the trackable_obj"):
                converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
            flatbuffer = configured(converter, ordered)
            flatbuffer = with_serving_signature(flatbuffer, inputs, outputs)
        except Exception:  # e.g. a composite op, or a converter that drops this path
            flatbuffer = None
    # Then through a SavedModel: first one whose weights are constants of its graph (no
    # checkpoint to write and read back), then Keras's own export of the model.
    for write in (constant_saved_model, keras_saved_model):
        if flatbuffer is not None:
            break
        with io.temp_dir("export") as tmp:
            try:
                write(model, signature, tmp)
                flatbuffer = configured(tf.lite.TFLiteConverter.from_saved_model(str(tmp)), samples)
            except Exception as error:
                if write is keras_saved_model:
                    raise DlkitError(conversion_error(model, error)) from None
    return flatbuffer


@contextlib.contextmanager
def recurrent_unrolled(model):
    """`model`'s recurrent layers (LSTM, GRU, also inside Bidirectional) unrolled for the
    block: each time step becomes its own ops instead of a TFLite WHILE loop, whose
    iterations cost a subgraph call each and whose tensors need a static batch. The
    weights and the math are the same; the layers are set back afterwards.

    Measured on the shipped date model (a 40-step Bi-LSTM, LiteRT, one thread): one input
    0.44 ms against 7.1 ms for the loop graph, which needed a static batch of 32. The
    graph grows with the steps: a 64-unit Bi-LSTM over 500 tokens converts in about a
    minute to 4 MB of ops (the weights are stored once).

    A backward layer that zeroes its masked outputs (a Bidirectional one returning
    sequences) has that turned off while unrolled: Keras 3.15's unrolled loop zeroes the
    outputs of a reversed sequence with the mask in forward order, so real steps read
    zeros. Without it the masked steps carry the output before them, which for padding
    at the end (every dlkit text pipeline's) is the same zero: the backward pass meets
    the padding first.
    """
    import keras

    layers = [
        layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, keras.layers.RNN)
    ]
    before = [(layer.unroll, layer.zero_output_for_mask) for layer in layers]
    for layer in layers:
        layer.unroll = True
        if layer.go_backwards:
            layer.zero_output_for_mask = False
    try:
        yield
    finally:
        for layer, (unroll, zero_output) in zip(layers, before):
            layer.unroll, layer.zero_output_for_mask = unroll, zero_output


def frozen_function(model, signature):
    """`model`'s inference function traced with `signature`, its variables folded into
    constants; with its input names and its output names as a SavedModel's serving
    signature gives them, each in the order of the function's flat inputs and outputs.

    Raises ValueError for a graph holding composite functions (`experimental_implements`,
    e.g. `tf.image.non_max_suppression_padded`): the converter replaces them with one
    builtin op (NON_MAX_SUPPRESSION_V4) when it reads a SavedModel, and converts their
    loops op by op from a frozen graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    traced = tf.function(lambda *args: model(*args, training=False)).get_concrete_function(*signature)
    library = traced.graph.as_graph_def().library.function
    composites = sorted({f.attr["_implements"].s.decode() for f in library if "_implements" in f.attr})
    if composites:
        raise ValueError(f"functions the converter fuses from a SavedModel only: {', '.join(composites)}")
    structure = traced.structured_outputs
    if isinstance(structure, dict):
        outputs = sorted(structure)  # flattened in key order
    else:
        outputs = [f"output_{i}" for i in range(len(tf.nest.flatten(structure)))]
    inputs = [spec.name for spec in tf.nest.flatten(signature)]
    return convert_variables_to_constants_v2(traced, lower_control_flow=False), inputs, outputs


def constant_saved_model(model, signature, path):
    """Writes to `path` a SavedModel of `model`'s inference function whose weights are
    constants of its graph: the function is traced with every Keras variable read as a
    constant (`keras.StatelessScope`), so the SavedModel holds no variable, and its
    composite functions (NMS) stay whole for the converter to fuse. Writing and reading it
    back skips the checkpoint of every variable that `model.export` writes (detect: 8.1 s
    against 20.6 s, tools/bench_export.py)."""
    import keras
    import tensorflow as tf

    values = [variable.numpy() for variable in model.variables]

    def inference(*args):
        constants = [(variable, tf.constant(value)) for variable, value in zip(model.variables, values)]
        with keras.StatelessScope(state_mapping=constants):
            return model(*args, training=False)

    module = tf.Module()
    module.inference = tf.function(inference)
    traced = module.inference.get_concrete_function(*signature)
    tf.saved_model.save(module, str(path), signatures={"serving_default": traced})


def keras_saved_model(model, signature, path):
    """Writes `model`'s SavedModel the Keras way (variables in a checkpoint)."""
    model.export(str(path), format="tf_saved_model", input_signature=signature, verbose=False)


@contextlib.contextmanager
def advice_dropped(prefix):
    """Drops the converter's log records (Python `logging`, the `absl` logger) that start
    with `prefix`, for the block."""

    def keep(record):
        return not record.getMessage().startswith(prefix)

    logger = logging.getLogger("absl")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def with_serving_signature(flatbuffer, inputs, outputs):
    """Adds a `serving_default` signature to a TFLite model's main graph (its first; loop
    bodies are graphs too): its input tensors, named as in `inputs`, and its outputs, in
    order, under the names `outputs`."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    by_name = {graph.tensors[i].name.decode(): int(i) for i in graph.inputs}
    if sorted(by_name) != sorted(inputs) or len(graph.outputs) != len(outputs):
        raise ValueError(
            f"the converted graph's inputs {sorted(by_name)} and {len(graph.outputs)} outputs are not"
            f" the signature's {inputs} and {len(outputs)}"
        )

    def tensor_map(name, index):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index
        return entry

    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = "serving_default", 0
    signature.inputs = [tensor_map(name, by_name[name]) for name in inputs]
    signature.outputs = [tensor_map(name, int(index)) for name, index in zip(outputs, graph.outputs)]
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _opcode(model, builtin, version):
    """The index of `model`'s operator code for `builtin` at `version`, added if missing."""
    from tensorflow.lite.python import schema_py_generated as schema

    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin and code.version == version:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def share_tied_tables(flatbuffer):
    """Stores a tied embedding once in a dynamic-range model.

    A table that is both looked up (GATHER: token ids -> vectors) and used as a dense
    layer's weight (FULLY_CONNECTED: vectors -> vocabulary logits), as a masked language
    model ties them, is quantized twice by the converter: per tensor for the lookup, per
    row for the layer. This keeps the per-row int8 copy only: the lookup and the layer
    both read a DEQUANTIZE of it (run once, its input being constant). The file loses one
    int8 copy of the table, the looked-up vectors keep per-row precision, and the layer
    runs in float: its input is not quantized on the fly, as a dynamic-range layer's is,
    so the logits differ from the float model's by the table's rounding only. Returns the
    model unchanged when no table is shared.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    ops = schema.BuiltinOperator

    def code(op):
        found = model.operatorCodes[op.opcodeIndex]
        return max(found.builtinCode, found.deprecatedBuiltinCode)

    shared = 0
    for graph in model.subgraphs:

        def constant_int8(index, graph=graph):
            tensor = graph.tensors[index]
            data = model.buffers[tensor.buffer].data
            return tensor.type == schema.TensorType.INT8 and data is not None and len(data) > 0

        def dequantized(index, graph=graph):
            tensor = graph.tensors[index]
            quant = tensor.quantization
            values = np.frombuffer(bytes(model.buffers[tensor.buffer].data), np.int8).reshape(tensor.shape)
            shape = [1] * values.ndim
            if len(quant.scale) > 1:
                shape[quant.quantizedDimension] = -1
            scale = np.asarray(quant.scale, np.float32).reshape(shape)
            zero = np.asarray(quant.zeroPoint, np.float32).reshape(shape)
            return (values - zero) * scale, float(scale.max())

        weights = [
            int(op.inputs[1])
            for op in graph.operators
            if code(op) == ops.FULLY_CONNECTED and op.inputs[1] >= 0 and constant_int8(int(op.inputs[1]))
        ]
        for gather in list(graph.operators):
            table = int(gather.inputs[0])
            if code(gather) != ops.GATHER or not constant_int8(table):
                continue
            users = [op for op in graph.operators if gather.outputs[0] in op.inputs]
            if (
                len(users) != 1
                or code(users[0]) != ops.DEQUANTIZE
                or len(graph.tensors[table].quantization.scale) != 1
            ):
                continue
            lookup, lookup_step = dequantized(table)
            for weight in weights:
                if list(graph.tensors[weight].shape) != list(graph.tensors[table].shape):
                    continue
                layer, layer_step = dequantized(weight)
                # Two int8 copies of one float table differ by less than a step of the
                # coarser; different tables differ by far more.
                if np.abs(lookup - layer).max() > max(lookup_step, layer_step):
                    continue
                whole = schema.TensorT()
                whole.name = graph.tensors[table].name + b"/dequantized"
                whole.shape = np.array(graph.tensors[table].shape, np.int32)
                whole.type = schema.TensorType.FLOAT32
                whole.buffer = 0  # the empty buffer: computed at run time
                graph.tensors.append(whole)
                dequantize = schema.OperatorT()
                dequantize.opcodeIndex = _opcode(model, ops.DEQUANTIZE, version=5)  # 5: per channel
                dequantize.inputs = np.array([weight], np.int32)
                dequantize.outputs = np.array([len(graph.tensors) - 1], np.int32)
                gather.inputs[0] = len(graph.tensors) - 1
                gather.outputs[0] = users[0].outputs[0]  # it now gathers floats
                graph.operators.remove(users[0])
                graph.operators.insert(graph.operators.index(gather), dequantize)
                model.buffers[graph.tensors[table].buffer].data = None
                shared += 1
                break
        # The layer reads the dequantized table too (also in a file shared before it
        # did): in float, its input is not quantized on the fly.
        for dequantize in graph.operators:
            if code(dequantize) != ops.DEQUANTIZE or not constant_int8(int(dequantize.inputs[0])):
                continue
            for op in graph.operators:
                if code(op) == ops.FULLY_CONNECTED and op.inputs[1] == dequantize.inputs[0]:
                    op.inputs[1] = dequantize.outputs[0]
                    shared += 1
    if not shared:
        return flatbuffer
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def quantize_except(calibrated, float_layers, int8_input=None):
    """Quantizes a calibrated TFLite model to int8 except the ops of `float_layers` and
    every op after them (post-processing stays float to the outputs).

    This is the selective quantization of `tf.lite.experimental.QuantizationDebugger`
    (its `denylisted_nodes`), called directly so the input can stay uint8/int8.
    """
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python.convert import mlir_quantize

    interpreter = Interpreter(model_content=calibrated)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    # Keras scopes a layer's ops as ".../<layer name>[_<n>]/<op>".
    pattern = re.compile(r"(^|/)(" + "|".join(re.escape(name) for name in float_layers) + r")(_\d+)?/")
    kept = {index for index, name in names.items() if pattern.search(name)}
    if not kept:
        raise DlkitError(f"int8 export: no op of layers {', '.join(float_layers)} found to keep in float")
    for op in interpreter._get_ops_details():  # execution order: downstream of a kept op stays float
        if kept.intersection(op["inputs"]):
            kept.update(op["outputs"])
    input_type = tf.as_dtype(int8_input or "float32")
    with native_output_silenced():
        return mlir_quantize(
            calibrated,
            input_data_type=input_type,
            output_data_type=tf.float32,
            denylisted_nodes=sorted(names[i] for i in kept if i in names),
        )


def calibration_samples(model, representative):
    """Batch-1 calibration samples in the model's input dtypes: a list with one array per
    sample for a one-input model; for named inputs (a dict), one dict per sample keyed by
    input name, which the converter matches to the signature's inputs."""
    names = [x.name.split(":")[0] for x in model.inputs]
    dtypes = {name: np.dtype(x.dtype) for name, x in zip(names, model.inputs)}
    if not isinstance(representative, dict):
        data = np.asarray(representative)
        return [[sample[None].astype(dtypes[names[0]])] for sample in data]
    missing = [name for name in names if name not in representative]
    if missing:
        raise DlkitError(f"int8 export: no calibration data for inputs {', '.join(missing)}")
    count = len(representative[names[0]])
    return [
        {name: np.asarray(representative[name][i])[None].astype(dtypes[name]) for name in names}
        for i in range(count)
    ]


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
