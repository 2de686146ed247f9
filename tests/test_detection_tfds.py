"""`tfds:NAME` detection sources (the `tfds:voc/2007` / `tfds:coco/2017` path) on a TFDS
builder with the same features, prepared locally (no download)."""

import numpy as np
import pytest

from dlkit.apps.detect.config import Config
from dlkit.apps.detect.data import load_split, open_source

tfds = pytest.importorskip("tensorflow_datasets")


class DlkitTinyBoxes(tfds.core.GeneratorBasedBuilder):
    """VOC/COCO-shaped: `image`, `objects` = sequence of `bbox`, `label`, `is_crowd`."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "objects": tfds.features.Sequence(
                        {
                            "bbox": tfds.features.BBoxFeature(),
                            "label": tfds.features.ClassLabel(names=["cat", "dog"]),
                            "is_crowd": np.bool_,
                        }
                    ),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(6, 0), "validation": self._generate_examples(3, 1)}

    def _generate_examples(self, count, seed):
        for i in range(count):
            image = np.full((40, 60, 3), 30 * i, np.uint8)
            objects = {
                # tfds boxes: normalised (ymin, xmin, ymax, xmax)
                "bbox": [tfds.features.BBox(0.1, 0.2, 0.5, 0.6), tfds.features.BBox(0.0, 0.0, 1.0, 1.0)],
                "label": [i % 2, 0],
                "is_crowd": [False, True],
            }
            yield f"{seed}-{i}", {"image": image, "objects": objects}


def test_tfds_detection_source_reads_boxes_labels_and_splits(tmp_path, monkeypatch):
    DlkitTinyBoxes(data_dir=str(tmp_path)).download_and_prepare()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    source = open_source(Config.tiny(), "tfds:dlkit_tiny_boxes")
    assert source.labels == ["cat", "dog"]
    assert {split: len(records) for split, records in source.records.items()} == {"train": 6, "val": 3}
    first = source.records["train"][0]
    np.testing.assert_allclose(first.boxes, [[0.2, 0.1, 0.6, 0.5]])  # xyxy; the crowd box dropped
    assert sorted(int(r.classes[0]) for r in source.records["train"]) == [0, 0, 0, 1, 1, 1]
    loaded = load_split(Config.tiny(), source, "val")
    assert loaded.inputs.shape == (3, 64, 64, 3) and loaded.inputs.dtype == np.uint8
    np.testing.assert_allclose(loaded.targets[0][0], [[0.2, 0.1, 0.6, 0.5]])
