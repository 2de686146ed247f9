"""Fresh training scenes drawn before training instead of during it: a scene pool.

An example that draws a fresh scene (`rng.random() < fresh`, its generator seeded from
(seed, epoch, index)) costs the training step the CPU of the drawing when the step keeps
every core busy. `build_pool` draws every such scene of a run once, in the scene worker
processes with nothing else running, and stores it JPEG-encoded (as the stored scenes
are) in the dataset cache with the generator's state after the drawing; `ScenePool`
hands each back in its example, which then continues its own draws (zoom, colours) from
that state. So an example is the one the run would have drawn, its image through one
JPEG coding, and a later run with the same settings draws nothing.

Example:
    >>> folder = build_pool("scenes-pool", seed, epochs, count, 0.25, scenes)
    >>> pool = ScenePool(folder)
    >>> image, boxes, classes, state = pool.get(epoch, index)  # None: not pooled
"""

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dlkit import io


def example_draws(seed, epoch, index, fresh):
    """(the generator of example (epoch, index), whether it draws a fresh scene): the
    example's first draw decides, and the scene is drawn from the generator after it."""
    rng = np.random.default_rng([seed, int(epoch), int(index)])
    return rng, bool(fresh) and rng.random() < fresh


def fresh_draws(seed, epoch, count, fresh):
    """The indices of `epoch` whose example draws a fresh scene, and for each the
    generator after that decision (what the scene is drawn from)."""
    drawn = []
    for index in range(count):
        rng, is_fresh = example_draws(seed, epoch, index, fresh)
        if is_fresh:
            drawn.append((index, rng))
    return drawn


def build_pool(name, seed, epochs, count, fresh, draw, workers=2, progress=None):
    """`<cache>/datasets/<name>`: every fresh scene of `epochs` epochs of `count`
    examples, drawn once by `draw(rng) -> (uint8 RGB image, boxes, classes)` from
    `workers` threads (each call may hand its scene to a worker process)."""
    from dlkit.data.cache import build_once

    def build(folder):
        plan = [(epoch, fresh_draws(seed, epoch, count, fresh)) for epoch in range(epochs)]
        total, done = sum(len(drawn) for _, drawn in plan), 0
        with ThreadPoolExecutor(max(1, workers)) as threads:
            for epoch, drawn in plan:
                path = folder / f"epoch_{epoch:05d}.pkl"
                if path.exists():  # drawn before an interruption
                    done += len(drawn)
                    continue
                scenes = {}
                for (index, _), scene in zip(drawn, threads.map(lambda pair: _pooled(draw, pair[1]), drawn)):
                    scenes[index] = scene
                    done += 1
                    if progress and (done % 200 == 0 or done == total):
                        progress(done, total, "drawing fresh scenes")
                io.write_bytes(path, pickle.dumps(scenes, protocol=pickle.HIGHEST_PROTOCOL))
        return {"epochs": epochs, "count": count, "fresh": fresh, "seed": seed, "scenes": total}

    # An interrupted drawing keeps the epochs it finished (`name` holds the settings' digest).
    return build_once(name, build, resumable=True)


def _pooled(draw, rng):
    import cv2

    from dlkit.data.scenes import JPEG_QUALITY  # the stored scenes'

    image, boxes, classes = draw(rng)
    ok, encoded = cv2.imencode(
        ".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    assert ok, "OpenCV could not encode a scene"
    return encoded.tobytes(), np.asarray(boxes, np.float32), np.asarray(classes), rng.bit_generator.state


class ScenePool:
    """The scenes `build_pool` stored, read an epoch at a time (the last two kept)."""

    def __init__(self, folder):
        self.folder = folder
        self._epochs = {}
        self._lock = threading.Lock()  # tf.data's parallel map calls `get` from several threads

    def _epoch(self, epoch):
        with self._lock:
            if epoch not in self._epochs:
                path = self.folder / f"epoch_{epoch:05d}.pkl"
                if not path.exists():
                    self._epochs[epoch] = {}
                else:
                    with open(path, "rb") as file:
                        self._epochs[epoch] = pickle.load(file)
                for old in list(self._epochs)[:-2]:  # the two read last stay
                    del self._epochs[old]
            return self._epochs[epoch]

    def get(self, epoch, index):
        """(image, boxes, classes, generator state after the drawing) of the fresh scene of
        (epoch, index), or None where the pool has none (an epoch past the pool's)."""
        import cv2

        found = self._epoch(int(epoch)).get(int(index))
        if found is None:
            return None
        encoded, boxes, classes, state = found
        image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        return np.ascontiguousarray(image), boxes, classes, state
