"""Hostile inputs, written by the tests themselves (no binaries in git): for every input
kind of the app registry, the files and texts a careless or malicious user can hand to
`dlkit <app> predict`, each with what dlkit must do with it.

Outcomes:
    ok: a result, exit 0 (unusual but valid input).
    error: a one-line error naming the input, exit 2 (a skip line in a batch).
    clean: either of the two, but never a traceback, a hang or a partial output.
"""

import io
import struct
import wave
from pathlib import Path

import numpy as np
from PIL import Image


def _png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _wav(path, samples, rate=16000, channels=1, width=2):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())
    return path


def _float_wav(path, samples, rate=16000):
    """A 32-bit float WAV (format 3), which the wave module cannot write."""
    data = np.asarray(samples, "<f4").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += (
        struct.pack("<IHHIIHH", 16, 3, 1, rate, rate * 4, 4, 32) + b"data" + struct.pack("<I", len(data))
    )
    path.write_bytes(header + data)
    return path


def hostile_images(root):
    """[(case, path, outcome)] of image files."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8))
    cases = []

    def add(case, name, outcome, data=None, image=None, **save):
        path = root / name
        if image is not None:
            image.save(path, **save)
        elif data is not None:
            path.write_bytes(data)
        cases.append((case, path, outcome))

    add("zero-byte file", "empty.png", "error", data=b"")
    png = _png_bytes(photo)
    add("truncated PNG", "truncated.png", "error", data=png[: len(png) // 2])
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG")
    add("truncated JPEG", "truncated.jpg", "error", data=buffer.getvalue()[:200])
    add("text named .jpg", "notes.jpg", "error", data=b"just some text\n")
    add("WAV named .png", "sound.png", "error", data=b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    add("random bytes", "noise.webp", "error", data=rng.integers(0, 255, 4096, np.uint8).tobytes())
    add(
        "decompression bomb (20000 x 20000 header)", "bomb.png", "error", image=Image.new("1", (20000, 20000))
    )
    add("16-bit greyscale", "deep.png", "ok", image=Image.fromarray(np.full((20, 30), 40000, np.uint16)))
    add("1-bit", "bilevel.png", "ok", image=Image.fromarray(rng.integers(0, 2, (20, 30)).astype(bool)))
    add("CMYK JPEG", "cmyk.jpg", "ok", image=photo.convert("CMYK"))
    add("palette with transparency", "palette.png", "ok", image=photo.convert("P"), transparency=0)
    add("greyscale with alpha", "la.png", "ok", image=photo.convert("LA"))
    add("1 x 1 pixel", "dot.png", "ok", image=Image.new("RGB", (1, 1), (200, 10, 10)))
    add("4000 x 2 strip", "strip.png", "ok", image=Image.new("RGB", (4000, 2), (10, 200, 10)))
    frames = [Image.new("RGB", (32, 32), color) for color in ((255, 0, 0), (0, 0, 255))]
    add("animated GIF", "animated.gif", "ok", image=frames[0], save_all=True, append_images=frames[1:])
    add("32-bit float TIFF", "float.tiff", "clean", image=Image.fromarray(rng.random((20, 30), np.float32)))
    add("EXIF-rotated JPEG", "rotated.jpg", "ok", image=photo, exif=_rotated_exif())
    (root / "folder.jpg").mkdir(exist_ok=True)
    cases.append(("a folder named like an image", root / "folder.jpg", "error"))
    cases.append(("a missing file", root / "missing.png", "error"))
    return cases


def _rotated_exif():
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    return exif


def hostile_audio(root):
    """[(case, path, outcome)] of audio files."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    speechy = (rng.normal(0, 0.1, 16000 * 2) * 32767).astype(np.int16)
    cases = [
        ("zero-byte file", root / "empty.wav", "error"),
        ("text named .wav", root / "notes.wav", "error"),
        ("WAV header without data chunk", root / "header.wav", "error"),
        ("PNG named .wav", root / "picture.wav", "error"),
        ("a missing file", root / "missing.wav", "error"),
    ]
    (root / "empty.wav").write_bytes(b"")
    (root / "notes.wav").write_text("not audio\n")
    (root / "header.wav").write_bytes(
        b"RIFF\x24\x00\x00\x00WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    )
    (root / "picture.wav").write_bytes(_png_bytes(Image.new("RGB", (4, 4))))
    cases += [
        # digital silence: no detection, or refused as a broken recording; either is fair
        ("silence, 3 s", _wav(root / "silent.wav", np.zeros(48000, np.int16)), "clean"),
        ("one sample", _wav(root / "one.wav", np.zeros(1, np.int16)), "clean"),
        ("8 kHz", _wav(root / "low_rate.wav", speechy[::2], rate=8000), "ok"),
        ("44.1 kHz stereo", _wav(root / "stereo.wav", np.repeat(speechy, 2), rate=44100, channels=2), "ok"),
        ("8-bit unsigned", _wav(root / "u8.wav", (speechy // 256 + 128).astype(np.uint8), width=1), "ok"),
        (
            "float with NaN and Inf",
            _float_wav(root / "nan.wav", np.r_[np.zeros(8000), np.nan, np.inf, -np.inf]),
            "clean",
        ),
        ("clipping at full scale", _wav(root / "loud.wav", np.full(32000, 32767, np.int16)), "ok"),
        ("folder named .wav", root / "folder.wav", "error"),
    ]
    (root / "folder.wav").mkdir(exist_ok=True)
    return cases


def hostile_texts():
    """[(case, text, outcome)] of text inputs given as arguments."""
    return [
        ("empty", "", "error"),
        ("whitespace only", " \t ", "error"),
        ("10,000 characters", "x" * 10_000, "clean"),
        ("10,000 words", "good " * 10_000, "clean"),
        ("control characters", "a\x00b\x07c\x1b[31m", "clean"),
        ("emoji", "😀 🎉 👍", "clean"),
        ("right-to-left", "هذا فيلم رائع", "clean"),
        ("only punctuation", "?!.,;", "clean"),
        ("a surrogate escape", "caf\udce9", "clean"),
    ]


def hostile_text_files(root):
    """[(case, path, outcome)] of files given to `--file`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    (root / "empty.txt").write_bytes(b"")
    (root / "binary.txt").write_bytes(bytes(range(256)))
    (root / "blank_lines.txt").write_text("\n\n  \n")
    (root / "folder.txt").mkdir(exist_ok=True)
    return [
        ("not UTF-8", root / "latin1.txt", "error"),
        ("empty file", root / "empty.txt", "error"),
        ("binary file", root / "binary.txt", "error"),
        ("blank lines only", root / "blank_lines.txt", "error"),
        ("a folder", root / "folder.txt", "error"),
        ("a missing file", root / "missing.txt", "error"),
    ]


def hostile_training_data(app_name, root):
    """[(case, --data path)] of user data that must stop `train` with one line before any
    epoch, for the apps whose data is text or audio (image apps: a corrupt file in their
    own sample data, test_hostile)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "sentiment": {
            "header only": ("header_only.csv", b"text,label\n"),
            "not UTF-8": ("latin1.csv", "caf\xe9,good\n".encode("latin-1")),
            "an unclosed quote": ("quote.csv", b'text,label\n"unclosed,good\nfine,bad\n'),
            "no label column": ("nolabel.csv", b"text\nhello\n"),
            "a JSON line that is not an object": ("bad.jsonl", b'{"text": "a", "label": "x"}\n{bad json\n'),
            "binary": ("binary.csv", bytes(range(256))),
        },
        "translate": {
            "one pair": ("one.tsv", b"a\tb\n"),
            "binary": ("binary.tsv", bytes(range(256))),
            "no tab": ("notab.tsv", b"3 May 1979 1979-05-03\n" * 40),
        },
    }.get(app_name, {})
    cases = []
    for case, (name, data) in files.items():
        (root / name).write_bytes(data)
        cases.append((case, root / name))
    if app_name == "trigger":
        folder = root / "clips"
        for sub in ("positives", "negatives", "backgrounds"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "positives" / "word.wav").write_text("not audio")
        cases.append(("only an unreadable recording of the word", folder))
        recordings = root / "recordings_only" / "recordings"
        recordings.mkdir(parents=True, exist_ok=True)
        _wav(recordings / "talk.wav", np.zeros(16000, np.int16))
        (recordings / "talk.txt").write_text("1.0\nsoon\n")
        cases.append(("a label file with a word for a time", root / "recordings_only"))
    return cases


class Tally:
    """Counts of hostile inputs tried, by app and verb, for the test summary."""

    def __init__(self):
        self.inputs = 0
        self.failures = 0
        self.verbs = set()

    def record(self, app, verb, failed, inputs=1):
        self.inputs += inputs
        self.failures += int(failed)
        self.verbs.add((app, verb))

    def line(self):
        apps = len({app for app, _ in self.verbs})
        return (
            f"hostile inputs: {self.inputs} tried over {len(self.verbs)} app verbs ({apps} apps), "
            f"{self.failures} failed"
        )


TALLY = Tally()
