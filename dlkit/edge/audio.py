"""Audio on device (numpy + soundfile, no TensorFlow): reading any file libsndfile
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


CHUNK_VALUES = 1 << 22  # input values one block of the resampler's product copies (16 MB)


def resample(audio, from_rate, to_rate):
    """`audio` from `from_rate` to `to_rate` Hz as float32: scipy's `resample_poly` (its
    default Kaiser-windowed filter, zero padding) in numpy, so the edge path needs no scipy.

    The rates reduce to up/down; the low-pass filter is a sinc with cutoff 1/max(up, down)
    times a Kaiser window (beta 5) of 20 max(up, down) + 1 taps, scaled to gain `up`. Each
    output sample is one phase of that filter (every `up`-th tap) against the input samples
    before it: output r + up j uses phase (r + first) down mod up and inputs `down` apart
    as j grows, so each phase is one matrix-vector product over a strided window view.
    """
    if from_rate == to_rate:
        return np.asarray(audio, np.float32)
    x = np.asarray(audio, np.float32)
    common = gcd(int(from_rate), int(to_rate))
    up, down = int(to_rate) // common, int(from_rate) // common
    n_out = -(-len(x) * up // down)
    rate = max(up, down)
    half = 10 * rate
    h = np.sinc(np.arange(-half, half + 1) / rate) * np.kaiser(2 * half + 1, 5.0)
    h *= up / h.sum()
    pre = down - half % down  # zeros before the filter put output 0 at input 0's centre
    first = (half + pre) // down  # outputs of the full convolution dropped at its start
    taps = -(-(len(h) + pre) // up)
    padded = np.zeros(up * taps)
    padded[pre : pre + len(h)] = h
    phases = padded.reshape(taps, up).T[:, ::-1].astype(np.float32)  # per phase, oldest tap first
    x = np.concatenate([np.zeros(taps, np.float32), x, np.zeros(taps + down, np.float32)])
    windows = np.lib.stride_tricks.sliding_window_view(x, taps)  # windows[i] = x[i : i + taps]
    out = np.empty(n_out, np.float32)
    rows = max(1, CHUNK_VALUES // taps)  # the product copies its rows: a bounded block at a time
    for r in range(min(up, n_out)):
        position = (r + first) * down  # in the upsampled signal
        start = position // up + 1  # the window that ends at the newest input it reaches
        phase, outputs = phases[position % up], out[r::up]
        for j in range(0, len(outputs), rows):
            block = windows[start + down * j : start + down * min(j + rows, len(outputs)) : down]
            outputs[j : j + len(block)] = block @ phase
    return out


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
