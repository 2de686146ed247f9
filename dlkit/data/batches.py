"""tf.data pipelines built on indices: batches of in-memory arrays gathered by index, and
examples made in numpy each from a seed of its own.

Each pass's draws (its order of indices, its examples' seeds) come from the run's seed and
the epoch. While the runner trains, the epoch is the one `fit` is in (`training_epoch`,
set by `dlkit.callbacks.EpochClock`), so a resumed run draws what an uninterrupted one
would, whatever passes Keras starts (it starts one more, to build a freshly compiled
model); otherwise each pass over a dataset is its next epoch, from 0.
"""

from contextlib import contextmanager

_TRAINING_EPOCH = [None]


@contextmanager
def training_epoch(first):
    """While `fit` trains from epoch `first`: passes draw that epoch's order and seeds
    until `set_training_epoch` moves it on."""
    _TRAINING_EPOCH[0] = int(first)
    try:
        yield
    finally:
        _TRAINING_EPOCH[0] = None


def set_training_epoch(epoch):
    """The epoch `fit` starts (`EpochClock.on_epoch_begin`); nothing outside `training_epoch`."""
    if _TRAINING_EPOCH[0] is not None:
        _TRAINING_EPOCH[0] = int(epoch)


def epoch_numbers():
    """A `tf.data.Dataset` of one int64 per pass: its epoch (the one `fit` is in while the
    runner trains, else this dataset's count of passes so far). One Python call a pass."""
    import numpy as np
    import tensorflow as tf

    passes = [0]

    def number(_):
        epoch = _TRAINING_EPOCH[0]
        if epoch is None:
            epoch = passes[0]
            passes[0] += 1
        return np.int64(epoch)

    return tf.data.Dataset.from_tensors(np.int64(0)).map(
        lambda _: tf.ensure_shape(tf.numpy_function(number, [_], tf.int64, stateful=True), ())
    )


def epoch_orders(count, seed=None, length=None, seeds=0, arrange=None):
    """A `tf.data.Dataset` of one element per pass: (epoch, indices, seeds). `indices`
    (`length`, default `count`) is a permutation of range(count) drawn from (`seed`,
    epoch), followed by new ones while `length` asks for more, or range(count) in order
    when `seed` is None; `seeds` (`seeds`, 2) int64 are stateless-op seeds of the epoch.
    `arrange(indices, rng)`, if given, reorders each pass's indices (rng: numpy Generator
    of the seed and the epoch)."""
    import numpy as np
    import tensorflow as tf

    length = count if length is None else length

    def order(epoch):
        if seed is None:
            indices = np.resize(np.arange(count), length)
        else:
            rounds = -(-length // count)
            keys = [[seed, epoch]] + [[seed, epoch, r] for r in range(1, rounds)]
            indices = np.concatenate([np.random.default_rng(key).permutation(count) for key in keys])[:length]
        if arrange is not None:
            indices = arrange(indices, np.random.default_rng([0 if seed is None else seed, epoch, 1 << 21]))
        stateless = np.random.default_rng([0 if seed is None else seed, epoch, 1 << 20])
        return indices.astype(np.int64), stateless.integers(0, 1 << 62, (seeds, 2))

    def draw(epoch):
        indices, seeds_ = tf.numpy_function(order, [epoch], [tf.int64, tf.int64], stateful=False)
        return epoch, tf.ensure_shape(indices, (length,)), tf.ensure_shape(seeds_, (seeds, 2))

    return epoch_numbers().map(draw)


def epoch_examples(arrays, seed=None, length=None):
    """Single examples of `arrays` (a nested structure with one first dimension) in each
    epoch's order of `epoch_orders`, gathered from tensors holding the split (no shuffle
    buffer)."""
    import tensorflow as tf

    count, gather = _gatherer(arrays)
    indices = epoch_orders(count, seed, length).flat_map(
        lambda epoch, order, seeds: tf.data.Dataset.from_tensor_slices(order)
    )
    # flat_map hides the epoch's length; fit needs it (else it warns that the data "ran out").
    cardinality = tf.data.experimental.assert_cardinality(count if length is None else length)
    return indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE).apply(cardinality)


def _gatherer(arrays):
    """(count, fn(indices) -> `arrays` at those indices), from tensors holding them whole."""
    import keras
    import tensorflow as tf

    tensors = keras.tree.map_structure(tf.constant, arrays)
    count = len(keras.tree.flatten(arrays)[0])
    return count, lambda index: keras.tree.map_structure(lambda tensor: tf.gather(tensor, index), tensors)


def length_grouped(indices, lengths, batch_size, rng, group=50, shuffle=True):
    """`indices` reordered so that each run of `batch_size` holds rows of similar length.

    The order is cut into pools of `group` batches; each pool is sorted by `lengths`
    (stably, so ties keep the random order) and cut into batches; with `shuffle` the
    batches are then shuffled with `rng`, so an epoch does not go from short to long. Rows
    stay random within a pool, and a pool is many batches, so which rows meet in a batch
    still changes every epoch (a "length-grouped sampler"). The last batch may be short.

    Example:
        >>> length_grouped(np.arange(6), np.array([5, 1, 4, 2, 6, 3]), 2, rng, shuffle=False)
        array([1, 3, 5, 2, 0, 4])  # batches (1, 3) (5, 2) (0, 4); shuffled, in some order
    """
    import numpy as np

    indices = np.asarray(indices)
    pool = batch_size * group
    pools = [indices[i : i + pool] for i in range(0, len(indices), pool)]
    ordered = np.concatenate([p[np.argsort(np.asarray(lengths)[p], kind="stable")] for p in pools])
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    if shuffle:  # a short last batch stays last, as in an epoch without grouping
        whole = len(batches) if len(batches[-1]) == batch_size else len(batches) - 1
        batches = [batches[k] for k in rng.permutation(whole)] + batches[whole:]
    return np.concatenate(batches)


def gathered_batches(
    arrays, batch_size, shuffle_seed=None, with_seeds=False, length=None, lengths=None, group=50
):
    """A `tf.data.Dataset` of batches of `arrays` (a nested structure of arrays with one
    first dimension), each gathered from tensors that hold the whole split.

    With `shuffle_seed`, the order changes every epoch (drawn from the seed and the epoch,
    `epoch_orders`). Only the indices are shuffled and batched: against
    `from_tensor_slices(...).shuffle(n).batch(b)`, no example goes through the pipeline
    one at a time, and no shuffle buffer copies the split at each epoch's start. With
    `with_seeds`, each batch comes with a stateless-op seed of its own (shape (2,),
    drawn from the seed and the epoch) for augmentation. `length` indices make an epoch
    (default: the split once; more go on into new orders). With `lengths` (one per row,
    e.g. a text's token count), each batch holds rows of similar length
    (`length_grouped` over pools of `group` batches; without `shuffle_seed`, the rows in
    order of length), so a text model trimming each batch to its longest row computes
    little padding.

    Example:
        >>> gathered_batches((images, labels), 32, shuffle_seed=0).map(augment)
    """
    import tensorflow as tf

    count, gather_rows = _gatherer(arrays)
    batches = -(-(length or count) // batch_size)

    def epoch_batches(epoch, order, seeds):
        indices = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        return (
            tf.data.Dataset.zip(indices, tf.data.Dataset.from_tensor_slices(seeds)) if with_seeds else indices
        )

    def gather(index, seed=None):
        batch = gather_rows(index)
        return batch if seed is None else (batch, seed)

    arrange = None
    if lengths is not None:

        def arrange(indices, rng):
            if shuffle_seed is None:  # whole split sorted: the fewest padded positions
                return length_grouped(indices, lengths, batch_size, rng, group=len(indices), shuffle=False)
            return length_grouped(indices, lengths, batch_size, rng, group=group)

    orders = epoch_orders(count, shuffle_seed, length, seeds=batches if with_seeds else 0, arrange=arrange)
    dataset = orders.flat_map(epoch_batches)
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE).apply(
        tf.data.experimental.assert_cardinality(batches)
    )


def seeded_examples(count, seed, example, specs, shuffle=True):
    """A `tf.data.Dataset` of one epoch's `example(epoch, index)` for the `count` indices,
    made in numpy in a parallel, order-keeping `map`.

    Each pass is an epoch (`epoch_orders`): with `shuffle` its indices come in a new
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
    import tensorflow as tf

    def pairs(epoch, indices, seeds):
        return tf.data.Dataset.from_tensor_slices(indices).map(lambda index: (epoch, index))

    def make(epoch, index):
        outputs = tf.numpy_function(example, [epoch, index], [spec.dtype for spec in specs], stateful=False)
        return tuple(tf.ensure_shape(output, spec.shape) for output, spec in zip(outputs, specs))

    indices = epoch_orders(count, seed if shuffle else None).flat_map(pairs)
    dataset = indices.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.apply(tf.data.experimental.assert_cardinality(count))
