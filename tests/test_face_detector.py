"""BlazeFace decoding and alignment (numpy only) on synthetic outputs and real photos."""

import numpy as np
import pytest

from dlkit.apps.face.detector import (
    KEYPOINTS,
    TEMPLATE,
    align,
    anchor_centres,
    decode,
    detector_at,
    find_faces,
    letterbox,
    shipped_detector,
    similarity,
)


def test_anchors_follow_mediapipe_layout():
    short = anchor_centres(128)
    assert short.shape == (896, 2)
    # Stride 8: 16 x 16 cells x 2 anchors, row by row; then stride 16: 8 x 8 cells x 6.
    np.testing.assert_allclose(short[0], short[1])
    np.testing.assert_allclose(short[:4], [[1 / 32, 1 / 32]] * 2 + [[3 / 32, 1 / 32]] * 2)
    np.testing.assert_allclose(short[512:518], [[1 / 16, 1 / 16]] * 6)
    full = anchor_centres(192)
    assert full.shape == (2304, 2)
    np.testing.assert_allclose(full[48], [0.5 / 48, 1.5 / 48])


def test_decode_reads_boxes_and_keypoints_relative_to_anchors():
    size = 192
    anchors = anchor_centres(size) * size
    raw = np.zeros((len(anchors), 16), np.float32)
    scores = np.full(len(anchors), -10.0)
    k = 1000
    raw[k, :4] = [3.0, -2.0, 40.0, 50.0]
    raw[k, 4:] = np.arange(12)
    scores[k] = 4.0
    scores[k + 1] = 3.0  # the same face again, less sure: suppressed
    raw[k + 1] = raw[k]
    found = decode(raw, scores, size)
    assert len(found) == 1
    box, score, points = found[0]
    cx, cy = anchors[k] + [3.0, -2.0]
    np.testing.assert_allclose(box, [cx - 20, cy - 25, cx + 20, cy + 25], atol=1e-4)
    assert score == pytest.approx(1 / (1 + np.exp(-4.0)))
    np.testing.assert_allclose(points, np.arange(12).reshape(6, 2) + anchors[k], atol=1e-4)
    assert decode(raw, np.full(len(anchors), -10.0), size) == []


def test_letterbox_centres_and_scales():
    image = np.full((50, 100, 3), 255, np.uint8)
    x, scale, pad_x, pad_y = letterbox(image, 128)
    assert x.shape == (128, 128, 3) and scale == pytest.approx(100 / 128)
    assert (pad_x, pad_y) == (0, 25)
    assert x[0, 64, 0] == -1.0 and x[64, 64, 0] == pytest.approx(1.0)


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = source @ rotation.T + shift
    matrix = similarity(source, target)
    np.testing.assert_allclose(matrix[:, :2], rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_align_puts_the_eyes_and_mouth_on_the_template():
    # Three bright dots where a face's eyes and mouth would be, rotated and scaled.
    image = np.zeros((300, 300, 3), np.uint8)
    keypoints = np.zeros((6, 2))
    centre, half = np.array([150.0, 140.0]), 40.0
    angle = np.deg2rad(20)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    for name, offset in (("right_eye", (-half, -30)), ("left_eye", (half, -30)), ("mouth", (0, 50))):
        x, y = centre + turn @ np.array(offset, float)
        keypoints[KEYPOINTS.index(name)] = (x, y)
        image[int(round(y)) - 2 : int(round(y)) + 3, int(round(x)) - 2 : int(round(x)) + 3] = 255
    crop = align(image, keypoints, size=150)
    assert crop.shape == (150, 150, 3) and crop.dtype == np.uint8
    target = np.array([TEMPLATE[n] for n in ("right_eye", "left_eye", "mouth")]) * 150
    mapped = similarity(keypoints[[0, 1, 3]], target)
    found = []
    for point in keypoints[[0, 1, 3]]:
        x, y = mapped @ [*point, 1]
        found.append(crop[int(round(y)) - 1 : int(round(y)) + 2, int(round(x)) - 1 : int(round(x)) + 2].max())
    assert min(found) > 100, found  # each dot lands where the transform puts it
    residual = np.linalg.norm(np.c_[keypoints[[0, 1, 3]], np.ones(3)] @ mapped.T - target, axis=1)
    assert residual.max() < 10  # a similarity cannot fit every face's three points exactly


@pytest.fixture(scope="module")
def detector():
    return detector_at(str(shipped_detector()))


def test_astronaut_one_face_eyes_where_expected(detector):
    import skimage.data

    image = skimage.data.astronaut()  # 512 x 512, Eileen Collins' face near (225, 125)
    faces = find_faces(detector, image)
    assert len(faces) == 1
    face = faces[0]
    x1, y1, x2, y2 = face.box
    assert 160 < x1 < 200 and 60 < y1 < 100 and 260 < x2 < 300 and 160 < y2 < 200
    right_eye, left_eye = face.keypoints[0], face.keypoints[1]
    # Her right eye is on the image's left; both eyes level within a few pixels, 40-50 px apart.
    np.testing.assert_allclose(right_eye, (205, 103), atol=6)
    np.testing.assert_allclose(left_eye, (248, 106), atol=6)
    assert face.score > 0.8


def test_a_large_photo_is_searched_on_a_copy_and_answered_in_its_own_pixels(detector):
    """A photo past `LARGEST_SIDE` detector inputs: the face found in the photo's pixels
    where the 512-pixel original puts it (x5), and a tight crop of it enlarged is still
    framed and found."""
    import skimage.data
    from PIL import Image

    from dlkit.apps.face.detector import LARGEST_SIDE

    image = skimage.data.astronaut()
    large = np.asarray(Image.fromarray(image).resize((2560, 2560), Image.BILINEAR))
    assert 2560 > LARGEST_SIDE * detector.size
    (small,), (big,) = find_faces(detector, image), find_faces(detector, large)
    np.testing.assert_allclose(big.box, small.box * 5, atol=5 * 4)
    np.testing.assert_allclose(big.keypoints[:2], small.keypoints[:2] * 5, atol=5 * 4)
    tight = np.asarray(Image.fromarray(image[75:185, 165:285]).resize((1200, 1100), Image.BILINEAR))
    (face,) = find_faces(detector, tight)
    np.testing.assert_allclose(face.keypoints[:2], [(40 * 10, 28 * 10), (83 * 10, 31 * 10)], atol=8 * 10)


def test_a_tight_crop_is_found_by_framing_it(detector):
    import skimage.data

    tight = skimage.data.astronaut()[75:185, 165:285]  # the face fills the crop
    faces = find_faces(detector, tight)
    assert len(faces) == 1
    eyes = faces[0].keypoints[:2]
    np.testing.assert_allclose(eyes, [(205 - 165, 103 - 75), (248 - 165, 106 - 75)], atol=8)


def test_no_face_in_a_face_free_photo(detector):
    import skimage.data

    assert find_faces(detector, skimage.data.coffee()) == []
    assert find_faces(detector, np.zeros((200, 200, 3), np.uint8)) == []
