"""dlkit's Keras losses."""

from dlkit.losses.dice import DiceCrossEntropy, soft_dice_loss
from dlkit.losses.triplet import TripletLoss
from dlkit.losses.yolo import YOLOLoss

__all__ = ["DiceCrossEntropy", "TripletLoss", "YOLOLoss", "soft_dice_loss"]
