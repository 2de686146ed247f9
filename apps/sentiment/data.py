"""Data for sentiment: the rated movie-review sentences (offline default), user CSV/TSV/JSONL
files, and TFDS text-classification sets; texts become word ids with the one tokenizer
that devices use too (dlkit.edge.text.WordVocab)."""

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlkit.console import counted
from dlkit.errors import DlkitError, InvalidInputError

BINARY_LABELS = ("negative", "positive")
FIVE_LABELS = ("very negative", "negative", "neutral", "positive", "very positive")
# Upper bounds of the five classes on the mean rating (-4..4), last class open.
FIVE_BINS = (-2.0, -0.5, 0.5, 2.0)
SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt")


@dataclass
class TextSource:
    """Labelled texts per split (label ids into `labels`)."""

    description: str
    labels: tuple
    splits: dict  # split -> list of (text, label id)
    fingerprint: str = ""
    skipped: list = field(default_factory=list)
    ratings: dict = field(default_factory=dict)  # split -> mean human rating per row (rated sets)

    def rows(self, split):
        if not self.splits.get(split):
            raise DlkitError(f"{self.description}: no {split} texts")
        return self.splits[split]


@dataclass
class LoadedSplit:
    """One split as word ids: `inputs` (n, max_length) int32, `targets` (n,) label ids,
    `fit_targets` (n, classes) float32: what the loss compares with (one-hot, or for rated
    sentences and `soft_labels` > 0 the share of positive judgement)."""

    texts: list
    inputs: np.ndarray
    targets: np.ndarray
    fit_targets: np.ndarray
    skipped: list = field(default_factory=list)


def fingerprint(splits):
    digest = hashlib.sha1()
    for name in sorted(splits):
        for text, label in splits[name]:
            digest.update(f"{name}\t{label}\t{text}\n".encode())
    return digest.hexdigest()[:16]


def rating_label(rating, classes):
    """A mean rating (-4..4) -> label id (binary: None for exactly 0, left out)."""
    if classes == "binary":
        return None if rating == 0 else int(rating > 0)
    return int(np.searchsorted(FIVE_BINS, rating, side="right"))


def open_source(config, data, progress=None):
    """Resolves `--data`: omitted or `movie` (the rated movie-review sentences, fixed split),
    `tweets` / `amazon` / `nyt` (the cross-domain rated sets, all as the test split), a
    CSV/TSV/JSONL file or a folder of train/val/test files, or `tfds:NAME`."""
    from dlkit.apps.sentiment import reviews

    if config.classes not in ("binary", "five"):
        raise DlkitError(f"classes must be binary or five, got {config.classes!r}")
    if data in (None, "", "movie") or data in reviews.CROSS_DOMAIN:
        return rated_source(config, data or "movie", reviews.load_sets())
    data = str(data)
    if data.startswith("tfds:"):
        return _open_tfds(config, data[5:])
    return _open_files(config, Path(data))


def rated_source(config, name, sets):
    """A TextSource over one of the rated sets (`sets`: reviews.load_sets())."""
    from dlkit.apps.sentiment import reviews

    labels = BINARY_LABELS if config.classes == "binary" else FIVE_LABELS
    rows, neutral = [], 0
    for text, rating in sets[name]:
        label = rating_label(rating, config.classes)
        if label is None:
            neutral += 1
        else:
            rows.append((text, label, rating))
    if name == "movie":
        rated = reviews.split_rows(rows)
        what = f"rated movie-review sentences ({config.classes} labels, fixed split)"
    else:
        rated = {"train": [], "val": [], "test": rows}
        what = f"rated {name} sentences ({config.classes} labels, all as the test split)"
    splits = {split: [(text, label) for text, label, _ in part] for split, part in rated.items()}
    ratings = {split: [rating for _, _, rating in part] for split, part in rated.items()}
    skipped = [f"{name}: {neutral} sentences rated exactly 0 left out (binary labels)"] if neutral else []
    return TextSource(what, labels, splits, fingerprint(splits), skipped, ratings)


def _configured_labels(config):
    return tuple(label.strip() for label in config.labels.split(",") if label.strip())


def read_labelled(path, config):
    """(text, label string) rows of a CSV/TSV/JSONL file; rows with an empty text are
    skipped and reported. Raises InvalidInputError naming the file (and line)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInputError(f"{path}: expected a .csv, .tsv or .jsonl file of texts and labels")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not UTF-8 text") from None
    text_key, label_key = config.text_column, config.label_column
    rows, skipped = [], []
    if suffix == ".jsonl":
        records = []
        for number, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise InvalidInputError(f"{path}:{number}: not a JSON object") from None
            if not isinstance(record, dict):
                raise InvalidInputError(f"{path}:{number}: not a JSON object")
            records.append((number, record))
        columns = set().union(*(record.keys() for _, record in records)) if records else set()
    else:
        delimiter = "\t" if suffix in (".tsv", ".txt") else ","
        reader = csv.DictReader(content.splitlines(), delimiter=delimiter)
        columns = set(reader.fieldnames or ())
        records = [(number, record) for number, record in enumerate(reader, 2)]
    missing = [key for key in (text_key, label_key) if key not in columns]
    if missing:
        raise InvalidInputError(
            f"{path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(sorted(columns)) or 'none'}); "
            "name them with --set text_column=... --set label_column=..."
        )
    for number, record in records:
        text, label = record.get(text_key), record.get(label_key)
        text = "" if text is None else str(text).strip()
        label = "" if label is None else str(label).strip()
        if not text or not label:
            skipped.append(f"{path.name}:{number}: empty {'text' if not text else 'label'}")
            continue
        rows.append((number, text, label))
    if not rows:
        raise InvalidInputError(f"{path}: no labelled texts")
    return rows, skipped


def _open_files(config, path):
    if path.is_dir():
        files = {split: _find(path, split) for split in ("train", "val", "test")}
        if not files["train"]:
            raise InvalidInputError(f"{path}: no train.csv / train.tsv / train.jsonl in this folder")
        if files["val"]:
            named = {split: read_labelled(f, config) if f else ([], []) for split, f in files.items()}
            sources = files
        else:
            named, sources = _hash_split(files["train"], config)
            if files["test"]:
                named["test"], sources["test"] = read_labelled(files["test"], config), files["test"]
    elif path.is_file():
        named, sources = _hash_split(path, config)
    else:
        raise InvalidInputError(f"{path}: no such file or folder")
    labels = _configured_labels(config) or tuple(sorted({label for _, _, label in named["train"][0]}))
    if len(labels) < 2:
        raise InvalidInputError(
            f"{path}: the training texts have {counted(len(labels), 'label')}; at least 2 are needed"
        )
    index = {label: i for i, label in enumerate(labels)}
    splits, skipped = {}, []
    for split, (rows, split_skipped) in named.items():
        skipped += split_skipped
        for number, _, label in rows:
            if label not in index:
                raise InvalidInputError(
                    f"{sources[split]}:{number}: label {label!r} is not one of the classes ({', '.join(labels)})"
                )
        splits[split] = [(text, index[label]) for _, text, label in rows]
    return TextSource(f"texts from {path}", labels, splits, fingerprint(splits), skipped)


def _hash_split(path, config):
    """One file's rows split by the duplicate-aware text hash (val_split, test_split)."""
    from dlkit.apps.sentiment import reviews

    rows, skipped = read_labelled(path, config)
    by_split = {"train": [], "val": [], "test": []}
    for row in rows:
        by_split[
            reviews.split_of(row[1], round(config.val_split * 100), round(config.test_split * 100))
        ].append(row)
    named = {split: (by_split[split], skipped if split == "train" else []) for split in by_split}
    return named, dict.fromkeys(by_split, path)


def _find(folder, split):
    for suffix in SUFFIXES[:3]:
        if (folder / f"{split}{suffix}").is_file():
            return folder / f"{split}{suffix}"
    return None


def _open_tfds(config, name):
    """A TFDS text-classification set with (text, label) supervised keys (imdb_reviews...);
    without a validation split, part of train by the text hash."""
    import tensorflow_datasets as tfds

    from dlkit.apps.sentiment import reviews
    from dlkit.data.tfds_source import prepared_builder

    builder = prepared_builder(name)
    keys = builder.info.supervised_keys
    if not keys:
        raise DlkitError(f"tfds:{name} has no (text, label) supervised keys")
    label_feature = builder.info.features[keys[1]]
    labels = tuple(getattr(label_feature, "names", None) or ())
    if len(labels) < 2:
        raise DlkitError(f"tfds:{name}: the label feature has no class names")
    available = list(builder.info.splits)
    rows = {}
    for split in ("train", "validation", "test"):
        if split in available:
            data = tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True))
            rows[split] = [(text.decode("utf-8"), int(label)) for text, label in data]
    if "train" not in rows:
        raise DlkitError(f"tfds:{name} has no train split")
    if "validation" in rows:
        splits = {"train": rows["train"], "val": rows["validation"], "test": rows.get("test", [])}
    else:
        held = reviews.split_rows(rows["train"], round(config.val_split * 100), 0)
        splits = {"train": held["train"], "val": held["val"], "test": rows.get("test", [])}
    return TextSource(f"tfds:{name}", labels, splits, fingerprint(splits))


def load_split(config, source, split, meta=None, progress=None):
    """One split as word ids with the model's vocabulary (`meta["vocab"]`); texts without
    a single word (only punctuation...) are left out and reported."""
    from dlkit.apps.sentiment.edge import encode, has_words, split_words

    if meta is None or "vocab" not in meta:
        raise DlkitError("sentiment needs the model's vocabulary to encode texts")
    if tuple(meta["labels"]) != tuple(source.labels):
        raise DlkitError(
            f"{source.description}: labels {', '.join(source.labels)} differ from the model's "
            f"({', '.join(meta['labels'])})"
        )
    length = meta["max_length"]
    texts, inputs, targets, kept_ratings = [], [], [], []
    empty = cut = 0
    classes = len(source.labels)
    ratings = source.ratings.get(split)
    soft = ratings is not None and classes == 2 and config.soft_labels > 0
    for k, (text, label) in enumerate(source.rows(split)):
        tokens = split_words(text, meta)
        if not has_words(tokens):
            empty += 1
            continue
        row, over = encode(text, tokens, meta)
        cut += over > 0
        texts.append(text)
        inputs.append(row)
        targets.append(label)
        if soft:
            kept_ratings.append(ratings[k])
    skipped = list(source.skipped) if split == "train" else []
    if empty:
        skipped.append(f"{split}: {empty} texts without a word left out")
    if cut:
        unit = "tokens" if meta.get("tokenizer") == "bert_wordpiece" else "words"
        skipped.append(f"{split}: {cut} texts longer than {length} {unit} cut to {length}")
    if not texts:
        raise DlkitError(f"{source.description}: no {split} text has a word")
    targets = np.array(targets, np.int32)
    if soft:
        positive = 1.0 / (1.0 + np.exp(-config.soft_labels * np.array(kept_ratings, np.float64)))
        fit_targets = np.stack([1.0 - positive, positive], axis=1).astype(np.float32)
    else:
        fit_targets = np.eye(classes, dtype=np.float32)[targets]
    from dlkit.engine import stack

    return LoadedSplit(texts, stack(inputs), targets, fit_targets, skipped)


def training_words(source):
    """Every word of the training texts, with its count (for the vocabulary)."""
    from collections import Counter

    from dlkit.edge.text import words

    counts = Counter()
    for text, _ in source.rows("train"):
        counts.update(words(text))
    return counts


def make_dataset(config, split, training=False, meta=None):
    """Batched (ids, target distribution) pairs: soft for rated training sentences
    (`soft_labels`), one-hot otherwise, so validation accuracy counts hard labels."""
    import tensorflow as tf

    from dlkit.data.batches import gathered_batches

    fit_targets = (
        split.fit_targets if training else np.eye(split.fit_targets.shape[1], dtype=np.float32)[split.targets]
    )
    seed = config.seed if training else None  # a new order each epoch, from the seed and the epoch
    arrays = (split.inputs, fit_targets)
    if not (config.group_by_length and isinstance(split.inputs, dict) and "attention_mask" in split.inputs):
        return gathered_batches(arrays, config.batch_size, shuffle_seed=seed).prefetch(tf.data.AUTOTUNE)
    # The encoder takes any length: texts of similar length batched together, each batch
    # cut to its longest text (rounded up to 8 tokens, a few shapes to trace).
    lengths = split.inputs["attention_mask"].sum(axis=1)
    dataset = gathered_batches(
        arrays, config.batch_size, shuffle_seed=seed, lengths=lengths, group=config.group_by_length
    )
    return dataset.map(trimmed_to_longest, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def trimmed_to_longest(inputs, targets, multiple=8):
    """A batch of the encoder's named inputs cut after its longest text's last token
    (rounded up to `multiple`): the padding it drops is masked out anyway."""
    import tensorflow as tf

    mask = inputs["attention_mask"]
    longest = tf.reduce_max(tf.reduce_sum(mask, axis=1))
    width = tf.minimum(tf.shape(mask)[1], (longest + multiple - 1) // multiple * multiple)
    return {name: values[:, :width] for name, values in inputs.items()}, targets


def write_sample_folder(folder):
    """A tiny train/val/test set of short reviews in TSV files (for the contract kit)."""
    import random

    good = ["great", "wonderful", "moving", "funny", "brilliant", "superb"]
    bad = ["awful", "boring", "dull", "terrible", "clumsy", "tedious"]
    things = ["film", "movie", "story", "script", "cast", "ending"]
    rng = random.Random(0)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 96), ("val", 32), ("test", 32)):
        lines = ["text\tlabel"]
        for _ in range(n):
            positive = rng.random() < 0.5
            word = rng.choice(good if positive else bad)
            lines.append(
                f"a {word} {rng.choice(things)} , really {word} .\t{'positive' if positive else 'negative'}"
            )
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
