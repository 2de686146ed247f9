"""Composited scenes carry exact instance and class masks that agree with their boxes."""

import numpy as np
from PIL import Image

from dlkit.data.scenes import compose


def test_masks_agree_with_boxes_classes_and_pixels():
    objects = []
    for label, color in enumerate(((255, 0, 0), (0, 0, 255))):
        block = np.zeros((30, 50, 4), np.uint8)
        block[..., :3] = color
        block[..., 3] = 255
        objects.append((Image.fromarray(block, "RGBA"), label))
    black = [np.zeros((64, 64, 3), np.uint8)]
    rng, seen = np.random.default_rng(0), 0
    for _ in range(30):
        scene = compose(black, objects, rng, 64, max_objects=4)
        assert scene.instances.shape == scene.class_mask.shape == (64, 64)
        assert set(np.unique(scene.instances)) <= set(range(len(scene.boxes) + 1))
        for k, (box, label) in enumerate(zip(scene.boxes, scene.classes)):
            ys, xs = np.nonzero(scene.instances == k + 1)
            np.testing.assert_array_equal([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], box)
            assert np.all(scene.class_mask[ys, xs] == label + 1)
            seen += 1
        labelled = scene.class_mask > 0
        assert np.all(labelled[scene.instances > 0])  # every instance pixel has its class
        red, blue = scene.class_mask == 1, scene.class_mask == 2
        assert np.all(scene.image[red][:, 0] > 200) and np.all(scene.image[blue][:, 2] > 200)
        assert np.all(scene.image[~labelled].max(axis=-1) < 60)  # the rest is background
        image, boxes, classes = scene  # detection code unpacks a scene as a triple
        assert image is scene.image and boxes is scene.boxes
    assert seen > 30
