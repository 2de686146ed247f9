"""Metrics. The classification scores here are numpy-only, so the same code scores the
Keras model, the TFLite model and on-device predictions."""
