"""dlkit's Keras layers; importing this module registers them for `load_model`."""

from dlkit.layers.attention import AdditiveAttention, PaddingMask
from dlkit.layers.audio import Spectrogram
from dlkit.layers.unet import LabelMap
from dlkit.layers.yolo import YOLODecode, YOLOPostprocess

__all__ = ["AdditiveAttention", "LabelMap", "PaddingMask", "Spectrogram", "YOLODecode", "YOLOPostprocess"]
