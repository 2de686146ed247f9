"""On-device sentiment (pure Python + numpy): text -> word ids with the model's vocabulary,
probabilities -> label. Used by on-device predict and by evaluation alike."""

from typing import NamedTuple

import numpy as np

from dlkit.edge.text import WordVocab, bert_inputs, bert_normalize, bert_wordpiece, words
from dlkit.errors import InvalidInputError

_VOCABS = {}


def vocab_of(meta):
    """The model's WordVocab (word-vector models) or WordPiece tokenizer (the encoder
    model), built once per vocabulary list."""
    if meta.get("tokenizer") == "bert_wordpiece":
        return bert_wordpiece(meta["vocab"])
    key = id(meta["vocab"])
    if key not in _VOCABS:
        _VOCABS.clear()
        _VOCABS[key] = (meta["vocab"], WordVocab(meta["vocab"], meta.get("lowercase", True)))
    return _VOCABS[key][1]


def split_words(text, meta):
    """The text's words, for the has-a-word rule and (word-vector models) the ids: the
    GloVe-style words of the model's vocabulary, or plain words for the encoder model,
    which reads WordPiece tokens of the whole text instead."""
    if meta.get("tokenizer") == "bert_wordpiece":
        return words(text, meta.get("lowercase", True))
    return vocab_of(meta).tokenize(text)


def encode(text, tokens, meta):
    """(the model's input for one text, how many words or tokens were cut): word ids
    (max_length,) for word-vector models; for the encoder, its three named inputs."""
    if meta.get("tokenizer") != "bert_wordpiece":
        row, count = vocab_of(meta).encode_words(tokens, meta["max_length"])
        return row, max(0, count - meta["max_length"])
    ids = vocab_of(meta).encode(bert_normalize(text, meta.get("lowercase", True)))
    return bert_inputs(ids, meta["special_ids"], meta["max_length"])


def has_words(tokens):
    """Whether split text holds a word (a token with a letter or digit), not only
    punctuation or symbols: the one rule for training data and device input."""
    return any(any(ch.isalnum() for ch in token) for token in tokens)


class Text(NamedTuple):
    """One input: the text and its words, split once for the model and the warnings."""

    text: str
    words: list


def read_input(text, meta):
    """The text and its words; empty text, or text without a word (only punctuation or
    symbols), raises InvalidInputError."""
    text = str(text)
    if not text.strip():
        raise InvalidInputError("empty text")
    tokens = split_words(text, meta)
    if not has_words(tokens):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidInputError(f"{shown!r}: no words to read (only punctuation or symbols)")
    return Text(text, tokens)


def input_warnings(raw, meta):
    """A text longer than the model reads is cut (said so); unknown words are listed."""
    vocab, length = vocab_of(meta), meta["max_length"]
    warnings = []
    if meta.get("tokenizer") == "bert_wordpiece":
        cut = encode(raw.text, raw.words, meta)[1]
        if cut:
            warnings.append(f"{length - 2 + cut} tokens; the model reads the first {length - 2}")
        return warnings
    if len(raw.words) > length:
        warnings.append(f"{len(raw.words)} words; the model reads the first {length}")
    unknown = [t for t in dict.fromkeys(raw.words[:length]) if t not in vocab.index and t.isalpha()]
    if unknown:
        more = " ..." if len(unknown) > 5 else ""
        shown = [word if len(word) <= 30 else f"{word[:27]}..." for word in unknown[:5]]
        warnings.append(f"unknown words read as <unk>: {', '.join(shown)}{more}")
    return warnings


def preprocess(raw, meta):
    """A read input -> (max_length,) int32 word ids, or the encoder's named inputs."""
    return encode(raw.text, raw.words, meta)[0]


def postprocess(outputs, meta, **options):
    """One dict per row: label, its probability, and every label's probability."""
    labels = meta["labels"]
    results = []
    for row in np.asarray(outputs[0]):
        best = int(np.argmax(row))
        results.append(
            {
                "label": labels[best],
                "confidence": float(row[best]),
                "probabilities": {label: float(p) for label, p in zip(labels, row)},
            }
        )
    return results


def format_result(name, result):
    """`"a moving film" -> positive (0.93)`."""
    shown = name if len(name) <= 60 else name[:57] + "..."
    return f"{shown!r} -> {result['label']} ({result['confidence']:.2f})"
