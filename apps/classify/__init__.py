"""Image classification with transfer learning (MobileNetV2) and augmentation.

Data: a folder with one sub-folder per class (`<folder>/<class>/<image>`, optionally
split as `train/`, `val/`, `test/`), `tfds:NAME` (e.g. `tfds:tf_flowers`), or, by default,
real Tux Paint photos of birds, fish, flowers, fruit & vegetables and mammals composited
on real background photos.

Example:
    dlkit classify train --data ~/pictures/pets --epochs 5
    dlkit classify predict photo.jpg --top-k 3
"""

DATA_HELP = "A folder of <class>/<image> files, tfds:NAME, or omit for the offline default."
