"""Next-token accuracy for sequence models, padding excluded (a Keras metric function)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dlkit")
def token_accuracy(y_true, y_pred):
    """Fraction of real tokens (id != 0) whose highest-scoring prediction is the target.

    Args:
        y_true: (batch, steps) int. Target ids, 0 = padding.
        y_pred: (batch, steps, vocab) float. Scores or logits.

    Example:
        >>> token_accuracy([[3, 1, 0]], [[[0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0]]])  # 1.0
    """
    y_true = ops.cast(y_true, "int32")
    mask = ops.cast(ops.not_equal(y_true, 0), "float32")
    hits = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
    return ops.sum(hits * mask) / ops.maximum(ops.sum(mask), 1.0)
