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
- `multi_worker`: a `tf.distribute.MultiWorkerMirroredStrategy` over the machines that
  `TF_CONFIG` names. Keras 3's `fit` fails under it (keras-team/keras#20585), so each
  stage trains with `fit_workers`: a `strategy.run` step whose per-replica loss is scaled
  by the global batch, the optimizer summing the gradients of every replica. Every
  worker runs the same callbacks; only the chief's land in the run directory.
"""

import contextlib
import dataclasses
import json
import os

from dlkit.console import counted
from dlkit.errors import DlkitError


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    deterministic: bool = False
    jit: bool = False
    mixed_precision: bool = False
    devices: int = 1
    multi_worker: bool = False

    def describe(self):
        parts = [name for name in ("deterministic", "jit", "mixed_precision") if getattr(self, name)]
        if self.devices > 1:
            parts.append(f"{self.devices} devices")
        if self.multi_worker:
            parts.append(f"worker {worker_task()[1]} of {len(cluster_workers())}")
        return ", ".join(parts)


def tf_config():
    """The parsed TF_CONFIG of a multi-worker run: {"cluster": {...}, "task": {...}}."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise DlkitError(
            "--multi-worker needs TF_CONFIG: the cluster's workers and this worker's task, e.g. "
            '\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}\''
        )
    try:
        config = json.loads(text)
        workers, task = config["cluster"]["worker"], config["task"]
        if not isinstance(workers, list) or not workers or task["type"] not in config["cluster"]:
            raise ValueError
        if task["type"] == "worker" and not 0 <= int(task["index"]) < len(workers):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise DlkitError(
            "TF_CONFIG must be JSON with cluster.worker (a list of host:port) and task (type, index)"
        ) from None
    return config


def cluster_workers():
    return tf_config()["cluster"]["worker"]


def worker_task():
    task = tf_config()["task"]
    return task["type"], int(task.get("index", 0))


_WORKER_STRATEGY = []


def worker_strategy():
    """The process's MultiWorkerMirroredStrategy, made on first call: it must be made
    before TensorFlow's runtime starts (the CLI does so, before anything else)."""
    import tensorflow as tf

    if not _WORKER_STRATEGY:
        tf_config()  # checked before the strategy waits for the other workers
        try:
            _WORKER_STRATEGY.append(tf.distribute.MultiWorkerMirroredStrategy())
        except RuntimeError:
            raise DlkitError(
                "--multi-worker: TensorFlow has already started in this process; make the strategy "
                "first (dlkit.distribute.worker_strategy(), as the CLI does)"
            ) from None
    return _WORKER_STRATEGY[0]


def is_chief():
    """True for the worker that writes the run: the `chief` task, or worker 0 without one."""
    config = tf_config()
    kind, index = worker_task()
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in config["cluster"])


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
            raise DlkitError(f"--devices {devices}: this machine has {counted(len(gpus), 'GPU')}")
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
    if options.multi_worker:
        if options.devices > 1:
            raise DlkitError("--multi-worker uses each worker's GPUs by itself; leave out --devices")
        strategy = worker_strategy()
    elif options.devices > 1:
        strategy = mirrored_strategy(options.devices)
    else:
        strategy = tf.distribute.get_strategy()
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
    examples = dataset.unbatch()  # padded back: batches cut to their longest text differ in width
    if training:
        return examples.padded_batch(size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    total = int(examples.reduce(0, lambda count, _: count + 1))
    kept = total // devices * devices
    if kept == 0:
        raise DlkitError(f"--devices {devices}: the validation split has only {counted(total, 'example')}")
    return examples.take(kept).padded_batch(size).prefetch(tf.data.AUTOTUNE)


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


def synchronize_batch_norm(model):
    """Makes every BatchNormalization layer of `model` (nested ones too) compute its batch
    statistics over the global batch, so several replicas train as one device would and
    end with the same moving statistics."""
    import keras

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
    return model


def fit_workers(model, train_data, val_data, epochs, initial_epoch=0, callbacks=(), class_weight=None):
    """`model.fit` for a multi-worker strategy (the one in scope): the same epochs, logs
    (`loss`, the compiled metrics, `val_` of each) and callbacks, with a training step of
    our own, since Keras 3's `fit` fails under MultiWorkerMirroredStrategy.

    Each replica's mean loss is weighted by its share of the global batch (the examples of
    all replicas, all-reduced), so the summed gradients are those of the global batch's
    mean: a run on N workers takes the steps a single worker takes with the same global
    batch. Keras' `compute_loss` already divides by the replica count; that is undone first.
    `train_data` must give every replica examples in every batch (`even_batches`);
    `val_data` is scored whole.
    """
    import keras
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    sharding = tf.data.Options()
    sharding.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train = strategy.experimental_distribute_dataset(train_data.with_options(sharding))
    val = strategy.experimental_distribute_dataset(val_data.with_options(sharding))
    weights = None
    if class_weight:
        weights = tf.constant([class_weight.get(i, 1.0) for i in range(max(class_weight) + 1)], tf.float32)

    def unpack(batch):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        if weights is not None and sample_weight is None:
            sample_weight = tf.gather(weights, tf.reshape(tf.cast(y, tf.int32), [-1]))
        return x, y, sample_weight

    def share(x):
        count = tf.cast(tf.shape(tf.nest.flatten(x)[0])[0], tf.float32)
        total = tf.distribute.get_replica_context().all_reduce("sum", count)
        return count, total

    def train_step(batch):
        x, y, sample_weight = unpack(batch)
        count, total = share(x)
        with tf.GradientTape() as tape:
            prediction = model(x, training=True)
            mean = model.compute_loss(x, y, prediction, sample_weight, training=True) * replicas
            loss = mean * count / total
            scaled = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        model.compute_metrics(x, y, prediction, sample_weight)
        return loss * total, count

    def test_step(batch):
        x, y, sample_weight = unpack(batch)
        count, total = share(x)
        prediction = model(x, training=False)
        mean = model.compute_loss(x, y, prediction, sample_weight, training=False) * replicas
        model.compute_metrics(x, y, prediction, sample_weight)
        # The last batch may leave a replica without examples (a mean of nothing: NaN).
        return tf.where(count > 0, mean * count, 0.0), count

    def run_step(step):
        @tf.function
        def distributed(batch):
            loss_sum, count = strategy.run(step, args=(batch,))
            reduce = tf.distribute.ReduceOp.SUM
            return strategy.reduce(reduce, loss_sum, axis=None), strategy.reduce(reduce, count, axis=None)

        return distributed

    def epoch(dataset, step, batch_end=None):
        for metric in model.metrics:
            metric.reset_state()
        loss_sum = count = 0.0
        for index, batch in enumerate(dataset):
            batch_loss, batch_count = step(batch)
            loss_sum, count = loss_sum + float(batch_loss), count + float(batch_count)
            if batch_end:  # per-step callbacks (progress, the weight average)
                batch_end(index, {"loss": loss_sum / max(count, 1.0)})
        logs = {k: float(v) for k, v in model.get_metrics_result().items() if k != "loss"}
        return {"loss": loss_sum / max(count, 1.0), **logs}

    train_function, test_function = run_step(train_step), run_step(test_step)
    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model, epochs=epochs, verbose=0)
    model.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for index in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(index)
        logs = epoch(train, train_function, callback_list.on_train_batch_end)
        callback_list.on_test_begin()
        scored = epoch(val, test_function)
        callback_list.on_test_end(scored)
        logs.update({f"val_{key}": value for key, value in scored.items()})
        callback_list.on_epoch_end(index, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
