"""Data for trigger: 10-second clips synthesized as in the course (a background with trigger
words and other words pasted at random, non-overlapping positions), labelled per output
step; offline from espeak-ng and Debian sounds, or from a user's folders of recordings."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlkit.apps.trigger import sounds
from dlkit.config import HELD_OUT_SEED
from dlkit.data.speech import trim_silence
from dlkit.errors import DlkitError, InvalidInputError

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
USER_FOLDERS = ("positives", "negatives", "backgrounds", "recordings")
# Fewer recordings than this are each cut in time (70/15/15) instead of split by file.
RECORDINGS_SPLIT_BY_FILE = 10
TIME_SPLITS = {"train": (0.0, 0.7), "val": (0.7, 0.85), "test": (0.85, 1.0)}


def receptive_samples(config):
    """Samples one output step sees: its conv window of frames."""
    return config.frame_length + (config.conv_kernel - 1) * config.frame_step


def step_samples(config):
    """Samples between output steps."""
    return config.frame_step * config.conv_stride


def output_steps(config, samples):
    """Output steps of the model for `samples` samples of audio (no padding anywhere)."""
    from dlkit.apps.trigger.edge import steps_in

    return steps_in(samples, receptive_samples(config), step_samples(config))


def label_steps(config, ends, samples):
    """(steps,) float32 labels: 1 for `label_steps` steps from the first step whose window
    ends after each trigger word's last sample (`ends`, in samples)."""
    steps = output_steps(config, samples)
    labels = np.zeros(steps, np.float32)
    hop, receptive = step_samples(config), receptive_samples(config)
    for end in ends:
        first = max(0, int(np.ceil((end - receptive) / hop)))
        labels[first : first + config.label_steps] = 1.0
    return labels


@dataclass
class Pools:
    """Decoded sounds of one split, float32 at the config's sample rate."""

    speech: list  # recorded speech (negatives)
    effects: list  # background sounds
    positives: list  # the trigger word
    words: list = field(default_factory=list)  # other words by the same voices (negatives)
    confusable: list = field(default_factory=list)  # those of them that sound like the trigger
    recorded: list = field(default_factory=list)  # (clip, trigger end samples) cut from recordings


@dataclass
class AudioSource:
    description: str
    split_files: dict  # split -> sounds.SoundFiles, or user folders
    user: bool = False
    fingerprint: str = ""
    labels: tuple = ("trigger",)
    pools: dict = field(default_factory=dict)


@dataclass
class LoadedSplit:
    """Synthesized clips: `inputs` (n, samples) float32, `targets` (n, steps) labels,
    `events` the trigger end samples of each clip."""

    inputs: np.ndarray
    targets: np.ndarray
    events: list
    skipped: list = field(default_factory=list)


def open_source(config, data, progress=None):
    """Resolves `--data`: omitted (espeak-ng trigger words, recorded speech and Debian
    sounds), or a user folder with any of:

    - `positives/`, `negatives/`, `backgrounds/`: short recordings from which clips are
      synthesized (split 70/15/15 by file name);
    - `recordings/`: long recordings, each with a label file beside it (`talk.wav`,
      `talk.txt`: one trigger time per line, or an Audacity label track), cut into clips.
      Ten or more recordings are split by file; fewer are each cut in time (the first 70%
      for training, the next 15% for validation, the last 15% for test).
    """
    if data in (None, ""):
        files = sounds.find_files()
        digest = hashlib.sha1()
        for split in sorted(files):
            for path in files[split].speech + files[split].effects:
                # The size too: a package upgrade can change a sound and keep its name.
                digest.update(f"{split}:{path}:{Path(path).stat().st_size}".encode())
        return AudioSource(
            f"synthesized clips: '{config.word}' by espeak-ng, recorded speech and sounds",
            files,
            fingerprint=digest.hexdigest()[:16],
        )
    from dlkit.apps.trigger.edge import label_file, read_labels

    folder = Path(data)
    expected = "positives/ (with negatives/ and backgrounds/) or recordings/ with label files"
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: expected a folder with {expected}")
    found = {
        name: sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in sounds.AUDIO_SUFFIXES)
        for name in USER_FOLDERS
        if (folder / name).is_dir()
    }
    if not found.get("positives") and not found.get("recordings"):
        raise InvalidInputError(f"{folder}: no audio files; expected {expected}")
    files = {split: {name: [] for name in USER_FOLDERS} for split in SPLIT_SEEDS}
    digest = hashlib.sha1(str(folder.resolve()).encode())
    for name, paths in found.items():
        for path in paths:
            digest.update(f"{path.relative_to(folder)}:{path.stat().st_size}".encode())
            if name != "recordings":
                files[sounds.split_of_name(path.name)][name].append(path)
    recordings = found.get("recordings", [])
    for path in recordings:
        labels = label_file(path)
        if labels is None:
            raise InvalidInputError(
                f"{path}: no label file {path.with_suffix('.txt').name} beside it (one trigger time "
                "in seconds per line; an empty file if the word never occurs)"
            )
        entry = (path, read_labels(labels))
        digest.update(labels.read_bytes())
        if len(recordings) >= RECORDINGS_SPLIT_BY_FILE:
            files[sounds.split_of_name(path.name)]["recordings"].append((entry, (0.0, 1.0)))
        else:
            for split, share in TIME_SPLITS.items():
                files[split]["recordings"].append((entry, share))
    return AudioSource(f"clips from {folder}", files, user=True, fingerprint=digest.hexdigest()[:16])


def recording_clips(config, path, trigger_times, share, skipped):
    """[(clip, trigger end samples)]: the `share` (start, end fractions) of a labelled
    recording cut into consecutive clips of `clip_seconds`, the last one zero-padded.
    Trigger words ending in a clip's first half second are left out (the model has not
    heard them)."""
    from dlkit.edge.audio import read_audio

    try:
        audio = read_audio(path, config.sample_rate).samples
    except InvalidInputError as error:
        skipped.append(str(error))
        return []
    rate, size = config.sample_rate, int(config.clip_seconds * config.sample_rate)
    first, last = (int(round(f * len(audio))) for f in share)
    ends = np.round(np.asarray(trigger_times) * rate).astype(np.int64)
    clips = []
    for start in range(first, last, size):
        stop = min(start + size, last)
        if stop - start < rate:  # under a second left: nothing to learn from
            break
        clip = np.zeros(size, np.float32)
        clip[: stop - start] = audio[start:stop]
        inside = ends[(ends >= start + rate // 2) & (ends <= stop)] - start
        clips.append((clip, [int(e) for e in inside]))
    return clips


def _decode(paths, config, skipped, limit=None, seed=0):
    from dlkit.edge.audio import read_audio

    paths = list(paths)
    if limit and len(paths) > limit:
        pick = np.random.default_rng(seed).choice(len(paths), limit, replace=False)
        paths = [paths[i] for i in sorted(pick)]
    decoded = []
    for path in paths:
        try:
            audio = read_audio(path, config.sample_rate).samples
        except InvalidInputError as error:
            skipped.append(str(error))
            continue
        audio = trim_silence(audio, threshold=0.005)
        if len(audio) >= config.sample_rate // 10 and sounds.rms(audio) > 1e-4:
            decoded.append(audio)  # clicks shorter than 0.1 s and silence are left out
    return decoded


def pools_of(config, source, split, skipped):
    """The split's decoded sounds (decoded once per source)."""
    key = (split, config.sample_rate, config.speech_files)
    if key not in source.pools:
        files = source.split_files[split]
        limit = config.speech_files
        if source.user:
            pools = Pools(
                speech=_decode(files["negatives"], config, skipped, limit),
                effects=_decode(files["backgrounds"], config, skipped),
                positives=_decode(files["positives"], config, skipped),
                recorded=[
                    clip
                    for (path, times), share in files["recordings"]
                    for clip in recording_clips(config, path, times, share, skipped)
                ],
            )
        else:
            positives, words = speech_bank(config, split)
            confusable = [
                w
                for i, w in enumerate(words)
                if sounds.OTHER_WORDS[i % len(sounds.OTHER_WORDS)] in sounds.CONFUSABLE_WORDS
            ]
            pools = Pools(
                speech=_decode(files.speech, config, skipped, limit, seed=SPLIT_SEEDS[split]),
                effects=_decode(files.effects, config, skipped),
                positives=positives,
                words=words,
                confusable=confusable if config.word == "activate" else [],
            )
        source.pools[key] = pools
    return source.pools[key]


def _positive(rng, config, pools):
    return pools.positives[rng.integers(len(pools.positives))]


def _negative(rng, config, pools):
    if pools.speech and (not pools.words or rng.random() < 0.6):
        audio = pools.speech[rng.integers(len(pools.speech))]
        longest = int(2.5 * config.sample_rate)
        if len(audio) > longest:
            start = int(rng.integers(0, len(audio) - longest))
            audio = audio[start : start + longest]
        return audio
    if not pools.words:
        return None
    if pools.confusable and rng.random() < 0.5:
        return pools.confusable[rng.integers(len(pools.confusable))]
    return pools.words[rng.integers(len(pools.words))]


BANK_SIZE = {"train": 800, "val": 200, "test": 200}


def speech_bank(config, split):
    """(trigger words, other words) spoken by the split's espeak-ng voices at random rates
    and pitches: built once into the dlkit cache, because espeak-ng's output varies a
    little from call to call and clips must be the same at training and evaluation."""
    from dlkit.data.cache import build_once
    from dlkit.data.speech import speak

    name = f"trigger-speech-{config.word}-{config.sample_rate}-v1"

    def build(folder):
        counts = {}
        for part, size in BANK_SIZE.items():
            rng = np.random.default_rng([SPLIT_SEEDS[part], 7])
            voices = sounds.VOICES[part]
            banks = {"positives": [], "words": []}
            for kind, bank in banks.items():
                for i in range(size):
                    text = (
                        config.word
                        if kind == "positives"
                        else sounds.OTHER_WORDS[i % len(sounds.OTHER_WORDS)]
                    )
                    bank.append(speak(text, voices[i % len(voices)], rate=int(rng.integers(120, 230)),
                                      pitch=int(rng.integers(25, 85)), sample_rate=config.sample_rate))  # fmt: skip
            arrays = {f"{kind}_{i}": audio for kind, bank in banks.items() for i, audio in enumerate(bank)}
            np.savez_compressed(folder / f"{part}.npz", **arrays)
            counts[part] = size
        return counts

    with np.load(build_once(name, build) / f"{split}.npz") as stored:
        keys = sorted(stored.files, key=lambda k: (k.split("_")[0], int(k.split("_")[1])))
        positives = [stored[k] for k in keys if k.startswith("positives_")]
        words = [stored[k] for k in keys if k.startswith("words_")]
    return positives, words


def background(rng, config, pools, samples):
    """Coloured noise plus up to 3 real sounds, looped and cut; RMS -45 to -20 dBFS."""
    exponent = float(rng.choice([0.0, 1.0, 2.0]))
    audio = sounds.coloured_noise(rng, samples, exponent) * 10 ** (rng.uniform(-60, -35) / 20)
    for _ in range(int(rng.integers(0, 4)) if pools.effects else 0):
        effect = pools.effects[rng.integers(len(pools.effects))]
        tiled = np.tile(effect, int(np.ceil(samples / len(effect))) + 1)
        start = int(rng.integers(0, len(effect)))
        audio = audio + tiled[start : start + samples] / (sounds.rms(effect) + 1e-9) * 10 ** (
            rng.uniform(-45, -25) / 20
        )
    return audio.astype(np.float32)


def _gap(kind, other, gap):
    return gap if kind == other == "positive" else 0


def synthesize_clip(rng, config, pools, samples=None):
    """(audio (samples,), trigger end samples, [(start, end, kind)] of every pasted word).
    Words never overlap, and trigger words are at least `refractory_seconds` apart: one
    said again sooner is the same request, and detection fires once for it by design."""
    samples = samples or int(config.clip_seconds * config.sample_rate)
    gap = int(config.refractory_seconds * config.sample_rate)
    audio = background(rng, config, pools, samples)
    level = sounds.rms(audio)
    placed, ends = [], []
    inserts = [("positive", _positive)] * int(rng.integers(0, config.max_positives + 1))
    inserts += [("negative", _negative)] * int(rng.integers(0, config.max_negatives + 1))
    for kind, make in inserts:
        sound = make(rng, config, pools)
        if sound is None:
            continue
        sound = sound[:samples]
        for _ in range(50):
            start = int(rng.integers(0, samples - len(sound) + 1))
            if all(
                start + len(sound) + _gap(kind, k, gap) <= a or start >= b + _gap(kind, k, gap)
                for a, b, k in placed
            ):
                break
        else:
            continue
        gain = 10 ** (rng.uniform(5, 25) / 20) * max(level, 1e-3) / (sounds.rms(sound) + 1e-9)
        audio[start : start + len(sound)] += sound * gain
        placed.append((start, start + len(sound), kind))
        if kind == "positive":
            ends.append(start + len(sound))
    peak = np.abs(audio).max()
    if peak > 0.99:
        audio *= 0.99 / peak
    return audio.astype(np.float32), sorted(ends), sorted(placed)


def load_split(config, source, split, meta=None, progress=None):
    """`<split>_clips` clips synthesized with a fixed seed per split (when there are
    recordings of the trigger word), then the clips cut from labelled recordings."""
    count = {"train": config.train_clips, "val": config.val_clips, "test": config.test_clips}[split]
    skipped = []
    pools = pools_of(config, source, split, skipped)
    if not pools.positives:
        count = 0
        if not pools.recorded:
            raise DlkitError(f"{source.description}: no {split} recordings of the trigger word")
    rng = np.random.default_rng([config.seed if split == "train" else HELD_OUT_SEED, SPLIT_SEEDS[split]])
    samples = int(config.clip_seconds * config.sample_rate)
    total = count + len(pools.recorded)
    inputs = np.zeros((total, samples), np.float32)
    targets = np.zeros((total, output_steps(config, samples)), np.float32)
    events = []
    for i in range(count):
        inputs[i], ends, _ = synthesize_clip(rng, config, pools, samples)
        targets[i] = label_steps(config, ends, samples)
        events.append(ends)
        if progress and (i + 1) % 100 == 0:
            progress(i + 1, count, f"synthesizing {split} clips")
    for i, (clip, ends) in enumerate(pools.recorded, count):
        inputs[i], targets[i] = clip, label_steps(config, ends, samples)
        events.append(ends)
    return LoadedSplit(inputs, targets, events, skipped)


def make_dataset(config, split, training=False, meta=None):
    """Batches of (audio, per-step labels), gathered by index from tensors holding the
    split; training shuffles the indices (a shuffle buffer of whole clips would copy the
    whole split, about 2 GB by default, at every epoch start)."""
    import tensorflow as tf

    from dlkit.data.batches import gathered_batches

    seed = config.seed if training else None
    dataset = gathered_batches((split.inputs, split.targets[..., None]), config.batch_size, shuffle_seed=seed)
    return dataset.prefetch(tf.data.AUTOTUNE)


def write_sample_audio(folder, word="activate", sample_rate=16000):
    """A 4-second WAV: noise with `word` (a test voice) at 1.5 s; returns its path."""
    import soundfile

    from dlkit.data.speech import speak

    rng = np.random.default_rng(0)
    audio = sounds.coloured_noise(rng, 4 * sample_rate, 1.0) * 0.01
    spoken = speak(word, sounds.VOICES["test"][0], sample_rate=sample_rate)
    start = int(1.5 * sample_rate)
    audio[start : start + len(spoken)] += 0.5 * spoken / (np.abs(spoken).max() + 1e-9)
    path = Path(folder) / "sample.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio, sample_rate)
    return path
