import numpy as np

from dlkit.data.augment import image_augmenter


def test_augmenter_keeps_shape_and_changes_pixels_only_in_training():
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    augment = image_augmenter(seed=1)
    out = np.asarray(augment(images, training=True))
    assert out.shape == images.shape
    assert not np.allclose(out, images)
    np.testing.assert_allclose(np.asarray(augment(images, training=False)), images, atol=1e-4)


def test_disabled_augmenter_is_identity():
    images = np.full((2, 8, 8, 3), 100.0, np.float32)
    augment = image_augmenter(
        flip=False, rotation=0, zoom=0, translation=0, contrast=0, brightness=0, saturation=0, hue=0
    )
    assert [type(layer).__name__ for layer in augment.layers] == ["Identity"]
    np.testing.assert_array_equal(np.asarray(augment(images, training=True)), images)
