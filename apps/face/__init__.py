"""Face recognition: BlazeFace finds and aligns the faces, dlib's ResNet face descriptor
(ported to Keras) embeds them in 128 numbers, a gallery of enrolled people names them.

Data: a folder with a folder of photos per person (the LFW layout), split by person,
or with train/, val/ and test/ folders of person folders; by default the offline faces
(faces without identities to train on, dlib's five Johns plus Obama and Biden to
evaluate), fetched once with `dlkit face data fetch`.

Example:
    dlkit face enroll Ada ada1.jpg ada2.jpg
    dlkit face identify group.jpg --out seen/
    dlkit face verify a.jpg b.jpg
    dlkit face train --data people/ --init dlib
"""

from pathlib import Path

from dlkit.app import App, Asset, Metric, Option
from dlkit.registry import register


@register
class FaceApp(App):
    name = "face"
    summary = (
        "Face recognition: BlazeFace detector, dlib's ResNet descriptor in Keras, triplet loss, a gallery."
    )
    input_kind = "image"
    may_find_nothing = True  # a photo without a face is a result ("no face"), not an error
    shipped_preset = "dlib"  # the shipped model is the port as it is (only its int8 file ships)
    data_help = "A folder with a folder of photos per person, or omit for the offline faces."
    meta_keys = ("embedding_size", "threshold", "embedder_id")
    gate = Metric("roc_auc")
    monitor = ("val_loss", "min")
    architecture = ("embedder", "image_size", "embedding_size", "backbone", "alpha")
    predict_options = (
        Option(
            "--gallery",
            str,
            None,
            "Name the faces from this gallery (default: the gallery `enroll` writes, if any; 'none': no names).",
            metavar="FILE",
        ),
        Option("--max-faces", int, 20, "Faces embedded per photo, largest first.", min=1),
    )

    def presets(self):
        return {"dlib": self.model.pretrained_model_dir}

    def assets(self, model, config, meta):
        """The face detector: the bundle runs it before the embedder."""
        from dlkit.apps.face.detector import shipped_detector

        return {"detector": Asset("face_detector.tflite", shipped_detector())}

    def calibrate(self, model, config, meta, split):
        return self.model.calibrate(self.keras_runner(model, config, meta), model, config, split)

    def prepare_meta(self, meta, options):
        """Loads the gallery once (the --gallery file, else the default one if it exists)."""
        from dlkit.apps.face.gallery import Gallery, default_path
        from dlkit.console import log
        from dlkit.errors import DlkitError

        meta = {**meta, "max_faces": options.get("max_faces") or self.edge.MAX_FACES}
        given = options.get("gallery")
        if str(given) == "none":
            return meta
        if given:
            gallery = Gallery.load(given)
            if not gallery.people:
                raise DlkitError(
                    f"{given}: the gallery is empty; enrol people first: dlkit face enroll NAME PHOTO..."
                )
            gallery.check_embedder(meta)
            meta["gallery"] = gallery
        elif default_path().exists():
            gallery = Gallery.load(default_path())
            try:
                gallery.check_embedder(meta)
                meta["gallery"] = gallery
            except DlkitError as error:  # not asked for: the faces are just not named
                log(f"note: faces not named: {error}")
        return meta

    def read_input(self, item, meta):
        return self.edge.read_input(item, meta)

    def windows(self, raw, meta):
        return self.edge.windows(raw)

    def combine(self, results, raw, meta):
        return self.edge.combine(results, raw)

    def finish(self, item, raw, result, context):
        """Names from the gallery, if any; with --out, the photo with the faces drawn."""
        faces = result["faces"]
        gallery = context.meta.get("gallery")
        if gallery is not None:
            self.edge.identify(faces, gallery, context.meta["threshold"])
        if context.wants_pictures:
            context.picture(item, self.edge.draw(raw.image, faces), ".jpg", format="JPEG", quality=90)
        for face in faces:
            face["embedding"] = [round(float(v), 6) for v in face["embedding"]]
        return {"width": int(raw.image.shape[1]), "height": int(raw.image.shape[0]), "faces": faces}

    def annotate(self, report, split):
        """The projection's points named by person instead of by id, and the pairs decided
        wrong named by their photos and people (`worst_pairs`)."""
        projection = report.get("projection")
        if projection and hasattr(split, "names"):
            projection["identities"] = [split.names.get(int(i), i) for i in projection["identities"]]
        return self.model.annotate(report, split)

    def plots(self, report, meta, out_dir, title=""):
        return self.model.plots(report, out_dir, title)

    def register_cli(self, group):
        from dlkit.apps.face.cli import add_commands

        add_commands(self, group)

    def write_sample_data(self, folder):
        return str(self.data.write_sample_folder(folder))

    def sample_inputs(self, folder):
        return sorted(str(p) for p in (Path(folder) / "test").rglob("*.png"))[:3]
