"""`tfds:NAME` sources, on a TFDS builder prepared locally (no download)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from dlkit.data.image_classes import load_split, open_source
from dlkit.errors import DlkitError


class DlkitTinyShapes(tfds.core.GeneratorBasedBuilder):
    """Coloured squares in 3 classes; 'train' and 'test' splits only."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(24, 24, 3)),
                    "label": tfds.features.ClassLabel(names=["r", "g", "b"]),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(40, 0), "test": self._generate_examples(9, 1)}

    def _generate_examples(self, count, seed):
        rng = np.random.default_rng(seed)
        for i in range(count):
            label = i % 3
            image = rng.integers(0, 60, (24, 24, 3), dtype=np.uint8)
            image[..., label] = 220
            yield f"{seed}-{i}", {"image": image, "label": label}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    DlkitTinyShapes(data_dir=str(data_dir)).download_and_prepare()
    return data_dir


def test_tfds_source_splits_and_labels(tfds_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    source = open_source("tfds:dlkit_tiny_shapes", val_split=0.2)
    assert source.labels == ["r", "g", "b"]
    assert source.tfds_splits == {"train": "train[:80%]", "val": "train[80%:100%]", "test": "test"}
    train = load_split(source, "train", 16)
    val = load_split(source, "val", 16)
    test = load_split(source, "test", 16)
    assert (len(train.labels), len(val.labels), len(test.labels)) == (32, 8, 9)
    assert train.images.shape == (32, 16, 16, 3) and train.images.dtype == np.uint8
    # The label is the bright channel.
    assert (train.images.mean(axis=(1, 2)).argmax(axis=1) == train.labels).all()


def test_unknown_tfds_dataset_is_a_clear_error(tfds_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    with pytest.raises(DlkitError, match="tfds:no_such_dataset_xyz: cannot load"):
        open_source("tfds:no_such_dataset_xyz")


class DlkitTinyPets(tfds.core.GeneratorBasedBuilder):
    """Oxford-IIIT Pet's features in miniature: images, species and trimaps (1 pet,
    2 background, 3 border)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "species": tfds.features.ClassLabel(names=["Cat", "Dog"]),
                    "segmentation_mask": tfds.features.Image(shape=(None, None, 1), use_colormap=True),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(10, 0), "test": self._generate_examples(4, 1)}

    def _generate_examples(self, count, seed):
        rng = np.random.default_rng(seed)
        for i in range(count):
            image = rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)
            trimap = np.full((20 + i, 24, 1), 2, np.uint8)
            trimap[4:12, 4:12] = 3
            trimap[5:11, 5:11] = 1
            yield f"{seed}-{i}", {"image": image, "species": i % 2, "segmentation_mask": trimap}


def test_tfds_segmentation_masks_from_trimaps(tmp_path, monkeypatch):
    from dlkit.apps.segment.config import Config
    from dlkit.apps.segment.data import load_split
    from dlkit.apps.segment.data import open_source as open_masks

    DlkitTinyPets(data_dir=str(tmp_path / "tfds")).download_and_prepare()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))
    config = Config(image_size=32, val_split=0.2)
    source = open_masks(config, "tfds:dlkit_tiny_pets")
    assert source.labels == ["background", "cat", "dog"]
    # The TFDS test split is the test split; validation is carved from the 10 training
    # images by a hash of their names.
    assert len(source.splits["test"]) == 4 and len(source.splits["val"]) >= 1
    assert len(source.splits["train"]) + len(source.splits["val"]) == 10
    test = load_split(config, source, "test")
    assert test.inputs.shape == (4, 32, 32, 3)
    from PIL import Image

    for path, mask in zip(test.paths, test.targets):
        index = Image.open(path).height - 20  # the generator's i
        assert np.unique(mask).tolist() == [0, index % 2 + 1, 255]  # background, species, border void
    with pytest.raises(DlkitError, match="tfds:no_such_set_here: cannot load"):
        open_masks(config, "tfds:no_such_set_here")


class DlkitTinyWiki(tfds.core.GeneratorBasedBuilder):
    """wikipedia's features in miniature: articles with a `title` and a `text` of
    newline-separated paragraphs, one `train` split."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"title": tfds.features.Text(), "text": tfds.features.Text()}
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(40)}

    def _generate_examples(self, count):
        for i in range(count):
            text = f"Article {i} opens with a sentence.\nIts second paragraph has {i} words more.\n\n"
            yield str(i), {"title": f"Article {i}", "text": text}


def test_tfds_text_articles_become_documents(tmp_path, monkeypatch):
    from dlkit.apps.mlm.config import Config
    from dlkit.apps.mlm.data import open_source as open_text

    DlkitTinyWiki(data_dir=str(tmp_path / "tfds")).download_and_prepare()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    source = open_text(Config.tiny(), "tfds:dlkit_tiny_wiki")
    documents = [doc for split in ("train", "val", "test") for doc in source.documents[split]]
    assert len(documents) == 40 and all(source.documents[s] for s in ("train", "val", "test"))
    assert all(len(doc.paragraphs) == 2 for doc in documents)  # blank lines are not paragraphs
    assert "Article 7 opens with a sentence." in {doc.paragraphs[0] for doc in documents}
    with pytest.raises(DlkitError, match="cannot load"):
        open_text(Config.tiny(), "tfds:no_such_text_set")
