"""dlkit's Keras losses."""

from dlkit.losses.dice import DiceCrossEntropy, soft_dice_loss
from dlkit.losses.triplet import TripletLoss
from dlkit.losses.yolo import TaskAlignedLoss, YOLOLoss

__all__ = ["DiceCrossEntropy", "TaskAlignedLoss", "TripletLoss", "YOLOLoss", "soft_dice_loss"]
