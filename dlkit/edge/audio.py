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


class Resampler:
    """Resamples a stream from `from_rate` to `to_rate` Hz, block by block, as `resample`
    does the whole: `feed` returns the output samples whose filter window the input so far
    covers, `finish` the rest (the signal ends in zeros, as scipy pads it). The pieces put
    together are the whole signal's `resample`, whatever the blocks' lengths.

    scipy's `resample_poly` (its default Kaiser-windowed filter, zero padding) in numpy,
    so the edge path needs no scipy. The rates reduce to up/down; the low-pass filter is
    a sinc with cutoff 1/max(up, down) times a Kaiser window (beta 5) of 20 max(up, down)
    + 1 taps, scaled to gain `up`. Output k is one phase of that filter (every `up`-th
    tap) against the `taps` inputs ending at input (k + first) down // up: the outputs
    k + up j share a phase and take inputs `down` apart as j grows, so each phase is one
    matrix-vector product over a strided window view.
    """

    def __init__(self, from_rate, to_rate):
        common = gcd(int(from_rate), int(to_rate))
        self.up, self.down = int(to_rate) // common, int(from_rate) // common
        rate = max(self.up, self.down)
        half = 10 * rate
        h = np.sinc(np.arange(-half, half + 1) / rate) * np.kaiser(2 * half + 1, 5.0)
        h *= self.up / h.sum()
        pre = self.down - half % self.down  # zeros before the filter: output 0 at input 0
        self.first = (half + pre) // self.down  # outputs of the full convolution dropped
        self.taps = -(-(len(h) + pre) // self.up)
        padded = np.zeros(self.up * self.taps)
        padded[pre : pre + len(h)] = h
        # per phase, oldest tap first
        self.phases = padded.reshape(self.taps, self.up).T[:, ::-1].astype(np.float32)
        self.kept = np.zeros(0, np.float32)  # the inputs from index `origin` on
        self.origin = 0
        self.done = 0  # outputs returned

    @property
    def seen(self):
        """The number of inputs fed: `kept` holds the newest of them."""
        return self.origin + len(self.kept)

    def newest(self, k):
        """The index of the newest input output `k` reads."""
        return (k + self.first) * self.down // self.up

    def feed(self, block):
        """The output samples (float32) that `block` completes."""
        block = np.asarray(block, np.float32).reshape(-1)
        if self.up == self.down:
            return block
        # A whole file in one block is kept as it is (the window below copies it once).
        self.kept = np.concatenate([self.kept, block]) if len(self.kept) else block
        # output k is complete once input newest(k) has come: (k + first) down < seen up
        return self._emit(-(-self.seen * self.up // self.down) - self.first)

    def finish(self):
        """The last output samples, whose windows reach past the end (zeros there)."""
        if self.up == self.down:
            return np.zeros(0, np.float32)
        return self._emit(-(-self.seen * self.up // self.down))

    def _emit(self, end):
        start = self.done
        if end <= start:
            return np.zeros(0, np.float32)
        lo = self.newest(start) - self.taps + 1  # the oldest input these outputs read
        segment = np.zeros(self.newest(end - 1) + 1 - lo, np.float32)  # zeros past the ends
        have = self.kept[max(lo, 0) - self.origin : min(lo + len(segment), self.seen) - self.origin]
        segment[max(0, -lo) : max(0, -lo) + len(have)] = have
        windows = np.lib.stride_tricks.sliding_window_view(segment, self.taps)
        out = np.empty(end - start, np.float32)
        rows = max(1, CHUNK_VALUES // self.taps)  # the product copies its rows: a block at a time
        for r in range(min(self.up, len(out))):
            phase = self.phases[(start + r + self.first) * self.down % self.up]
            first_window = self.newest(start + r) - self.newest(start)
            outputs = out[r :: self.up]
            for j in range(0, len(outputs), rows):
                stop = min(j + rows, len(outputs))
                window_rows = windows[
                    first_window + self.down * j : first_window + self.down * stop : self.down
                ]
                outputs[j:stop] = window_rows @ phase
        self.done = end
        keep_from = min(max(self.newest(end) - self.taps + 1, self.origin), self.seen)  # later outputs read
        self.kept = self.kept[keep_from - self.origin :]
        self.origin = keep_from
        return out


def resample(audio, from_rate, to_rate):
    """`audio` from `from_rate` to `to_rate` Hz as float32, equal to scipy's
    `resample_poly` with its default filter (`Resampler`, all in one block)."""
    if from_rate == to_rate:
        return np.asarray(audio, np.float32)
    resampler = Resampler(from_rate, to_rate)
    return np.concatenate([resampler.feed(audio), resampler.finish()])


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
