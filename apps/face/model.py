"""Face model: an aligned face crop -> an L2-normalised embedding, trained with the triplet
loss; the accept threshold is calibrated on validation pairs at a target false-accept rate."""

import keras
import numpy as np
from keras import layers

from dlkit.errors import DlkitError
from dlkit.losses import TripletLoss
from dlkit.metrics.verification import VerificationEvaluator, pair_distances, threshold_at_far
from dlkit.stages import Stage


def make_meta(config, source):
    size = config.image_size
    return {
        "app": "face",
        "task": "face verification and identification",
        "input": {"name": "image", "shape": [size, size, 3], "dtype": "float32", "range": [0, 255]},
        "output": {"name": "embedding", "shape": [config.embedding_size], "norm": "l2"},
        "preprocessing": {
            "detector": "BlazeFace full range (side model `detector`)",
            "align": "similarity transform of the eyes and mouth (apps/face/detector.py TEMPLATE)",
            "color": "RGB",
        },
        "embedding_size": config.embedding_size,
        "int8_input": "uint8",
    }


def build_model(config, meta, load_weights=True):
    """Pixels (b, S, S, 3) in [0, 255] -> unit-length embeddings (b, embedding_size)."""
    if config.embedder == "resnet":  # Config checked the choices
        from dlkit.pretrained.face_resnet import INPUT_SIZE, build_face_resnet, pretrained_face_resnet

        if config.image_size != INPUT_SIZE or config.embedding_size != 128:
            raise DlkitError(
                f"embedder=resnet takes {INPUT_SIZE} px crops and gives 128 numbers; "
                f"got image_size={config.image_size}, embedding_size={config.embedding_size}"
            )
        ported = (
            pretrained_face_resnet() if load_weights and config.weights != "none" else build_face_resnet()
        )
        embedding = layers.UnitNormalization(name="embedding")(ported.output)
        model = keras.Model(ported.input, embedding, name="face_resnet_embedder")
    else:
        from dlkit.pretrained import build_backbone
        from dlkit.transfer import apply_backbone, from_scratch

        size = config.image_size
        inputs = keras.Input((size, size, 3), name="image")
        x = layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)
        weights = config.weights if load_weights else "none"
        backbone = build_backbone(config.backbone, (size, size, 3), config.alpha, weights)
        x = apply_backbone(backbone, x, from_scratch(config))
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        x = layers.Dense(config.embedding_size, name="fc")(x)
        embedding = layers.UnitNormalization(name="embedding")(x)
        model = keras.Model(inputs, embedding, name="face_mobilenet_embedder")
    compile_model(model, config, config.learning_rate)
    return model


def compile_model(model, config, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=TripletLoss(margin=config.margin, mining=config.mining),
    )


def backbone_of(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def training_stages(config, meta=None):
    """resnet: one fine-tuning stage, the stem and the first `frozen_blocks` blocks kept.
    mobilenet: the transfer recipe (dlkit.transfer), head then top layers."""
    compile_at = lambda model, rate: compile_model(model, config, rate)  # noqa: E731
    if config.embedder == "mobilenet":
        from dlkit.transfer import transfer_stages

        return transfer_stages(config, backbone_of, compile_at)

    from dlkit.pretrained.face_resnet import BLOCKS

    def prepare(model):
        frozen = {"normalize", "conv32_down", *(name for name, _, _ in BLOCKS[: config.frozen_blocks])}
        for layer in model.layers:
            block = layer.name.rsplit("_", 1)[0] if layer.name.startswith("conv") else layer.name
            layer.trainable = not (block in frozen or layer.name in frozen)
        compile_at(model, config.learning_rate)

    return [Stage("fine-tune", config.epochs, prepare)]


def adapt_model(model, model_meta, config, meta, log=print):
    """A face model goes on training as it is (embeddings have no classes to replace)."""
    if model.output.shape[-1] != config.embedding_size:
        raise DlkitError(
            f"the model gives {model.output.shape[-1]} numbers per face; embedding_size is {config.embedding_size}"
        )
    compile_model(model, config, config.learning_rate)
    return model


def evaluator(config, meta):
    return VerificationEvaluator(threshold=meta.get("threshold"))


def calibrate(run, model, config, split):
    """The accept distance at `target_far` on the split's impostor pairs, and the
    embedder's identity: a digest of its weights (a gallery made with another network is
    refused; the model's TFLite exports share it)."""
    import hashlib

    embeddings = np.concatenate([run(split.inputs[i : i + 64])[0] for i in range(0, len(split.inputs), 64)])
    distances, genuine = pair_distances(embeddings, split.targets)
    if genuine.all():  # the impostor pairs set the threshold; genuine ones are not needed
        raise DlkitError("the validation split needs faces of 2 people or more to calibrate the threshold")
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights, np.float32).tobytes())
    return {
        "threshold": threshold_at_far(distances, genuine, config.target_far),
        "threshold_far": config.target_far,
        "threshold_pairs": {"genuine": int(genuine.sum()), "impostor": int((~genuine).sum())},
        "embedder_id": f"{model.name}-{digest.hexdigest()[:12]}",
    }


def annotate(report, split):
    """The pairs the model decides wrong at its threshold, surest first, named by their
    photos and people (`worst_pairs`)."""
    rows, paths = report.get("rows") or {}, getattr(split, "paths", None)
    if "worst_pairs" not in rows or paths is None:
        return report
    names, identities = getattr(split, "names", {}), np.asarray(split.targets)
    report["worst_pairs"] = [
        {
            "photos": [str(paths[pair["first"]]), str(paths[pair["second"]])],
            "people": [
                str(names.get(int(identities[pair[key]]), identities[pair[key]]))
                for key in ("first", "second")
            ],
            "same_person": pair["same"],
            "distance": pair["distance"],
        }
        for pair in rows["worst_pairs"]
    ]
    return report


def plots(report, out_dir, title=""):
    """The ROC curve, a 2-D projection of the embeddings coloured by person, and the pairs
    decided wrong side by side (worst_pairs.png)."""
    from pathlib import Path

    from dlkit.plots import embedding_plot, roc_plot

    out_dir = Path(out_dir)
    paths = []
    if "roc" in report:
        paths.append(roc_plot(report, out_dir / "roc.png", title=f"{title} ROC".strip()))
    if "projection" in report:
        paths.append(
            embedding_plot(
                report["projection"], out_dir / "embeddings.png", title=f"{title} embeddings".strip()
            )
        )
    if report.get("worst_pairs"):
        drawn = _draw_pairs(report["worst_pairs"], report["threshold"], out_dir / "worst_pairs.png", title)
        if drawn:
            paths.append(drawn)
    return paths


def _draw_pairs(pairs, threshold, path, title=""):
    """Each pair's two photos side by side, captioned with its people, distance and the
    decision it got wrong; None when no photo can be read."""
    from PIL import Image

    from dlkit.edge.image import load_image
    from dlkit.errors import InvalidInputError
    from dlkit.plots import image_grid_plot

    images, captions = [], []
    for pair in pairs:
        try:
            both = [Image.fromarray(load_image(photo, at_least=160)) for photo in pair["photos"]]
        except (InvalidInputError, OSError):
            continue
        both = [image.resize((round(image.width * 160 / image.height), 160)) for image in both]
        joined = Image.new("RGB", (both[0].width + both[1].width + 4, 160), (255, 255, 255))
        joined.paste(both[0], (0, 0))
        joined.paste(both[1], (both[0].width + 4, 0))
        images.append(np.asarray(joined))
        who = pair["people"][0] if pair["same_person"] else " / ".join(pair["people"])
        decision = (
            f"{pair['distance']:.2f} > {threshold:.2f}: rejected"
            if pair["same_person"]
            else f"{pair['distance']:.2f} <= {threshold:.2f}: accepted"
        )
        captions.append(f"{who}\n{decision}")
    return image_grid_plot(images, captions, path, title, "pairs decided wrong, surest first")


PRETRAINED = "dlib's face descriptor (dlib_face_recognition_resnet_model_v1) via @vladmandic/face-api 1.7.15"


def pretrained_model_dir():
    """A model directory (`--init dlib`, and what tools/ship_face.py ships) holding the
    ported descriptor as it is, its threshold calibrated on the offline validation people.
    Built once into the cache."""
    from dlkit import io
    from dlkit.apps.face.config import Config
    from dlkit.config import to_dict
    from dlkit.data.cache import build_once
    from dlkit.edge.bundle import add_asset, stored_meta
    from dlkit.registry import get_app
    from dlkit.runner import save_model, versions

    def build(folder):
        app, config = get_app("face"), Config()
        source = app.open_source(config, None)
        val = app.load_split(config, source, "val")
        meta = make_meta(config, source)
        model = build_model(config, meta)
        meta.update(config=to_dict(config), data=None, versions=versions(), pretrained=PRETRAINED)
        meta.update(app.calibrate(model, config, meta, val))
        save_model(model, folder / "model.keras")
        for name, asset in app.assets(model, config, meta).items():
            add_asset(folder, meta, name, asset.content, asset.file_name, into=asset.into)
        io.write_json(folder / "model.json", stored_meta(meta))
        return {"origin": PRETRAINED, "threshold": meta["threshold"]}

    return build_once("face-pretrained-dlib-v2", build, marker="ported.json")
