"""Data pipelines, augmentation, readers for user formats and the offline default datasets."""
