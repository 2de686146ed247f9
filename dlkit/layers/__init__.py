"""dlkit's Keras layers; importing this module registers them for `load_model`."""

from dlkit.layers.attention import AdditiveAttention, PaddingMask
from dlkit.layers.audio import Spectrogram
from dlkit.layers.masked_positions import MaskedPositions
from dlkit.layers.pad_channels import PadChannels
from dlkit.layers.pooling import ConvAveragePooling2D
from dlkit.layers.position_embedding import PositionEmbedding
from dlkit.layers.recurrent import UnrolledGRU
from dlkit.layers.reversible_embedding import ReversibleEmbedding
from dlkit.layers.transformer_encoder import MultiHeadSelfAttention, TransformerEncoder
from dlkit.layers.unet import LabelMap
from dlkit.layers.yolo import AnchorFreeDecode, YOLODecode, YOLOPostprocess

__all__ = [
    "AdditiveAttention",
    "AnchorFreeDecode",
    "ConvAveragePooling2D",
    "LabelMap",
    "MaskedPositions",
    "MultiHeadSelfAttention",
    "PadChannels",
    "PaddingMask",
    "PositionEmbedding",
    "ReversibleEmbedding",
    "Spectrogram",
    "TransformerEncoder",
    "UnrolledGRU",
    "YOLODecode",
    "YOLOPostprocess",
]
