"""tools/mlm_sentiment.py: how a vocabulary cuts the task's text."""

import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).parents[1] / "tools" / "mlm_sentiment.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("mlm_sentiment", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vocabulary_fit_counts_tokens_pieces_and_unknown_words():
    tool = load_tool()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "##s", "good", "!"]
    # the | film ##s | good | ! || the | [UNK] (no piece spells "zzz")
    fit = tool.vocabulary_fit(vocab, ["The films good!", "the zzz"])
    assert fit["words"] == 6
    assert fit["tokens_per_word"] == pytest.approx(7 / 6)
    assert fit["words_in_pieces"] == pytest.approx(1 / 6)
    assert fit["unknown"] == 1
    assert fit["tokens"] == 10 and fit["reserved_present"]
    assert not tool.vocabulary_fit(vocab[1:] + ["x"], ["the"])["reserved_present"]
