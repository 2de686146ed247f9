"""On-device sentiment (pure Python + numpy): text -> word ids with the model's vocabulary,
probabilities -> label. Used by on-device predict and by evaluation alike."""

import numpy as np

from dlkit.edge.text import WordVocab
from dlkit.errors import InvalidInputError

_VOCABS = {}


def vocab_of(meta):
    """The model's WordVocab, built once per vocabulary list."""
    key = id(meta["vocab"])
    if key not in _VOCABS:
        _VOCABS.clear()
        _VOCABS[key] = (meta["vocab"], WordVocab(meta["vocab"], meta.get("lowercase", True)))
    return _VOCABS[key][1]


def read_input(text, meta):
    """The text itself; empty text, or text without a word (only punctuation or symbols),
    raises InvalidInputError."""
    text = str(text)
    if not text.strip():
        raise InvalidInputError("empty text")
    if not any(any(ch.isalnum() for ch in token) for token in vocab_of(meta).tokenize(text)):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidInputError(f"{shown!r}: no words to read (only punctuation or symbols)")
    return text


def input_warnings(text, meta):
    """A text longer than the model reads is cut (said so); unknown words are listed."""
    vocab = vocab_of(meta)
    tokens = vocab.tokenize(text)
    warnings = []
    if len(tokens) > meta["max_length"]:
        warnings.append(f"{len(tokens)} words; the model reads the first {meta['max_length']}")
    unknown = [t for t in dict.fromkeys(tokens[: meta["max_length"]]) if t not in vocab.index and t.isalpha()]
    if unknown:
        warnings.append(
            f"unknown words read as <unk>: {', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else "")
        )
    return warnings


def preprocess(text, meta):
    """Text -> (max_length,) int32 word ids."""
    return vocab_of(meta).encode(text, meta["max_length"])[0]


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
