"""Configuration of the face app (no TensorFlow import)."""

from dataclasses import dataclass
from typing import ClassVar

from dlkit.config import AT_LEAST_ONE, POSITIVE, Range, TransferConfig
from dlkit.errors import DlkitError

EMBEDDERS = ("resnet", "mobilenet")
MINING = ("semi_hard", "batch_hard")


@dataclass
class Config(TransferConfig):
    """Training and export settings; every field can be set with `--set key=value`.

    The embedder maps an aligned face crop to an L2-normalised 128-d vector:
    - `resnet`: dlib's face descriptor (a ResNet-34-like network, 99.38% on LFW) ported
      from face-api's weights (dlkit.pretrained.face_resnet), fine-tuned here at a low
      rate, its first `frozen_blocks` residual blocks frozen;
    - `mobilenet`: the course's FaceNet recipe, MobileNetV2 (the shipped backbone) ->
      dense -> L2-normalised 128-d, trained by the transfer recipe (dlkit.transfer).

    Both train with the triplet loss `max(||f(A)-f(P)||^2 - ||f(A)-f(N)||^2 + margin, 0)`
    over batches of `identities_per_batch` people x `images_per_identity` photos, with
    online `mining` (semi_hard or batch_hard).
    """

    LIMITS: ClassVar[dict] = {
        "identities_per_batch": Range(2),
        "images_per_identity": Range(2),
        "passes": AT_LEAST_ONE,
        "embedding_size": AT_LEAST_ONE,
        "margin": POSITIVE,
        "target_far": Range(0, 1, low_open=True, high_open=True),
        "frozen_blocks": Range(0, 14),
        "zoom": Range(0.0, 0.5),
        "color": Range(0.0, 1.0),
        "min_face": AT_LEAST_ONE,
    }

    embedder: str = "resnet"  # resnet | mobilenet
    image_size: int = 150  # the aligned crop; the resnet needs 150
    embedding_size: int = 128
    margin: float = 0.2
    mining: str = "semi_hard"  # semi_hard | batch_hard
    identities_per_batch: int = 8  # P
    images_per_identity: int = 4  # K
    passes: int = 4  # batches per epoch: every identity about this many times
    learning_rate: float = 1e-5  # resnet fine-tuning; the mobilenet head uses 1e-3
    epochs: int = 4
    frozen_blocks: int = 10  # resnet: its first blocks stay as ported
    fine_tune_epochs: int = 0
    fine_tune_layers: int = 40
    augment: bool = True
    zoom: float = 0.1  # scale jitter of the crop (augmented views of one face)
    color: float = 0.2  # brightness and contrast jitter
    target_far: float = 0.01  # the threshold is calibrated at this false-accept rate (val pairs)
    min_face: int = 20  # pixels: smaller detections are ignored
    max_drop: float = 1.0  # export fails when TFLite ROC AUC drops more (points)

    def __post_init__(self):
        super().__post_init__()
        for field, choices in (("embedder", EMBEDDERS), ("mining", MINING)):
            if getattr(self, field) not in choices:
                raise DlkitError(f"{field} must be one of {', '.join(choices)}, got {getattr(self, field)!r}")

    @classmethod
    def tiny(cls):
        """Seconds, not minutes: a 0.35-wide random MobileNetV2 on 64 px crops."""
        return cls(
            embedder="mobilenet",
            image_size=64,
            alpha=0.35,
            weights="none",
            embedding_size=16,
            identities_per_batch=4,
            images_per_identity=2,
            passes=1,
            learning_rate=1e-3,
            epochs=2,
            fine_tune_epochs=0,
            max_drop=100.0,
        )
