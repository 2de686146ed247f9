"""On-device translate (numpy only): tokenizers, decoding of the date model's outputs, and
greedy/beam search over the exported encoder and one-step decoder graphs.

Used by on-device predict and by the evaluation of Keras and TFLite models alike.
"""

import re

import numpy as np

from dlkit.edge.text import END, START, CharTokens, CharVocab, WordPiece, beam_search, log_softmax, normalize
from dlkit.errors import InvalidInputError


def tokenizers(meta):
    """(source, target) tokenizers with the model's own vocabularies."""
    if meta["model"] == "attention":
        return CharVocab(meta["source_vocab"]), CharVocab(meta["target_vocab"])
    make = WordPiece if meta.get("tokenizer") == "wordpiece" else CharTokens
    return make(meta["source_vocab"]), make(meta["target_vocab"])


def read_input(text, meta):
    """Normalises one input string; empty or too long input raises InvalidInputError.

    Inputs longer than the model's input length are rejected, not truncated: a cut date
    would silently translate to a wrong one.
    """
    clean = normalize(text, meta["lowercase"])
    if not clean:
        raise InvalidInputError("empty input")
    if meta["model"] == "attention" and len(clean) > meta["input_length"]:
        raise InvalidInputError(
            f"{text!r} is {len(clean)} characters; the model reads at most {meta['input_length']}"
        )
    return clean


def unknown_characters(clean, meta):
    """Characters of a normalised input that the model has never seen (mapped to <unk>)."""
    known = set(meta["source_vocab"])
    if meta["model"] == "attention" or meta.get("tokenizer") == "char":
        return list(dict.fromkeys(ch for ch in clean if ch not in known))
    return []


def preprocess(clean, meta):
    """Normalised text -> (length,) int32 ids."""
    source, _ = tokenizers(meta)
    if meta["model"] == "attention":
        return source.encode(clean, meta["input_length"])
    ids = source.encode(clean)
    limit = meta["max_tokens"]
    if len(ids) > limit:
        raise InvalidInputError(f"input is {len(ids)} tokens; the model reads at most {limit}")
    return np.pad(np.array(ids, np.int32), (0, limit - len(ids)))


def decode_outputs(outputs, meta):
    """Model outputs -> one string per row."""
    _, target = tokenizers(meta)
    if meta["model"] == "attention":
        return [target.decode(row) for row in np.argmax(outputs[0], axis=-1)]
    return [target.decode(row) for row in np.asarray(outputs[0])]


def postprocess(outputs, meta, **options):
    """One dict per row: the translation and the model's confidence in it."""
    texts = decode_outputs(outputs, meta)
    results = []
    for i, text in enumerate(texts):
        result = {"translation": text}
        if meta["model"] == "attention":
            probs = np.asarray(outputs[0][i])
            result["confidence"] = float(np.prod(probs.max(axis=-1)))
            result["calendar_date"] = is_calendar_date(text)
            if len(outputs) > 1:
                result["attention"] = np.asarray(outputs[1][i])
        results.append(result)
    return results


# Below this, the date model is likely reading something it was not trained on
# ("yesterday", a 2-digit year): the answer is shown, flagged.
LOW_CONFIDENCE = 0.5


def is_calendar_date(text):
    """Whether the date model's answer is a real date (not 1979-02-30 or 1979-13-01)."""
    import datetime

    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def date_from_input(text, answer):
    """Whether the answer's year and day are numbers the input writes. The date model
    learnt full dates with a four-digit year and the day in digits (1st, 1er, 1.); an
    answer whose year or day is not in the input was made up (`May 1979` -> 1979-05-05,
    `3 May 79` -> 1709-05-09)."""
    if not is_calendar_date(answer):
        return False
    numbers = {int(n) for n in re.findall(r"\d+", text)}
    year, day = int(answer[:4]), int(answer[8:])
    return year in numbers and day in numbers


def format_result(name, result):
    """`3 May 1979 -> 1979-05-03 (1.00)`; low-confidence answers, answers that are no
    calendar date or not written in the input, and answers to input with characters the
    model never saw are flagged."""
    confidence = result.get("confidence")
    if confidence is None:
        return f"{name} -> {result['translation']}"
    flags = [", low confidence"] if confidence < LOW_CONFIDENCE else []
    if result.get("calendar_date") is False:
        flags.append(", not a calendar date")
    elif result.get("from_input") is False:
        flags.append(", year or day not in the input")
    if result.get("known_characters") is False:
        flags.append(", input has characters the model never saw")
    return f"{name} -> {result['translation']} ({confidence:.2f}{''.join(flags)})"


class Seq2SeqDecoder:
    """Greedy or beam search over an encoder and a one-step decoder, Keras or TFLite.

    Args:
        encode: fn(source ids (1, S)) -> [annotations (1, S, U), state (1, U)].
        step: fn(tokens (k,), state (k, U), annotations (k, S, U), source ids (k, S))
            -> [logits (k, V), new state (k, U)].
        meta: the model's metadata (vocabularies, max_tokens, beam settings).
    """

    def __init__(self, encode, step, meta):
        self.encode, self.step, self.meta = encode, step, meta
        self.start = meta["target_vocab"].index(START)
        self.end = meta["target_vocab"].index(END)
        self.length = meta["max_tokens"] + 1

    def decode(self, ids, beam_width=None, alpha=None):
        """One source (S,) -> (tokens, normalised log-probability)."""
        beam_width = beam_width or self.meta.get("beam_width", 4)
        alpha = self.meta.get("length_alpha", 0.7) if alpha is None else alpha
        annotations, state = self.encode(np.asarray(ids, np.int32)[None])
        source = np.asarray(ids, np.int32)[None]

        def step(tokens, state):
            k = len(tokens)
            logits, new_state = self.step(
                tokens, state, np.repeat(annotations, k, axis=0), np.repeat(source, k, axis=0)
            )
            return log_softmax(logits), np.asarray(new_state)

        return beam_search(step, np.asarray(state), self.start, self.end, self.length, beam_width, alpha)

    def decode_batch(self, ids, beam_width=None, alpha=None):
        """(n, S) sources -> (n, max_tokens + 1) token ids, 0-padded."""
        out = np.zeros((len(ids), self.length), np.int32)
        for i, row in enumerate(ids):
            tokens, _ = self.decode(row, beam_width, alpha)
            out[i, : len(tokens)] = tokens[: self.length]
        return out


def tflite_runner(path, meta):
    """fn(batch of source ids) -> [outputs] for an exported translate model (no TF)."""
    from dlkit.edge import EdgeModel

    if meta["model"] == "attention":
        return EdgeModel(path).predict
    decoder, width = tflite_decoder(path, meta)
    return lambda x: [decoder.decode_batch(np.asarray(x), beam_width=min(width, meta.get("beam_width", 4)))]


def tflite_decoder(path, meta):
    """(Seq2SeqDecoder over the `encode`/`decode` signatures, the graph's beam width)."""
    from dlkit.edge import EdgeModel

    model = EdgeModel(path)
    encode = model.signature("encode")
    step = model.signature("decode")
    width = int(step.input_shapes["token"][0])

    def run_step(tokens, state, annotations, source):
        k = len(tokens)
        pad = width - k
        result = step(
            token=np.pad(np.asarray(tokens, np.int32), (0, pad)),
            state=np.pad(state, ((0, pad), (0, 0))).astype(np.float32),
            annotations=np.pad(annotations, ((0, pad), (0, 0), (0, 0))).astype(np.float32),
            source_ids=np.pad(source, ((0, pad), (0, 0))).astype(np.int32),
        )
        return result["logits"][:k], result["state"][:k]

    def run_encode(ids):
        result = encode(source_ids=ids.astype(np.int32))
        return result["annotations"], result["state"]

    return Seq2SeqDecoder(run_encode, run_step, meta), width


def write_attention_plot(folder, index, clean, translation, weights):
    """An attention-map PNG of one input, named by its index and text; returns its path."""
    import re
    from pathlib import Path

    from dlkit.plots import attention_plot

    slug = re.sub(r"[^0-9a-z]+", "_", clean.lower()).strip("_")[:40] or "input"
    path = Path(folder) / f"{index:03d}_{slug}.png"
    attention_plot(weights, list(clean), list(translation), path, title=f"{clean} -> {translation}")
    return str(path)
