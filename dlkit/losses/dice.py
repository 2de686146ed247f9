"""Soft Dice loss for segmentation, alone or added to sparse categorical cross-entropy."""

import keras
from keras import ops

from dlkit.data.masks import VOID  # Pascal VOC's object borders (255): never trained or scored


def soft_dice_loss(y_true, y_pred, smooth=1.0, valid=None):
    """1 - mean over classes of the soft Dice coefficient, per image.

    Args:
        y_true: (batch, h, w) int class ids.
        y_pred: (batch, h, w, classes) probabilities.
        smooth: float. Added to numerator and denominator (a class absent from both
            image and prediction scores 1, not 0/0).
        valid: (batch, h, w) 0/1 weights or None. Pixels with 0 count nowhere.

    Returns:
        (batch,) losses.
    """
    classes = ops.shape(y_pred)[-1]
    one_hot = ops.one_hot(ops.cast(y_true, "int32"), classes, dtype=y_pred.dtype)  # (b, h, w, c)
    if valid is not None:
        one_hot = one_hot * valid[..., None]
        y_pred = y_pred * valid[..., None]
    intersection = ops.sum(one_hot * y_pred, axis=(1, 2))  # (b, c)
    total = ops.sum(one_hot, axis=(1, 2)) + ops.sum(y_pred, axis=(1, 2))  # (b, c)
    dice = (2.0 * intersection + smooth) / (total + smooth)
    return 1.0 - ops.mean(dice, axis=-1)


@keras.saving.register_keras_serializable(package="dlkit")
class DiceCrossEntropy(keras.losses.Loss):
    """`ce_weight` x sparse categorical cross-entropy + `dice_weight` x soft Dice loss.

    Cross-entropy trains every pixel; Dice weighs each class by its own area, so small
    objects count as much as the background that covers most of an image. Pixels
    labelled VOID (255) are left out of both terms.

    Args:
        ce_weight: float. Weight of the cross-entropy term.
        dice_weight: float. Weight of the Dice term.
        smooth: float. Dice smoothing.

    Example:
        >>> model.compile(optimizer="adam", loss=DiceCrossEntropy(dice_weight=1.0))
    """

    def __init__(self, ce_weight=1.0, dice_weight=1.0, smooth=1.0, name="dice_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.smooth = smooth

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        valid = ops.cast(ops.not_equal(y_true, VOID), y_pred.dtype)
        y_true = ops.where(ops.not_equal(y_true, VOID), y_true, 0)
        pixel_ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred) * valid
        cross_entropy = ops.sum(pixel_ce, axis=(1, 2)) / ops.maximum(ops.sum(valid, axis=(1, 2)), 1.0)
        dice = soft_dice_loss(y_true, y_pred, self.smooth, valid)
        return self.ce_weight * cross_entropy + self.dice_weight * dice

    def get_config(self):
        config = super().get_config()
        config.update(ce_weight=self.ce_weight, dice_weight=self.dice_weight, smooth=self.smooth)
        return config
