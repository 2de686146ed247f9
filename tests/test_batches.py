"""Batches gathered by index; examples made in numpy from seeds of their own."""

import numpy as np

from dlkit.data.batches import (
    epoch_examples,
    gathered_batches,
    length_grouped,
    seeded_examples,
    set_training_epoch,
    training_epoch,
)


def test_gathered_batches_cover_the_split_once_per_epoch_in_a_new_order():
    images = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)
    labels = np.arange(10)
    dataset = gathered_batches((images, labels), 4, shuffle_seed=0)
    epochs = [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(2)]
    for batches in epochs:
        assert [len(y) for _, y in batches] == [4, 4, 2]
        order = np.concatenate([y for _, y in batches])
        assert sorted(order) == list(range(10))
        for x, y in batches:
            np.testing.assert_array_equal(x, images[y])  # rows stay with their labels
    first, second = (np.concatenate([y for _, y in b]) for b in epochs)
    assert not np.array_equal(first, second)
    plain = np.concatenate([y.numpy() for _, y in gathered_batches((images, labels), 4)])
    np.testing.assert_array_equal(plain, labels)


def test_length_grouped_batches_hold_similar_lengths_and_still_change_every_epoch():
    """Each index once; within a pool the batches are runs of the pool sorted by length
    (so a batch spans little of the length range); the batch order and the rows that meet
    change with the epoch; without a seed the whole split comes sorted by length."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 65, 1000)
    order = rng.permutation(1000)
    grouped = length_grouped(order, lengths, 10, np.random.default_rng(1), group=20)
    assert sorted(grouped) == list(range(1000))
    batches = grouped.reshape(100, 10)
    spans = np.ptp(lengths[batches], axis=1)
    random_spans = np.ptp(lengths[order.reshape(100, 10)], axis=1)
    assert spans.mean() < random_spans.mean() / 5
    for pool in range(5):  # a pool's 20 batches: its 200 rows, sorted, cut into runs of 10
        rows = order[pool * 200 : (pool + 1) * 200]
        runs = rows[np.argsort(lengths[rows], kind="stable")].reshape(20, 10)
        assert {tuple(run) for run in runs} <= {tuple(batch) for batch in batches}
    mins = lengths[batches].min(axis=1)
    assert not np.all(np.diff(mins) >= 0)  # batches shuffled, not short to long
    # 7 rows in batches of 2: the short batch stays last
    short = length_grouped(np.arange(7), np.arange(7)[::-1], 2, np.random.default_rng(0), group=4)
    assert sorted(short) == list(range(7)) and short[-1] == 0  # (6, 5) (4, 3) (2, 1) shuffled, (0) after them

    texts = np.arange(50)
    sizes = np.random.default_rng(2).integers(1, 30, 50)
    dataset = gathered_batches((texts,), 8, shuffle_seed=3, lengths=sizes)
    epochs = [[b[0].numpy() for b in dataset] for _ in range(2)]
    assert all(sorted(np.concatenate(e)) == list(range(50)) for e in epochs)
    assert [list(b) for b in epochs[0]] != [list(b) for b in epochs[1]]
    again = [b[0].numpy() for b in gathered_batches((texts,), 8, shuffle_seed=3, lengths=sizes)]
    assert all(np.array_equal(a, b) for a, b in zip(again, epochs[0]))  # from the seed and the epoch
    plain = np.concatenate([b[0].numpy() for b in gathered_batches((texts,), 8, lengths=sizes)])
    assert np.all(np.diff(sizes[plain]) >= 0)


def test_seeded_examples_are_one_epoch_each_pass_in_a_repeatable_new_order():
    import tensorflow as tf

    def example(epoch, index):
        rng = np.random.default_rng([7, int(epoch), int(index)])
        return np.array([epoch, index], np.int64), rng.random(3).astype(np.float32)

    specs = [tf.TensorSpec((2,), tf.int64), tf.TensorSpec((3,), tf.float32)]
    dataset = seeded_examples(9, 7, example, specs)
    assert dataset.cardinality().numpy() == 9
    epochs = [[(key.numpy(), draw.numpy()) for key, draw in dataset] for _ in range(2)]
    for number, examples in enumerate(epochs):
        assert [int(key[0]) for key, _ in examples] == [number] * 9  # each pass is the next epoch
        order = [int(key[1]) for key, _ in examples]
        assert order == list(np.random.default_rng([7, number]).permutation(9))
        for key, draw in examples:  # what the example's own seed gives, whatever the thread
            np.testing.assert_array_equal(draw, example(*key)[1])
    assert [int(k[1]) for k, _ in epochs[0]] != [int(k[1]) for k, _ in epochs[1]]
    again = [key.numpy()[1] for key, _ in seeded_examples(9, 7, example, specs)]
    assert list(again) == [int(k[1]) for k, _ in epochs[0]]  # a new dataset starts at epoch 0
    plain = [int(key.numpy()[1]) for key, _ in seeded_examples(9, 7, example, specs, shuffle=False)]
    assert plain == list(range(9))


def test_while_training_each_pass_draws_the_epoch_fit_is_in_not_the_next_pass():
    """Inside `training_epoch`, passes draw the clock's epoch: Keras may start a pass to
    build the model, and a resumed run starts at a later epoch with a new dataset; both
    get what an uninterrupted run's epoch gets (outside, pass k is epoch k)."""
    labels = np.arange(10)
    fresh = gathered_batches((labels,), 4, shuffle_seed=3)
    outside = [np.concatenate([y[0].numpy() for y in fresh]) for _ in range(3)]
    dataset = gathered_batches((labels,), 4, shuffle_seed=3)
    with training_epoch(2):
        started = [np.concatenate([y[0].numpy() for y in dataset]) for _ in range(2)]
        set_training_epoch(1)
        moved = np.concatenate([y[0].numpy() for y in dataset])
    np.testing.assert_array_equal(started[0], outside[2])
    np.testing.assert_array_equal(started[1], outside[2])  # a second pass of the same epoch
    np.testing.assert_array_equal(moved, outside[1])
    set_training_epoch(5)  # no effect outside training: the dataset counts its own passes
    np.testing.assert_array_equal(np.concatenate([y[0].numpy() for y in dataset]), outside[0])


def test_batch_seeds_and_long_epochs_come_from_the_seed_and_the_epoch():
    labels = np.arange(6)
    seeded = gathered_batches((labels,), 4, shuffle_seed=1, with_seeds=True)
    passes = [[(y[0].numpy(), seed.numpy()) for y, seed in seeded] for _ in range(2)]
    seeds = [np.stack([seed for _, seed in batches]) for batches in passes]
    assert seeds[0].shape == (2, 2) and seeds[0].dtype == np.int64
    assert len({tuple(s) for s in seeds[0]}) == 2  # one seed per batch
    assert not np.array_equal(seeds[0], seeds[1])  # new ones each epoch
    again = [seed.numpy() for _, seed in gathered_batches((labels,), 4, shuffle_seed=1, with_seeds=True)]
    np.testing.assert_array_equal(np.stack(again), seeds[0])
    # `length` goes on into new orders: each run of 6 indices is a permutation.
    long = gathered_batches((labels,), 4, shuffle_seed=1, length=15)
    assert long.cardinality().numpy() == 4
    order = np.concatenate([y[0].numpy() for y in long])
    assert len(order) == 15 and sorted(order[:6]) == sorted(order[6:12]) == list(range(6))
    examples = [int(y[0].numpy()) for y in epoch_examples((labels,), 1)]
    np.testing.assert_array_equal(examples, passes[0][0][0].tolist() + passes[0][1][0].tolist())


def test_an_epoch_of_single_examples_has_its_length_so_fit_does_not_warn():
    """`epoch_examples` builds each epoch with flat_map, which hides its length: without
    it Keras ends the first epoch by warning that the input "ran out of data"."""
    import warnings

    import keras

    labels = np.arange(10, dtype=np.float32)
    assert epoch_examples((labels,), 1).cardinality().numpy() == 10
    assert epoch_examples((labels,), 1, length=15).cardinality().numpy() == 15
    data = epoch_examples((labels[:, None], labels), 1).batch(4)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(data, epochs=2, verbose=0)
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert len(history.history["loss"]) == 2
