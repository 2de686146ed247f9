"""Mask folders: index masks read as class ids; colour masks, foreign ids, size mismatches
and missing masks are one-line errors naming the file."""

import numpy as np
import pytest
from PIL import Image

from dlkit.data.masks import VOID, check_same_size, pair_images_and_masks, read_mask
from dlkit.errors import InvalidInputError


def test_index_masks_in_grey_palette_and_grey_rgb_read_the_same(tmp_path):
    ids = np.array([[0, 1], [2, VOID]], np.uint8)
    Image.fromarray(ids, "L").save(tmp_path / "grey.png")
    palette = Image.fromarray(ids, "P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253)
    palette.save(tmp_path / "palette.png")
    Image.fromarray(np.repeat(ids[..., None], 3, -1), "RGB").save(tmp_path / "rgb_grey.png")
    for name in ("grey.png", "palette.png", "rgb_grey.png"):
        np.testing.assert_array_equal(read_mask(tmp_path / name, num_classes=3), ids)


def test_bad_masks_are_one_line_errors(tmp_path):
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[:2, :, 0] = 128
    Image.fromarray(colour, "RGB").save(tmp_path / "colour.png")
    with pytest.raises(InvalidInputError, match="colour.png: an RGB colour mask.*class indices"):
        read_mask(tmp_path / "colour.png")
    Image.fromarray(np.full((4, 4), 7, np.uint8), "L").save(tmp_path / "seven.png")
    with pytest.raises(InvalidInputError, match="seven.png: class id 7 but the dataset has 3 classes"):
        read_mask(tmp_path / "seven.png", num_classes=3)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InvalidInputError, match="broken.png: not a readable mask"):
        read_mask(tmp_path / "broken.png")
    with pytest.raises(InvalidInputError, match="m.png: mask is 4x4 but its image a.jpg is 6x5"):
        check_same_size(np.zeros((5, 6, 3)), np.zeros((4, 4)), "a.jpg", "m.png")


def test_images_pair_with_masks_by_stem_and_missing_ones_are_listed(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for stem in ("a", "b", "c"):
        Image.new("RGB", (4, 4)).save(tmp_path / "images" / f"{stem}.jpg")
    for stem in ("a", "c", "z"):
        Image.new("L", (4, 4)).save(tmp_path / "masks" / f"{stem}.png")
    pairs, missing = pair_images_and_masks(tmp_path / "images", tmp_path / "masks")
    assert [(i.name, m.name) for i, m in pairs] == [("a.jpg", "a.png"), ("c.jpg", "c.png")]
    assert len(missing) == 1 and "b.jpg: no mask" in missing[0]
