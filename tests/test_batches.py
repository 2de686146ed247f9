"""Batches gathered by index."""

import numpy as np

from dlkit.data.batches import gathered_batches


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
