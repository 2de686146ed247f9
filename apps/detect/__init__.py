"""Object detection (YOLO, two or three scales over MobileNetV2) with decode and NMS inside the model.

Data: a YOLO dataset (`data.yaml` + `images/` + `labels/`), a COCO JSON (file or
`annotations/` folder), a Pascal VOC folder (`Annotations/` + `JPEGImages/`),
`tfds:voc/2007` or `tfds:coco/2017` when online; by default, real Tux Paint photo
cut-outs composited on real background photos (1-6 objects per scene).

Example:
    dlkit detect data check path/to/data.yaml
    dlkit detect predict street.jpg --out detections/
"""

from dlkit.app import App, Metric, Option
from dlkit.registry import register


@register
class DetectApp(App):
    name = "detect"
    summary = (
        "Object detection (YOLO over MobileNetV2 or EfficientNet-Lite0) with decode and NMS inside the model."
    )
    input_kind = "image"
    data_help = (
        "A YOLO data.yaml or folder, a COCO JSON or folder, a VOC folder, tfds:voc/2007, "
        "tfds:coco/2017, or omit for the offline scenes."
    )
    gate = Metric("map50")
    monitor = ("val_loss", "min")
    provides = ("image_backbone",)
    inherits = ("image_backbone",)
    architecture = (
        "backbone",
        "alpha",
        "image_size",
        "levels",
        "head",
        "reg_max",
        "anchors_per_scale",
        "head_channels",
    )
    predict_options = (
        Option("--conf", float, 0.25, "Minimum score to report.", min=0, max=1),
        Option(
            "--augment",
            bool,
            False,
            "Test-time augmentation: run each image at 3 scales, plain and mirrored, and fuse "
            "the boxes (6x the inference; more accurate boxes and classes).",
            evaluate=True,
        ),
        Option(
            "--save-txt",
            bool,
            False,
            "Also write each image's detections as a YOLO label file, labels/<name>.txt in the "
            "output folder (class x_center y_center width height, normalised; a video's frames "
            "labels/<name>_<frame>.txt): training data once checked.",
        ),
        Option(
            "--save-crop",
            bool,
            False,
            "Also cut each detection out of its image into crops/<class>/<name>_<k>.jpg in the "
            "output folder (k: its rank in the image): a folder dlkit classify trains on.",
        ),
        Option(
            "--classes",
            str,
            None,
            "Report only these classes: names or ids, comma-separated (birds,fish or 0,2).",
            metavar="NAMES",
        ),
    )
    saves_predictions = True

    def parts(self, model, meta):
        return {"image_backbone": self.model.backbone_of(model)}

    def inherit_meta(self, meta, init_meta):
        """Fine-tuning keeps the model's anchors and grids (its heads were trained for them)."""
        return {**meta, "anchors": init_meta["anchors"], "grids": init_meta["grids"]}

    def wrap_runner(self, run, meta):
        return self.edge.augmented(run, meta) if meta.get("augment") else run

    def prepare_meta(self, meta, options):
        self.edge.chosen_classes(options.get("classes"), meta["labels"])  # an unknown one stops here
        return meta

    def inference_model(self, model, config, meta):
        return self.model.inference_model(model, config, meta)

    def convert(self, model, config, meta, quantize, representative=None):
        return self.model.convert(model, config, meta, quantize, representative)

    def annotate(self, report, split):
        from dlkit.engine import worst_images

        return worst_images(report, split)

    def plots(self, report, meta, out_dir, title=""):
        return self.model.plots(report, meta, out_dir, title)

    def finish(self, item, raw, result, context):
        """Boxes in the image's pixels too; with an output folder, the annotated image, and
        as asked each image's YOLO label file and the crops of its detections."""
        result = self.edge.to_pixels(result, raw.shape[1], raw.shape[0])
        if context.wants_pictures:
            drawn = self.edge.draw(raw, result, context.meta["labels"])
            context.picture(item, drawn, ".jpg", format="JPEG", quality=90)
        if context.options.get("save_txt"):
            context.text(item, self.edge.yolo_label_text(result, context.meta["labels"]), ".txt", "labels")
        if context.options.get("save_crop"):
            from functools import partial

            from PIL import Image

            for k, (label, crop) in enumerate(self.edge.crops(raw, result), 1):
                save = partial(Image.fromarray(crop).save, format="JPEG", quality=95)
                folder = "crops/" + label.replace("/", "_").replace("\\", "_").lstrip(".")
                context.file(item, f"_{k}.jpg", folder, save)
        return {"width": int(raw.shape[1]), "height": int(raw.shape[0]), **result}

    def register_cli(self, group):
        from dlkit.apps.detect.cli import register

        register(group)

    def write_sample_data(self, folder):
        return str(self.data.write_sample_yolo(folder))

    def sample_inputs(self, folder):
        return sorted(str(p) for p in folder.rglob("*.png"))[:3]
