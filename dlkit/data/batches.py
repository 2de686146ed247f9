"""Batches of in-memory arrays gathered by index, for tf.data pipelines."""


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
