"""Text on device (pure Python + numpy): normalisation, character vocabularies, a WordPiece
tokenizer with the same ids as tensorflow-text's `BertTokenizer`, a word tokenizer for
word-vector models, and greedy/beam search."""

import re
import unicodedata

import numpy as np

from dlkit.errors import InvalidInputError

PAD, UNK, START, END = "<pad>", "<unk>", "<s>", "</s>"
# BERT's reserved tokens, in the order a vocabulary learnt here lists them (ids 0-4).
BERT_RESERVED = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Reserved tokens that decoding drops (padding, sequence starts and ends).
_UNSPOKEN = frozenset((PAD, START, END, "[PAD]", "[CLS]", "[SEP]"))


def normalize(text, lowercase=True):
    """NFC, optional lowercasing, and every whitespace run as one space (trimmed)."""
    text = unicodedata.normalize("NFC", str(text))
    if lowercase:
        text = text.lower()
    return " ".join(text.split())


def bert_normalize(text, lowercase=True):
    """BERT's "uncased" normalisation: control characters dropped, then (with `lowercase`)
    lowercased and stripped of accents (NFD without combining marks); whitespace runs
    as one space. Applied before WordPiece on device and in training alike."""
    text = "".join(
        " " if ch.isspace() else ch
        for ch in str(text)
        if ch.isspace() or (unicodedata.category(ch) not in ("Cc", "Cf") and ch != "\ufffd")
    )
    if lowercase:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return " ".join(text.split())


# Words as the GloVe 6B vectors were tokenized (Stanford tokenizer, lowercased): clitics
# split off ("doesn't" -> does n't, "it's" -> it 's), decimals and hyphenated words kept
# whole, "..." and "--" one token each, every other punctuation mark a token of its own.
WORD_PATTERN = re.compile(
    r"\d+(?:[.,]\d+)+"  # 3.5, 10,000
    r"|[^\W_]+(?=n't\b)"  # does|n't, ca|n't
    r"|n't\b"
    r"|'(?:s|re|ve|ll|d|m)\b"
    r"|[^\W_]+(?:-[^\W_]+)*"  # words, well-known
    r"|\.\.\.|--"
    r"|[^\w\s]|_"
)
# Typographic quotes and dashes as the plain characters the vectors were trained on.
_PLAIN = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "--"}
)


def words(text, lowercase=True):
    """`text` -> list of word tokens (NFKC, typographic quotes made plain, lowercased).

    Example:
        >>> words("It doesn't work -- at all...")
        ['it', 'does', "n't", 'work', '--', 'at', 'all', '...']
    """
    text = unicodedata.normalize("NFKC", str(text)).translate(_PLAIN)
    return WORD_PATTERN.findall(text.lower() if lowercase else text)


class WordVocab:
    """Words <-> ids for word-vector models; id 0 is padding, id 1 the unknown word.

    Args:
        tokens: list of str. The vocabulary in id order, `<pad>` and `<unk>` first.
        lowercase: bool. Whether `encode` lowercases (the GloVe 6B vectors are lowercase).
    """

    def __init__(self, tokens, lowercase=True):
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"a word vocabulary starts with {PAD!r}, {UNK!r}; got {tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("the word vocabulary lists a word twice")
        self.tokens = tokens
        self.lowercase = lowercase
        self.index = {token: i for i, token in enumerate(tokens)}

    def __len__(self):
        return len(self.tokens)

    def tokenize(self, text):
        return words(text, self.lowercase)

    def ids(self, tokens):
        """Word tokens -> ids (unknown words get id 1), any length."""
        return [self.index.get(token, 1) for token in tokens]

    def encode(self, text, length):
        """`text` -> ((length,) int32 ids, padded with 0 and cut after `length` words,
        the number of words before cutting)."""
        return self.encode_words(self.tokenize(text), length)

    def encode_words(self, tokens, length):
        """`encode` for text already split by `tokenize`."""
        row = np.zeros(length, np.int32)
        row[: min(len(tokens), length)] = self.ids(tokens[:length])
        return row, len(tokens)

    def decode(self, ids):
        """ids -> the words joined by spaces; padding dropped, unknown ids as `<unk>`."""
        return " ".join(self.tokens[i] for i in map(int, ids) if 0 < i < len(self.tokens))


class CharVocab:
    """Characters <-> ids; id 0 is padding and id 1 the unknown character.

    Args:
        chars: iterable of str. The known characters (padding and unknown are added).
    """

    def __init__(self, tokens):
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            tokens = [PAD, UNK] + sorted(set(tokens) - {PAD, UNK})
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}

    @classmethod
    def from_texts(cls, texts):
        return cls(sorted({ch for text in texts for ch in text}))

    def __len__(self):
        return len(self.tokens)

    def unknown(self, text):
        """The characters of `text` outside the vocabulary, in order of appearance."""
        return list(dict.fromkeys(ch for ch in text if ch not in self.index))

    def encode(self, text, length):
        """`text` -> (length,) int32 ids, padded with 0; unknown characters get id 1.

        Raises:
            InvalidInputError: when `text` is longer than `length`.
        """
        if len(text) > length:
            raise InvalidInputError(f"input is {len(text)} characters, the model reads at most {length}")
        ids = np.zeros(length, np.int32)
        ids[: len(text)] = [self.index.get(ch, 1) for ch in text]
        return ids

    def decode(self, ids):
        """ids -> text; padding is dropped, unknown ids print as `?`."""
        return "".join("?" if i == 1 else self.tokens[i] for i in ids if 0 < i < len(self.tokens))


def _is_punctuation(ch):
    """The characters tensorflow-text's BasicTokenizer splits off as their own token."""
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(ch):
    code = ord(ch)
    return any(
        low <= code <= high
        for low, high in (
            (0x4E00, 0x9FFF),
            (0x3400, 0x4DBF),
            (0x20000, 0x2A6DF),
            (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F),
            (0x2B820, 0x2CEAF),
            (0xF900, 0xFAFF),
            (0x2F800, 0x2FA1F),
        )
    )


def basic_split(text):
    """Whitespace, punctuation and CJK splitting, as `tensorflow_text.BasicTokenizer`
    (no case folding or normalisation: `normalize` does that for both)."""
    words, current = [], []
    for ch in text:
        if ch in " \t\n\r\f":
            if current:
                words.append("".join(current))
                current = []
        elif _is_punctuation(ch) or _is_cjk(ch):
            if current:
                words.append("".join(current))
                current = []
            words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


class WordPiece:
    """Greedy longest-match-first WordPiece, id-for-id with tensorflow-text's
    `BertTokenizer(vocab, lower_case=False)` on text passed through `normalize`.

    Args:
        vocab: list of str. Reserved tokens first (`<pad>`, `<unk>`, `<s>`, `</s>`),
            continuation pieces prefixed with `##`.
    """

    def __init__(self, vocab, unknown=UNK, max_bytes_per_word=100):
        self.vocab = list(vocab)
        self.index = {token: i for i, token in enumerate(self.vocab)}
        self.unknown = unknown
        self.unknown_id = self.index[unknown]
        self.max_bytes_per_word = max_bytes_per_word

    def __len__(self):
        return len(self.vocab)

    def word_ids(self, word):
        if len(word.encode("utf-8")) > self.max_bytes_per_word:
            return [self.unknown_id]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.index:
                    found = self.index[piece]
                    break
                end -= 1
            if found is None:
                return [self.unknown_id]
            ids.append(found)
            start = end
        return ids

    def encode(self, text):
        """Normalised text -> list of ids."""
        return [i for word in basic_split(text) for i in self.word_ids(word)]

    def decode(self, ids):
        """ids -> text: pieces joined, reserved tokens dropped, no space before punctuation."""
        words = []
        for i in ids:
            token = self.vocab[int(i)]
            if token in _UNSPOKEN:
                continue
            if token.startswith("##") and words:
                words[-1] += token[2:]
            else:
                words.append(token)
        text = " ".join(words)
        for mark in (".", ",", ";", ":", "!", "?", ")", "'"):
            text = text.replace(" " + mark, mark)
        return text.replace("( ", "(")


_WORDPIECES = {}


def bert_wordpiece(vocab):
    """The `WordPiece` of a BERT vocabulary (unknown token `[UNK]`), built once per
    vocabulary list: the tokenizer every input of a model reuses."""
    key = id(vocab)
    if key not in _WORDPIECES:
        _WORDPIECES.clear()
        _WORDPIECES[key] = (vocab, WordPiece(vocab, unknown="[UNK]"))  # keeps `vocab` alive
    return _WORDPIECES[key][1]


def log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def bert_inputs(ids, special_ids, length):
    """Token ids -> a BERT encoder's named inputs for one sequence: `token_ids` ([CLS] ids
    [SEP], cut to fit `length`, 0-padded), `segment_ids` (zeros: one segment) and
    `attention_mask` (1 for tokens); and the number of ids cut."""
    room = length - 2
    row = [special_ids["[CLS]"], *ids[:room], special_ids["[SEP]"]]
    token_ids = np.zeros(length, np.int32)
    token_ids[: len(row)] = row
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros(length, np.int32),
        "attention_mask": (token_ids != 0).astype(np.int32),
    }, max(0, len(ids) - room)


def length_normalized(log_prob, length, alpha=0.7):
    """The course's beam score: (1 / Ty^alpha) * sum log p."""
    return log_prob / (max(length, 1) ** alpha)


def beam_search(step, state, start_id, end_id, max_length, beam_width=4, alpha=0.7):
    """Beam search with length normalisation.

    Args:
        step: fn(tokens (k,) int, state (k, ...)) -> (log_probs (k, V), new state (k, ...)).
            `state` is any numpy array (or tuple of arrays) indexed by beam along axis 0.
        state: the decoder state for one source sentence, with a leading axis of 1.
        start_id, end_id: int.
        max_length: int. Most tokens generated (the end token included).
        beam_width: int. 1 is greedy search.
        alpha: float. Length normalisation exponent (0 = none, 1 = mean log p).

    Returns:
        (tokens, score): the best hypothesis without start/end ids, and its normalised score.
    """
    take = _indexer(state)
    beams = [([], 0.0)]
    states = state
    finished = []
    for _ in range(max_length):
        last = np.array([tokens[-1] if tokens else start_id for tokens, _ in beams], np.int32)
        log_probs, states = step(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        totals = np.array([score for _, score in beams])[:, None] + log_probs  # (k, V)
        flat = np.argsort(-totals, axis=None, kind="stable")[: 2 * beam_width]
        next_beams, rows = [], []
        for index in flat:
            row, token = divmod(int(index), totals.shape[1])
            tokens = beams[row][0] + [token]
            if token == end_id:
                finished.append((tokens[:-1], length_normalized(totals[row, token], len(tokens), alpha)))
            else:
                next_beams.append((tokens, float(totals[row, token])))
                rows.append(row)
            if len(next_beams) == beam_width:
                break
        if len(finished) >= beam_width or not next_beams:
            break
        beams = next_beams
        states = take(states, np.array(rows))
    else:
        finished += [(tokens, length_normalized(score, len(tokens), alpha)) for tokens, score in beams]
    if not finished:
        finished = [(tokens, length_normalized(score, len(tokens), alpha)) for tokens, score in beams]
    return max(finished, key=lambda item: item[1])


def _indexer(state):
    if isinstance(state, (tuple, list)):
        return lambda states, rows: type(states)(s[rows] for s in states)
    return lambda states, rows: states[rows]


def greedy_search(step, state, start_id, end_id, max_length):
    """Beam search of width 1 (the arg-max token at every step)."""
    return beam_search(step, state, start_id, end_id, max_length, beam_width=1, alpha=0.0)


class CharTokens:
    """Characters as variable-length token lists (the `char` tokenizer of seq2seq)."""

    def __init__(self, vocab):
        self.vocab = list(vocab)
        self.index = {token: i for i, token in enumerate(self.vocab)}
        self.unknown_id = self.index[UNK]

    def __len__(self):
        return len(self.vocab)

    def encode(self, text):
        return [self.index.get(ch, self.unknown_id) for ch in text]

    def decode(self, ids):
        return "".join(
            "?" if i == self.unknown_id else self.vocab[i]
            for i in map(int, ids)
            if self.vocab[i] not in (PAD, START, END)
        )
