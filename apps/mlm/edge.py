"""Fill-mask on device (pure Python + numpy): text with [MASK] -> WordPiece ids, the
model's input arrays, and its probabilities -> the likeliest tokens per mask. Used by
on-device predict and by evaluation alike."""

import re
from typing import NamedTuple

import numpy as np

from dlkit.edge.text import bert_inputs, bert_normalize, bert_wordpiece
from dlkit.errors import InvalidInputError

MASK_TEXT = re.compile(r"\[mask\]", re.IGNORECASE)


def tokenizer_of(meta):
    """The model's WordPiece tokenizer."""
    return bert_wordpiece(meta["vocab"])


def special(meta, token):
    return meta["special_ids"][token]


class FillText(NamedTuple):
    """One fill-mask input: the text, its token ids ([CLS] ... [SEP], cut to the model's
    length) and how many tokens were cut."""

    text: str
    ids: list
    cut: int


def encode_text(text, meta):
    """Text (may hold [MASK], any case) -> WordPiece ids between [CLS] and [SEP], and the
    number of tokens cut to fit `max_length`."""
    tokenizer, mask = tokenizer_of(meta), special(meta, "[MASK]")
    ids = []
    for k, piece in enumerate(MASK_TEXT.split(str(text))):
        if k:
            ids.append(mask)
        ids += tokenizer.encode(bert_normalize(piece, meta["lowercase"]))
    inputs, cut = bert_inputs(ids, meta["special_ids"], meta["max_length"])
    return [int(i) for i in inputs["token_ids"][inputs["attention_mask"] > 0]], cut


def read_input(text, meta):
    """The text and its ids; empty text, text without [MASK] (or whose every mask falls
    after the cut), or more masks than the model predicts raise InvalidInputError."""
    text = str(text)
    shown = text if len(text) <= 40 else text[:37] + "..."
    if not text.strip():
        raise InvalidInputError("empty text")
    if not MASK_TEXT.search(text):
        raise InvalidInputError(f"{shown!r}: no [MASK] to fill; write [MASK] where a word is missing")
    ids, cut = encode_text(text, meta)
    masks = ids.count(special(meta, "[MASK]"))
    if not masks:
        raise InvalidInputError(
            f"{shown!r}: every [MASK] comes after the first {meta['max_length'] - 2} tokens"
        )
    if masks > meta["max_predictions"]:
        raise InvalidInputError(
            f"{shown!r}: {masks} masks; the model fills at most {meta['max_predictions']}"
        )
    return FillText(text, ids, cut)


def input_warnings(raw, meta):
    warnings = []
    if raw.cut:
        warnings.append(
            f"{len(raw.ids) - 2 + raw.cut} tokens; the model reads the first {meta['max_length'] - 2}"
        )
    if special(meta, "[UNK]") in raw.ids:
        warnings.append("some words are not in the vocabulary and read as [UNK]")
    return warnings


def preprocess(raw, meta):
    """The model's named inputs for one text ([CLS] ... [SEP] of `max_length`, padded)
    and `masked_positions`: where its [MASK] tokens are, 0-padded to `max_predictions`."""
    length, slots = meta["max_length"], meta["max_predictions"]
    token_ids = np.zeros(length, np.int32)
    token_ids[: len(raw.ids)] = raw.ids
    positions = np.zeros(slots, np.int32)
    found = np.flatnonzero(token_ids == special(meta, "[MASK]"))[:slots]
    positions[: len(found)] = found
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros(length, np.int32),
        "attention_mask": (token_ids != 0).astype(np.int32),
        "masked_positions": positions,
    }


def postprocess(outputs, meta, top_k=5, **options):
    """Probabilities (batch, slots, vocab) -> per row, the `top_k` tokens of every slot
    (`finish` keeps the slots that hold a mask)."""
    probs = np.asarray(outputs[0], np.float32)
    k = max(1, min(int(top_k), probs.shape[-1] - len(meta["special_ids"])))
    ranked = probs.copy()
    ranked[..., sorted(meta["special_ids"].values())] = -1.0  # a reserved token never fills a gap
    best = np.argsort(-ranked, axis=-1, kind="stable")[..., :k]  # (batch, slots, k)
    vocab = meta["vocab"]
    results = []
    for row, row_best in zip(probs, best):
        slots = [
            [{"token": vocab[int(i)], "probability": float(p[int(i)])} for i in ids]
            for p, ids in zip(row, row_best)
        ]
        results.append({"slots": slots})
    return results


def fill(raw, result, meta):
    """The JSON result of one input: each mask's candidates, and the text with every mask
    replaced by its likeliest token."""
    masks = raw.ids.count(special(meta, "[MASK]"))
    candidates = result["slots"][:masks]
    ids = list(raw.ids)
    tokenizer = tokenizer_of(meta)
    for candidate in candidates:
        ids[ids.index(special(meta, "[MASK]"))] = tokenizer.index[candidate[0]["token"]]
    return {
        "filled": tokenizer.decode(ids[1:-1]),
        "masks": candidates,
        "confidence": float(np.mean([c[0]["probability"] for c in candidates])),
    }


def format_result(name, result):
    guesses = "; ".join(
        ", ".join(f"{c['token']} {c['probability']:.2f}" for c in mask[:3]) for mask in result["masks"]
    )
    return f"{name} -> {result['filled']}  ({guesses})"
