"""Text on device: normalisation, vocabularies, WordPiece parity with tensorflow-text, search."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlkit.edge.text import (
    CharVocab,
    WordPiece,
    basic_split,
    beam_search,
    greedy_search,
    length_normalized,
    log_softmax,
    normalize,
)
from dlkit.errors import InvalidInputError

CORPUS = [
    "In the beginning God created the heaven and the earth.",
    "EN el principio crió Dios los cielos y la tierra.",
    "¿Por qué? Porque Jehová ha atestiguado entre ti y la mujer de tu mocedad!",
    "And the evening and the morning were the first day; (selah) -- amen: 1, 2, 3.",
] * 20


def test_normalize_cases_and_whitespace():
    assert normalize("  Mercredi\t1ER  Mars\n2023 ") == "mercredi 1er mars 2023"
    assert normalize("E\u0301te\u0301", lowercase=False) == "\u00c9t\u00e9"  # NFC composes accents


def test_char_vocab_round_trip_padding_and_unknown():
    vocab = CharVocab.from_texts(["3 may 1979", "2024-01-31"])
    ids = vocab.encode("3 may 1979", 12)
    assert ids.shape == (12,) and ids.dtype == np.int32 and list(ids[-2:]) == [0, 0]
    assert vocab.decode(ids) == "3 may 1979"
    assert vocab.encode("3 mai", 6)[4] == 1  # "i" is unknown
    assert vocab.unknown("3 mai☃") == ["i", "☃"]
    with pytest.raises(InvalidInputError, match="at most 4"):
        vocab.encode("1979-05", 4)


@pytest.fixture(scope="module")
def wordpiece_vocab(tmp_path_factory):
    tf = pytest.importorskip("tensorflow")
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as bert_vocab

    texts = [normalize(t) for t in CORPUS]
    vocab = bert_vocab.bert_vocab_from_dataset(
        tf.data.Dataset.from_tensor_slices(texts).batch(16),
        vocab_size=120,
        reserved_tokens=["<pad>", "<unk>", "<s>", "</s>"],
        bert_tokenizer_params={"lower_case": False},
        learn_params={},
    )
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return list(vocab), str(path)


ALPHABET = "abcdeghilmnoprstuyéñó¿?¡!.,;:()-'0123 \t"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=40), min_size=1, max_size=6))
def test_wordpiece_matches_tensorflow_text(wordpiece_vocab, texts):
    import tensorflow_text as tf_text

    vocab, path = wordpiece_vocab
    texts = [normalize(t) for t in texts]
    reference = tf_text.BertTokenizer(path, lower_case=False, unknown_token="<unk>")
    expected = reference.tokenize(texts).merge_dims(-2, -1).to_list()
    ours = WordPiece(vocab)
    assert [ours.encode(t) for t in texts] == expected


def test_wordpiece_decode_joins_pieces(wordpiece_vocab):
    vocab, _ = wordpiece_vocab
    tokenizer = WordPiece(vocab)
    text = normalize("In the beginning God created the heaven, and the earth.")
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert basic_split("¿por qué? sí,no") == ["¿", "por", "qué", "?", "sí", ",", "no"]


def table_step(table):
    """A decoder whose next-token distribution depends only on the previous token."""

    def step(tokens, state):
        with np.errstate(divide="ignore"):
            return np.log(np.array([table[int(t)] for t in tokens])), state

    return step


def test_beam_search_finds_the_better_sequence_greedy_misses():
    # tokens: 0 = start, 1 = end, 2 = A, 3 = B.
    # Greedy takes A (0.6), then A's best continuation ends with p 0.3: total 0.18.
    # Beam keeps B (0.4), whose continuation ends with p 0.9: total 0.36.
    table = {
        0: [0.0, 0.0, 0.6, 0.4],
        2: [0.0, 0.3, 0.35, 0.35],
        3: [0.0, 0.9, 0.05, 0.05],
    }
    step = table_step(table)
    state = np.zeros((1, 1))
    greedy, _ = greedy_search(step, state, start_id=0, end_id=1, max_length=2)
    beam, score = beam_search(step, state, start_id=0, end_id=1, max_length=2, beam_width=2, alpha=0.0)
    assert greedy[:1] == [2]
    assert beam == [3]
    assert score == pytest.approx(np.log(0.4 * 0.9))


def test_length_normalisation_changes_the_winner():
    # "end now" scores log 0.5 over 1 token; "A then end" log(0.5 * 0.9) over 2 tokens.
    table = {0: [0.0, 0.5, 0.5], 2: [0.0, 0.9, 0.1]}
    step = table_step(table)
    state = np.zeros((1, 1))
    short, _ = beam_search(step, state, 0, 1, max_length=3, beam_width=2, alpha=0.0)
    long, score = beam_search(step, state, 0, 1, max_length=3, beam_width=2, alpha=1.0)
    assert short == []  # raw log-probability prefers stopping
    assert long == [2]  # mean log-probability prefers the longer, surer sentence
    assert score == pytest.approx(np.log(0.45) / 2)
    assert length_normalized(-3.0, 4, 0.7) == pytest.approx(-3.0 / 4**0.7)


def test_log_softmax_matches_definition():
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    expected = (
        logits
        - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
        - logits.max(1, keepdims=True)
    )
    np.testing.assert_allclose(log_softmax(logits), expected, atol=1e-12)
