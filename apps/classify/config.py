"""Configuration of the classify app (no TensorFlow import)."""

from dataclasses import dataclass
from typing import ClassVar

from dlkit.config import AT_LEAST_ONE, FRACTION, IMAGE_DATA, Range, TransferConfig


@dataclass
class Config(TransferConfig):
    """Training and export settings; every field can be set with `--set key=value`.

    Transfer learning runs in two stages: `epochs` with the backbone frozen (only the new
    head trains), then `fine_tune_epochs` with the top `fine_tune_layers` backbone layers
    unfrozen at `fine_tune_learning_rate`. With `weights=none` the whole network trains
    from scratch for `epochs + fine_tune_epochs` epochs. The shared fields are those of
    `dlkit.config.TransferConfig`.
    """

    LIMITS: ClassVar[dict] = {
        "dropout": FRACTION,
        "hue": Range(0, 0.5),
        "top_k": AT_LEAST_ONE,
        "image_data": IMAGE_DATA,
    }

    feature_layer: str = ""  # cut the backbone at this layer ("" = its full depth)
    dropout: float = 0.3
    epochs: int = 20
    balance_classes: bool = True  # weight the loss by inverse class frequency
    augment: bool = True
    flip: bool = True
    rotation: float = 0.08
    zoom: float = 0.2
    translation: float = 0.1
    contrast: float = 0.2
    brightness: float = 0.15
    saturation: float = 0.3
    hue: float = 0.02
    augment_jit: bool = True  # XLA-compile the augmentation (a second or two per batch shape)
    top_k: int = 3
    # Offline default data (ignored with --data): version 1, or 2 with more fish, unlabelled
    # distractor objects and held-out backgrounds (dlkit.data.tuxpaint).
    image_data: int = 1

    @classmethod
    def tiny(cls):
        """Absurdly small settings for tests: 32x32 images, a 0.35-wide random backbone."""
        return cls(
            image_size=32,
            alpha=0.35,
            weights="none",
            batch_size=4,
            epochs=1,
            fine_tune_epochs=1,
            fine_tune_layers=10,
            augment=True,
            augment_jit=False,
            max_drop=100.0,
        )
