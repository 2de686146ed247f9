"""Configuration of the segment app (no TensorFlow import)."""

from dataclasses import dataclass
from typing import ClassVar

from dlkit.config import AT_LEAST_ONE, IMAGE_DATA, PROBABILITY, TransferConfig


@dataclass
class Config(TransferConfig):
    """Training and export settings; every field can be set with `--set key=value`.

    A U-Net: the contracting path is a pretrained backbone (`encoder=backbone`, skips at
    strides 2, 4, 8 and 16) or the paper's double-convolution blocks from scratch
    (`encoder=unet`, `weights` ignored); the expanding path is transposed-convolution
    blocks joined with the skips (`skips=false` drops them: the baseline that shows what
    they add). Loss: `ce_weight` x cross-entropy + `dice_weight` x soft Dice. Trained in
    two stages like classify (dlkit.transfer).
    """

    LIMITS: ClassVar[dict] = {
        **dict.fromkeys(
            ("encoder_filters", "decoder_filters", "train_images", "val_images", "test_images"), AT_LEAST_ONE
        ),
        "color": PROBABILITY,
        "fresh_scenes": PROBABILITY,
        "image_data": IMAGE_DATA,
    }

    image_size: int = 224  # 160 px: foreground IoU 0.825, mean IoU 0.611 (224: 0.858, 0.646)
    encoder: str = "backbone"  # backbone | unet
    encoder_filters: tuple[int, ...] = (32, 64, 128, 256)  # encoder=unet: one block per level
    decoder_filters: tuple[int, ...] = (192, 96, 64, 48)  # from the bottom up, one per skip
    skips: bool = True
    batch_size: int = 16
    epochs: int = 12
    fine_tune_epochs: int = 6
    fine_tune_layers: int = 100
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    augment: bool = True  # flips and zooms applied to image and mask together
    zoom: float = 0.5  # zoom in by up to 1 + zoom, then a random crop back to image_size
    color: float = 0.2  # brightness and contrast jitter (image only)
    # Offline default data (ignored with --data): version 1, or 2 with more fish, unlabelled
    # distractor objects and held-out backgrounds (dlkit.data.tuxpaint).
    image_data: int = 1
    train_images: int = 1500  # offline default scenes per split
    # Offline default data: the fraction of each training epoch's scenes composited anew
    # (classes drawn evenly, each object's shape and colour varied), as detect does.
    fresh_scenes: float = 0.0
    val_images: int = 300
    test_images: int = 300
    max_drop: float = 2.0  # export fails when TFLite mean IoU drops more (points)

    @classmethod
    def tiny(cls):
        """Seconds, not minutes: 64 px, a 0.35-wide random backbone, a narrow decoder."""
        return cls(
            image_size=64,
            alpha=0.35,
            weights="none",
            decoder_filters=(16, 16, 8, 8),
            encoder_filters=(8, 8, 16, 16),
            batch_size=4,
            epochs=1,
            fine_tune_epochs=1,
            fine_tune_layers=10,
            train_images=16,
            val_images=8,
            test_images=8,
            max_drop=100.0,
        )
