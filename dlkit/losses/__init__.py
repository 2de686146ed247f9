"""dlkit's Keras losses."""

from dlkit.losses.yolo import YOLOLoss

__all__ = ["YOLOLoss"]
