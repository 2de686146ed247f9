"""Scenes for detection and segmentation: real Tux Paint photo cut-outs pasted onto real
background photos.

Each scene holds 1-6 objects at random scale and position, overlapping each other and
partly cut by the image border. The cut-outs' alpha gives every pixel's object, so a
scene comes with exact instance and class masks, and an object's box is the extent of
its *visible* pixels (after later objects covered it); objects left less than 35% visible
are removed from the boxes and the instance mask (their pixels keep their class in the
class mask: they are still there to see). Validation and test scenes use cut-outs that no
training scene uses. Written in the YOLO layout (`images/<split>`, `labels/<split>`,
`data.yaml`), so the default data goes through the same reader as users' data.

`TrainingScenes` composites new training scenes on the fly (a new set every epoch), with
classes drawn evenly and each object's shape and colour varied: ~120 training cut-outs
then look like many more objects, while validation and test stay the fixed files.
"""

import threading
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dlkit.data import draws
from dlkit.data.tuxpaint import (
    PHOTO_CLASSES,
    find_cutouts,
    find_distractors,
    load_backgrounds,
    load_cutout,
    random_background,
    split_cutouts,
)
from dlkit.errors import DlkitError

MIN_VISIBLE = 0.35
OPAQUE = [0] * 128 + [255] * 128  # a lookup table for Image.point: alpha > 127


def vary(obj, rng, longest, stretch=draws.STRETCH, angle=draws.TURN, color=draws.RECOLOUR):
    """One object's appearance varied (RGBA in, RGBA out), returned with its longest side
    about `longest` pixels: aspect ratio by up to 1 +- `stretch`, rotation by up to `angle`
    degrees (half the time), brightness, contrast and saturation by up to 1 +- `color`,
    and a slight blur a fifth of the time.

    The object is shrunk to its final size first (the size its rotated, stretched shape
    will have) and varied there: the same object as varying it at full size and shrinking
    it after, for a fraction of the pixels."""
    from PIL import ImageFilter, ImageStat

    aspect, turn, factor, colour, blur = draws.variation(rng, *obj.size, longest, stretch, angle, color)
    width, height = obj.size[0] * aspect, obj.size[1]
    # Bilinear (antialiased, like every Pillow filter when shrinking) costs half of Lanczos;
    # this is augmentation of already shrunk cut-outs, where the difference is invisible.
    obj = obj.resize((max(4, round(width * factor)), max(4, round(height * factor))), Image.BILINEAR)
    if turn:
        obj = obj.rotate(turn, Image.BILINEAR, expand=True)
    saturation, contrast, brightness = colour
    # Saturation (a blend with each pixel's grey) keeps the mean, so contrast about the
    # opaque pixels' mean and brightness fold into one affine map of rgb: Pillow's matrix
    # conversion applies it (rounded, clipped) in one pass.
    alpha = obj.getchannel("A")
    rgb = obj.convert("RGB")
    stats = ImageStat.Stat(rgb, alpha.point(OPAQUE))
    mean = sum(stats.mean) / 3 if stats.count[0] else 127.0
    keep, grey = contrast * saturation, contrast * (1 - saturation) / 3
    shift = mean * (brightness - contrast)
    obj = rgb.convert(
        "RGB",
        (keep + grey, grey, grey, shift, grey, keep + grey, grey, shift, grey, grey, keep + grey, shift),
    )
    obj.putalpha(alpha)
    if blur:
        obj = obj.filter(ImageFilter.GaussianBlur(blur))
    return obj


def place(canvas, ids, obj, index, rng, scale_range, varied=False):
    """Pastes `obj` (RGBA) at a random scale/position, possibly partly outside the canvas;
    marks its opaque pixels with `index` in `ids`. Returns its full (unclipped) pixel count
    and the window of the canvas it covers, as slices (rows, columns). `varied` changes
    its shape and colour first (`vary`)."""
    size = canvas.size[0]
    scale = rng.uniform(*scale_range)
    if varied:
        obj = vary(obj, rng, scale * size)  # already at its size
        width, height = max(6, obj.size[0]), max(6, obj.size[1])
    else:
        factor = scale * size / max(obj.size)
        width, height = max(6, int(obj.size[0] * factor)), max(6, int(obj.size[1] * factor))
    if (width, height) != obj.size:
        obj = obj.resize((width, height), Image.LANCZOS)
    mirror, left, top = draws.position(rng, width, height, size)
    if mirror:
        obj = obj.transpose(Image.FLIP_LEFT_RIGHT)
    canvas.alpha_composite(obj, (max(left, 0), max(top, 0)), (max(-left, 0), max(-top, 0)))
    alpha = np.asarray(obj.getchannel("A")) > 127
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + width, size), min(top + height, size)
    ids[y0:y1, x0:x1][alpha[y0 - top : y1 - top, x0 - left : x1 - left]] = index
    return int(alpha.sum()), (slice(y0, max(y0, y1)), slice(x0, max(x0, x1)))


class PillowRender:
    """How `compose` draws: Pillow images, antialiased shrinks (the stored scenes).
    `dlkit.data.render` draws the same scenes with OpenCV, for training."""

    background = staticmethod(random_background)
    place = staticmethod(place)

    @staticmethod
    def image(canvas):
        return np.asarray(canvas.convert("RGB"))


@dataclass
class Scene:
    """One composited scene.

    Attributes:
        image: (size, size, 3) uint8 RGB.
        boxes: (n, 4) float32 pixel xyxy of the labelled objects.
        classes: (n,) int64 class ids of the labelled objects.
        instances: (size, size) int32: 0 background, k for the pixels of object k - 1
            (the k-th row of `boxes`).
        class_mask: (size, size) int32: 0 background, c + 1 for the pixels of class c.
        distractors: (size, size) bool: the visible pixels of the unlabelled distractor
            objects (background in the masks; the written files do not keep them).
    """

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    instances: np.ndarray
    class_mask: np.ndarray
    distractors: np.ndarray = None

    def __iter__(self):
        # (image, boxes, classes), as the detection code unpacks a scene.
        return iter((self.image, self.boxes, self.classes))


def compose(
    backgrounds,
    objects,
    rng,
    size,
    max_objects=6,
    scale_range=(0.18, 0.6),
    balanced=False,
    varied=False,
    distractors=None,
    max_distractors=2,
    render=PillowRender,
):
    """One Scene (image, boxes, classes, instance and class masks).

    `objects` is a list of (RGBA image, class id). `balanced` draws each object's class
    evenly, then a cut-out of it (instead of a cut-out evenly); `varied`: see `vary`.
    `distractors`, a list of RGBA images: 0 to `max_distractors` of them are pasted too,
    in front of or behind the objects, unlabelled: no box, background in the masks.
    `render` draws the pixels (Pillow's images, or `dlkit.data.render`'s prepared ones).
    """
    canvas = render.background(backgrounds, rng, size)
    ids = np.zeros((size, size), np.int32)
    count = int(rng.integers(1, max_objects + 1))
    if balanced:
        by_class = {}
        for item in objects:
            by_class.setdefault(item[1], []).append(item)
        groups = [by_class[c] for c in sorted(by_class)]
        picks = [
            g[int(rng.integers(len(g)))]
            for g in (groups[int(rng.integers(len(groups)))] for _ in range(count))
        ]
    else:
        picks = [objects[int(rng.integers(len(objects)))] for _ in range(count)]
    if distractors:
        others = int(rng.integers(0, max_distractors + 1))
        picks += [(distractors[int(rng.integers(len(distractors)))], None) for _ in range(others)]
        picks = [picks[k] for k in rng.permutation(len(picks))]  # stacking order
    placed = [
        render.place(canvas, ids, image, k + 1, rng, scale_range, varied)
        for k, (image, _) in enumerate(picks)
    ]
    boxes, classes = [], []
    instances = np.zeros_like(ids)
    class_mask = np.zeros_like(ids)
    others = np.zeros(ids.shape, bool)
    for k, ((_, label), (total, (rows, columns))) in enumerate(zip(picks, placed)):
        visible = ids[rows, columns] == k + 1  # an object's pixels lie in its window
        if label is None:  # a distractor
            others[rows, columns] |= visible
            continue
        np.copyto(class_mask[rows, columns], label + 1, where=visible)
        count = np.count_nonzero(visible)
        if count < MIN_VISIBLE * total or count == 0:
            continue
        xs = np.flatnonzero(visible.any(axis=0)) + columns.start
        ys = np.flatnonzero(visible.any(axis=1)) + rows.start
        boxes.append([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1])
        classes.append(label)
        np.copyto(instances[rows, columns], len(boxes), where=visible)
    return Scene(
        render.image(canvas),
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(classes, np.int64),
        instances,
        class_mask,
        others,
    )


JPEG_QUALITY = 92  # of the written scenes' images
SPLITS = ("train", "val", "test")  # build_scenes' order: each split's scenes draw from its own seed


def _scene_sources(version):
    """(class names, cut-outs per split, backgrounds, distractor cut-outs per split or None)."""
    cutouts = find_cutouts(version=version)
    others = split_cutouts({"other": find_distractors()}) if version == 2 else None
    return sorted(cutouts), split_cutouts(cutouts), load_backgrounds(version), others


RENDERS = ("pillow", "opencv")


def _check_render(render):
    if render not in RENDERS:
        raise ValueError(f"render must be one of {RENDERS}, got {render!r}")


def _drawing(render, image_size, load):
    """(a cut-out prepared from its path, a background prepared from its RGB array, what
    `compose` draws with) for `render`: Pillow's images as `load` gives them, or
    `dlkit.data.render`'s pyramids of them."""
    _check_render(render)
    if render == "pillow":
        return load, np.asarray, PillowRender
    from dlkit.data import render as drawer

    def prepare(path):
        return drawer.prepare_cutout(load(path))

    def prepare_background(image):
        return drawer.prepare_background(image, image_size)

    return prepare, prepare_background, drawer


def _split_scenes(sources, split, number, image_size, seed, version, render="pillow"):
    """(name, Scene) of one split's `number` scenes, as `build_scenes` composites them;
    with `render="opencv"` the same draws resampled by `dlkit.data.render`."""
    labels, splits, backgrounds, others = sources
    prepare, prepare_background, drawer = _drawing(render, image_size, load_cutout)
    scene_backgrounds = [prepare_background(b) for b in (backgrounds if version == 1 else backgrounds[split])]
    objects = [(prepare(c.path), labels.index(c.label)) for c in splits[split]]
    extra = {}
    if others is not None:
        extra["distractors"] = [prepare(c.path) for c in others[split]]
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    for index in range(number):
        yield (
            f"{split}_{index:05d}",
            compose(scene_backgrounds, objects, rng, image_size, render=drawer, **extra),
        )


def scenes_drawn_again(split, number, image_size=256, seed=0, version=1, render="pillow"):
    """(file stem, Scene) of the first `number` scenes of a stored split, composited again
    by `render`: with "pillow" as they were before their JPEG encoding; with "opencv" the
    same draws (cut-outs, classes, places, sizes, stacking) resampled by OpenCV
    (`dlkit.data.render`, what `TrainingScenes(render="opencv")` trains on), with boxes and
    masks of their own. A held-out set drawn both ways shows what the drawing alone does
    to a model."""
    _check_render(render)  # before the sources load
    yield from _split_scenes(_scene_sources(version), split, number, image_size, seed, version, render)


def stored_scenes_again(pairs, image_size=256, seed=0, version=1):
    """{file stem: Scene} for the written scenes in `pairs` ((image path, mask path), names
    as `build_scenes` gives them), composited again with what the files do not keep (each
    Scene's `distractors`). Each class mask must equal its stored PNG: a DlkitError says
    which scene differs (built with other settings, or by other code)."""
    from dlkit.data.masks import read_mask
    from dlkit.errors import DlkitError

    stored = {Path(image).stem: mask for image, mask in pairs}
    numbers = {}
    for stem in stored:
        split, _, index = stem.rpartition("_")
        numbers[split] = max(numbers.get(split, 0), int(index) + 1)
    sources = _scene_sources(version)
    found = {}
    for split, number in numbers.items():
        for name, scene in _split_scenes(sources, split, number, image_size, seed, version):
            if name not in stored:
                continue
            if not np.array_equal(scene.class_mask, read_mask(stored[name])):
                raise DlkitError(f"{stored[name]}: the scene composited again has another mask")
            found[name] = scene
    return found


def build_scenes(out_dir, write, image_size=256, counts=None, seed=0, progress=None, version=1):
    """Composites the scenes of every split and hands each to `write(out_dir, split, name,
    scene)`; returns the class names and counts. Detection and segmentation write the same
    scenes (same seed, same cut-outs per split), each in its own format. `version`: the
    image data's (`dlkit.data.tuxpaint`); 2 adds distractors and splits the backgrounds."""
    counts = counts or {"train": 3000, "val": 300, "test": 300}
    out_dir = Path(out_dir)
    sources = _scene_sources(version)
    total, done = sum(counts.values()), 0
    for split, number in counts.items():
        for name, scene in _split_scenes(sources, split, number, image_size, seed, version):
            write(out_dir, split, name, scene)
            done += 1
            if progress and (done % 50 == 0 or done == total):
                progress(done, total)
    return {"labels": sources[0], **counts}


def write_yolo_scene(out_dir, split, name, scene):
    """`images/<split>/<name>.jpg` and its YOLO label file `labels/<split>/<name>.txt`."""
    size = scene.image.shape[0]
    images, label_dir = out_dir / "images" / split, out_dir / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene.image).save(images / f"{name}.jpg", quality=JPEG_QUALITY)
    rows = []
    for (x0, y0, x1, y1), cls in zip(scene.boxes / size, scene.classes):
        rows.append(f"{cls} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}")
    (label_dir / f"{name}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))


def write_mask_scene(out_dir, split, name, scene):
    """`images/<split>/<name>.jpg` and its class mask `masks/<split>/<name>.png` (0 =
    background, c + 1 = class c)."""
    images, masks = out_dir / "images" / split, out_dir / "masks" / split
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene.image).save(images / f"{name}.jpg", quality=JPEG_QUALITY)
    Image.fromarray(scene.class_mask.astype(np.uint8), "L").save(masks / f"{name}.png")


def build_detection(out_dir, image_size=256, counts=None, seed=0, progress=None, version=1):
    """Writes the scenes in the YOLO layout under `out_dir`; returns counts per split."""
    summary = build_scenes(out_dir, write_yolo_scene, image_size, counts, seed, progress, version)
    lines = ["path: .", *(f"{split}: images/{split}" for split in summary if split != "labels"), "names:"]
    lines += [f"  {i}: {name}" for i, name in enumerate(summary["labels"])]
    (Path(out_dir) / "data.yaml").write_text("\n".join(lines) + "\n")
    return summary


def build_segmentation(out_dir, image_size=256, counts=None, seed=0, progress=None, version=1):
    """Writes the same scenes as images and class masks (`labels.txt`: background, then
    the classes) under `out_dir`; returns counts per split."""
    summary = build_scenes(out_dir, write_mask_scene, image_size, counts, seed, progress, version)
    (Path(out_dir) / "labels.txt").write_text("\n".join(["background", *summary["labels"]]) + "\n")
    return summary


class TrainingScenes:
    """Fresh training scenes of the offline default data, composited on demand.

    Calling it with a numpy Generator returns (RGB uint8 image, boxes (n, 4) normalised
    xyxy, class ids (n,)); `scene(rng)` the whole Scene with its masks. Drawn like the
    stored scenes, from the training cut-outs only, with classes drawn evenly (the rarest
    class, fish, has 7 training cut-outs against 45 mammals) and each object varied in
    shape and colour. Drawn with Pillow, as the stored scenes, or with `render="opencv"`
    through `dlkit.data.render`: the same draws for about a third of Pillow's CPU, but
    sharper fine textures than the stored scenes have. Cut-outs and backgrounds are loaded on
    first use, cut-outs shrunk once to the largest size a scene uses.

    With `workers`, scenes are drawn in that many worker processes (started on first use,
    each loading the cut-outs once) instead of the calling thread: a scene is mostly
    Python between image calls, and in a training process's `tf.data` threads it holds
    the interpreter lock the training step waits for. The caller's generator is handed to
    the worker and its state comes back advanced, so a seed gives the same scene either
    way, and the draws that follow continue the same stream.
    """

    RENDERS = RENDERS

    def __init__(self, image_size=256, balanced=True, varied=True, version=1, render="pillow", workers=0):
        _check_render(render)  # here, not on first use: the images load lazily
        if workers < 0:
            raise ValueError(f"workers must be 0 (draw in the calling thread) or more, got {workers}")
        self.image_size, self.balanced, self.varied = image_size, balanced, varied
        self.version, self.render, self.workers = version, render, workers
        self.labels = sorted(PHOTO_CLASSES)  # the stored scenes' class ids; no disk access
        self._objects = self._backgrounds = self._pool = None
        self._extra = {}
        self._lock = threading.Lock()  # tf.data's parallel map calls it from several threads

    def __getstate__(self):
        # What a worker process gets: the settings; it loads the images itself.
        state = dict(self.__dict__, _objects=None, _backgrounds=None, _extra={}, _pool=None, workers=0)
        del state["_lock"]
        state.pop("_render", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def close(self):
        """Stops the worker processes, if any were started (a later scene starts them again)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _in_worker(self, rng, whole):
        with self._lock:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                # spawn, not fork: the caller is usually a process running TensorFlow's threads
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self,),
                )
            pool = self._pool
        try:
            result, rng.bit_generator.state = pool.submit(
                _draw_in_worker, rng.bit_generator.state, whole
            ).result()
        except BrokenProcessPool as error:
            raise DlkitError(
                "a scene worker process stopped; a script that trains must start under "
                "`if __name__ == '__main__':` (worker processes import it again), or set scene_workers=0"
            ) from error
        return result

    def _shrunk(self, path):
        image = load_cutout(path)
        factor = 0.7 * self.image_size / max(image.size)  # pasted at most 0.6 x 1.25
        if factor < 1:
            image = image.resize(
                (max(1, round(image.size[0] * factor)), max(1, round(image.size[1] * factor))), Image.LANCZOS
            )
        return image

    def _load(self):
        prepare, prepare_background, self._render = _drawing(self.render, self.image_size, self._shrunk)
        splits = split_cutouts(find_cutouts(version=self.version))
        objects = [(prepare(c.path), self.labels.index(c.label)) for c in splits["train"]]
        backgrounds = load_backgrounds(self.version)
        if self.version == 2:
            others = split_cutouts({"other": find_distractors()})["train"]
            self._extra = {"distractors": [prepare(c.path) for c in others]}
            backgrounds = backgrounds["train"]
        self._objects, self._backgrounds = objects, [prepare_background(b) for b in backgrounds]

    def scene(self, rng):
        """A fresh Scene (pixel boxes, instance and class masks)."""
        if self.workers:
            return self._in_worker(rng, whole=True)
        with self._lock:
            if self._objects is None:
                self._load()
        return compose(
            self._backgrounds,
            self._objects,
            rng,
            self.image_size,
            balanced=self.balanced,
            varied=self.varied,
            render=self._render,
            **self._extra,
        )

    def __call__(self, rng):
        """(image, boxes normalised xyxy, class ids) of a fresh scene, for detection."""
        image, boxes, classes = self._in_worker(rng, whole=False) if self.workers else self.scene(rng)
        return image, boxes / self.image_size, classes


_worker_scenes = None  # a worker process's TrainingScenes


def _start_worker(scenes):
    global _worker_scenes
    _worker_scenes = scenes
    # A worker waits on a queue it also holds the writing end of: without this it would
    # outlive a training process that is killed.
    threading.Thread(target=_exit_with_parent, daemon=True).start()


def _exit_with_parent():
    import multiprocessing
    import os

    multiprocessing.parent_process().join()
    os._exit(0)


def _draw_in_worker(state, whole):
    """(the scene, or only its image, boxes and classes; the generator's state after it)."""
    rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
    rng.bit_generator.state = state
    scene = _worker_scenes.scene(rng)
    return (scene if whole else tuple(scene)), rng.bit_generator.state
