"""Data for the masked language model: documents (the offline corpus, text files or a
folder of them, TFDS text sets), WordPiece sequences packed to the model's length, and
masking: tensorflow-text's `mask_language_model` in the training pipeline (new masks every
epoch), a seeded numpy draw with the same 80/10/10 rule for the held-out splits."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlkit.config import HELD_OUT_SEED
from dlkit.edge.text import bert_normalize
from dlkit.errors import DlkitError, InvalidInputError

TEXT_SUFFIXES = (".txt", ".md", ".rst", ".text")
PARAGRAPHS_PER_DOCUMENT = 20  # a single user file is cut into documents of this many paragraphs
MIN_TOKENS = 8  # a document's last, shorter sequence is kept from this many tokens
TEACHER_CHUNK = 1024  # sequences the teacher embeds between two saves (about 30 s on 2 cores)


@dataclass
class CorpusSource:
    description: str
    documents: dict  # split -> list of corpus.Document
    fingerprint: str = ""
    skipped: list = field(default_factory=list)
    labels: tuple = ()

    def texts(self, split):
        return [p for doc in self.documents.get(split, []) for p in doc.paragraphs]


@dataclass
class LoadedSplit:
    """Packed sequences and a fixed masking of them (the model's four named inputs)."""

    inputs: dict  # token_ids, segment_ids, attention_mask (n, length); masked_positions (n, slots)
    # (n, slots) original ids at the masked positions, 0 in empty slots; with next-sentence
    # prediction a last column holds the pair's label (1 = B follows A).
    targets: np.ndarray
    sequences: np.ndarray  # (n, length) unmasked ids, [CLS] ... [SEP], 0-padded
    skipped: list = field(default_factory=list)
    segments: np.ndarray = None  # (n, length) segment ids (1 for the second of a pair)
    next_labels: np.ndarray = None  # (n,) next-sentence pairs: 1 when B follows A


def fingerprint(documents):
    digest = hashlib.sha1()
    for split in sorted(documents):
        for doc in documents[split]:
            digest.update(f"{split}\t{doc.name}\t{len(doc.paragraphs)}\t{doc.paragraphs[:1]}\n".encode())
    return digest.hexdigest()[:16]


def split_documents(docs, config):
    from dlkit.apps.mlm.corpus import split_of

    splits = {"train": [], "val": [], "test": []}
    for doc in docs:
        splits[split_of(doc.name, config.val_split, config.test_split)].append(doc)
    # Little data: still one held-out document each, taken from the end of training.
    for held_out in ("val", "test"):
        if not splits[held_out] and len(splits["train"]) >= 3:
            splits[held_out].append(splits["train"].pop())
    return splits


def open_source(config, data, progress=None):
    """`--data`: omitted (the offline corpus, `corpus` names its sources), a text file,
    a folder of text files (read recursively), or `tfds:NAME` (its `text` feature)."""
    from dlkit.apps.mlm import corpus

    if data in (None, ""):
        names = [n.strip() for n in config.corpus.split(",") if n.strip()]
        unknown = [n for n in names if n not in corpus.SOURCES]
        if unknown or not names:
            raise DlkitError(
                f"corpus names {', '.join(unknown) or 'nothing'}; choose from {', '.join(corpus.SOURCES)}"
            )
        docs = corpus.documents(names)
        found = [n for n in names if any(d.name.startswith(n + "/") for d in docs)]
        if config.max_documents:
            step = max(1, len(docs) // config.max_documents)
            docs = docs[::step][: config.max_documents]
        splits = split_documents(docs, config)
        # A source whose Debian package is missing yields nothing: train on the others,
        # but say so (the vocabulary and the model then differ from the shipped ones).
        missing = [f"corpus source {n}: not installed ({corpus.INSTALL})" for n in names if n not in found]
        return CorpusSource(f"offline corpus ({', '.join(found)})", splits, fingerprint(splits), missing)
    data = str(data)
    if data.startswith("tfds:"):
        return _open_tfds(config, data[5:])
    return _open_files(config, Path(data))


def read_text_file(path, skipped):
    """A file's paragraphs (blank-line separated, whitespace collapsed), or [] with the
    reason in `skipped` when it is not UTF-8 text or holds none."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        skipped.append(f"{path}: not UTF-8 text")
        return []
    except OSError as error:
        skipped.append(f"{path}: cannot read ({error.strerror})")
        return []
    if "\x00" in text:
        skipped.append(f"{path}: binary, not text")
        return []
    paragraphs = [" ".join(p.split()) for p in text.replace("\r\n", "\n").split("\n\n")]
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs:
        skipped.append(f"{path}: empty")
    return paragraphs


def _open_files(config, path):
    from dlkit.apps.mlm.corpus import Document

    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise InvalidInputError(f"{path}: no text files ({', '.join(TEXT_SUFFIXES)}) in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise InvalidInputError(f"{path}: no such file or folder")
    skipped, docs = [], []
    for file in files:
        paragraphs = read_text_file(file, skipped)
        name = str(file.relative_to(path)) if path.is_dir() else file.name
        if len(files) == 1:  # one file: documents of consecutive paragraphs
            for start in range(0, len(paragraphs), PARAGRAPHS_PER_DOCUMENT):
                docs.append(
                    Document(f"{name}/{start}", tuple(paragraphs[start : start + PARAGRAPHS_PER_DOCUMENT]))
                )
        elif paragraphs:
            docs.append(Document(name, tuple(paragraphs)))
    if not docs:
        raise InvalidInputError(f"{path}: no readable text ({'; '.join(skipped[:3])})")
    splits = split_documents(docs, config)
    if not splits["train"]:
        raise InvalidInputError(f"{path}: too little text to hold out validation and test documents")
    return CorpusSource(f"text from {path}", splits, fingerprint(splits), skipped)


def _open_tfds(config, name):
    import tensorflow_datasets as tfds

    from dlkit.apps.mlm.corpus import Document
    from dlkit.data.tfds_source import prepared_builder

    builder = prepared_builder(name)
    if "text" not in builder.info.features:
        raise DlkitError(f"tfds:{name} has no `text` feature")
    docs = []
    for split in builder.info.splits:
        for k, row in enumerate(tfds.as_numpy(builder.as_dataset(split=split))):
            paragraphs = [p for p in row["text"].decode("utf-8").split("\n") if p.strip()]
            if paragraphs:
                docs.append(Document(f"{split}/{k}", tuple(paragraphs)))
    splits = split_documents(docs, config)
    return CorpusSource(f"tfds:{name}", splits, fingerprint(splits))


def tf_tokenizer(vocab):
    """tensorflow-text's WordPiece over `vocab` for normalised text (`bert_normalize`):
    the training pipeline's tokenizer, id for id with dlkit.edge.text.WordPiece."""
    import tensorflow_text as tf_text

    return tf_text.FastBertTokenizer(
        vocab=list(vocab), token_out_type="int64", unknown_token="[UNK]", lower_case_nfd_strip_accents=False
    )


def tokenize(texts, vocab, batch_size=1024):
    """Normalised texts -> list of id lists, tokenized by tensorflow-text in a tf.data
    pipeline (parallel over batches)."""
    import tensorflow as tf

    if not texts:
        return []
    tokenizer = tf_tokenizer(vocab)
    dataset = (
        tf.data.Dataset.from_tensor_slices(texts)
        .batch(batch_size)
        .map(lambda t: tokenizer.tokenize(t), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    )
    ids = []
    for ragged in dataset:
        values, lengths = ragged.flat_values.numpy(), ragged.row_lengths().numpy()
        ids += [row.tolist() for row in np.split(values, np.cumsum(lengths)[:-1])]
    return ids


def streams(documents, vocab, meta):
    """Each document's paragraphs tokenized end to end: one id list per document."""
    texts, owners = [], []
    for k, doc in enumerate(documents):
        for paragraph in doc.paragraphs:
            texts.append(bert_normalize(paragraph, meta["lowercase"]))
            owners.append(k)
    per_document = [[] for _ in documents]
    for owner, row in zip(owners, tokenize(texts, vocab)):
        per_document[owner] += row
    return per_document


def pack(documents, vocab, meta):
    """Each document's tokens cut into sequences of `max_length` ([CLS] + up to
    max_length - 2 tokens + [SEP], 0-padded)."""
    length, ids = meta["max_length"], meta["special_ids"]
    room, rows = length - 2, []
    for stream in streams(documents, vocab, meta):
        for start in range(0, len(stream), room):
            chunk = stream[start : start + room]
            if len(chunk) >= MIN_TOKENS or (start == 0 and chunk):
                rows.append([ids["[CLS]"], *chunk, ids["[SEP]"]])
    return _padded(rows, length)


def _padded(rows, length):
    sequences = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        sequences[i, : len(row)] = row
    return sequences


def pair(documents, vocab, meta, rng):
    """Next-sentence pairs `[CLS] A [SEP] B [SEP]`: each document's tokens cut into
    segments of (max_length - 3) / 2; for every segment with a successor, B is that
    successor (label 1) or, with probability 1/2, a segment of another document (label 0).

    Returns:
        (sequences (n, length), segment ids (n, length): 0 for [CLS] A [SEP], 1 for
        B [SEP]), labels (n,) 1 when B follows A.
    """
    length, ids = meta["max_length"], meta["special_ids"]
    half = (length - 3) // 2
    pieces = [
        [stream[start : start + half] for start in range(0, len(stream), half)]
        for stream in streams(documents, vocab, meta)
    ]
    owners = [(d, k) for d, doc in enumerate(pieces) for k in range(len(doc))]
    rows, segment_rows, labels = [], [], []
    for d, doc in enumerate(pieces):
        for k in range(len(doc) - 1):
            first, label = doc[k], int(rng.random() < 0.5)
            second = doc[k + 1]
            if not label:
                others = [owner for owner in rng.choice(len(owners), 8) if owners[owner][0] != d]
                if not others:  # one document only: nothing else to draw from
                    continue
                other_doc, other_piece = owners[others[0]]
                second = pieces[other_doc][other_piece]
            rows.append([ids["[CLS]"], *first, ids["[SEP]"], *second, ids["[SEP]"]])
            segment_rows.append([0] * (len(first) + 2) + [1] * (len(second) + 1))
            labels.append(label)
    return _padded(rows, length), _padded(segment_rows, length), np.array(labels, np.int32)


def sequence_texts(sequences, vocab):
    """The text of each packed sequence: its WordPiece tokens with "##" pieces joined to
    the word before, [CLS], [SEP] and padding left out (normalised, as tokenized)."""
    from dlkit.edge.text import bert_wordpiece

    pieces = bert_wordpiece(vocab)
    return [pieces.decode(row) for row in sequences]


def teacher_embeddings(sequences, meta, batch_size=64, progress=None):
    """(n, width) float32: the sentence embedding the distillation teacher
    (`meta["distill"]["teacher"]`, a pretrained encoder of dlkit.pretrained.text) gives
    the text of each sequence, re-tokenized with its own vocabulary to the same length.
    Computed once per teacher and set of texts into the cache (minutes on a CPU): the key
    is the texts the teacher reads, so a change in how they are rebuilt is a new entry.
    Saved in chunks of `TEACHER_CHUNK` sequences as they are done, so an interrupted
    build goes on where it stopped."""
    from dlkit.data.cache import build_once, chunked_array

    name, length = meta["distill"]["teacher"], meta["max_length"]
    texts = sequence_texts(sequences, meta["vocab"])
    digest = hashlib.sha1("\n".join(texts).encode("utf-8"))

    def build(folder):
        from dlkit.edge.text import bert_inputs
        from dlkit.layers.bert import ENCODER_INPUTS
        from dlkit.pretrained.bert import sentence_encoder

        model, vocab = sentence_encoder(name, length)
        special = {token: vocab.index(token) for token in ("[CLS]", "[SEP]")}
        rows = [bert_inputs(ids, special, length)[0] for ids in tokenize(texts, vocab)]
        columns = [np.stack([row[key] for row in rows]) for key in ENCODER_INPUTS]

        what = f"{name} embeddings of {len(rows)} sequences"

        def embed(start, stop):
            parts = []
            for first in range(start, stop, batch_size):
                last = min(first + batch_size, stop)
                parts.append(np.asarray(model.predict_on_batch([c[first:last] for c in columns])))
                if progress:
                    progress(last, len(rows), what)
            return np.concatenate(parts).astype(np.float32)

        chunked_array(folder / "embeddings.npy", len(rows), TEACHER_CHUNK, embed, progress, what)
        return {"teacher": name, "sequences": len(rows), "length": length}

    folder = build_once(
        f"mlm-teacher-{name}-{length}-{digest.hexdigest()[:16]}", build, marker="teacher.json", resumable=True
    )
    return np.load(folder / "embeddings.npy")


def selectable(sequences, meta):
    """Positions that may be masked: every token that is not a reserved one."""
    reserved = np.array(sorted(meta["special_ids"].values()))
    return ~np.isin(sequences, reserved)


def mask_sequences(sequences, meta, rate, rng):
    """The held-out masking: per sequence, round(rate x selectable tokens) positions
    (at least one, at most `max_predictions`), of which 80% become [MASK], 10% a random
    token and 10% stay, drawn with `rng`. Returns (inputs dict, targets (n, slots))."""
    slots, vocab_size = meta["max_predictions"], len(meta["vocab"])
    mask_id = meta["special_ids"]["[MASK]"]
    can = selectable(sequences, meta)
    token_ids = sequences.copy()
    positions = np.zeros((len(sequences), slots), np.int32)
    targets = np.zeros((len(sequences), slots), np.int32)
    for i, row in enumerate(sequences):
        candidates = np.flatnonzero(can[i])
        if not len(candidates):
            continue
        count = min(slots, max(1, int(round(rate * len(candidates)))))
        chosen = np.sort(rng.choice(candidates, count, replace=False))
        positions[i, :count] = chosen
        targets[i, :count] = row[chosen]
        draw = rng.random(count)
        token_ids[i, chosen[draw < 0.8]] = mask_id
        randoms = chosen[(draw >= 0.8) & (draw < 0.9)]
        token_ids[i, randoms] = rng.integers(0, vocab_size, len(randoms))
    inputs = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(sequences),
        "attention_mask": (sequences != 0).astype(np.int32),
        "masked_positions": positions,
    }
    return inputs, targets


def load_split(config, source, split, meta=None, progress=None):
    """Packed sequences of one split, masked once with a fixed seed (`HELD_OUT_SEED`, per split); held-out
    splits keep at most `eval_sequences` sequences (a fixed random sample)."""
    if meta is None:
        raise DlkitError("mlm needs the model's vocabulary to encode text")
    docs = source.documents.get(split) or []
    if not docs:
        raise DlkitError(f"{source.description}: no {split} documents")
    # Not the run's seed: every model is scored on the same masked positions.
    rng = np.random.default_rng(HELD_OUT_SEED + {"train": 0, "val": 1, "test": 2}.get(split, 3))
    if meta.get("next_sentence"):
        sequences, segments, labels = pair(docs, meta["vocab"], meta, rng)
    else:
        sequences = pack(docs, meta["vocab"], meta)
        segments, labels = np.zeros_like(sequences), None
    if not len(sequences):
        raise DlkitError(f"{source.description}: the {split} documents hold no text")
    if split != "train" and config.eval_sequences and len(sequences) > config.eval_sequences:
        keep = np.sort(rng.choice(len(sequences), config.eval_sequences, replace=False))
        sequences, segments = sequences[keep], segments[keep]
        labels = None if labels is None else labels[keep]
    inputs, targets = mask_sequences(sequences, meta, config.mask_rate, rng)
    inputs["segment_ids"] = segments
    if labels is not None:  # the next-sentence label rides in a last column
        targets = np.concatenate([targets, labels[:, None]], axis=1)
    skipped = list(source.skipped) if split == "train" else []
    return LoadedSplit(inputs, targets, sequences, skipped, segments, labels)


def make_dataset(config, split, training=False, meta=None):
    """(inputs, targets, weights) batches. Training: tensorflow-text draws new masks for
    every batch (`steps_per_epoch` batches an epoch); held-out: the split's fixed masks."""
    import tensorflow as tf

    from dlkit.data.batches import gathered_batches

    next_sentence = split.next_labels is not None
    # The teacher's embeddings only where `fit` reads them (scoring a split never does).
    teacher = None
    if meta and meta.get("distill"):
        from dlkit.console import ProgressPrinter

        teacher = teacher_embeddings(split.sequences, meta, progress=ProgressPrinter())
    if not training:
        targets = split.targets[:, :-1] if next_sentence else split.targets
        ones = np.ones(len(targets), np.float32)
        targets, weights = named_targets(
            targets, (targets > 0).astype(np.float32), ones, split.next_labels, teacher
        )
        dataset = tf.data.Dataset.from_tensor_slices((split.inputs, targets, weights))
        return dataset.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)
    mask = masking_fn(meta, config.mask_rate)
    rows = (
        split.sequences,
        split.segments,
        split.next_labels if next_sentence else np.zeros(len(split.sequences)),
        teacher if teacher is not None else np.zeros((len(split.sequences), 0), np.float32),
    )
    # `steps_per_epoch` full batches an epoch, the sequences in new orders drawn from the
    # seed and the epoch.
    dataset = gathered_batches(
        rows, config.batch_size, shuffle_seed=config.seed, length=config.steps_per_epoch * config.batch_size
    )
    return dataset.map(mask, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def masking_fn(meta, rate):
    """fn(sequences, segment ids (batch, length), next-sentence labels (batch,), teacher
    embeddings (batch, width; width 0 without distillation)) -> (inputs, targets, weights)
    with BERT's
    masking drawn by tensorflow-text: `rate` of the selectable tokens of each row (at
    most `max_predictions`), 80% [MASK], 10% a random token, 10% unchanged."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    slots, length = meta["max_predictions"], meta["max_length"]
    selector = tf_text.RandomItemSelector(
        max_selections_per_batch=slots,
        selection_rate=rate,
        unselectable_ids=sorted(meta["special_ids"].values()),
    )
    chooser = tf_text.MaskValuesChooser(len(meta["vocab"]), meta["special_ids"]["[MASK]"], 0.8, 0.1)

    def mask(sequences, segments, next_labels, teacher=None):
        ragged = tf.RaggedTensor.from_tensor(tf.cast(sequences, tf.int64), padding=0)
        masked, positions, originals = tf_text.mask_language_model(ragged, selector, chooser)
        positions, weights = tf_text.pad_model_inputs(positions, max_seq_length=slots)
        originals, _ = tf_text.pad_model_inputs(originals, max_seq_length=slots)
        token_ids = masked.to_tensor(default_value=0, shape=[None, length])
        inputs = {
            "token_ids": tf.cast(token_ids, tf.int32),
            "segment_ids": tf.cast(segments, tf.int32),
            "attention_mask": tf.cast(sequences != 0, tf.int32),
            "masked_positions": tf.cast(positions, tf.int32),
        }
        targets, weights = named_targets(
            tf.cast(originals, tf.int32),
            tf.cast(weights, tf.float32),
            tf.ones_like(next_labels, tf.float32),
            tf.cast(next_labels, tf.int32) if meta.get("next_sentence") else None,
            teacher if meta.get("distill") else None,
        )
        return inputs, targets, weights

    return mask


def named_targets(targets, weights, ones, next_labels=None, teacher=None):
    """(targets, weights) as the model's outputs are named: the masked tokens alone, or a
    dict with the next-sentence labels and the teacher's embeddings (each weighted by
    `ones`) beside them when the model has those heads."""
    if next_labels is None and teacher is None:
        return targets, weights
    targets, weights = {"mlm": targets}, {"mlm": weights}
    if next_labels is not None:
        targets["nsp"], weights["nsp"] = next_labels, ones
    if teacher is not None:
        targets["distill"], weights["distill"] = teacher, ones
    return targets, weights


def unigram_counts(split, vocab_size):
    """Counts of every id among the selectable tokens of a split's sequences."""
    return np.bincount(split.sequences[split.sequences > 0].ravel(), minlength=vocab_size)


SAMPLE = {
    "python.txt": [
        "The function returns a list of the items in the order they were added.",
        "A module is a file containing Python definitions and statements.",
        "The loop runs until the list is empty, then the function returns None.",
    ],
    "fortunes.txt": [
        "A journey of a thousand miles begins with a single step.",
        "The early bird gets the worm, but the second mouse gets the cheese.",
        "Time flies like an arrow; fruit flies like a banana.",
    ],
    "bible.txt": [
        "In the beginning God created the heaven and the earth.",
        "And the earth was without form, and void; and darkness was upon the face of the deep.",
        "And God said, Let there be light: and there was light.",
    ],
}


def write_sample_folder(folder, copies=12):
    """A small folder of text files (a document each) for the contract kit."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        for name, paragraphs in SAMPLE.items():
            text = "\n\n".join(paragraphs[(k + i) % len(paragraphs)] for i in range(len(paragraphs)))
            (folder / f"{Path(name).stem}_{k}.txt").write_text(text + "\n", encoding="utf-8")
    return folder
