"""The triplet loss and its online mining against a numpy reference on hand-made batches."""

import itertools

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlkit.losses import TripletLoss  # noqa: E402


def squared(embeddings):
    return ((embeddings[:, None] - embeddings[None]) ** 2).sum(-1)


def reference(embeddings, labels, margin, mining):
    """Triplets enumerated one by one, the way the loss defines them."""
    d = squared(embeddings)
    n = len(labels)
    losses = []
    if mining == "batch_hard":
        for a in range(n):
            positives = [d[a, p] for p in range(n) if p != a and labels[p] == labels[a]]
            negatives = [d[a, k] for k in range(n) if labels[k] != labels[a]]
            if positives and negatives:
                losses.append(max(max(positives) - min(negatives) + margin, 0.0))
        return np.mean(losses) if losses else 0.0
    for a, p in itertools.permutations(range(n), 2):
        if labels[a] != labels[p]:
            continue
        negatives = [d[a, k] for k in range(n) if labels[k] != labels[a]]
        if not negatives:
            continue
        beyond = [v for v in negatives if v > d[a, p]]
        chosen = min(beyond) if beyond else max(negatives)
        losses.append(max(d[a, p] - chosen + margin, 0.0))
    return np.mean(losses) if losses else 0.0


@pytest.mark.parametrize("mining", ["semi_hard", "batch_hard"])
@pytest.mark.parametrize("seed", range(4))
def test_the_loss_equals_the_enumerated_triplets(mining, seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 3)
    rng.shuffle(labels)
    embeddings = rng.normal(size=(12, 5)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    loss = TripletLoss(margin=0.2, mining=mining)
    got = float(loss(labels, embeddings))
    assert got == pytest.approx(
        reference(embeddings.astype(np.float64), labels, 0.2, mining), rel=1e-4, abs=1e-6
    )


def test_hand_made_cases():
    # Two tight, far-apart pairs: every triplet is satisfied by more than the margin.
    separated = np.array([[0, 0], [0, 0.1], [3, 0], [3, 0.1]], np.float32)
    labels = np.array([0, 0, 1, 1])
    for mining in ("semi_hard", "batch_hard"):
        assert float(TripletLoss(mining=mining)(labels, separated)) == pytest.approx(0.0)
    # One identity's points swapped: anchor 0 at (0,0), its positive at (3,0), a negative at (0,0.1).
    mixed = np.array([[0, 0], [3, 0], [0, 0.1], [3, 0.1]], np.float32)
    # batch hard, anchor 0: hardest positive 9, nearest negative 0.01 -> 9 - 0.01 + 0.2
    assert float(TripletLoss(mining="batch_hard")(labels, mixed)) == pytest.approx(9.19, rel=1e-5)
    # Only one identity: no negatives, no triplets, no loss (and no NaN).
    assert float(TripletLoss()(np.zeros(4), separated)) == 0.0


def test_gradients_pull_positives_together():
    import tensorflow as tf

    labels = tf.constant([0, 0, 1, 1])
    points = tf.Variable([[0.0, 0.0], [1.0, 0.0], [0.0, 0.5], [1.0, 0.5]])
    loss_fn = TripletLoss(margin=0.5, mining="batch_hard")
    before = float(loss_fn(labels, points))
    optimizer = keras.optimizers.SGD(0.1)
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, points)
        optimizer.apply_gradients([(tape.gradient(loss, points), points)])
    assert float(loss_fn(labels, points)) < before


def test_config_round_trip_and_bad_mining():
    loss = TripletLoss(margin=0.3, mining="batch_hard")
    again = TripletLoss.from_config(loss.get_config())
    assert (again.margin, again.mining) == (0.3, "batch_hard")
    with pytest.raises(ValueError, match="mining"):
        TripletLoss(mining="hardest")
