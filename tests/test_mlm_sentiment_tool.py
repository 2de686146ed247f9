"""tools/mlm_sentiment.py: how a vocabulary cuts the task's text."""

import pytest

from conftest import load_tool


def test_vocabulary_fit_counts_tokens_pieces_and_unknown_words():
    tool = load_tool("mlm_sentiment")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "##s", "good", "!"]
    # the | film ##s | good | ! || the | [UNK] (no piece spells "zzz")
    fit = tool.vocabulary_fit(vocab, ["The films good!", "the zzz"])
    assert fit["words"] == 6
    assert fit["tokens_per_word"] == pytest.approx(7 / 6)
    assert fit["words_in_pieces"] == pytest.approx(1 / 6)
    assert fit["unknown"] == 1
    assert fit["tokens"] == 10 and fit["reserved_present"]
    assert not tool.vocabulary_fit(vocab[1:] + ["x"], ["the"])["reserved_present"]
