"""tools/mlm_sentiment.py: how a vocabulary cuts the task's text."""

import json

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


def test_runs_are_trained_seed_by_seed_and_folders_already_there_resumed(tmp_path, monkeypatch):
    """A comparison stopped part-way continues: the folders it left are resumed with the
    recipe asked (dlkit leaves a complete run as it is), the others started, seed by seed."""
    from types import SimpleNamespace

    tool = load_tool("mlm_sentiment")
    calls = []
    monkeypatch.setattr(tool, "dlkit", lambda *arguments: calls.append(tuple(map(str, arguments))))
    (tmp_path / "scratch_seed0").mkdir()
    (tmp_path / "scratch_seed0" / "config.json").write_text("{}")
    args = SimpleNamespace(
        work=tmp_path, mlm_run=tmp_path / "mlm", epochs=8, adapt_epochs=2, probe_epochs=3, vectors=False
    )
    runs = tool.train_runs(args, [0, 1], {"adapted"}, tmp_path / "train.txt")

    assert runs == {
        "scratch": [(0, tmp_path / "scratch_seed0"), (1, tmp_path / "scratch_seed1")],
        "pretrained": [(0, tmp_path / "pretrained_seed0"), (1, tmp_path / "pretrained_seed1")],
    }
    folders = [call[call.index("--run-dir") + 1] for call in calls]
    assert folders == [
        str(tmp_path / n) for n in ("scratch_seed0", "pretrained_seed0", "scratch_seed1", "pretrained_seed1")
    ]
    recipe = ("--set", "probe_epochs=3", "--seed", "0", "--epochs", "8")
    assert calls[0] == (
        "sentiment", "train", "--set", "model=encoder", *recipe, "--resume", "--run-dir", str(tmp_path / "scratch_seed0"),
    )  # fmt: skip
    assert calls[1] == (
        "sentiment", "train", "--init", str(tmp_path / "mlm"), *recipe, "--run-dir", str(tmp_path / "pretrained_seed0"),
    )  # fmt: skip
    assert ("--set", "model=encoder") == calls[2][2:4] and "--resume" not in calls[2]

    calls.clear()
    args.vectors = True  # the scratch model with GloVe-started token embeddings, asked for
    runs = tool.train_runs(args, [0], {"adapted", "pretrained"}, tmp_path / "train.txt")
    assert list(runs) == ["scratch", "vectors"]
    assert calls[1][2:6] == ("--set", "model=encoder", "--set", "encoder_vectors=true")


def test_a_folder_trained_with_another_recipe_stops_the_comparison(tmp_path, monkeypatch):
    """Resuming goes by folder name, so a folder left by a call with another recipe (here
    no probe epochs) is refused by dlkit in one line, not resumed or scored as if it matched."""
    from types import SimpleNamespace

    from conftest import run_cli

    tool = load_tool("mlm_sentiment")
    results = []
    monkeypatch.setattr(tool, "dlkit", lambda *arguments: results.append(run_cli(*arguments)))
    (tmp_path / "scratch_seed0").mkdir()
    saved = {"model": "encoder", "epochs": 8, "probe_epochs": 0, "seed": 0}
    (tmp_path / "scratch_seed0" / "config.json").write_text(json.dumps({"app": "sentiment", "config": saved}))
    args = SimpleNamespace(
        work=tmp_path, mlm_run=tmp_path / "mlm", epochs=8, adapt_epochs=2, probe_epochs=3, vectors=False
    )
    tool.train_runs(args, [0], {"adapted", "pretrained"}, tmp_path / "train.txt")
    (refused,) = results
    assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
    assert "probe_epochs=0 (asked 3)" in refused.output
    assert sorted(p.name for p in (tmp_path / "scratch_seed0").iterdir()) == ["config.json"]
