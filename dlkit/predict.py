"""One predict pipeline for every app: source -> read -> preprocess -> run -> postprocess ->
finish (render, write).

A `.tflite` model runs on the edge path (no TensorFlow); a `.keras` model through the
app's Keras runner. Inputs are expanded by the app's input kind: image and audio folders
to their files, text from arguments and `--file` lines, pairs two arguments at a time.
An input may become several model windows (a long recording, a tiled image) that the
app combines into one result. A video (image apps) becomes one result per frame, and its
annotated frames one video (`dlkit.edge.video`). Bad inputs are reported and skipped,
never fatal to the rest of a batch.
"""

import contextlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from dlkit.console import log
from dlkit.edge.bundle import ModelBundle
from dlkit.errors import DlkitError, InvalidInputError
from dlkit.paths import default_model, next_numbered_dir

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def suffixes_of(kind):
    """File suffixes that a folder is expanded to, for an input kind."""
    if kind == "image":
        from dlkit.edge.image import IMAGE_SUFFIXES
        from dlkit.edge.video import VIDEO_SUFFIXES

        return IMAGE_SUFFIXES | VIDEO_SUFFIXES
    if kind == "audio":
        return AUDIO_SUFFIXES
    return ()


def expand_files(inputs, suffixes):
    """Files given directly, plus the files with a known suffix inside given folders, in
    the order given; an input that is not a path (an array) stays where it is.

    A folder without any is skipped with a line on stderr when there are other inputs,
    and an error when there are none.
    """
    files, empty = [], []
    for item in inputs:
        if not isinstance(item, (str, Path)):
            files.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            files += found
            if not found:
                empty.append(path)
        else:
            files.append(path)
    for path in empty:
        message = f"{path}: no input files in this folder ({', '.join(sorted(suffixes))})"
        if not files:
            raise DlkitError(message)
        log(f"skipped: {message}")
    return files


def read_lines(path):
    """Text inputs from a file, one per line; blank lines are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{path}: a folder, not a text file of one input per line") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not UTF-8 text") from None
    return [line for line in text.splitlines() if line.strip()]


def readable(text):
    """`text` with undecodable bytes shown as U+FFFD: Python hands command-line bytes that
    are not UTF-8 over as lone surrogates, which no output can encode."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def expand_sources(kind, inputs, file=None):
    """The list of items to predict on, for an app's input kind.

    Args:
        kind: str. "image", "audio", "text" or "pair".
        inputs: paths, folders or strings (numpy arrays pass through for image and audio).
        file: str or None. A text file with one input per line (text kind only).
    """
    inputs = list(inputs)
    if file is not None:
        if kind != "text":
            raise DlkitError(f"--file reads text inputs; this app reads {kind} inputs")
        lines = read_lines(file)
        if not lines and not inputs:
            raise InvalidInputError(f"{file}: no text in this file (one input per line)")
        inputs += lines
    if kind == "text":
        media = set(suffixes_of("image")) | set(AUDIO_SUFFIXES)
        for item in inputs:
            path = Path(str(item))
            if path.suffix.lower() in media and path.is_file():
                raise DlkitError(
                    f"{path}: this app reads text, not {path.suffix} files; give texts or --file FILE"
                )
        items = [readable(str(i)) for i in inputs]
    elif kind == "pair":
        if len(inputs) % 2:
            raise DlkitError(f"inputs come in pairs; got {len(inputs)} (an odd number)")
        items = [(inputs[i], inputs[i + 1]) for i in range(0, len(inputs), 2)]
    else:
        items = expand_files(inputs, suffixes_of(kind))
    if not items:
        if kind == "text":
            raise DlkitError("nothing to predict: give texts as arguments or --file FILE")
        raise DlkitError("no input given")
    return items


LONGEST_NAME = 120  # characters of a text input shown in messages and results


def item_name(item):
    """How messages and results name an input: its path, or a text (a long one cut)."""
    if isinstance(item, tuple):
        return " ~ ".join(item_name(part) for part in item)
    if isinstance(item, Path):
        return str(item)
    if isinstance(item, str):
        return item if len(item) <= LONGEST_NAME else f"{item[:80]}... ({len(item):,} characters)"
    return f"<array {getattr(item, 'shape', '')}>"


def shortened(message, item):
    """`message` with a long text input in it (quoted or not) replaced by its name."""
    for part in item if isinstance(item, tuple) else (item,):
        if isinstance(part, str) and len(part) > LONGEST_NAME:
            message = message.replace(repr(part), repr(item_name(part))).replace(part, item_name(part))
    return message


@dataclass
class Context:
    """What an app's `finish` may use: the predict options, the output folder, and for a
    video's frame the annotated video's `frame_writer`."""

    meta: dict
    options: dict
    out_dir: Path = None
    index: int = 0  # the input's place among those predict was given, from 0
    frame_writer: object = None  # write(image) of the video this input is a frame of
    name: str = None  # the name of its files, where the input is not a file (`clip_12`)

    @property
    def wants_pictures(self):
        """Whether `picture` keeps anything: an app draws only then."""
        return self.out_dir is not None or self.frame_writer is not None

    def picture(self, item, image, suffix, tag="", **save):
        """Keeps an app's annotated picture of `item` (a PIL image): the file
        `<stem><tag><suffix>` in the output folder, saved with Pillow's `save` options; for
        a video's frame, the main picture (no `tag`) is the annotated video's frame and the
        others are not kept (a label map would not survive a video codec)."""
        from dlkit import io

        if self.frame_writer is not None:
            if not tag:
                self.frame_writer(image)
            return
        if self.out_dir is None:
            return
        with io.atomic_path(output_path(self.out_dir, self.stem(item) + tag, suffix, item)) as tmp:
            image.save(tmp, **save)

    def text(self, item, text, suffix, folder):
        """Writes `text` to `<out_dir>/<folder>/<stem><suffix>` (`file`)."""
        self.file(item, suffix, folder, lambda path: path.write_text(text, encoding="utf-8"))

    def file(self, item, suffix, folder, write):
        """Writes `<out_dir>/<folder>/<stem><suffix>` (a video's frame: its `name`,
        `clip_12`) through `write(path)`, atomically. A file already there is never
        replaced: `--out` pointed at a dataset would overwrite its own labels, so that
        stops in one line."""
        from dlkit import io

        if self.out_dir is None:
            return
        path = self.out_dir / folder / f"{self.stem(item)}{suffix}"
        try:
            with io.atomic_path(path, exclusive=True) as tmp:
                write(tmp)
        except FileExistsError:
            raise DlkitError(
                f"{path}: exists, and predict does not replace it; choose another --out"
            ) from None

    def stem(self, item):
        """The name of an input's files: `name` if given, its file's stem, or
        `image<index>` for an array (`index`: its place among the inputs, so a name
        never depends on which other inputs failed or were videos)."""
        if self.name:
            return self.name
        return Path(item).stem if isinstance(item, (str, Path)) else f"image{self.index}"


def output_path(out_dir, stem, suffix, source):
    """`out_dir/<stem><suffix>`, or `<stem>_pred<suffix>` where that is the input file
    itself (`--out` pointed at the inputs' folder): an input is never overwritten."""
    path = Path(out_dir) / f"{stem}{suffix}"
    if isinstance(source, (str, Path)) and path.exists() and path.resolve() == Path(source).resolve():
        return path.with_name(f"{stem}_pred{suffix}")
    return path


@dataclass
class Prediction:
    """The outcome of one input: `result` or `error`, plus any warnings. A video's frame
    has `frame` (index, seconds), also in its result."""

    item: object
    result: dict = None
    error: str = None
    warnings: list = field(default_factory=list)
    frame: tuple = None

    @property
    def name(self):
        return item_name(self.item)

    @property
    def label(self):
        """The name, and for a video's frame where in the video it is."""
        if self.frame is None:
            return self.name
        return f"{self.name} @ {self.frame[1]:.2f} s (frame {self.frame[0]})"


def next_predict_dir(app_name, root="runs"):
    """`runs/<app>/predict`, then `predict2`, ..."""
    return next_numbered_dir(Path(root) / app_name, "predict")


class Predictor:
    """An app's model ready to predict: loaded once, called on many inputs.

    Args:
        app: dlkit.app.App.
        run: fn(batch) -> list of output arrays (dlkit.engine runners).
        meta: dict. The model's metadata.
        options: dict. The app's predict options, every declared one present.
        bundle: the ModelBundle `run` comes from, if any.
    """

    raw_bytes = 256 * 2**20  # decoded inputs one batch may hold

    def __init__(self, app, run, meta, options, bundle=None):
        self.app, self.run, self.meta, self.options, self.bundle = app, run, meta, options, bundle

    @classmethod
    def load(cls, app, model=None, prefer="tflite", **options):
        """Loads `model` (a run or export dir, .keras, .tflite, 'last', an already loaded
        ModelBundle; None: the shipped model) with the app's predict `options` (`top_k=`...;
        omitted: their defaults)."""
        from dlkit.engine import runner_for

        options = app.option_values(options)
        if not isinstance(model, ModelBundle):
            model = ModelBundle.load(model or default_model(app.name), app=app, prefer=prefer)
        # A copy with the options applied: the caller's bundle keeps its own metadata.
        bundle = ModelBundle(model.path, app.options_meta(dict(model.meta), options))
        return cls(app, runner_for(app, bundle), bundle.meta, options, bundle)

    def __call__(self, items, batch_size=32, out_dir=None, progress=None):
        """Yields a Prediction per item, in order, and per frame of a video item. Inputs are
        read and run batch_size at a time, fewer once a batch's decoded inputs hold
        `raw_bytes` (large photos)."""
        from dlkit.edge.video import is_video

        images = self.app.input_kind == "image"  # a text input may end in ".mp4"
        numbered = enumerate(items)  # an input's number names its files where it has no name
        for videos, group in itertools.groupby(numbered, key=lambda pair: images and is_video(pair[1])):
            group = list(group)
            if videos:
                for _, path in group:
                    yield from self.video(path, batch_size, out_dir, progress)
            else:
                inputs = [item for _, item in group]
                yield from self._inputs(inputs, batch_size, out_dir, progress, number=group[0][0])

    def video(self, path, batch_size=32, out_dir=None, progress=None):
        """Yields a Prediction per frame of the video at `path` (`frame`: index and
        seconds, also in its result); with `out_dir`, the app's annotated frames become
        `<out_dir>/<stem>.mp4` (apps that draw nothing write none). A video that cannot
        be read is one Prediction with its error."""
        from dlkit.edge.video import VideoReader, video_writer

        path = Path(path)
        try:
            reader = VideoReader(path)
        except InvalidInputError as error:
            yield Prediction(path, error=str(error))
            return
        writing = (
            video_writer(output_path(out_dir, path.stem, ".mp4", path), reader.fps)
            if out_dir is not None
            else contextlib.nullcontext()
        )
        with writing as write:
            batch, held = [], 0
            for frame in reader:
                batch.append(frame)
                held += frame[2].nbytes  # 32 frames of 4K video: 800 MB
                if len(batch) == batch_size or held >= self.raw_bytes or frame[0] + 1 == reader.frames:
                    yield from self._frames(path, batch, batch_size, out_dir, write)
                    batch, held = [], 0
                    if progress and reader.frames:
                        progress(frame[0] + 1, reader.frames, f"{path.name}: frames")
            yield from self._frames(path, batch, batch_size, out_dir, write)

    def _frames(self, path, batch, batch_size, out_dir, write):
        arrays = [array for _, _, array in batch]
        names = [f"{path.stem}_{index}" for index, _, _ in batch]  # files of a frame: clip_12.txt
        frames = self._inputs(arrays, batch_size, out_dir, frame_writer=write, names=names)
        for (index, seconds, _), done in zip(batch, frames):
            where = (index, seconds)
            if done.error:
                yield Prediction(path, error=f"{path}: frame {index}: {done.error}", frame=where)
                continue
            result = {"frame": index, "time": round(seconds, 3), **done.result}
            yield Prediction(path, result=result, warnings=done.warnings, frame=where)

    def _inputs(
        self, items, batch_size=32, out_dir=None, progress=None, frame_writer=None, names=None, number=0
    ):
        """Predictions of `items`, the inputs numbered `number` on in what the caller was
        given (`Context.index`); a video's frames come with their `names`."""
        from dlkit.engine import stack

        app, meta = self.app, self.meta
        out_dir = Path(out_dir) if out_dir is not None else None
        if progress:
            progress(0, len(items), "predicting")
        start = 0
        while start < len(items):
            # Each decoded input is held until its result is drawn: 32 photos of 12
            # megapixels would hold 1.1 GB. ready: (position in items, item, raw or None,
            # windows, error or None).
            ready, windows, held, end = [], [], 0, start
            while end < len(items) and end - start < batch_size and (end == start or held < self.raw_bytes):
                item = items[end]
                end += 1
                try:
                    raw = app.read_input(item, meta)
                    parts = app.windows(raw, meta)
                    if not parts and not app.may_find_nothing:
                        raise InvalidInputError(f"{item_name(item)}: nothing to read")
                except InvalidInputError as error:
                    ready.append((end - 1, item, None, 0, shortened(str(error), item)))
                    continue
                ready.append((end - 1, item, raw, len(parts), None))
                windows += parts
                held += getattr(raw, "nbytes", 0)  # an array, or a raw input that says its size
            results = []
            for first in range(0, len(windows), batch_size):
                outputs = self.run(stack(windows[first : first + batch_size]))
                results += app.postprocess(outputs, meta, self.options)
            position = 0
            for at, item, raw, size, error in ready:
                if error:
                    yield Prediction(item, error=error)
                    continue
                combined = app.combine(results[position : position + size], raw, meta)
                position += size
                if out_dir is not None:  # made on the first result: no empty folder for bad input
                    out_dir.mkdir(parents=True, exist_ok=True)
                name = names[at] if names else None
                context = Context(meta, self.options, out_dir, number + at, frame_writer, name)
                yield Prediction(
                    item,
                    result=app.finish(item, raw, combined, context),
                    warnings=[shortened(warning, item) for warning in app.input_warnings(raw, meta)],
                )
            start = end
            if progress:
                progress(end, len(items), "predicting")
