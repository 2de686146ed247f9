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


def test_runs_over_seeds_are_summarised_per_sentence():
    """Several seeds of one model: the mean accuracy and its range, and each sentence's
    share of runs right, whose paired difference to another model is the difference of
    their mean accuracies."""
    from dlkit.metrics.intervals import paired_difference_interval

    tool = load_tool("mlm_sentiment")
    pretrained = tool.summary([{"correct": "1101"}, {"correct": "1001"}])
    assert pretrained["test_accuracy"] == pytest.approx(0.625)
    assert pretrained["test_accuracy_range"] == [0.5, 0.75]
    assert list(pretrained["share_right"]) == [1.0, 0.5, 0.0, 1.0]
    scratch = tool.summary([{"correct": "0101"}])
    diff, (low, high) = paired_difference_interval(pretrained["share_right"], scratch["share_right"])
    assert diff == pytest.approx(0.625 - 0.5)
    assert low <= diff <= high
