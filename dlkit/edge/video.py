"""Video files frame by frame, and annotated frames written back as a video, with OpenCV
(`pip install "dlkit[video]"`: opencv-python-headless, which bundles FFmpeg).

Frames come as RGB uint8 arrays, the layout `dlkit.edge.image.load_image` gives, so
every image app predicts on them as on photos. Only what a video needs is imported, and
only when a video is given: the image path stays OpenCV-free.
"""

import contextlib
import os
from pathlib import Path

import numpy as np

from dlkit.errors import InvalidInputError

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv"}
DEFAULT_FPS = 30.0  # when a container does not say


def is_video(item):
    return isinstance(item, (str, Path)) and Path(item).suffix.lower() in VIDEO_SUFFIXES


def _cv2(path):
    """OpenCV, its FFmpeg console lines (`moov atom not found`) and its own warnings off
    unless `--verbose`: a file it cannot read is this module's one-line error instead."""
    from dlkit.quiet import verbose

    if not verbose():  # read when OpenCV is first imported
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    try:
        import cv2
    except ImportError:
        raise InvalidInputError(
            f'{path}: reading video needs OpenCV: pip install "dlkit[video]" (opencv-python-headless)'
        ) from None
    return cv2


class VideoReader:
    """A video file's frames in order: `fps`, `frames` (the container's count, which may
    be approximate or 0), and iteration over (index, seconds, RGB uint8 frame).

    Raises:
        InvalidInputError: a missing, empty or undecodable file (the message names it).
    """

    def __init__(self, path):
        self.path = Path(path)
        cv2 = self.cv2 = _cv2(self.path)
        if not self.path.is_file():
            raise InvalidInputError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise InvalidInputError(f"{self.path}: empty file")
        capture = cv2.VideoCapture(str(self.path))
        ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            capture.release()
            raise InvalidInputError(f"{self.path}: not a video OpenCV can decode (no frame read)")
        self.capture, self.first = capture, first
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if np.isfinite(fps) and fps > 0 else DEFAULT_FPS
        self.frames = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)

    def __iter__(self):
        index, frame = 0, self.first
        try:
            while frame is not None:
                yield index, index / self.fps, self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2RGB)
                index += 1
                ok, frame = self.capture.read()
                frame = frame if ok else None
        finally:
            self.close()

    def close(self):
        self.capture.release()


@contextlib.contextmanager
def video_writer(path, fps):
    """Yields write(image) for RGB frames (PIL images or uint8 arrays, all one size: the
    first sets it) into an MP4 at `path`. MPEG-4 takes even sides only (its encoder
    would crop an odd one), so an odd side is padded by repeating its last row or column:
    every pixel drawn is kept. The file is written under a temporary name and renamed
    when the block ends without an error, so a video cut short never lands; a block that
    wrote no frame leaves no file."""
    path = Path(path)
    cv2 = _cv2(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.mp4")
    writer = None

    def write(image):
        nonlocal writer
        frame = cv2.cvtColor(np.asarray(image, dtype=np.uint8), cv2.COLOR_RGB2BGR)
        odd = (frame.shape[0] % 2, frame.shape[1] % 2)
        if any(odd):
            frame = np.pad(frame, ((0, odd[0]), (0, odd[1]), (0, 0)), mode="edge")
        if writer is None:
            height, width = frame.shape[:2]
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            if not writer.isOpened():
                raise InvalidInputError(f"{path}: OpenCV cannot write an MP4 video there")
        writer.write(frame)

    try:
        yield write
        if writer is not None:
            writer.release()
            os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
