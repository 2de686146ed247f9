"""How a run trains, beside what it trains: repeatable op order, XLA, mixed precision and
several devices (TensorFlow's own distribution engine), for every app alike.

- `deterministic`: `tf.config.experimental.enable_op_determinism()` with the run's seed:
  every op, the tf.data maps that augment included, gives the same result on the same
  inputs, so two runs with one seed end with the same weights (slower: parallel maps with
  random ops run in order).
- `jit`: XLA-compiles each training step (`model.jit_compile`; Keras leaves it off on CPU).
- `mixed_precision`: compute in bfloat16 on CPU, float16 with loss scaling on GPU, keep
  the variables in float32; the saved `model.keras` is rebuilt in float32, so exports
  stay float32 / int8.
- `devices`: a `tf.distribute.MirroredStrategy` over that many devices: the GPUs, or the
  CPU split into logical devices when there is no GPU (useful to test it; no faster).
"""

import contextlib
import dataclasses

from dlkit.errors import DlkitError


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    deterministic: bool = False
    jit: bool = False
    mixed_precision: bool = False
    devices: int = 1

    def describe(self):
        parts = [name for name in ("deterministic", "jit", "mixed_precision") if getattr(self, name)]
        if self.devices > 1:
            parts.append(f"{self.devices} devices")
        return ", ".join(parts)


def precision_policy():
    """The mixed policy of this machine: float16 where there is a GPU, else bfloat16."""
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def mirrored_strategy(devices):
    """A MirroredStrategy over `devices` GPUs, or over `devices` logical CPUs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if len(gpus) < devices:
            raise DlkitError(f"--devices {devices}: this machine has {len(gpus)} GPU(s)")
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(devices)])
    split_cpu(devices)
    logical = tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in logical[:devices]])


def split_cpu(devices):
    """Splits the CPU into `devices` logical devices (before the runtime starts), unless
    one device is asked for, there is a GPU, or it is split already."""
    import tensorflow as tf

    if devices <= 1 or tf.config.list_physical_devices("GPU"):
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or []) >= devices:
        return
    try:  # listing logical devices would start the runtime: configure first
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError:
        raise DlkitError(
            f"--devices {devices}: TensorFlow has already started in this process with the CPU as "
            "one device; split it before anything else runs (a new process; the CLI does)"
        ) from None


@contextlib.contextmanager
def training(options):
    """Applies `options` for the duration of a run; yields the distribution strategy
    (TensorFlow's default one for a single device)."""
    import keras
    import tensorflow as tf

    if options.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = mirrored_strategy(options.devices) if options.devices > 1 else tf.distribute.get_strategy()
    before = keras.config.dtype_policy()
    if options.mixed_precision:
        keras.config.set_dtype_policy(precision_policy())
    try:
        with strategy.scope():
            yield strategy
    finally:
        keras.config.set_dtype_policy(before)


def even_batches(dataset, devices, batch_size, training=False):
    """`dataset` (batched) rebatched so that every batch splits evenly over the devices.

    A replica given no example fails (BatchNorm on an empty batch), and Keras 3.15's
    `evaluate` under a strategy averages the first batch across replicas
    (`_maybe_symbolic_build`), which fails when they got different numbers. Batches become
    the largest multiple of `devices` not above `batch_size`; training drops its last
    partial batch (other examples each epoch: the data is shuffled), evaluation drops at
    most `devices - 1` examples at the end.
    """
    import tensorflow as tf

    size = max(devices, batch_size // devices * devices)
    examples = dataset.unbatch()
    if training:
        return examples.batch(size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    total = int(examples.reduce(0, lambda count, _: count + 1))
    kept = total // devices * devices
    if kept == 0:
        raise DlkitError(f"--devices {devices}: the validation split has only {total} example(s)")
    return examples.take(kept).batch(size).prefetch(tf.data.AUTOTUNE)


def float32_outputs(model):
    """`model` ending in float32 (a linear Activation per output): metrics and losses
    such as top-k need float32 scores; a float32 model is returned unchanged."""
    import keras

    if all(output.dtype == "float32" for output in model.outputs):
        return model
    outputs = [
        keras.layers.Activation("linear", dtype="float32", name=f"float32_output_{i}")(output)
        for i, output in enumerate(model.outputs)
    ]
    return keras.Model(model.inputs, outputs[0] if len(outputs) == 1 else outputs, name=model.name)


def float32_config(config):
    """A model config with every layer's dtype policy set to float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" or config.get("class_name") == "FloatDTypePolicy":
            return "float32"
        return {key: float32_config(value) for key, value in config.items()}
    if isinstance(config, list):
        return [float32_config(value) for value in config]
    return config
