"""Sound sources for trigger clips, offline, each split disjoint from the others:

- positives: the trigger word spoken by espeak-ng (`dlkit.data.speech`), with different
  voices for training, validation and test;
- negatives: real recorded speech, split by language, i.e. by speaker: the spoken names
  and descriptions of the Tux Paint stamps (Debian `tuxpaint-stamps-default`), and where
  installed the spoken words of KTuberling (`ktuberling-data`) and the spoken letters
  and syllables of KLettres (`klettres-data`); and other words spoken by the split's
  espeak voices;
- backgrounds: real sound effects (Tux Paint stamps and `tuxpaint-data`, the freedesktop
  sound theme `sound-theme-freedesktop`), split by file, plus generated coloured noise.
"""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlkit.errors import MissingSourceError

STAMPS = Path("/usr/share/tuxpaint/stamps")
SOUND_FOLDERS = (Path("/usr/share/tuxpaint/sounds"), Path("/usr/share/sounds/freedesktop/stereo"))
AUDIO_SUFFIXES = (".wav", ".ogg", ".oga", ".flac")
KTUBERLING = Path("/usr/share/ktuberling/sounds")  # <language>/<word>.ogg|wav
KLETTRES = Path("/usr/share/klettres")  # <language>/{alpha,syllab}/<letters>.ogg
SPEECH_PACKAGES = "tuxpaint-stamps-default ktuberling-data klettres-data sound-theme-freedesktop"
# Recorded speech by language (one speaker per language and collection, mostly): the
# languages of held-out speakers for val and test, in every collection.
SPEECH_LANGUAGES = {"val": ("ca", "it"), "test": ("ro", "bg", "uk", "hu")}
# espeak-ng voice variants per split (dlkit.data.speech.VARIANTS): never shared.
VOICES = {
    "train": ("m1", "m2", "m5", "m6", "m7", "f1", "f4", "f5", "klatt", "klatt4", "croak", "Andy", "Annie",
              "Denis", "Lee", "Mario", "Michael", "Mike", "adam", "anika", "antonio", "belinda",
              "benjamin", "caleb", "edward"),
    "val": ("m3", "f2", "klatt2", "Jacky", "boris", "grandma"),
    "test": ("m4", "f3", "klatt3", "Gene", "aunty", "david", "Storm", "whisper"),
}  # fmt: skip
# Words that sound like the default trigger: half of the spoken negatives are drawn from
# these (a model that has not met them fires on "captivate" and "activist").
CONFUSABLE_WORDS = "activity active captivate motivate cultivate navigate activist action actually".split()
OTHER_WORDS = (
    "activity active captivate motivate cultivate navigate alligator elevator create relative accurate "
    "candidate meditate vacate adequate rotate separate decorate activist attic vacation today weather "
    "music hello computer window play stop listen attention lights kitchen tomorrow seven banana "
    "action actually cat vegetable "
).split()


def split_of_name(name, val=15, test=15):
    bucket = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big") % 100
    return "val" if bucket < val else "test" if bucket < val + test else "train"


def speech_language(path):
    """The language of a recorded-speech file: the folder of a KTuberling (`fr/ball.ogg`,
    `sr@latin/...`) or KLettres file (`es/syllab/ba.ogg`); the suffix of a Tux Paint
    spoken-name file (`cat_fr.ogg`, `cat_desc_en_GB.ogg`), or None for a Tux Paint sound
    effect (`cat.ogg`)."""
    path = Path(path)
    for root, depth in ((KTUBERLING, 1), (KLETTRES, 2)):
        if path.is_relative_to(root):
            return path.parents[depth - 1].name.split("@")[0]
    match = re.match(r"^.*?(?:_desc)?_([a-z]{2,3}(?:_[A-Z]{2})?)$", path.stem)
    if match:
        return match.group(1)
    return "en" if path.stem.endswith("_desc") else None


def speech_split(language):
    base = language.split("_")[0]
    return next((s for s, langs in SPEECH_LANGUAGES.items() if base in langs), "train")


@dataclass
class SoundFiles:
    """Audio files of one split."""

    speech: list = field(default_factory=list)
    effects: list = field(default_factory=list)


def _audio_files(folder, pattern="*"):
    return (
        sorted(p for p in folder.glob(pattern) if p.suffix.lower() in AUDIO_SUFFIXES)
        if folder.is_dir()
        else []
    )


def find_files():
    """{split: SoundFiles} from the installed Debian packages (Tux Paint's stamps are
    required, the other collections are used when installed)."""
    if not STAMPS.is_dir():
        raise MissingSourceError(
            f"{STAMPS} is missing: the offline trigger data needs Debian tuxpaint-stamps-default "
            f"(apt-get install {SPEECH_PACKAGES})"
        )
    splits = {name: SoundFiles() for name in ("train", "val", "test")}
    for path in sorted(STAMPS.rglob("*.ogg")):
        language = speech_language(path)
        if language is None:
            splits[split_of_name(path.name)].effects.append(path)
        else:
            splits[speech_split(language)].speech.append(path)
    speech = (
        _audio_files(KTUBERLING, "*/*")
        + _audio_files(KLETTRES, "*/alpha/*")
        + _audio_files(KLETTRES, "*/syllab/*")
    )
    for path in speech:
        splits[speech_split(speech_language(path))].speech.append(path)
    for folder in SOUND_FOLDERS:
        for path in _audio_files(folder):
            splits[split_of_name(path.name)].effects.append(path)
    return splits


def coloured_noise(rng, samples, exponent):
    """Noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = rng.normal(size=samples // 2 + 1) + 1j * rng.normal(size=samples // 2 + 1)
    frequencies = np.arange(len(spectrum), dtype=np.float64)
    frequencies[0] = 1.0
    noise = np.fft.irfft(spectrum / frequencies ** (exponent / 2), n=samples)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def rms(audio):
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
