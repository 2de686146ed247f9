"""Image classification with transfer learning (MobileNetV2 or EfficientNet-Lite0) and augmentation.

Data: a folder with one sub-folder per class (`<folder>/<class>/<image>`, optionally
split as `train/`, `val/`, `test/`), `tfds:NAME` (e.g. `tfds:tf_flowers`), or, by default,
real Tux Paint photos of birds, fish, flowers, fruit & vegetables and mammals composited
on real background photos.

Example:
    dlkit classify train --data ~/pictures/pets --epochs 5
    dlkit classify predict photo.jpg --top-k 3
"""

from dlkit.app import App, Metric, Option
from dlkit.registry import register


@register
class ClassifyApp(App):
    name = "classify"
    summary = (
        "Image classification with transfer learning (MobileNetV2 or EfficientNet-Lite0) and augmentation."
    )
    input_kind = "image"
    data_help = "A folder of <class>/<image> files, tfds:NAME, or omit for the offline default."
    gate = Metric("accuracy")
    monitor = ("val_accuracy", "max")
    provides = ("image_backbone",)
    inherits = ("image_backbone",)
    architecture = ("backbone", "alpha", "image_size", "feature_layer")
    predict_options = (Option("--top-k", int, 3, "Labels to show per input.", min=1),)

    def parts(self, model, meta):
        return {"image_backbone": self.model.backbone_of(model)}

    def class_weights(self, config, split):
        return self.model.class_weights(config, split)

    def annotate(self, report, split):
        return self.model.annotate(report, split)

    def plots(self, report, meta, out_dir, title=""):
        return self.model.plots(report, meta, out_dir, title)

    def write_sample_data(self, folder):
        return str(self.data.write_sample_folder(folder))

    def sample_inputs(self, folder):
        return sorted(str(p) for p in folder.rglob("*.png"))[:3]
