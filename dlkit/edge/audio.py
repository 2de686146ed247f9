"""Audio on device (numpy + soundfile + scipy, no TensorFlow): reading any file libsndfile
knows (WAV, FLAC, OGG...) as mono float32 at the model's sample rate."""

from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np

from dlkit.errors import InvalidInputError


@dataclass
class Audio:
    """Mono float32 samples in [-1, 1] at `sample_rate`, and what reading changed."""

    samples: np.ndarray
    sample_rate: int
    notes: list = field(default_factory=list)

    @property
    def seconds(self):
        return len(self.samples) / self.sample_rate


def resample(audio, from_rate, to_rate):
    """`audio` (float32) from `from_rate` to `to_rate` Hz with scipy's polyphase filter."""
    if from_rate == to_rate:
        return np.asarray(audio, np.float32)
    from scipy.signal import resample_poly

    common = gcd(int(from_rate), int(to_rate))
    return resample_poly(audio, to_rate // common, from_rate // common).astype(np.float32)


def unreadable(path, error):
    """The one-line InvalidInputError for an audio file soundfile could not open: no such
    file, a folder, an empty file, or not audio, with the library's reason."""
    path = Path(path)
    if not path.exists():
        reason = "no such file"
    elif path.is_dir():
        reason = "a folder, not an audio file"
    elif path.stat().st_size == 0:
        reason = "empty file"
    else:
        reason = "not an audio file"
    return InvalidInputError(f"{path}: {reason} ({str(error).splitlines()[0][:80]})")


def read_audio(path, sample_rate=16000):
    """Reads `path` as mono float32 at `sample_rate`: other rates are resampled and
    several channels averaged (each said once in `.notes`).

    Raises:
        InvalidInputError: not an audio file, or no samples (one line naming the file).
    """
    import soundfile

    path = Path(path)
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, OSError) as error:
        raise unreadable(path, error) from None
    if not len(samples):
        raise InvalidInputError(f"{path}: no audio samples")
    notes = []
    if samples.shape[1] > 1:
        notes.append(f"{samples.shape[1]} channels mixed down to mono")
    mono = samples.mean(axis=1)
    if rate != sample_rate:
        notes.append(f"resampled from {rate} Hz to {sample_rate} Hz")
        mono = resample(mono, rate, sample_rate)
    return Audio(mono.astype(np.float32), sample_rate, notes)
