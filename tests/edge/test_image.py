import numpy as np
import pytest
from PIL import Image

from conftest import BAD_IMAGES
from dlkit.edge.image import load_image, resize
from dlkit.errors import InvalidInputError


@pytest.mark.parametrize("kind, message", BAD_IMAGES)
def test_bad_images_raise_one_line_errors_naming_the_file(bad_files, kind, message):
    with pytest.raises(InvalidInputError, match=message) as error:
        load_image(bad_files[kind])
    assert str(bad_files[kind]) in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


def test_grayscale_becomes_rgb(bad_files):
    image = load_image(bad_files["gray"])
    assert image.shape == (20, 20, 3) and image.dtype == np.uint8
    assert (image == 77).all()


def test_rgba_is_composited_on_white(bad_files):
    image = load_image(bad_files["rgba"])
    assert image[:10].tolist() == [[[255, 0, 0]] * 20] * 10  # opaque red stays red
    assert (image[10:] == 255).all()  # transparent becomes white


def test_16_bit_png_is_scaled_not_clipped(bad_files):
    image = load_image(bad_files["deep"])
    assert image.shape == (20, 20, 3)
    assert abs(int(image[0, 0, 0]) - 128) <= 1  # 32767/65535 of full scale


def test_exif_rotation_is_applied(tmp_path):
    pixels = np.zeros((10, 30, 3), np.uint8)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").shape == (30, 10, 3)


def test_resize_matches_pillow_bilinear():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(image).resize((32, 24), Image.BILINEAR))
    np.testing.assert_array_equal(resize(image, (24, 32)), expected)
    assert resize(image, (50, 70)) is image


def test_a_large_image_is_refused_once_without_pillows_warning(tmp_path, monkeypatch):
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow warns above this, fails above 2x
    path = tmp_path / "large.png"
    Image.new("RGB", (12, 12)).save(path)  # 144 pixels: Pillow's warning range
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InvalidInputError, match="12x12 image is too large"):
            load_image(path, max_pixels=100)
    assert not caught


def test_a_large_jpeg_decoded_at_a_reduced_scale_resizes_to_nearly_the_same_pixels(tmp_path):
    """`at_least`: the decoder's 1/2-1/8 scaling, sides kept at or above the bound; after
    the resize a model needs, within a few levels of the full decode; EXIF rotation still
    applied; a PNG decoded whole."""
    import skimage.data

    photo = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((2400, 1600), Image.BILINEAR))
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=92)
    full, reduced = load_image(tmp_path / "photo.jpg"), load_image(tmp_path / "photo.jpg", at_least=320)
    assert full.shape == (1600, 2400, 3) and reduced.shape == (400, 600, 3)  # 1/4: 1/8 would go below 320
    difference = np.abs(resize(full, (160, 160)).astype(int) - resize(reduced, (160, 160)).astype(int))
    assert difference.mean() < 1 and np.percentile(difference, 99) <= 2
    image = Image.fromarray(photo)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg", at_least=320).shape == (600, 400, 3)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    assert load_image(tmp_path / "photo.png", at_least=320).shape == (1600, 2400, 3)
