"""The triplet loss of FaceNet (Schroff et al. 2015) with online mining in the batch."""

import keras
from keras import ops

MINING = ("semi_hard", "batch_hard")


def pairwise_squared_distances(embeddings):
    """(b, d) -> (b, b) squared Euclidean distances, exact zeros on the diagonal."""
    dot = ops.matmul(embeddings, ops.transpose(embeddings))
    norms = ops.diagonal(dot)
    distances = ops.maximum(norms[:, None] - 2.0 * dot + norms[None, :], 0.0)
    return distances * (1.0 - ops.eye(ops.shape(embeddings)[0], dtype=distances.dtype))


@keras.saving.register_keras_serializable(package="dlkit")
class TripletLoss(keras.losses.Loss):
    """`max(||f(A)-f(P)||^2 - ||f(A)-f(N)||^2 + margin, 0)` over triplets mined in the batch.

    `y_true` holds the identity of each row (any integers), `y_pred` the embeddings.
    Batches of P identities x K images give every anchor positives and negatives.

    Mining:
        batch_hard: per anchor, its farthest positive and its nearest negative (Hermans et
            al. 2017); averaged over anchors that have both.
        semi_hard: per positive pair (A, P), the nearest negative farther than P
            (`d(A,N) > d(A,P)`), else the farthest negative (FaceNet; tf-addons'
            `triplet_semihard_loss` rule); averaged over positive pairs.

    Args:
        margin: float. The alpha of the formula.
        mining: str. "semi_hard" or "batch_hard".
    """

    def __init__(self, margin=0.2, mining="semi_hard", name="triplet_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if mining not in MINING:
            raise ValueError(f"mining must be one of {', '.join(MINING)}, got {mining!r}")
        self.margin = float(margin)
        self.mining = mining

    def call(self, y_true, y_pred):
        labels = ops.reshape(y_true, (-1,))
        embeddings = ops.cast(y_pred, "float32")
        distances = pairwise_squared_distances(embeddings)
        size = ops.shape(distances)[0]
        same = ops.cast(ops.equal(labels[:, None], labels[None, :]), "float32")
        positive = same * (1.0 - ops.eye(size, dtype="float32"))
        negative = 1.0 - same
        big = ops.max(distances) + 1.0
        if self.mining == "batch_hard":
            hardest_positive = ops.max(distances * positive, axis=1)
            hardest_negative = ops.min(distances + big * (1.0 - negative), axis=1)
            valid = ops.cast(ops.sum(positive, 1) > 0, "float32") * ops.cast(
                ops.sum(negative, 1) > 0, "float32"
            )
            losses = ops.maximum(hardest_positive - hardest_negative + self.margin, 0.0) * valid
            return ops.sum(losses) / ops.maximum(ops.sum(valid), 1.0)
        # semi_hard: for pair (a, p) with distance d_ap, the negatives of a beyond d_ap.
        d_ap = distances[:, :, None]  # (a, p, 1)
        d_an = distances[:, None, :]  # (a, 1, n)
        is_negative = negative[:, None, :]
        outside = is_negative * ops.cast(d_an > d_ap, "float32")
        nearest_outside = ops.min(d_an + big * (1.0 - outside), axis=2)  # (a, p)
        farthest = ops.max(distances * negative, axis=1)[:, None]  # (a, 1)
        has_outside = ops.sum(outside, axis=2) > 0
        chosen = ops.where(has_outside, nearest_outside, farthest)
        losses = ops.maximum(distances - chosen + self.margin, 0.0) * positive
        has_negative = ops.cast(ops.sum(negative, 1) > 0, "float32")[:, None]
        pairs = positive * has_negative
        return ops.sum(losses * has_negative) / ops.maximum(ops.sum(pairs), 1.0)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "mining": self.mining}
