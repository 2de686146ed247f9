"""Configuration of the detect app (no TensorFlow import)."""

from dataclasses import dataclass
from typing import ClassVar

from dlkit.config import AT_LEAST_ONE, IMAGE_DATA, POSITIVE, PROBABILITY, Range, TransferConfig
from dlkit.errors import DlkitError

HEADS = ("anchors", "anchor_free")
SCENE_RENDERS = ("pillow", "opencv")  # dlkit.data.scenes.TrainingScenes.RENDERS


@dataclass
class Config(TransferConfig):
    """Training and export settings; every field can be set with `--set key=value`.

    A YOLO detector on two scales (strides 16 and 32) over the pretrained MobileNetV2,
    trained in two stages like classify: the head with the backbone frozen, then the top
    `fine_tune_layers` of the backbone at a lower learning rate, each stage's rate decayed
    by a cosine. On the default data (~120 training cut-outs) fine-tuning at 3e-5 took the
    validation loss below the head stage's best in 7 epochs (36.6 vs 38.1).
    """

    LIMITS: ClassVar[dict] = {
        **dict.fromkeys(
            (
                "anchors_per_scale",
                "head_channels",
                "max_boxes",
                "max_detections",
                "train_images",
                "val_images",
                "test_images",
            ),
            AT_LEAST_ONE,
        ),
        **dict.fromkeys(
            (
                "assign_threshold",
                "ignore_threshold",
                "score_threshold",
                "iou_threshold",
                "fresh_scenes",
                "color",
                "mosaic",
            ),
            PROBABILITY,
        ),
        "zoom_min": POSITIVE,
        "close_mosaic": Range(0),
        "reg_max": Range(2),  # bins per box side
        "image_data": IMAGE_DATA,
    }

    image_size: int = 256
    # Grids: 2 (strides 16 and 32) or 3 (and a stride-8 grid for small objects and tight
    # boxes, its head half as wide).
    levels: int = 2
    # anchors: YOLOv3-style anchor boxes (k-means shapes), objectness and softmax classes;
    # anchor_free: YOLOv8's decoupled head, each box side a distribution over `reg_max`
    # bins (distribution focal loss), task-aligned assignment, sigmoid classes.
    head: str = "anchors"
    reg_max: int = 16  # anchor_free: bins per side, one cell each (15 cells at most)
    anchors_per_scale: int = 3
    head_channels: int = 128
    max_boxes: int = 30  # boxes per image kept for the loss's ignore rule
    # A box also trains every anchor whose shape IoU with it reaches this (0: best only).
    assign_threshold: float = 0.5
    batch_size: int = 16
    epochs: int = 17
    fine_tune_epochs: int = 7
    fine_tune_layers: int = 60
    # Loss weights; 0 takes the head's default: anchors box 5, class 1; anchor_free box
    # 7.5, class 0.5 (YOLOv8's), DFL 1.5.
    box_weight: float = 0.0
    noobj_weight: float = 1.0
    class_weight: float = 0.0
    dfl_weight: float = 1.5
    ignore_threshold: float = 0.5
    augment: bool = True
    zoom_min: float = 0.6
    zoom_max: float = 1.4
    color: float = 0.25
    # Ultralytics' mosaic: this fraction of the training images are four images tiled 2 x 2,
    # cut back to one image's size around a random centre (the image drawn and three more,
    # fresh scenes in the `fresh_scenes` share, at their own scale), except in the last
    # `close_mosaic` epochs.
    mosaic: float = 0.0
    close_mosaic: int = 3
    # Offline default data: this fraction of each training epoch's images are new scenes,
    # composited on the fly with classes drawn evenly and objects varied in shape and colour;
    # the rest are the stored scenes. A quarter trains as well as all of them did (one run
    # each, docs/detect.md) and leaves the model's step more of the CPU: each fresh scene
    # costs about 9 ms of CPU against 1.4 for a stored one (`dlkit bench --pipeline`).
    fresh_scenes: float = 0.25
    # Worker processes drawing the fresh scenes (0: tf.data's threads draw them). A scene is
    # mostly Python between image calls; drawn in the training process it holds the
    # interpreter lock the training step waits for.
    scene_workers: int = 2
    # What draws them: "pillow" (as the stored scenes are drawn, and the shipped model's
    # training scenes) or "opencv" (dlkit.data.render: a third of the CPU, sharper fine
    # textures; its one full run scored below the Pillow one on held-out scenes drawn
    # either way, docs/detect.md).
    scene_render: str = "pillow"
    # Draw every fresh scene of the run before training (in the scene workers, with the
    # cores free; about 80 s for the defaults' 18,000) into the dataset cache, and read
    # them back as the epochs need them: the same examples, each fresh image through one
    # JPEG coding as the stored ones are, and the training step keeps the CPU the drawing
    # took (dlkit.data.pool; `dlkit bench --pipeline`: 0.86 to 0.91). A later run with the
    # same settings draws none. False draws them during training.
    scene_pool: bool = True
    score_threshold: float = 0.001  # COCO-style evaluation; predict filters with --conf
    iou_threshold: float = 0.5
    max_detections: int = 50
    # Offline default data (ignored with --data): version 1, or 2 with more fish, unlabelled
    # distractor objects and held-out backgrounds (dlkit.data.tuxpaint).
    image_data: int = 1
    train_images: int = 3000  # offline default scenes per split
    val_images: int = 300
    test_images: int = 300
    max_drop: float = 2.0  # export fails when TFLite mAP@0.5 drops more (points)

    def __post_init__(self):
        super().__post_init__()
        if self.levels not in (2, 3):
            raise DlkitError(f"levels must be 2 (strides 16 and 32) or 3 (and 8), got {self.levels}")
        if self.scene_render not in SCENE_RENDERS:
            raise DlkitError(
                f"scene_render must be one of {', '.join(SCENE_RENDERS)}, got {self.scene_render!r}"
            )
        if self.head not in HEADS:
            raise DlkitError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.zoom_min > self.zoom_max:
            raise DlkitError(f"zoom_min ({self.zoom_min}) must not exceed zoom_max ({self.zoom_max})")

    @classmethod
    def tiny(cls):
        """Seconds, not minutes: 64 px scenes, a 0.35-wide random backbone."""
        return cls(
            image_size=64,
            alpha=0.35,
            weights="none",
            head_channels=16,
            batch_size=8,
            epochs=1,
            fine_tune_epochs=1,
            fine_tune_layers=10,
            train_images=32,
            val_images=8,
            test_images=8,
            max_drop=100.0,
        )
