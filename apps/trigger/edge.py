"""On-device trigger detection (numpy, soundfile, LiteRT; no TensorFlow): audio files in,
per-step probabilities from the streaming TFLite model chunk by chunk, and events."""

import contextlib
from pathlib import Path

import numpy as np

from dlkit.console import counted
from dlkit.errors import InvalidInputError
from dlkit.io import atomic_path


def read_input(path, meta):
    """An audio file as mono float32 at the model's rate (resampled, downmixed)."""
    from dlkit.edge.audio import read_audio

    audio = read_audio(path, meta["sample_rate"])
    if np.abs(audio.samples).max() == 0:
        raise InvalidInputError(f"{path}: silent (every sample is 0)")
    return audio


LABEL_SUFFIX = ".txt"


def label_file(audio_path):
    """The label file beside a recording (`meeting.wav` -> `meeting.txt`), or None."""
    path = Path(audio_path).with_suffix(LABEL_SUFFIX)
    return path if path.is_file() else None


def read_labels(path):
    """Trigger times (seconds, sorted) from a label file: one line per trigger word, either
    an Audacity label track (`start<TAB>end[<TAB>text]`; the end is used) or one time (the
    end of the word). Blank lines and lines starting with # are skipped.

    Raises:
        InvalidInputError: a line that is not one or two non-negative numbers (one line
        naming the file and the line).
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"{path}: cannot read the label file ({error.__class__.__name__})") from None
    times = []
    for number, line in enumerate(lines, 1):
        fields = line.strip().split("\t") if "\t" in line else line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            values = [float(f) for f in fields[:2]] if len(fields) > 1 else [float(fields[0])]
        except ValueError:
            raise InvalidInputError(
                f"{path}:{number}: expected a time in seconds or 'start<TAB>end[<TAB>label]', got {line.strip()[:40]!r}"
            ) from None
        if min(values) < 0 or not all(np.isfinite(values)) or values[-1] < values[0]:
            raise InvalidInputError(f"{path}:{number}: times must be finite, >= 0 and end >= start")
        times.append(values[-1])
    return sorted(times)


def input_warnings(audio, meta):
    warnings = list(audio.notes)
    if np.mean(np.abs(audio.samples) >= 0.999) > 0.001:
        warnings.append("clipped audio (samples at full scale): detections may suffer")
    return warnings


def windows(audio, meta):
    """Consecutive clips of the model's length, the last one zero-padded."""
    size = meta["clip_samples"]
    samples = audio.samples
    count = max(1, int(np.ceil(len(samples) / size)))
    padded = np.zeros(count * size, np.float32)
    padded[: len(samples)] = samples
    return list(padded.reshape(count, size))


def postprocess(outputs, meta, **options):
    return [{"probs": np.asarray(row)[:, 0]} for row in outputs[0]]


def steps_in(samples, receptive, step):
    """Output steps for `samples` samples: step j sees samples [j * step, j * step +
    receptive), so it exists when that lies inside the audio."""
    return 0 if samples < receptive else (samples - receptive) // step + 1


def steps_for(meta, samples):
    """`steps_in` with a model's geometry."""
    return steps_in(samples, meta["receptive_samples"], meta["step_samples"])


def window_samples(meta):
    """Samples of one streaming call: `stream_steps` new steps plus the receptive
    field's overlap with the previous chunk."""
    return meta["stream_steps"] * meta["step_samples"] + meta["receptive_samples"] - meta["step_samples"]


def refractory_steps(meta):
    """`refractory_seconds` in output steps."""
    return int(round(meta["refractory_seconds"] * meta["sample_rate"] / meta["step_samples"]))


def step_end_seconds(meta, step):
    """Time of the last sample a step sees (an event's time)."""
    return (step * meta["step_samples"] + meta["receptive_samples"]) / meta["sample_rate"]


def combine(results, audio, meta):
    """One result per file: the trigger times in seconds (each at the end of the step
    that fired, just after the word) and the probability there; `scores` holds the step times and probabilities
    for `finish` (plots), which removes them."""
    clip_seconds = meta["clip_samples"] / meta["sample_rate"]
    events, step_times, probs = [], [], []
    for clip, result in enumerate(results):
        row = result["probs"]
        starts = clip * clip_seconds + np.array([step_end_seconds(meta, j) for j in range(len(row))])
        events += [(round(float(starts[step]), 2), p) for step, p in EventStream(meta).feed(row)]
        step_times.append(starts)
        probs.append(row)
    seconds = len(audio.samples) / meta["sample_rate"]
    events = [(t, p) for t, p in events if t <= seconds]  # none from the last clip's zero padding
    probs = np.concatenate(probs) if probs else np.zeros(0, np.float32)
    return {
        "triggers": [t for t, _ in events],
        # the word's probability at the step each trigger fired (at least the threshold)
        "trigger_probabilities": [round(p, 4) for _, p in events],
        "seconds": round(seconds, 2),
        "max_probability": float(probs.max()) if len(probs) else 0.0,
        "scores": (np.concatenate(step_times) if step_times else np.zeros(0), probs),
    }


def triggers_text(count):
    """`no trigger`, `1 trigger`, `3 triggers`."""
    return counted(count, "trigger") if count else "no trigger"


def format_result(name, result):
    """`clip.wav: 2 triggers at 1.20 s, 3.45 s (10.0 s of audio)`."""
    times = result["triggers"]
    found = triggers_text(len(times)) + (" at " + ", ".join(f"{t:.2f} s" for t in times) if times else "")
    line = f"{name}: {found} ({result['seconds']:.1f} s of audio)"
    if "labelled" in result:
        line += f"; labelled {len(result['labelled'])}, found {result['found']}"
    return line


def found_labelled(triggers, labelled, meta):
    """How many labelled trigger times (word ends) a detection follows within half a
    second plus the refractory period, as the evaluator matches events to labelled steps
    (each label and each detection counted once)."""
    slack = meta["refractory_seconds"] + 0.5
    return _match(triggers, [(time - 0.1, time + slack) for time in labelled])


def _match(events, windows):
    """Windows hit: each window (low, high) takes the first event inside it that no
    earlier window took (one event per window, one window per event)."""
    used = set()
    for low, high in windows:
        i = next((i for i, event in enumerate(events) if i not in used and low <= event <= high), None)
        if i is not None:
            used.add(i)
    return len(used)


def runs(labels):
    """[(first, last)] step index runs of True in a boolean row."""
    labels = np.asarray(labels, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], labels.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def detect_events(probs, meta, threshold=None):
    """Steps where an event fires: the probability has stayed >= threshold for
    `min_steps` steps; after an event nothing fires for `refractory_seconds`."""
    return [step for step, _ in EventStream(meta, threshold).feed(probs)]


def match_events(events, positive_runs, meta):
    """(positives hit, false accepts): an event hits a positive when it fires within its
    labelled run or up to the refractory period after it; each positive counts once."""
    slack = refractory_steps(meta)
    hits = _match(events, [(first, last + slack) for first, last in positive_runs])
    return hits, len(events) - hits


class Streamer:
    """Runs the streaming model over audio fed in any pieces; exact to one pass over the
    whole audio. `step(window, state_1, state_2) -> (probs (n,), state_1, state_2)`."""

    def __init__(self, step, meta):
        self.step, self.meta = step, meta
        self.chunk = meta["stream_steps"] * meta["step_samples"]
        self.window = window_samples(meta)
        self.reset()

    def reset(self):
        units = self.meta["gru_units"]
        self.states = (np.zeros((1, units), np.float32), np.zeros((1, units), np.float32))
        self.buffer = np.zeros(0, np.float32)
        self.total = 0  # samples fed
        self.emitted = 0  # steps returned

    def feed(self, samples):
        """Probabilities of the steps completed by `samples`."""
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, np.float32)])
        self.total += len(samples)
        out = []
        while len(self.buffer) >= self.window:
            out.append(self._run(self.buffer[: self.window]))
            self.buffer = self.buffer[self.chunk :]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def finish(self):
        """The remaining steps whose window lies inside the audio (zero-padded run)."""
        needed = steps_for(self.meta, self.total) - self.emitted
        if needed <= 0:
            return np.zeros(0, np.float32)
        window = np.zeros(self.window, np.float32)
        window[: len(self.buffer)] = self.buffer[: self.window]
        return self._run(window)[:needed]

    def _run(self, window):
        probs, s1, s2 = self.step(window[None], *self.states)
        self.states = (s1, s2)
        probs = np.asarray(probs).reshape(-1)
        self.emitted += len(probs)
        return probs


def tflite_stepper(path):
    """step(window, state_1, state_2) over an exported streaming `.tflite`."""
    from dlkit.edge import EdgeModel

    model = EdgeModel(path)

    def step(window, s1, s2):
        probs, n1, n2 = model.predict({"audio": window, "state_1": s1, "state_2": s2})
        return probs, n1, n2

    return step


def tflite_runner(path, meta):
    """fn(clips (n, samples)) -> [probs (n, steps, 1)] streamed chunk by chunk."""
    streamer = Streamer(tflite_stepper(path), meta)

    def run(clips):
        rows = []
        for clip in np.asarray(clips, np.float32):
            streamer.reset()
            probs = np.concatenate([streamer.feed(clip), streamer.finish()])
            rows.append(probs[:, None])
        return [np.stack(rows)]

    return run


def listen(path, step, meta, block_seconds=30.0, chime_to=None, threshold=None):
    """Streams a file of any length through the model in bounded memory; yields
    (event time in seconds, probability) as they fire, and returns the audio's length in
    seconds (the generator's return value: `heard = yield from listen(...)`). With
    `chime_to` (a WAV path), a copy of the audio with a chime at every event is written,
    block by block."""
    import soundfile

    from dlkit.edge.audio import Resampler, unreadable

    rate = meta["sample_rate"]
    streamer = Streamer(step, meta)
    detector = EventStream(meta, threshold)
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError, OSError) as error:
        raise unreadable(path, error) from None
    if not info.frames:
        raise InvalidInputError(f"{path}: no audio samples")
    chime = chime_sound(rate)
    pending = []  # chime positions (samples) not yet written
    written = 0
    blocks = soundfile.blocks(
        str(path), blocksize=int(block_seconds * info.samplerate), dtype="float32", always_2d=True
    )
    with contextlib.ExitStack() as stack:
        writer = None
        if chime_to:  # written under a temporary name: a file cut short never lands
            temporary = stack.enter_context(atomic_path(chime_to))
            writer = stack.enter_context(soundfile.SoundFile(str(temporary), "w", rate, 1))
        for mono in _mono_at(blocks, Resampler(info.samplerate, rate)):
            probs = streamer.feed(mono)
            for step_index, p in detector.feed(probs):
                time = step_end_seconds(meta, step_index)
                pending.append(int(time * rate))
                yield time, p
            if writer:
                written = _write_with_chimes(writer, mono, written, pending, chime)
        for step_index, p in detector.feed(streamer.finish()):
            time = step_end_seconds(meta, step_index)
            yield time, p
    return info.frames / info.samplerate


def _mono_at(blocks, resampler):
    """Each block downmixed and resampled; the resampler carries its filter across
    blocks (no seam where one block ends), and its last samples come at the end."""
    for block in blocks:
        yield resampler.feed(block.mean(axis=1))
    yield resampler.finish()


def _write_with_chimes(writer, mono, written, pending, chime):
    out = mono.copy()
    for position in list(pending):
        start = position - written
        if start >= len(out):
            continue
        a = max(start, 0)
        piece = chime[a - start : a - start + len(out) - a]
        out[a : a + len(piece)] = np.clip(out[a : a + len(piece)] + piece, -1, 1)
        if start + len(chime) <= len(out):
            pending.remove(position)
    writer.write(out)
    return written + len(out)


def chime_sound(rate, seconds=0.3):
    """A short bell-like tone (two decaying sines), as the course's chime."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.exp(-8 * t) * (np.sin(2 * np.pi * 880 * t) + 0.5 * np.sin(2 * np.pi * 1320 * t))).astype(
        np.float32
    )


class EventStream:
    """detect_events over probabilities arriving in pieces (the same events)."""

    def __init__(self, meta, threshold=None):
        self.meta = meta
        self.threshold = meta["threshold"] if threshold is None else threshold
        self.refractory = refractory_steps(meta)
        self.step = 0
        self.above = 0
        self.blocked_until = -1

    def feed(self, probs):
        """[(step, probability)] of the events in `probs`."""
        events = []
        for p in np.asarray(probs):
            self.above = self.above + 1 if p >= self.threshold else 0
            if self.above >= self.meta["min_steps"] and self.step > self.blocked_until:
                events.append((self.step, float(p)))
                self.blocked_until = self.step + self.refractory
                self.above = 0
            self.step += 1
        return events
