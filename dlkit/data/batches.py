"""tf.data pipelines built on indices: batches of in-memory arrays gathered by index, and
examples made in numpy each from a seed of its own."""


def gathered_batches(arrays, batch_size, shuffle_seed=None):
    """A `tf.data.Dataset` of batches of `arrays` (a nested structure of arrays with one
    first dimension), each gathered from tensors that hold the whole split.

    With `shuffle_seed`, the order changes every epoch (repeatably from the seed). Only
    the indices are shuffled and batched: against `from_tensor_slices(...).shuffle(n)
    .batch(b)`, no example goes through the pipeline one at a time, and no shuffle buffer
    copies the split at each epoch's start.

    Example:
        >>> gathered_batches((images, labels), 32, shuffle_seed=0).map(augment)
    """
    import keras
    import tensorflow as tf

    tensors = keras.tree.map_structure(tf.constant, arrays)
    count = len(keras.tree.flatten(arrays)[0])
    indices = tf.data.Dataset.range(count)
    if shuffle_seed is not None:
        indices = indices.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    return indices.batch(batch_size).map(
        lambda index: keras.tree.map_structure(lambda tensor: tf.gather(tensor, index), tensors),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def seeded_examples(count, seed, example, specs, shuffle=True):
    """A `tf.data.Dataset` of one epoch's `example(epoch, index)` for the `count` indices,
    made in numpy in a parallel, order-keeping `map`.

    Each pass over the dataset is the next epoch: with `shuffle` its indices come in a new
    order drawn from (`seed`, epoch). `example` gets the epoch and the index as numpy
    integers and returns one array per `specs` entry (a `tf.TensorSpec`: dtype and shape);
    seeding its own draws from (seed, epoch, index) makes every example the same whatever
    the number of threads.

    Example:
        >>> def example(epoch, index):
        ...     rng = np.random.default_rng([0, int(epoch), int(index)])
        ...     return make_scene(rng)
        >>> seeded_examples(3000, 0, example, [tf.TensorSpec((256, 256, 3), tf.uint8)])
    """
    import numpy as np
    import tensorflow as tf

    epochs = [0]

    def order(_):
        """The next epoch and its order of indices: one Python call an epoch (a generator
        would take one an example)."""
        epoch = epochs[0]
        epochs[0] += 1
        indices = np.random.default_rng([seed, epoch]).permutation(count) if shuffle else np.arange(count)
        return np.int64(epoch), indices.astype(np.int64)

    def pairs(epoch, indices):
        indices = tf.ensure_shape(indices, (count,))
        return tf.data.Dataset.from_tensor_slices(indices).map(lambda index: (epoch, index))

    def make(epoch, index):
        outputs = tf.numpy_function(example, [epoch, index], [spec.dtype for spec in specs], stateful=False)
        return tuple(tf.ensure_shape(output, spec.shape) for output, spec in zip(outputs, specs))

    # Each new iterator runs the stateful `order` once: the next epoch.
    indices = (
        tf.data.Dataset.from_tensors(np.int64(0))
        .map(lambda _: tf.numpy_function(order, [_], [tf.int64, tf.int64], stateful=True))
        .flat_map(pairs)
    )
    dataset = indices.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.apply(tf.data.experimental.assert_cardinality(count))
