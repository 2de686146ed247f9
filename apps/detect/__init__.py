"""Object detection (YOLO, two scales over MobileNetV2) with decode and NMS inside the model.

Data: a YOLO dataset (`data.yaml` + `images/` + `labels/`), a COCO JSON (file or
`annotations/` folder), a Pascal VOC folder (`Annotations/` + `JPEGImages/`),
`tfds:voc/2007` or `tfds:coco/2017` when online; by default, real Tux Paint photo
cut-outs composited on real background photos (1-6 objects per scene).

Example:
    dlkit detect data check path/to/data.yaml
    dlkit detect predict street.jpg --out detections/
"""

DATA_HELP = (
    "A YOLO data.yaml or folder, a COCO JSON or folder, a VOC folder, tfds:voc/2007, "
    "tfds:coco/2017, or omit for the offline scenes."
)
