"""Semantic segmentation with a U-Net (pretrained MobileNetV2 encoder, transposed-convolution decoder).

Data: a folder with `images/` and `masks/` (PNG class indices, 0 = background, same file
stems; optionally split into `train/`, `val/`, `test/`) and an optional `labels.txt`; by
default, the detect scenes (Tux Paint photo cut-outs on real backgrounds) with their
exact masks from the cut-outs' alpha.

Example:
    dlkit segment train --data ~/data/pets --epochs 5
    dlkit segment predict scene.jpg --out masks/
"""

from dlkit.app import App, Metric, Option
from dlkit.registry import register


@register
class SegmentApp(App):
    name = "segment"
    summary = (
        "Semantic segmentation with a U-Net (pretrained MobileNetV2 or EfficientNet-Lite0 encoder, "
        "transposed-convolution decoder)."
    )
    input_kind = "image"
    data_help = "A folder of images/ + masks/ (PNG class indices), or omit for the offline scenes."
    gate = Metric("miou")
    monitor = ("val_loss", "min")
    architecture = (
        "image_size",
        "encoder",
        "backbone",
        "alpha",
        "encoder_filters",
        "decoder_filters",
        "skips",
    )
    provides = ("image_backbone",)
    inherits = ("image_backbone",)
    # The decoder's transposed convolutions: at a static batch LiteRT takes the whole graph
    # in XNNPACK (the shipped int8 U-Net: 19.1 ms an image against 24.7, one thread).
    export_batch = 1
    saves_predictions = True
    predict_options = (
        Option(
            "--augment",
            bool,
            False,
            "Test-time augmentation: average each pixel's class scores over the image and its "
            "mirror image (2x the inference).",
            evaluate=True,
        ),
    )
    export_options = (
        Option(
            "--argmax",
            bool,
            False,
            "Put the per-pixel ArgMax in the graph: the device gets a label map (int32), not scores.",
        ),
    )

    def export_variant(self, meta, options):
        if options.get("argmax"):
            return {**meta, "argmax": True}, "argmax"
        return meta, ""

    def wrap_runner(self, run, meta):
        return self.edge.augmented(run) if meta.get("augment") else run

    def annotate(self, report, split):
        from dlkit.engine import worst_images

        return worst_images(report, split)

    def plots(self, report, meta, out_dir, title=""):
        """The pixels' confusion matrix (rows the true class), each row normalised, and
        worst_images.tsv: the images with the lowest foreground IoU, worst first."""
        from dlkit import io
        from dlkit.plots import confusion_matrix_plot

        path = f"{out_dir}/confusion_matrix.png"
        labels = list(report["per_class"])
        written = [confusion_matrix_plot(report["confusion_matrix"], labels, path, title=title or "pixels")]
        if report.get("worst_images"):
            columns = ("path", "foreground_iou", "miou")
            io.write_tsv(f"{out_dir}/worst_images.tsv", report["worst_images"], columns)
            written.append(f"{out_dir}/worst_images.tsv")
        return written

    def training_callbacks(self, config, meta, run_dir, val_split):
        return self.model.training_callbacks(config, meta, run_dir, val_split)

    def inference_model(self, model, config, meta):
        return self.model.inference_model(model, config, meta)

    def parts(self, model, meta):
        if "encoder" not in {layer.name for layer in model.layers}:
            return {}
        return {"image_backbone": self.model.backbone_of(model)}

    def finish(self, item, raw, result, context):
        """Class shares at the image's own size and the pixel confidences; with an output
        folder, an overlay PNG and the label map PNG (class ids) per image."""
        height, width = raw.shape[:2]
        small = result.pop("label_map")
        confidence = self.edge.confidences(small, result.pop("confidence"), context.meta["labels"])
        label_map = self.edge.to_image_size(small, width, height)
        if context.wants_pictures:
            # the fastest zlib level: a photo's overlay in a quarter of the time, a quarter larger
            overlay = self.edge.overlay(raw, label_map)
            context.picture(item, overlay, ".png", format="PNG", compress_level=1)
            from PIL import Image

            context.picture(item, Image.fromarray(label_map), ".png", tag="_labels", format="PNG")
        return {
            "width": int(width),
            "height": int(height),
            "classes": self.edge.summarize(label_map, context.meta["labels"]),
            **confidence,
        }

    def write_sample_data(self, folder):
        return str(self.data.write_sample_folder(folder))

    def sample_inputs(self, folder):
        return sorted(str(p) for p in (folder / "images" / "test").glob("*.png"))[:3]
