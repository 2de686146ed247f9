"""Batched augmentation (`dlkit.data.augment`): each transform against its definition
(numpy flips, rotations and shifts, TensorFlow's contrast, channel permutations for a
third of a hue turn), draws within their ranges and repeatable from a seed."""

import math

import numpy as np
import pytest

from dlkit.data.augment import LUMA, ImageAugment, recolour, warp

tf = pytest.importorskip("tensorflow")

IMAGES = np.random.default_rng(0).uniform(0, 255, (2, 9, 9, 3)).astype(np.float32)


def params(**values):
    """Per-image parameters of two images: the identity, but for `values`."""
    neutral = dict(
        flip=0, angle=0, scale=1, shift_x=0, shift_y=0, contrast=1, brightness=0, saturation=1, hue=0
    )
    return {name: tf.fill((2,), float(value)) for name, value in {**neutral, **values}.items()}


@pytest.mark.parametrize(
    "values, expected",
    [
        ({}, IMAGES),
        ({"flip": 1}, IMAGES[:, :, ::-1]),
        ({"angle": math.pi / 2}, np.rot90(IMAGES, axes=(1, 2))),
        ({"angle": math.pi}, IMAGES[:, ::-1, ::-1]),
        ({"flip": 1, "angle": math.pi}, IMAGES[:, ::-1]),
    ],
)
def test_warp_matches_exact_flips_and_rotations(values, expected):
    np.testing.assert_allclose(warp(IMAGES, params(**values)), expected, atol=1e-3)


def test_warp_shifts_scales_and_reflects_at_the_border():
    shifted = np.asarray(warp(IMAGES, params(shift_x=2 / 9)))
    np.testing.assert_allclose(shifted[:, :, :7], IMAGES[:, :, 2:], atol=1e-4)
    # Reflected about the last column, which is repeated (Keras' "reflect").
    np.testing.assert_allclose(shifted[:, :, 7:], IMAGES[:, :, [8, 7]], atol=1e-4)
    # Scale 2 about the centre: output column 4 + k samples input column 4 + 2k.
    zoomed = np.asarray(warp(IMAGES, params(scale=2)))
    np.testing.assert_allclose(zoomed[:, 4, 4:7], IMAGES[:, 4, [4, 6, 8]], atol=1e-4)
    # Halfway between two pixels: their mean (bilinear).
    half = np.asarray(warp(IMAGES, params(shift_x=0.5 / 9)))
    np.testing.assert_allclose(half[:, :, 3], (IMAGES[:, :, 3] + IMAGES[:, :, 4]) / 2, atol=1e-3)


def test_recolour_against_its_definitions():
    np.testing.assert_allclose(
        recolour(IMAGES, params(contrast=1.3)), tf.image.adjust_contrast(IMAGES, 1.3), atol=1e-3
    )
    np.testing.assert_allclose(recolour(IMAGES, params(brightness=12)), IMAGES + 12, atol=1e-3)
    # A third of a turn about the grey axis moves red to green, green to blue, blue to red.
    np.testing.assert_allclose(
        recolour(IMAGES, params(hue=2 * math.pi / 3)), IMAGES[..., [2, 0, 1]], atol=1e-3
    )
    luma = (IMAGES @ np.array(LUMA, np.float32))[..., None]
    np.testing.assert_allclose(recolour(IMAGES, params(saturation=0)), np.repeat(luma, 3, -1), atol=1e-3)
    np.testing.assert_allclose(
        recolour(IMAGES, params(saturation=1.5)), luma + 1.5 * (IMAGES - luma), atol=1e-3
    )
    grey = np.repeat(IMAGES[..., :1], 3, -1)
    np.testing.assert_allclose(recolour(grey, params(hue=0.7, saturation=0.4)), grey, atol=1e-3)


def test_draws_stay_in_their_ranges_and_repeat_from_a_seed():
    augment = ImageAugment(rotation=0.1, zoom=0.2, translation=0.1, contrast=0.3, brightness=0.1, hue=0.05)
    drawn = {name: np.asarray(value) for name, value in augment.sample(1000, [4, 2]).items()}
    assert set(np.unique(drawn["flip"])) == {0.0, 1.0}
    for name, low, high in [
        ("angle", -0.2 * math.pi, 0.2 * math.pi),
        ("scale", 0.8, 1.2),
        ("shift_x", -0.1, 0.1),
        ("contrast", 0.7, 1.3),
        ("brightness", -25.5, 25.5),
        ("hue", -0.1 * math.pi, 0.1 * math.pi),
    ]:
        assert (
            low <= drawn[name].min() < low + (high - low) / 10
            and high - (high - low) / 10 < drawn[name].max() <= high
        )
    out = np.asarray(augment(IMAGES, [1, 2]))
    assert out.shape == IMAGES.shape and 0 <= out.min() and out.max() <= 255
    np.testing.assert_array_equal(out, augment(IMAGES, [1, 2]))
    assert np.abs(out - np.asarray(augment(IMAGES, [1, 3]))).mean() > 5


def test_everything_off_is_the_identity():
    off = ImageAugment(
        flip=False, rotation=0, zoom=0, translation=0, contrast=0, brightness=0, saturation=0, hue=0
    )
    assert not off.geometric and not off.colour
    np.testing.assert_array_equal(off(IMAGES, [0, 0]), IMAGES)


def test_the_xla_compiled_transform_equals_the_plain_one():
    augment = ImageAugment(rotation=0.1, zoom=0.2, translation=0.1, contrast=0.3, hue=0.05)
    plain = ImageAugment(rotation=0.1, zoom=0.2, translation=0.1, contrast=0.3, hue=0.05, jit=False)
    images = IMAGES.astype(np.uint8)
    np.testing.assert_allclose(augment(images, [5, 6]), plain(images, [5, 6]), atol=1e-3)
