"""Face: the shipped pipeline end to end through the CLI (enroll -> verify -> identify ->
list -> remove), several faces in a photo, bad input, and on the offline people the
targets' checks (ROC AUC, rank-1, Keras-vs-TFLite parity). Train/resume/export/edge
predict of a tiny model are in the contract kit (tests/test_contract.py)."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, run_cli
from dlkit.apps.face.gallery import Gallery
from dlkit.paths import shipped_model_dir

SHIPPED = shipped_model_dir("face")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real faces that Python packages carry: the astronaut, mirrored and darker (the same
    person, another photo), two different LFW faces, a photo with two people, no face."""
    import skimage.data

    from dlkit.apps.face.faces import lfw_faces

    folder = tmp_path_factory.mktemp("faces")
    astronaut = skimage.data.astronaut()
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    other = np.clip(astronaut[:, ::-1].astype(np.int16) - 30, 0, 255).astype(np.uint8)
    Image.fromarray(other).save(folder / "astronaut_mirrored.png")
    faces = lfw_faces()
    Image.fromarray(faces[0]).save(folder / "lfw0.png")
    Image.fromarray(faces[1]).save(folder / "lfw1.png")
    pair = np.zeros((512, 1024, 3), np.uint8)  # the astronaut, and a smaller mirrored copy
    pair[:, :512] = astronaut
    pair[64:448, 576:960] = np.asarray(Image.fromarray(other).resize((384, 384)))
    Image.fromarray(pair).save(folder / "two_people.png")
    Image.fromarray(skimage.data.coffee()).save(folder / "coffee.png")
    Image.fromarray(astronaut[:12, :12]).save(folder / "tiny.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def face_cli(*args):
    return run_cli("face", *args)


def test_enrol_verify_identify_list_remove(photos, tmp_path):
    gallery = tmp_path / "gallery.json"
    result = face_cli("enroll", "Eileen", photos / "astronaut.png", "--gallery", gallery)
    assert result.exit_code == 0 and "enrolled Eileen: 1 photo," in result.output, result.output
    assert face_cli("enroll", "Lee", photos / "lfw0.png", "--gallery", gallery).exit_code == 0
    assert face_cli("enroll", "Lee", photos / "lfw0.png", "--gallery", gallery).exit_code == 0  # added again
    assert {k: len(v) for k, v in Gallery.load(gallery).people.items()} == {"Eileen": 1, "Lee": 2}

    same = face_cli("verify", photos / "astronaut.png", photos / "astronaut_mirrored.png", "--json")
    record = json.loads(same.output.strip().splitlines()[-1])
    assert record["same"] is True and record["distance"] <= record["threshold"]
    different = json.loads(
        face_cli("verify", photos / "lfw0.png", photos / "lfw1.png", "--json").output.splitlines()[-1]
    )
    assert different["same"] is False and different["distance"] > different["threshold"]

    out = tmp_path / "seen"
    result = face_cli(
        "identify",
        photos / "astronaut_mirrored.png",
        photos / "lfw1.png",
        "--gallery",
        gallery,
        "--json",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [r["faces"][0]["name"] for r in records] == ["Eileen", None]  # the LFW face is nobody enrolled
    assert records[1]["faces"][0]["distance"] > json.loads((SHIPPED / "model.json").read_text())["threshold"]
    assert len(records[0]["faces"][0]["embedding"]) == 128
    assert np.linalg.norm(records[0]["faces"][0]["embedding"]) == pytest.approx(1.0, abs=1e-3)
    assert (out / "astronaut_mirrored.jpg").exists() and (out / "predictions.json").exists()

    listed = face_cli("list", "--gallery", gallery)
    assert "Eileen: 1 photo\n" in listed.output and "Lee: 2 photos" in listed.output
    assert "2 people, 3 photos" in listed.output
    removed = face_cli("remove", "Lee", "--gallery", gallery)
    assert removed.exit_code == 0 and "(1 person left)" in removed.output
    assert list(Gallery.load(gallery).people) == ["Eileen"]
    assert "1 person, 1 photo (" in face_cli("list", "--gallery", gallery).output
    assert_one_line_error(face_cli("remove", "Lee", "--gallery", gallery), "no 'Lee'")


def test_several_faces_each_reported_and_the_largest_enrolled(photos, tmp_path):
    result = face_cli("identify", photos / "two_people.png", "--gallery", "none", "--json")
    faces = json.loads(result.output.splitlines()[-1])["faces"]
    assert len(faces) == 2
    sizes = [face["box"][2] - face["box"][0] for face in faces]
    assert sizes == sorted(sizes, reverse=True)  # largest first
    assert faces[0]["box"][0] < 512 <= faces[1]["box"][0]  # the astronaut is the larger face
    gallery = tmp_path / "gallery.json"
    result = face_cli("enroll", "Eileen", photos / "two_people.png", "--gallery", gallery)
    assert result.exit_code == 0 and "2 faces; enrolled the largest" in result.output
    alone = face_cli("identify", photos / "astronaut.png", "--gallery", gallery, "--json")
    assert json.loads(alone.output.splitlines()[-1])["faces"][0]["name"] == "Eileen"


def test_a_read_photo_tells_predict_the_bytes_it_holds(photos):
    from dlkit.apps.face import edge
    from dlkit.edge.bundle import ModelBundle

    meta = ModelBundle.load(SHIPPED, app="face").meta
    photo = edge.read_input(photos / "two_people.png", meta)
    assert len(photo.crops) == 2
    assert photo.nbytes == 512 * 1024 * 3 + sum(crop.size * crop.itemsize for crop in photo.crops)


@pytest.mark.parametrize("name", ["coffee.png", "tiny.png", "corrupt.jpg"])
def test_photos_without_a_face_enrol_nothing(photos, tmp_path, name):
    gallery = tmp_path / "gallery.json"
    result = face_cli("identify", photos / name, "--gallery", "none", "--json")
    if name == "corrupt.jpg":
        assert_one_line_error(result, "corrupt image")
    else:  # a readable photo without a face is a result, not an error
        assert result.exit_code == 0 and json.loads(result.output.splitlines()[-1])["faces"] == []
    result = face_cli("enroll", "Nobody", photos / name, "--gallery", gallery)
    assert result.exit_code == 2 and "nothing enrolled" in result.output
    assert not gallery.exists()
    assert_one_line_error(face_cli("verify", photos / name, photos / "astronaut.png"), "no face to compare")


@pytest.mark.parametrize("setting", ["mining=hardest", "embedder=vgg", "identities_per_batch=1"])
def test_a_bad_setting_stops_before_any_work(setting):
    assert_one_line_error(face_cli("train", "--set", setting), setting.split("=")[0])


def test_gallery_refusals(photos, tmp_path):
    empty = tmp_path / "empty.json"
    assert_one_line_error(
        face_cli("identify", photos / "astronaut.png", "--gallery", empty), "the gallery is empty"
    )
    foreign = tmp_path / "foreign.json"
    foreign.write_text(
        json.dumps(
            {
                "format": "dlkit-face-gallery",
                "version": 1,
                "embedder": "another-net",
                "dimension": 128,
                "people": {"X": [[0.0] * 127 + [1.0]]},
            }
        )
    )
    assert_one_line_error(
        face_cli("identify", photos / "astronaut.png", "--gallery", foreign), "not comparable"
    )
    before = foreign.read_bytes()
    assert_one_line_error(
        face_cli("enroll", "Y", photos / "astronaut.png", "--gallery", foreign), "not comparable"
    )
    assert foreign.read_bytes() == before  # nothing lost, nothing added
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert_one_line_error(face_cli("list", "--gallery", broken), "not a face gallery")


# --- the offline people (fetched into the cache by `dlkit face data fetch`) ---------------
@pytest.fixture(scope="module")
def people():
    from dlkit.apps.face.config import Config
    from dlkit.apps.face.data import load_split, open_source

    config = Config()
    source = open_source(config, None)
    return {split: load_split(config, source, split) for split in ("val", "test")}


@pytest.mark.realdata
def test_the_shipped_pipeline_separates_the_offline_people(people):
    from dlkit.edge import EdgeModel
    from dlkit.metrics.verification import verification_report

    meta = json.loads((SHIPPED / "model.json").read_text())
    model = EdgeModel(SHIPPED / meta["exports"]["int8"]["file"])
    inputs = np.concatenate([split.inputs for split in people.values()]).astype(np.float32)
    targets = np.concatenate([split.targets for split in people.values()])
    embeddings = np.concatenate([model.predict(inputs[i : i + 16])[0] for i in range(0, len(inputs), 16)])
    report = verification_report(embeddings, targets, meta["threshold"])
    assert report["images"] == 59 and report["identities"] == 7
    assert report["roc_auc"] >= 0.99 and report["rank1"] == 1.0
    assert report["accuracy"] >= 0.95  # at the threshold calibrated on val: 0.977 measured


@pytest.mark.realdata
def test_keras_and_tflite_embeddings_agree(people):
    from dlkit.apps.face.config import Config
    from dlkit.apps.face.model import build_model
    from dlkit.edge import EdgeModel
    from dlkit.metrics.verification import pair_distances

    meta = json.loads((SHIPPED / "model.json").read_text())
    keras_model = build_model(Config(), meta)
    tflite = EdgeModel(SHIPPED / meta["exports"]["int8"]["file"])
    inputs = people["val"].inputs.astype(np.float32)
    a = keras_model.predict(inputs, verbose=0)
    b = np.concatenate([tflite.predict(inputs[i : i + 16])[0] for i in range(0, len(inputs), 16)])
    assert ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).mean() >= 0.99
    same_a = pair_distances(a, people["val"].targets)[0] <= meta["threshold"]
    same_b = pair_distances(b, people["val"].targets)[0] <= meta["threshold"]
    assert (same_a == same_b).mean() >= 0.99


@pytest.mark.realdata
def test_init_dlib_fine_tunes_the_ported_descriptor(tmp_path):
    import keras

    from dlkit import io
    from dlkit.apps.face.data import write_sample_folder
    from dlkit.apps.face.model import pretrained_model_dir

    data = write_sample_folder(tmp_path / "people")
    run_dir = tmp_path / "run"
    result = face_cli(
        "train",
        "--data",
        data,
        "--init",
        "dlib",
        "--set",
        "epochs=1",
        "--set",
        "passes=1",
        "--run-dir",
        run_dir,
    )
    assert result.exit_code == 0, result.output
    meta = io.read_json(run_dir / "model.json")
    ported = io.read_json(pretrained_model_dir() / "model.json")
    assert meta["config"]["embedder"] == "resnet" and 0 < meta["threshold"] < 2
    assert meta["embedder_id"] != ported["embedder_id"]  # its embeddings are its own
    before = keras.saving.load_model(pretrained_model_dir() / "model.keras", compile=False)
    after = keras.saving.load_model(run_dir / "model.keras", compile=False)
    for name, changed in (("conv32_1_conv1", False), ("conv256_down_out_conv2", True), ("fc", True)):
        same = all(
            np.array_equal(a, b)
            for a, b in zip(before.get_layer(name).get_weights(), after.get_layer(name).get_weights())
        )
        assert same != changed, name  # the first blocks stay as ported; the top ones train


def test_a_tfds_set_of_people_becomes_person_folders(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    from dlkit.apps.face.config import Config
    from dlkit.apps.face.data import load_split, open_source
    from dlkit.apps.face.faces import lfw_faces

    class DlkitTinyFaces(tfds.core.GeneratorBasedBuilder):
        """lfw's features in miniature: `image` and the person's name as `label` text."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {"image": tfds.features.Image(shape=(None, None, 3)), "label": tfds.features.Text()}
                ),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            faces = lfw_faces(size=96)
            for person in range(8):
                for k in range(2):
                    image = faces[person] if k == 0 else faces[person][:, ::-1]
                    yield (
                        f"{person}-{k}",
                        {"image": np.ascontiguousarray(image), "label": f"Person {person}/../x"},
                    )

    DlkitTinyFaces(data_dir=str(tmp_path / "tfds")).download_and_prepare()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))
    config = Config(val_split=0.25, test_split=0.25)
    source = open_source(config, "tfds:dlkit_tiny_faces")
    people = {split: {person for _, person in items} for split, items in source.splits.items()}
    assert [len(people[s]) for s in ("train", "val", "test")] == [4, 2, 2]
    assert not (people["train"] & people["val"]) and not (people["val"] & people["test"])
    assert all("/" not in p and not p.startswith(".") for p in people["train"])  # names made folder-safe
    assert all(path.is_relative_to(tmp_path / "cache") for path, _ in source.splits["val"])
    val = load_split(config, source, "val")
    assert val.inputs.shape[1:] == (150, 150, 3) and len(set(val.targets.tolist())) == 2


def test_the_lfw_pairs_protocol(tmp_path):
    from PIL import ImageOps

    from dlkit.apps.face.detector import detector_at, find_faces, shipped_detector
    from dlkit.apps.face.faces import lfw_faces
    from dlkit.apps.face.pairs import read_pairs, ten_fold

    detector = detector_at(str(shipped_detector()))
    faces = [f for f in lfw_faces(size=96)[:16] if find_faces(detector, f)][:8]
    folder = tmp_path / "lfw"
    names = [f"Person_{chr(65 + i)}" for i in range(8)]
    for name, face in zip(names, faces):
        (folder / name).mkdir(parents=True)
        Image.fromarray(face).save(folder / name / f"{name}_0001.jpg")
        ImageOps.mirror(Image.fromarray(face)).save(folder / name / f"{name}_0002.jpg")
    lines = ["2\t4"]
    for fold in range(2):
        people = names[4 * fold : 4 * fold + 4]
        lines += [f"{n}\t1\t2" for n in people]
        lines += [f"{a}\t1\t{b}\t2" for a, b in zip(people, people[1:] + people[:1])]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    listed = read_pairs(tmp_path / "pairs.txt")
    assert len(listed) == 16 and listed[0] == (0, ("Person_A", 1), ("Person_A", 2), True)
    assert listed[4][1:] == (("Person_A", 1), ("Person_B", 2), False)
    result = face_cli("pairs", tmp_path / "pairs.txt", "--data", folder, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.splitlines()[-1])
    assert report["pairs"] == 16 and report["left_out"] == 0 and len(report["folds"]) == 2
    assert report["accuracy"] == pytest.approx(np.mean(report["folds"]))
    assert report["roc_auc"] >= 0.9  # a photo and its mirror image against other people

    # The protocol on hand-made distances: each fold is scored at the threshold that splits the
    # other fold perfectly (0.5 and 1.4), which accepts the wrong half of it.
    distances = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.6, 1.8])
    same = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    mean, std, per_fold, thresholds = ten_fold(distances, same, np.array([0, 0, 0, 0, 1, 1, 1, 1]))
    assert thresholds == pytest.approx([1.4, 0.5]) and per_fold == [0.5, 0.5] and mean == 0.5 and std == 0
    (tmp_path / "bad.txt").write_text("2\t4\nPerson_A\t1\n")
    assert_one_line_error(face_cli("pairs", tmp_path / "bad.txt", "--data", folder), "promises 16")


def test_ship_face_keeps_peers_recorded_earlier(tmp_path):
    """Peers measured by an earlier call (rows naming their model) stay in the record
    unless measured again; the shipped model's own rows are measured anew."""
    from conftest import load_tool
    from dlkit import io

    tool = load_tool("ship_face")
    results = tmp_path / "face.json"
    assert tool.earlier_peers(results, {}) == {}
    peer = {"val": {"roc_auc": 0.79}, "model": "/runs/mobilenet"}
    io.write_json(results, {"metrics": {"keras": {"val": {}}, "mobilenet_triplet": peer, "parity": {}}})
    assert tool.earlier_peers(results, {}) == {"mobilenet_triplet": peer}
    assert tool.earlier_peers(results, {"mobilenet_triplet": "/runs/again"}) == {}
