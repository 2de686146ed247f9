"""Version 2 of the offline image data: GCompris's fish cut-outs and licences, Tux Paint
distractors pasted unlabelled, and backgrounds split like the cut-outs."""

import io

import numpy as np
import pytest
from PIL import Image

from dlkit.data import gcompris, tuxpaint
from dlkit.data.scenes import compose
from dlkit.errors import DlkitError, MissingSourceError

has_gcompris = pytest.mark.skipif(
    not gcompris.GCOMPRIS_ROOT.is_dir(), reason="apt-get install gcompris-qt-data"
)
has_v2 = pytest.mark.skipif(
    not (
        gcompris.GCOMPRIS_ROOT.is_dir()
        and tuxpaint.MATE_BACKGROUNDS.is_dir()
        and tuxpaint.STAMPS_ROOT.is_dir()
    ),
    reason="apt-get install gcompris-qt-data mate-backgrounds tuxpaint-stamps-default",
)


def square(color, side=20):
    pixels = np.zeros((side, side, 4), np.uint8)
    pixels[..., :3], pixels[..., 3] = color, 255
    return Image.fromarray(pixels, "RGBA")


def test_distractors_get_no_box_and_stay_background_in_the_masks():
    background = [np.full((64, 64, 3), 128, np.uint8)]
    objects, distractors = [(square((255, 0, 0)), 0)], [square((0, 0, 255))]
    seen_distractor = False
    for seed in range(60):
        scene = compose(
            background,
            objects,
            np.random.default_rng(seed),
            64,
            max_objects=2,
            distractors=distractors,
            max_distractors=3,
        )
        blue = (scene.image[..., 2] > 200) & (scene.image[..., 0] < 50)
        red = (scene.image[..., 0] > 200) & (scene.image[..., 2] < 50)
        seen_distractor |= blue.any()
        assert np.all(scene.class_mask[blue] == 0) and np.all(scene.instances[blue] == 0)
        # The scene keeps the distractors' visible pixels: the blue ones, not the rest.
        np.testing.assert_array_equal(scene.distractors, blue)
        assert np.all(scene.class_mask[red] == 1) and np.all(scene.classes == 0)
        # Every box is the extent of one red object's visible pixels, never a blue one.
        for k, (x0, y0, x1, y1) in enumerate(scene.boxes.astype(int)):
            ys, xs = np.nonzero(scene.instances == k + 1)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
            assert red[ys, xs].all()
    assert seen_distractor


def test_without_distractors_compose_draws_what_it_always_drew():
    """Version 1's scenes do not change: no distractor argument, no extra random draws."""
    background = [np.full((64, 64, 3), 128, np.uint8)]
    objects = [(square((255, 0, 0)), 0), (square((0, 255, 0), 30), 1)]
    a = compose(background, objects, np.random.default_rng(5), 64)
    for extra in ({"distractors": None}, {"distractors": []}):
        b = compose(background, objects, np.random.default_rng(5), 64, **extra)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    with_distractors = compose(
        background, objects, np.random.default_rng(5), 64, distractors=[square((0, 0, 255))]
    )
    assert not np.array_equal(a.image, with_distractors.image)


def test_readme_licences_are_read_per_file():
    text = (
        "Copyright: Ann\nSource: https://example.org/a.jpg\nLicense: Public Domain\nFiles:\na.webp\nb.webp\n\n"
        "Copyright: Bo\nLicense: CC0-1.0\nFiles:\nc.webp\n"
    )
    licences = gcompris.parse_readme(text)
    assert set(licences) == {"a.webp", "b.webp", "c.webp"}
    assert licences["b.webp"] == gcompris.Licence("Ann", "Public Domain", "https://example.org/a.jpg")
    assert licences["c.webp"].licence == "CC0-1.0" and licences["c.webp"].source == ""


def test_missing_gcompris_is_a_one_line_message(tmp_path):
    with pytest.raises(MissingSourceError, match="apt-get install -y gcompris-qt-data") as raised:
        gcompris.export_fish(tmp_path / "out", root=tmp_path / "absent")
    assert "\n" not in str(raised.value)


def test_unknown_image_data_version_is_an_error():
    with pytest.raises(DlkitError, match="versions 1, 2"):
        tuxpaint.find_cutouts(version=3)


@has_gcompris
def test_gcompris_fish_are_the_first_frame_of_each_sprite_sheet(tmp_path):
    skipped = []
    files = gcompris.export_fish(tmp_path, skipped=skipped)
    assert len(files) == 26 and not skipped
    bundle = gcompris.open_bundle("clickgame.rcc")
    frames = gcompris.sprite_frames(bundle.read(f"{gcompris.CLICKGAME}/clickgame.js").decode())
    for path, licence in files.items():
        sheet = Image.open(io.BytesIO(bundle.read(f"{gcompris.CLICKGAME}/resource/{path.stem}.webp")))
        frame = Image.open(path)
        assert frame.mode == "RGBA" and frame.size == (
            sheet.size[0] // frames[f"{path.stem}.webp"],
            sheet.size[1],
        )
        alpha = np.asarray(frame)[..., 3]
        assert 0.1 < (alpha > 127).mean() < 0.95  # an object with a mask around it (a manta: 0.17)
        assert licence.licence.lower() == "public domain"
    # Written once: a second call reads the files back.
    stamp = {p: p.stat().st_mtime_ns for p in files}
    assert {p: p.stat().st_mtime_ns for p in gcompris.export_fish(tmp_path)} == stamp


@has_v2
def test_version_2_widens_fish_and_splits_backgrounds_and_distractors():
    v1, v2 = tuxpaint.find_cutouts(), tuxpaint.find_cutouts(version=2)
    assert len(v2["fish"]) == len(v1["fish"]) + 26
    assert {k: v for k, v in v2.items() if k != "fish"} == {k: v for k, v in v1.items() if k != "fish"}
    splits = tuxpaint.split_cutouts(v2)
    keys = {name: {c.key for c in items} for name, items in splits.items()}
    assert (
        not keys["train"] & keys["val"]
        and not keys["train"] & keys["test"]
        and not keys["val"] & keys["test"]
    )
    gcompris_fish = {c.path.stem for c in v2["fish"] if c.ident.startswith("gcompris/")}
    for split in ("val", "test"):
        assert {c.path.stem for c in splits[split] if c.label == "fish"} & gcompris_fish
    distractors = tuxpaint.find_distractors()
    assert 60 <= len(distractors) <= 90 and all(c.label == "other" for c in distractors)
    assert not any("cartoon" in str(c.path) or c.path.stem.endswith("_mirror") for c in distractors)
    backgrounds = tuxpaint.load_backgrounds(2)
    assert {k: len(v) for k, v in backgrounds.items()} == {"train": 31, "val": 6, "test": 6}
    ids = {split: {id(image) for image in images} for split, images in backgrounds.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert all(
        image.dtype == np.uint8 and image.shape[2] == 3 for images in backgrounds.values() for image in images
    )


@has_v2
def test_missing_mate_backgrounds_is_an_actionable_error(monkeypatch, tmp_path):
    monkeypatch.setattr(tuxpaint, "MATE_BACKGROUNDS", tmp_path)
    with pytest.raises(MissingSourceError, match="apt-get install -y mate-backgrounds"):
        tuxpaint.load_backgrounds(2)


@has_v2
@pytest.mark.parametrize("app_name", ["detect", "segment"])
def test_apps_open_version_2_scenes_from_their_config(app_name, tmp_path, monkeypatch):
    """`--set image_data=2`: the app's default data is version 2's scenes, cached apart
    from version 1's; detect's fresh training scenes are version 2's too."""
    import dataclasses

    from dlkit.registry import get_app

    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path))
    app = get_app(app_name)
    config = dataclasses.replace(
        app.config_class.tiny(), image_data=2, train_images=6, val_images=3, test_images=3
    )
    source = app.data.open_source(config, None)
    folders = [p.name for p in (tmp_path / "datasets").iterdir()]
    assert len(folders) == 1 and folders[0].startswith(
        f"image-data-v2-{'scenes' if app_name == 'detect' else 'masks'}"
    )
    if app_name == "detect":
        assert source.scenes.version == 2
        scene = source.scenes.scene(np.random.default_rng(0))
        assert scene.image.shape == (64, 64, 3)
    else:
        assert "image data v2" in source.description


@has_v2
def test_classify_builds_version_2_photos_under_their_own_name(tmp_path, monkeypatch):
    import dataclasses

    from dlkit.registry import get_app

    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path))
    calls, original = [], tuxpaint.build_classification

    def build(folder, progress=None, version=1):  # one view per cut-out, 32 px: seconds
        calls.append(version)
        return original(folder, image_size=32, views={"train": 1, "val": 1, "test": 1}, version=version)

    monkeypatch.setattr(tuxpaint, "build_classification", build)
    app = get_app("classify")
    source = app.data.open_source(dataclasses.replace(app.config_class.tiny(), image_data=2), None)
    assert calls == [2] and "image data v2" in source.description
    fish = {
        p.stem.rsplit("_", 1)[0]
        for split in source.files.values()
        for p, label in split
        if source.labels[label] == "fish"
    }
    photos = tuxpaint.gcompris_photos()
    assert fish == {c.path.stem for c in tuxpaint.find_cutouts(version=2)["fish"] + photos["fish"]}
    assert len(fish) == len(tuxpaint.find_cutouts()["fish"]) + 26 + 28
    # Every split has whole photos of each class that has them, and no photo is in two.
    for label in ("birds", "fish", "mammals"):
        stems = {c.path.stem for c in photos[label]}
        seen = [
            {p.stem.rsplit("_", 1)[0] for p, y in source.files[split] if source.labels[y] == label} & stems
            for split in ("train", "val", "test")
        ]
        assert all(seen) and not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
        assert set.union(*seen) == stems


@has_v2
def test_unreadable_v2_material_is_skipped_and_reported(monkeypatch, tmp_path, capsys):
    """A damaged wallpaper or GCompris bundle leaves its photos out and says so; the rest
    of the data is still made."""
    mate = tmp_path / "mate"
    mate.mkdir()
    for name in tuxpaint.MATE_NATURE:
        (mate / name).symlink_to(tuxpaint.MATE_BACKGROUNDS / name)
    (mate / "Storm.jpg").unlink()
    (mate / "Storm.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    bundles = tmp_path / "gcompris"
    bundles.mkdir()
    (bundles / "clickgame.rcc").write_bytes(b"qres" + bytes(30))
    monkeypatch.setattr(tuxpaint, "MATE_BACKGROUNDS", mate)
    monkeypatch.setattr(gcompris, "GCOMPRIS_ROOT", bundles)
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))
    backgrounds = tuxpaint.load_backgrounds(2)
    assert sum(len(v) for v in backgrounds.values()) == 43 - 5 - 1  # no sea photos, no Storm
    fish = tuxpaint.find_cutouts(version=2)["fish"]
    assert fish == tuxpaint.find_cutouts()["fish"]
    err = capsys.readouterr().err
    assert "skipped: " in err and "Storm.jpg" in err and "clickgame.rcc" in err
    assert "Traceback" not in err


@has_gcompris
def test_gcompris_whole_photos_are_exported_once_with_their_licences(tmp_path):
    skipped = []
    found = gcompris.export_photos(tmp_path, skipped=skipped)
    labels = [label for label, _ in found.values()]
    assert not skipped and {k: labels.count(k) for k in set(labels)} == {
        "fish": 28,
        "mammals": 17,
        "birds": 4,
    }
    assert all(licence.licence in ("Public Domain", "CC0-1.0") for _, licence in found.values())
    assert not any(stem in str(path) for path in found for stem in ("chameleon", "crocodile", "dragon"))
    for path in found:
        with Image.open(path) as image:
            assert image.mode == "RGB" and max(image.size) <= gcompris.PHOTO_SIDE
    stamps = {path: path.stat().st_mtime_ns for path in found}
    assert gcompris.export_photos(tmp_path) == found  # read from the cache, not written again
    assert {path: path.stat().st_mtime_ns for path in found} == stamps


def test_unreadable_photo_bundles_are_skipped_and_reported(tmp_path):
    for name in {bundle for bundle, _ in gcompris.PHOTO_SETS}:
        (tmp_path / name).write_bytes(b"qres" + bytes(30))
    skipped = []
    assert gcompris.export_photos(tmp_path / "out", root=tmp_path, skipped=skipped) == {}
    assert len(skipped) == 3 and all("rcc" in line for line in skipped)


def test_a_photo_view_keeps_most_of_the_photo_at_the_model_size():
    pixels = np.zeros((40, 100, 3), np.uint8)
    pixels[:, :50] = 255  # left half white
    photo = Image.fromarray(pixels)
    for seed in range(20):
        view = np.asarray(tuxpaint.photo_view(photo, np.random.default_rng(seed), 32))
        assert view.shape == (32, 32, 3)
        # At least 80% of the width stays: both halves are always in view.
        white = (view[..., 0] > 200).mean()
        assert 0.3 < white < 0.7
    a, b = (np.asarray(tuxpaint.photo_view(photo, np.random.default_rng(3), 32)) for _ in range(2))
    assert np.array_equal(a, b)
