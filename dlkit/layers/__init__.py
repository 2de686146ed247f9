"""dlkit's Keras layers; importing this module registers them for `load_model`."""

from dlkit.layers.attention import AdditiveAttention, PaddingMask

__all__ = ["AdditiveAttention", "PaddingMask"]
