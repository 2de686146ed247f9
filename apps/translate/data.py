"""Data for translate: generated dates, the Bible pairs, TSV/CSV files and TFDS sets."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlkit.config import HELD_OUT_SEED
from dlkit.edge.text import normalize
from dlkit.errors import DlkitError, InvalidInputError

BIBLE = "bible"


@dataclass
class TextSource:
    """Pairs per split, plus what the model needs to know about them."""

    description: str
    splits: dict  # split -> list of (source, target)
    kind: str  # "attention" or "seq2seq": the model this data calls for under model=auto
    fingerprint: str = ""
    skipped: list = field(default_factory=list)
    labels: tuple = ()

    def pairs(self, split):
        if not self.splits.get(split):
            raise DlkitError(f"{self.description}: no {split} pairs")
        return self.splits[split]


@dataclass
class LoadedSplit:
    """One split encoded for a model: ids for training, strings for scoring."""

    texts: list
    references: list
    inputs: np.ndarray  # (n, input length) int32 source ids
    targets: np.ndarray  # attention: (n, Ty) int32 ids; seq2seq: (n,) reference strings
    decoder_targets: np.ndarray = None  # seq2seq: (n, T + 1) int32, <s> ... </s>
    skipped: list = field(default_factory=list)
    source_labels: tuple = None


def model_kind(config, source):
    kind = source.kind if config.model == "auto" else config.model
    if kind not in ("attention", "seq2seq"):
        raise DlkitError(f"model must be attention, seq2seq or auto, got {config.model!r}")
    return kind


def fingerprint(splits):
    digest = hashlib.sha1()
    for name in sorted(splits):
        for source, target in splits[name]:
            digest.update(f"{name}\t{source}\t{target}\n".encode())
    return digest.hexdigest()[:16]


def open_source(config, source, progress=None):
    """Resolves `--data`: omitted (generated dates), `bible`, a TSV/CSV file, a folder with
    `train.tsv` (+ `val.tsv`, `test.tsv`), or `tfds:NAME` (e.g. ted_hrlr_translate/pt_to_en)."""
    if source in (None, "", "dates"):
        from dlkit.apps.translate import dates

        sizes = {"train": config.train_size, "val": config.val_size, "test": config.test_size}
        splits = {
            split: dates.generate(
                split,
                n,
                seed=config.seed if split == "train" else HELD_OUT_SEED,
                max_length=config.input_length,
            )
            for split, n in sizes.items()
        }
        description = f"generated dates ({len(dates.LOCALES)} locales, years 1500-2100, seed {config.seed})"
        return TextSource(description, splits, "attention", fingerprint(splits))
    source = str(source)
    if source == BIBLE:
        from dlkit.apps.translate.sword import bible_pairs
        from dlkit.data.parallel import hash_split

        splits = hash_split(bible_pairs(), config.val_split, config.test_split)
        return TextSource(
            "Bible verses, English KJV -> Spanish RV1909", splits, "seq2seq", fingerprint(splits)
        )
    if source.startswith("tfds:"):
        return _open_tfds(config, source[5:])
    return _open_files(config, Path(source))


def _open_files(config, path):
    from dlkit.data.parallel import hash_split, read_pairs

    skipped = []
    if path.is_dir():
        files = {split: _find(path, split) for split in ("train", "val", "test")}
        if not files["train"]:
            raise InvalidInputError(f"{path}: no train.tsv / train.csv in this folder")
        if files["val"]:
            splits = {split: read_pairs(f, skipped) if f else [] for split, f in files.items()}
        else:
            splits = hash_split(read_pairs(files["train"], skipped), config.val_split, config.test_split)
    elif path.exists():
        if path.suffix.lower() not in (".tsv", ".csv", ".txt"):
            raise InvalidInputError(f"{path}: expected a .tsv, .csv or .txt file of source/target pairs")
        splits = hash_split(read_pairs(path, skipped), config.val_split, config.test_split)
    else:
        raise InvalidInputError(f"{path}: no such file or folder")
    longest = max(len(s) for pairs in splits.values() for s, _ in pairs)
    kind = "attention" if longest <= 64 else "seq2seq"
    return TextSource(f"pairs from {path}", splits, kind, fingerprint(splits), skipped)


def _find(folder, split):
    for suffix in (".tsv", ".csv", ".txt"):
        if (folder / f"{split}{suffix}").is_file():
            return folder / f"{split}{suffix}"
    return None


def _open_tfds(config, name):
    import tensorflow_datasets as tfds

    from dlkit.data.tfds_source import prepared_builder

    builder = prepared_builder(name)
    keys = builder.info.supervised_keys
    if not keys:
        raise DlkitError(f"tfds:{name} has no (source, target) supervised keys")
    available = list(builder.info.splits)
    names = {"train": "train", "val": "validation" if "validation" in available else None, "test": "test"}
    splits = {}
    for split, tfds_split in names.items():
        if tfds_split not in available:
            splits[split] = []
            continue
        data = tfds.as_numpy(builder.as_dataset(split=tfds_split, as_supervised=True))
        splits[split] = [(a.decode("utf-8"), b.decode("utf-8")) for a, b in data]
    return TextSource(f"tfds:{name}", splits, "seq2seq", fingerprint(splits))


def load_split(config, source, split, meta=None, progress=None):
    """Encodes one split with the model's vocabularies (`meta`); pairs that do not fit
    the model (too long, empty) are left out and reported in `.skipped`."""
    if meta is None:
        raise DlkitError("translate needs the model's vocabularies to encode data")
    from dlkit.apps.translate.edge import tokenizers

    pairs = source.pairs(split)
    src_tok, tgt_tok = tokenizers(meta)
    lowercase = meta["lowercase"]
    texts, refs, inputs, targets, skipped = [], [], [], [], list(source.skipped if split == "train" else [])
    too_long = 0
    if meta["model"] == "attention":
        tx, ty = meta["input_length"], meta["output_length"]
        for text, target in pairs:
            src, tgt = normalize(text, lowercase), normalize(target, False)
            if len(src) > tx or len(tgt) > ty or not src:
                too_long += 1
                continue
            texts.append(text)
            refs.append(target)
            inputs.append(src_tok.encode(src, tx))
            targets.append(tgt_tok.encode(tgt, ty))
        if too_long:
            skipped.append(f"{split}: {too_long} pairs longer than {tx} -> {ty} characters left out")
        if not texts:
            raise DlkitError(f"{source.description}: no {split} pair fits the model")
        return LoadedSplit(texts, refs, np.stack(inputs), np.stack(targets), skipped=skipped)
    limit = meta["max_tokens"]
    start, end = meta["target_vocab"].index("<s>"), meta["target_vocab"].index("</s>")
    decoder = []
    for text, target in pairs:
        src = src_tok.encode(normalize(text, lowercase))
        tgt = tgt_tok.encode(normalize(target, lowercase))
        if not src or not tgt or len(src) > limit or len(tgt) > limit:
            too_long += 1
            continue
        texts.append(text)
        refs.append(target)
        inputs.append(np.pad(np.array(src, np.int32), (0, limit - len(src))))
        decoder.append(np.pad(np.array([start, *tgt, end], np.int32), (0, limit - len(tgt))))
    if too_long:
        skipped.append(f"{split}: {too_long} pairs longer than {limit} tokens left out")
    if not texts:
        raise DlkitError(f"{source.description}: no {split} pair fits max_tokens={limit}")
    return LoadedSplit(
        texts, refs, np.stack(inputs), np.array(refs, dtype=object), np.stack(decoder), skipped=skipped
    )


def make_dataset(config, loaded, training=False, meta=None):
    """Batched `tf.data.Dataset`: attention (ids, target ids); seq2seq ((ids, decoder
    input), decoder target) with teacher forcing."""
    import tensorflow as tf

    from dlkit.apps.translate.config import setting
    from dlkit.data.batches import gathered_batches

    kind = "attention" if loaded.decoder_targets is None else "seq2seq"
    batch_size = setting(config, kind, "batch_size")
    if loaded.decoder_targets is None:
        arrays = (loaded.inputs, loaded.targets)
    else:
        decoder = loaded.decoder_targets
        arrays = ((loaded.inputs, decoder[:, :-1]), decoder[:, 1:])
    seed = config.seed if training else None
    return gathered_batches(arrays, batch_size, shuffle_seed=seed).prefetch(tf.data.AUTOTUNE)
