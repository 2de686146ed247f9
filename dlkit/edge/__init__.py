"""On-device runtime: LiteRT interpreter, image pre/post-processing, model bundles.

Only numpy, Pillow and a TFLite interpreter (`ai-edge-litert`, else `tflite-runtime`)
are used here: this package never imports TensorFlow or Keras, so it runs on a phone-
class Linux device and starts in a fraction of a second.
"""

from dlkit.edge.bundle import ModelBundle, find_model
from dlkit.edge.runtime import EdgeModel, load_interpreter

__all__ = ["EdgeModel", "ModelBundle", "find_model", "load_interpreter"]
