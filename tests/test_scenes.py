"""Composited scenes carry exact instance and class masks that agree with their boxes."""

import numpy as np
import pytest
from PIL import Image

from dlkit.data.scenes import PillowRender, TrainingScenes, compose


def rendered(name, objects, backgrounds, size):
    """(objects, backgrounds, render) for compose in `name`'s way of drawing."""
    if name == "pillow":
        return objects, backgrounds, PillowRender
    from dlkit.data import render

    objects = [(render.prepare_cutout(image), label) for image, label in objects]
    return objects, [render.prepare_background(b, size) for b in backgrounds], render


@pytest.mark.parametrize("name", ["pillow", "opencv"])
def test_masks_agree_with_boxes_classes_and_pixels(name):
    objects = []
    for label, color in enumerate(((255, 0, 0), (0, 0, 255))):
        block = np.zeros((30, 50, 4), np.uint8)
        block[..., :3] = color
        block[..., 3] = 255
        objects.append((Image.fromarray(block, "RGBA"), label))
    objects, black, render = rendered(name, objects, [np.zeros((64, 64, 3), np.uint8)], 64)
    rng, seen = np.random.default_rng(0), 0
    for _ in range(30):
        scene = compose(black, objects, rng, 64, max_objects=4, render=render)
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


def test_opencv_draws_the_pillow_scenes():
    """Training scenes drawn with OpenCV are the scenes Pillow draws from the same seed:
    the same objects and classes; the same boxes but for the odd thin part that one
    resampling keeps above half opacity and the other not; the same masks but for edge
    pixels; the same image but for the sharpness of fine textures; no bias in the
    objects' size."""
    fast, slow = TrainingScenes(256, render="opencv"), TrainingScenes(256)
    close, boxes, pixels = 0, 0, np.zeros(2)
    for seed in range(30):
        a, b = fast.scene(np.random.default_rng(seed)), slow.scene(np.random.default_rng(seed))
        np.testing.assert_array_equal(a.classes, b.classes)
        close += int((np.abs(a.boxes - b.boxes).max(axis=1, initial=0) <= 2).sum())
        boxes += len(b.boxes)
        assert (a.class_mask == b.class_mask).mean() > 0.98, seed
        # Pillow's shrinks blur fine textures (grass) that bilinear sampling keeps: the
        # images are compared in 4 x 4 blocks.
        blocks = [x.astype(float).reshape(64, 4, 64, 4, 3).mean(axis=(1, 3)) for x in (a.image, b.image)]
        assert np.abs(blocks[0] - blocks[1]).mean() < 4, seed
        pixels += (a.class_mask > 0).sum(), (b.class_mask > 0).sum()
    assert boxes > 60 and close >= 0.95 * boxes
    assert abs(pixels[0] / pixels[1] - 1) < 0.01


def test_opencv_keeps_a_cutouts_edges_clean():
    """Cut-outs are warped with premultiplied alpha: a red disc on white stays red at its
    edge, where a straight-alpha warp blends in the transparent pixels' black."""
    from dlkit.data import render

    yy, xx = np.mgrid[:80, :80]
    disc = np.zeros((80, 80, 4), np.uint8)
    disc[..., 0] = 255
    disc[..., 3] = np.where((yy - 39.5) ** 2 + (xx - 39.5) ** 2 < 36**2, 255, 0)
    obj = render.prepare_cutout(Image.fromarray(disc, "RGBA"))
    for seed in range(5):
        canvas = np.full((64, 64, 3), 255, np.uint8)
        ids = np.zeros((64, 64), np.int32)
        count, _ = render.place(canvas, ids, obj, 1, np.random.default_rng(seed), (0.5, 0.9), varied=False)
        image = render.image(canvas)
        assert 0 < np.count_nonzero(ids) <= count
        assert image[..., 0].min() >= 254  # red over white: never darker at the edge
        assert image[ids == 1][:, 1].max() < 130  # the disc itself is red


def test_varying_a_shrunk_object_matches_varying_it_at_full_size_then_shrinking():
    """`vary` shrinks first, then stretches and rotates: the object it returns has the
    size and shape of the one the same draws give at full size, shrunk after (what
    the training scenes pasted before), within the rounding of a small image."""
    from dlkit.data.scenes import vary

    block = np.zeros((120, 200, 4), np.uint8)
    block[20:100, 30:170] = (200, 90, 40, 255)  # an opaque rectangle with a margin
    obj = Image.fromarray(block, "RGBA")
    for seed in range(12):
        for longest in (40, 90, 150):
            varied = vary(obj, np.random.default_rng(seed), longest, color=0.0)
            rng = np.random.default_rng(seed)  # the same draws, at full size
            aspect = rng.uniform(0.75, 1.25)
            big = obj.resize((int(200 * aspect), 120), Image.BILINEAR)
            if rng.random() < 0.5:
                big = big.rotate(rng.uniform(-15, 15), Image.BILINEAR, expand=True)
            factor = longest / max(big.size)
            shrunk = big.resize((round(big.size[0] * factor), round(big.size[1] * factor)), Image.LANCZOS)
            assert abs(varied.size[0] - shrunk.size[0]) <= 2 and abs(varied.size[1] - shrunk.size[1]) <= 2
            width, height = min(varied.size[0], shrunk.size[0]), min(varied.size[1], shrunk.size[1])
            a = np.asarray(varied)[:height, :width, 3] > 127
            b = np.asarray(shrunk)[:height, :width, 3] > 127
            # The same opaque area, in the same place (a pixel's shift costs a small
            # object more of its overlap).
            assert abs(int(a.sum()) - int(b.sum())) < 0.08 * b.sum(), (seed, longest)
            assert (a & b).sum() / (a | b).sum() > 0.8, (seed, longest)


def test_a_varied_objects_colour_follows_its_saturation_contrast_and_brightness():
    """Inside a plain object, `vary`'s colour is saturation about the pixel's grey, then
    contrast about the opaque mean and brightness as a factor on that mean."""
    from dlkit.data.scenes import vary

    block = np.zeros((60, 60, 4), np.uint8)
    block[...] = (200, 90, 40, 255)
    obj = Image.fromarray(block, "RGBA")
    for seed in range(10):
        varied = np.asarray(vary(obj, np.random.default_rng(seed), 60, color=0.3)).astype(float)
        rng = np.random.default_rng(seed)  # the same draws
        rng.uniform()
        if rng.random() < 0.5:
            rng.uniform()
        saturation, contrast, brightness = rng.uniform(0.7, 1.3, 3)
        x = np.array([200.0, 90.0, 40.0])
        y = x.mean() + (x - x.mean()) * saturation
        expected = np.clip((y - x.mean()) * contrast + x.mean() * brightness, 0, 255)
        centre = varied[varied.shape[0] // 2, varied.shape[1] // 2, :3]
        np.testing.assert_allclose(centre, expected, atol=1.01)


def test_stored_scenes_are_composited_again_with_their_distractors(tmp_path):
    """Written scenes composited again: masks exactly, images up to JPEG, each with what
    the files do not keep (its distractors' pixels); a mask that differs stops it."""
    import pytest

    from dlkit.data.scenes import build_segmentation, stored_scenes_again
    from dlkit.errors import DlkitError

    build_segmentation(tmp_path, image_size=64, counts={"train": 3, "val": 4, "test": 4})
    names = ["val_00001", "test_00000", "test_00003"]
    pairs = [
        (
            tmp_path / "images" / n.split("_")[0] / f"{n}.jpg",
            tmp_path / "masks" / n.split("_")[0] / f"{n}.png",
        )
        for n in names
    ]
    again = stored_scenes_again(pairs, image_size=64)
    assert sorted(again) == sorted(names)
    for image_path, mask_path in pairs:
        scene = again[image_path.stem]
        np.testing.assert_array_equal(np.asarray(Image.open(mask_path)), scene.class_mask)
        image = np.asarray(Image.open(image_path)).astype(float)
        assert np.abs(image - scene.image).mean() < 8  # JPEG at quality 92
        assert not scene.distractors.any()  # version 1 pastes none
    changed = np.asarray(Image.open(pairs[0][1])).copy()
    changed[0, 0] = 5 if changed[0, 0] != 5 else 4
    Image.fromarray(changed).save(pairs[0][1])
    with pytest.raises(DlkitError, match="val_00001.png"):
        stored_scenes_again(pairs, image_size=64)


def test_held_out_scenes_are_drawn_again_by_either_render(tmp_path):
    """The stored held-out scenes drawn again: by Pillow, the files' scenes (masks exactly,
    images up to JPEG); by OpenCV, the same draws (classes, nearly the same boxes and
    masks) resampled, so a model can be scored on one held-out set drawn both ways."""
    from dlkit.data.scenes import build_segmentation, scenes_drawn_again

    build_segmentation(tmp_path, image_size=64, counts={"train": 2, "val": 5, "test": 2}, version=2)
    pillow = dict(scenes_drawn_again("val", 5, image_size=64, version=2))
    opencv = dict(scenes_drawn_again("val", 5, image_size=64, version=2, render="opencv"))
    assert sorted(pillow) == sorted(opencv) == [f"val_{i:05d}" for i in range(5)]
    for name, scene in pillow.items():
        np.testing.assert_array_equal(
            np.asarray(Image.open(tmp_path / "masks" / "val" / f"{name}.png")), scene.class_mask
        )
        image = np.asarray(Image.open(tmp_path / "images" / "val" / f"{name}.jpg")).astype(float)
        assert np.abs(image - scene.image).mean() < 8  # JPEG at quality 92
        other = opencv[name]
        np.testing.assert_array_equal(other.classes, scene.classes)
        assert (other.class_mask == scene.class_mask).mean() > 0.95, name
        if len(scene.boxes):
            assert np.abs(other.boxes - scene.boxes).max() <= 3, name
        assert not np.array_equal(other.image, scene.image)  # another resampling
    with pytest.raises(ValueError, match="render"):
        next(scenes_drawn_again("val", 1, render="cairo"))


@pytest.mark.parametrize("render", TrainingScenes.RENDERS)
def test_worker_processes_draw_the_scenes_the_calling_thread_draws(render):
    """`workers`: a seed gives the same scene from a worker process as in the caller, and
    the caller's generator comes back advanced as far, so later draws agree too; what a
    worker is sent holds the settings, not the loaded images."""
    import pickle

    here = TrainingScenes(64, version=2, render=render)
    there = TrainingScenes(64, version=2, render=render, workers=2)
    try:
        for seed in range(6):
            a, b = np.random.default_rng(seed), np.random.default_rng(seed)
            for x, y in zip(here(a), there(b)):
                np.testing.assert_array_equal(x, y)
            assert a.random() == b.random()
            x, y = here.scene(a), there.scene(b)
            for field in ("image", "boxes", "classes", "instances", "class_mask", "distractors"):
                np.testing.assert_array_equal(getattr(x, field), getattr(y, field))
            assert a.integers(1 << 30) == b.integers(1 << 30)
        sent = pickle.loads(pickle.dumps(here))
        assert sent._objects is None and sent.workers == 0 and len(pickle.dumps(here)) < 2000
        assert here._objects is not None  # the caller keeps what it loaded
    finally:
        there.close()
    assert there._pool is None


def test_worker_processes_end_with_a_killed_training_process(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "draw.py"
    script.write_text(
        "import time, numpy as np\n"
        "from dlkit.data.scenes import TrainingScenes\n"
        "if __name__ == '__main__':\n"
        "    scenes = TrainingScenes(64, workers=1)\n"
        "    scenes(np.random.default_rng(0))\n"
        "    print(*scenes._pool._processes, flush=True)\n"
        "    time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert len(workers) == 1

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return not open(f"/proc/{pid}/stat").read().split()[2] == "Z"

    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


def test_a_scene_pool_interrupted_keeps_the_epochs_it_drew(tmp_path, monkeypatch):
    """Ctrl-C while the pool is drawn loses the epoch under way only: the next build
    draws the epochs left, and every scene equals an uninterrupted build's."""
    from dlkit.data.pool import ScenePool, build_pool, fresh_draws

    drawn = []

    def draw(rng, stop_at=None):
        if len(drawn) == stop_at:
            raise KeyboardInterrupt
        drawn.append(1)
        image = np.full((16, 16, 3), rng.integers(0, 256, 3), np.uint8)
        return image, [[0.1, 0.1, 0.5, 0.5]], [int(rng.integers(5))]

    seed, epochs, count, fresh = 3, 3, 12, 0.5
    per_epoch = [len(fresh_draws(seed, epoch, count, fresh)) for epoch in range(epochs)]
    assert all(per_epoch)
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "whole"))
    whole = ScenePool(build_pool("pool", seed, epochs, count, fresh, draw, workers=1))
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cut"))
    drawn.clear()
    with pytest.raises(KeyboardInterrupt):  # in the second epoch
        build_pool("pool", seed, epochs, count, fresh, lambda rng: draw(rng, per_epoch[0] + 1), workers=1)
    drawn.clear()
    again = ScenePool(build_pool("pool", seed, epochs, count, fresh, draw, workers=1))
    assert len(drawn) == sum(per_epoch[1:])
    for epoch in range(epochs):
        for index in range(count):
            a, b = whole.get(epoch, index), again.get(epoch, index)
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a[0], b[0])
                np.testing.assert_array_equal(a[2], b[2])
                assert a[3] == b[3]
