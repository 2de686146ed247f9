"""dlkit's Keras layers; importing this module registers them for `load_model`."""

from dlkit.layers.attention import AdditiveAttention, PaddingMask
from dlkit.layers.audio import Spectrogram
from dlkit.layers.yolo import YOLODecode, YOLOPostprocess

__all__ = ["AdditiveAttention", "PaddingMask", "Spectrogram", "YOLODecode", "YOLOPostprocess"]
