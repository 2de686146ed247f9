"""Batches gathered by index; examples made in numpy from seeds of their own."""

import numpy as np

from dlkit.data.batches import gathered_batches, seeded_examples


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
