"""Sentiment: the word tokenizer (pure Python, shared by training and devices), the rated
sentences and their split, GloVe loading, the two models against numpy, user data and
its errors, peers and the diagnostic set. Train/export/predict/resume are in the
contract kit (tests/test_contract.py)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error, run_cli
from dlkit.apps.sentiment import reviews
from dlkit.apps.sentiment.config import Config
from dlkit.apps.sentiment.data import open_source, rating_label, read_labelled
from dlkit.edge.text import PAD, UNK, WordVocab, words
from dlkit.errors import InvalidInputError

VOCAB = [PAD, UNK, "a", "good", "film", "not", "n't", "does", "work", ".", "it"]


# --- tokenizer -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("It doesn't work.", ["it", "does", "n't", "work", "."]),
        ("Can't won't I'm", ["ca", "n't", "wo", "n't", "i", "'m"]),
        ("The Rock's new ''Conan''", ["the", "rock", "'s", "new", "'", "'", "conan", "'", "'"]),
        (
            "a well-known $3.50 film -- at 10,000...",
            ["a", "well-known", "$", "3.50", "film", "--", "at", "10,000", "..."],
        ),
        ("It\u2019s \u201cFINE\u201d", ["it", "'s", '"', "fine", '"']),
        ("Ｆｕｌｌ width and café", ["full", "width", "and", "café"]),
        ("", []),
    ],
)
def test_words_split_like_the_glove_tokenizer(text, expected):
    assert words(text) == expected


def test_vocab_pads_cuts_and_maps_unknown_words():
    vocab = WordVocab(VOCAB)
    row, count = vocab.encode("It does n't work, a good film", 5)
    assert row.dtype == np.int32 and row.shape == (5,) and count == 8
    assert row.tolist() == [10, 7, 6, 8, 1]  # "," is unknown; cut after 5 words
    row, count = vocab.encode("a good film", 6)
    assert row.tolist() == [2, 3, 4, 0, 0, 0] and count == 3
    assert vocab.decode(row) == "a good film"
    with pytest.raises(ValueError):
        WordVocab(["a", "b"])
    with pytest.raises(ValueError):
        WordVocab([PAD, UNK, "a", "a"])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_encodes_to_valid_ids(text):
    vocab = WordVocab(VOCAB)
    row, count = vocab.encode(text, 16)
    assert row.shape == (16,) and row.dtype == np.int32
    assert ((row >= 0) & (row < len(VOCAB))).all()
    assert count == len(words(text))
    # Words are never empty and padding only follows the words.
    assert all(words(text)) and not np.any(row[: min(count, 16)] == 0)
    assert np.array_equal(row, vocab.encode(text, 16)[0])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(VOCAB[2:]), min_size=1, max_size=12))
def test_vocabulary_words_round_trip(tokens):
    vocab = WordVocab(VOCAB)
    row, _ = vocab.encode(" ".join(tokens), 12)
    assert vocab.decode(row).split() == words(" ".join(tokens))


# --- the rated sentences -----------------------------------------------------------
def test_rated_lines_and_labels():
    rows = reviews.read_rated(
        ["1\t2.5\tGreat fun.\r\n", "2\t-0.6\tToo tepid\n", "bad line", "3\t0\t \n"], "x"
    )
    assert rows == [("Great fun.", 2.5), ("Too tepid", -0.6)]
    with pytest.raises(InvalidInputError, match="x:1"):
        reviews.read_rated(["1\tabc\ttext"], "x")
    assert [rating_label(r, "binary") for r in (-0.1, 0.0, 0.1)] == [0, None, 1]
    assert [rating_label(r, "five") for r in (-4, -2, -1, -0.5, 0, 0.5, 1.9, 2, 4)] == [
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
    ]


def test_near_duplicates_share_a_split():
    assert reviews.duplicate_key("The Film -- great!") == reviews.duplicate_key("the film great")
    for text in ("A film.", "Good fun", "What a mess , really"):
        assert reviews.split_of(text) == reviews.split_of(text.upper() + " !!")
    texts = [f"sentence number {i}" for i in range(3000)]
    shares = {s: sum(reviews.split_of(t) == s for t in texts) / 3000 for s in ("train", "val", "test")}
    assert abs(shares["val"] - 0.15) < 0.03 and abs(shares["test"] - 0.15) < 0.03


@pytest.fixture(scope="module")
def rated_sets():
    return reviews.load_sets()


def test_offline_split_is_fixed_large_and_duplicate_free(rated_sets):
    assert len(rated_sets["movie"]) == 10605
    assert {name: len(rows) for name, rows in rated_sets.items() if name != "movie"} == {
        "tweets": 4200,
        "amazon": 3708,
        "nyt": 5190,
    }
    source = open_source(Config(), None)
    sizes = {split: len(source.rows(split)) for split in ("train", "val", "test")}
    assert sum(sizes.values()) == 10605 - 37 and sizes["test"] >= 1500
    keys = {split: {reviews.duplicate_key(t) for t, _ in source.rows(split)} for split in sizes}
    assert (
        not keys["train"] & keys["test"]
        and not keys["train"] & keys["val"]
        and not keys["val"] & keys["test"]
    )
    five = open_source(Config(classes="five"), None)
    assert len(five.labels) == 5 and sum(len(five.rows(s)) for s in sizes) == 10605
    tweets = open_source(Config(), "tweets")
    assert len(tweets.rows("test")) == 4196 and not tweets.splits["train"]


# --- GloVe -----------------------------------------------------------------------------
def test_glove_text_files(tmp_path):
    from dlkit.pretrained.text import read_glove_text, word_vectors

    good = tmp_path / "glove.3d.txt"
    good.write_text("the 0.1 0.2 0.3\ncat 1 2 3\n", encoding="utf-8")
    names, vectors = word_vectors(str(good))
    assert names == ["the", "cat"] and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, [[0.1, 0.2, 0.3], [1, 2, 3]])
    bad = tmp_path / "bad.txt"
    bad.write_text("the 0.1 0.2 0.3\ncat 1 2\n", encoding="utf-8")
    with pytest.raises(
        InvalidInputError, match=r"bad.txt:2: 2 numbers after the word, the file's vectors have 3"
    ):
        read_glove_text(bad)
    with pytest.raises(InvalidInputError, match="no word vectors"):
        (tmp_path / "empty.txt").write_text("")
        read_glove_text(tmp_path / "empty.txt")


def test_embedding_starts_from_the_vectors():
    from dlkit.apps.sentiment.model import build_vocab, embedding_matrix, vectors_of

    names, vectors, index = vectors_of("glove_6b_50d")
    assert names[:3] == ["the", ",", "."]  # rows by frequency
    vocab = build_vocab({"good": 3, "film": 1, "zzqxv": 2, "qqzzv": 1}, names, index, extra_words=5)
    assert vocab[:5] == [PAD, UNK, "film", "good", "zzqxv"] and "qqzzv" not in vocab
    assert vocab[5:] == names[:5]
    matrix = embedding_matrix(vocab, "glove_6b_50d")
    np.testing.assert_array_equal(matrix[vocab.index("good")], vectors[index["good"]])
    np.testing.assert_array_equal(matrix[0], 0)
    np.testing.assert_array_equal(matrix[vocab.index("zzqxv")], 0)
    np.testing.assert_allclose(matrix[1], np.asarray(vectors[:50_000]).mean(axis=0), rtol=1e-5)


# --- the models --------------------------------------------------------------------------
def tiny_meta(model):
    return {
        "model": model,
        "labels": ["negative", "positive"],
        "vocab": VOCAB,
        "max_length": 6,
        "vectors": "glove_6b_50d",
        "embedding_dim": 50,
    }


def test_average_model_is_the_masked_mean_of_word_vectors():
    from dlkit.apps.sentiment.model import build_model, embedding_matrix

    model = build_model(Config.tiny(), tiny_meta("average"))
    ids = np.array([[2, 3, 4, 0, 0, 0], [5, 1, 0, 0, 0, 0]], np.int32)
    table = embedding_matrix(VOCAB, "glove_6b_50d")
    kernel, bias = model.get_layer("probs").get_weights()
    logits = np.stack([table[row[row > 0]].mean(axis=0) for row in ids]) @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(ids, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_lstm_ignores_padding():
    import dataclasses

    from dlkit.apps.sentiment.model import build_model

    config = dataclasses.replace(Config.tiny(), lstm_layers=2)
    short = build_model(config, tiny_meta("lstm"))
    long_meta = dict(tiny_meta("lstm"), max_length=10)
    long = build_model(config, long_meta)
    long.set_weights(short.get_weights())
    ids = np.array([[10, 7, 6, 8, 0, 0]], np.int32)
    padded = np.pad(ids, ((0, 0), (0, 4)))
    np.testing.assert_allclose(short.predict(ids, verbose=0), long.predict(padded, verbose=0), atol=1e-6)
    assert [layer.name for layer in short.layers if "bilstm" in layer.name] == ["bilstm_1", "bilstm_2"]


def test_encoder_probe_stage_trains_the_output_layer_alone_then_everything():
    """`probe_epochs`: a stage in which only `probs` learns on the frozen encoder, then
    the whole encoder trains (its MLM output bias never does)."""
    import dataclasses

    from dlkit.apps.sentiment.model import build_encoder_model, training_stages

    config = dataclasses.replace(Config.tiny(), model="encoder", probe_epochs=1)
    meta = {"model": "encoder", "labels": ["negative", "positive"], "vocab": [f"t{k}" for k in range(40)]}
    model = build_encoder_model(config, dict(meta, max_length=config.max_tokens))
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 40, (32, config.max_tokens)).astype(np.int32)
    inputs = [ids, np.zeros_like(ids), np.ones_like(ids)]
    targets = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 32)]

    def weights():
        return {w.path: w.numpy().copy() for w in model.weights}

    stages = training_stages(config, meta)
    assert [(stage.name, stage.epochs) for stage in stages] == [("probe", 1), ("train", config.epochs)]
    moved = []
    for stage in stages:
        before = weights()
        stage.prepare(model)
        model.fit(inputs, targets, epochs=1, batch_size=8, verbose=0)
        after = weights()
        moved.append({path for path in before if not np.array_equal(before[path], after[path])})
    assert moved[0] and all(path.startswith("probs/") for path in moved[0])
    assert any(path.startswith("encoder_0/") for path in moved[1]) and any("probs/" in p for p in moved[1])
    assert not any(path.startswith("token_embedding/") and path.endswith("bias") for path in moved[1])
    without = training_stages(dataclasses.replace(config, probe_epochs=0), meta)
    assert [stage.name for stage in without] == ["train"]


def test_encoder_batches_are_cut_to_their_longest_text_with_the_same_outputs(tmp_path):
    """`group_by_length`: training batches hold texts of similar length, each cut to its
    longest text rounded up to 8 tokens; the encoder's outputs on a cut batch equal those
    on the batch padded to `max_tokens` (the padding is masked), and the exported file
    takes `max_tokens` tokens."""
    import dataclasses

    from dlkit.apps.sentiment.data import LoadedSplit, make_dataset
    from dlkit.apps.sentiment.model import build_encoder_model, convert
    from dlkit.edge.runtime import EdgeModel

    config = dataclasses.replace(
        Config.tiny(), model="encoder", max_tokens=40, max_positions=48, batch_size=8, group_by_length=50
    )
    meta = {"model": "encoder", "labels": ["negative", "positive"], "vocab": [f"t{k}" for k in range(40)]}
    meta["max_length"] = config.max_tokens
    rng = np.random.default_rng(0)
    count = 60
    sizes = rng.integers(3, 41, count)
    mask = (np.arange(40)[None] < sizes[:, None]).astype(np.int32)
    inputs = {
        "token_ids": rng.integers(5, 40, (count, 40)).astype(np.int32) * mask,
        "segment_ids": np.zeros((count, 40), np.int32),
        "attention_mask": mask,
    }
    targets = rng.integers(0, 2, count)
    split = LoadedSplit([""] * count, inputs, targets, np.eye(2, dtype=np.float32)[targets])
    batches = list(make_dataset(config, split, training=True))
    seen = []
    for batch, _ in batches:
        width = batch["token_ids"].shape[1]
        lengths = batch["attention_mask"].numpy().sum(axis=1)
        assert width == min(40, -(-lengths.max() // 8) * 8)
        seen += [tuple(row[:size]) for row, size in zip(batch["token_ids"].numpy(), lengths)]
    assert sorted(seen) == sorted(tuple(row[:size]) for row, size in zip(inputs["token_ids"], sizes))
    assert np.mean([b["token_ids"].shape[1] for b, _ in batches]) < 32
    unshuffled = list(make_dataset(dataclasses.replace(config, group_by_length=0), split, training=True))
    assert {b["token_ids"].shape[1] for b, _ in unshuffled} == {40}

    model = build_encoder_model(config, meta)
    batch = batches[0][0]
    width = batch["token_ids"].shape[1]
    padded = {name: np.pad(values.numpy(), ((0, 0), (0, 40 - width))) for name, values in batch.items()}
    np.testing.assert_allclose(
        model.predict(dict(batch), verbose=0), model.predict(padded, verbose=0), atol=1e-5
    )
    path = tmp_path / "encoder.tflite"
    path.write_bytes(convert(model, config, meta, "float32"))
    assert set(EdgeModel(path).input_shapes) == {(-1, 40)}  # any batch, 40 tokens


# --- user data and its errors ---------------------------------------------------------------
def test_user_files_in_three_formats(tmp_path):
    rows = [("a good film", "pos"), ("not good", "neg"), ("", "neg"), ("fine", "")]
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("body,stars\n" + "\n".join(f'"{t}",{label}' for t, label in rows) + "\n")
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("\n".join(json.dumps({"body": t, "stars": label}) for t, label in rows) + "\n")
    config = Config(text_column="body", label_column="stars")
    for path in (csv_file, jsonl):
        found, skipped = read_labelled(path, config)
        assert [(t, label) for _, t, label in found] == rows[:2]
        assert len(skipped) == 2 and "empty text" in skipped[0] and "empty label" in skipped[1]


def test_user_data_errors_name_the_file(tmp_path):
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("review,label\nnice,positive\n")
    with pytest.raises(InvalidInputError, match=r"r.csv: no column 'text' \(columns: label, review\)"):
        read_labelled(csv_file, Config())
    latin = tmp_path / "l.tsv"
    latin.write_bytes("text\tlabel\ncaf\xe9\tpositive\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match="l.tsv: not UTF-8"):
        read_labelled(latin, Config())
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "train.tsv").write_text("text\tlabel\ngood\tpositive\nbad\tnegative\n")
    (folder / "val.tsv").write_text("text\tlabel\nok\tpositive\nmeh\tmixed\n")
    with pytest.raises(InvalidInputError, match=r"val.tsv:3: label 'mixed' is not one of the classes"):
        open_source(Config(), str(folder))
    with pytest.raises(InvalidInputError, match=r"train.tsv:3: label 'negative' is not one of the classes"):
        open_source(Config(labels="positive,neutral"), str(folder))


# --- scores ---------------------------------------------------------------------------------
def test_annotate_lists_errors_and_scores_the_diagnostic_set():
    from types import SimpleNamespace

    from dlkit.apps.sentiment.model import SentimentEvaluator, annotate

    texts = ["not good at all", "a good film", "good, but long", "bad"]
    evaluator = SentimentEvaluator(["negative", "positive"])
    probs = np.array([[0.2, 0.8], [0.1, 0.9], [0.3, 0.7], [0.6, 0.4]])
    evaluator.update([probs], np.array([0, 1, 0, 0]))
    report = annotate(evaluator.result(), SimpleNamespace(texts=texts))
    assert report["accuracy"] == 0.5 and "rows" not in report
    assert [row["text"] for row in report["misclassified"]] == ["not good at all", "good, but long"]
    assert report["diagnostic"]["count"] == 2 and report["diagnostic"]["accuracy"] == 0.0
    assert report["diagnostic"]["rest_accuracy"] == 1.0


# --- CLI ---------------------------------------------------------------------------------------
def test_predict_rejects_bad_text_and_warns_on_long_text(contract_run, tmp_path):
    run = contract_run("sentiment")
    model = str(run.run_dir / "model.keras")
    result = run_cli("sentiment", "predict", "   ", "--model", model)
    assert_one_line_error(result, "empty text")
    result = run_cli("sentiment", "predict", "?!...", "--model", model)
    assert_one_line_error(result, "no words to read")
    long_text = " ".join(["a wonderful film"] * 20)
    result = run_cli("sentiment", "predict", long_text, "great zzqxv", "--model", model, "--json")
    assert result.exit_code == 0, result.output
    predictions = [json.loads(line) for line in result.stdout.splitlines()]
    assert predictions[0]["label"] in ("negative", "positive")
    assert abs(sum(predictions[0]["probabilities"].values()) - 1) < 1e-5
    assert "60 words; the model reads the first 12" in result.output and "zzqxv" in result.output
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good\n\xff\xfe bad\n")
    assert_one_line_error(run_cli("sentiment", "predict", "--file", str(bad), "--model", model), "not UTF-8")


def test_evaluate_prints_peers_and_the_diagnostic_set(contract_run):
    run = contract_run("sentiment")
    result = run_cli("sentiment", "evaluate", "--model", str(run.run_dir))
    assert result.exit_code == 0, result.output
    assert "peers: vader: accuracy" in result.stdout and "peers: tfidf_logreg: accuracy" in result.stdout
    assert "diagnostic:" in result.stdout and "accuracy" in result.stdout
    assert (run.run_dir / "plots" / "misclassified.tsv").exists()


def test_device_tokenizer_gives_the_training_ids_over_the_whole_dataset(contract_run, rated_sets):
    """The ids training used (data.load_split) and the ids a device computes from the
    exported bundle's vocabulary file (edge.read_input + preprocess), for every sentence
    of the four rated sets."""
    from dlkit.apps.sentiment import edge
    from dlkit.apps.sentiment.data import load_split, rated_source
    from dlkit.edge.bundle import ModelBundle

    run_dir = contract_run("sentiment").run_dir
    device_meta = ModelBundle.load(run_dir / "model.tflite").meta
    train_meta = dict(device_meta, vocab=list(device_meta["vocab"]))
    config = Config(max_length=device_meta["max_length"])
    total = 0
    for name in ("movie", *reviews.CROSS_DOMAIN):
        source = rated_source(config, name, rated_sets)
        for split in ("train", "val", "test"):
            if not source.splits[split]:
                continue
            loaded = load_split(config, source, split, meta=train_meta)
            device = np.stack(
                [edge.preprocess(edge.read_input(text, device_meta), device_meta) for text in loaded.texts]
            )
            np.testing.assert_array_equal(device, loaded.inputs)
            total += len(loaded.texts)
    assert total > 23_000


def test_bench_tool_times_keras_and_tflite_side_by_side(contract_run, tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_sentiment", Path(__file__).parents[2] / "tools" / "bench_sentiment.py"
    )
    bench_sentiment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_sentiment)
    texts = tmp_path / "texts.txt"
    assert bench_sentiment.write_texts(texts, 40) == 40
    result = bench_sentiment.bench(contract_run("sentiment").run_dir, texts, repeats=1)
    assert result["tflite_file"].endswith(".tflite") and len(result["seconds"]["keras"]) == 1
    medians = result["median_seconds"]
    assert result["ratio_keras_over_tflite"] == medians["keras"] / medians["tflite"]
    assert 0 < result["tflite_interpreter_seconds"] < medians["tflite"]


def test_ship_tool_measures_in_the_layout_of_every_app(contract_run):
    from conftest import load_tool
    from dlkit.apps.sentiment.data import rated_source
    from dlkit.edge.bundle import ModelBundle
    from dlkit.engine import config_of, fingerprint
    from dlkit.registry import get_app

    tool = load_tool("ship_sentiment")
    run = contract_run("sentiment")
    assert set(run.exports) == {"float32", "dynamic"}
    # The tiny run stands for both models (the shipped one and the averaging baseline).
    results = tool.measure(get_app("sentiment"), run.run_dir, run.run_dir)
    splits = ["val", "test", "tweets", "amazon", "nyt"]
    for variant in ("keras", "tflite_float32", "tflite_dynamic"):
        assert list(results[variant]) == splits, variant
        for row in results[variant].values():
            assert (
                0 <= row["accuracy"] <= 1
                and row["accuracy_ci95"][0] <= row["accuracy"] <= row["accuracy_ci95"][1]
            )
    for peer in ("average_keras", "vader", "tfidf_logreg", "label_agreement_keras_tflite_dynamic"):
        assert list(results[peer]) == splits[1:], peer
    # The model's own splits carry the data they were scored on; the baseline's ids are
    # its own vocabulary's, so its rows carry none.
    app = get_app("sentiment")
    meta = ModelBundle.load(run.run_dir / "model.keras", app="sentiment").meta  # with its vocabulary
    config = config_of(app, meta)
    test = app.load_split(config, rated_source(config, "movie", reviews.load_sets()), "test", meta=meta)
    assert results["keras"]["test"]["data_fingerprint"] == fingerprint(test)
    assert results["tflite_dynamic"]["test"]["data_fingerprint"] == fingerprint(test)
    assert results["keras"]["test"]["count"] == len(test.inputs)
    assert "data_fingerprint" not in results["average_keras"]["test"]
    assert all(0 <= value <= 1 for value in results["label_agreement_keras_tflite_dynamic"].values())


def test_rated_training_sentences_get_soft_targets(rated_sets):
    from dlkit.apps.sentiment.data import load_split, rated_source

    meta = {"vocab": VOCAB, "labels": ["negative", "positive"], "max_length": 8}
    source = rated_source(Config(), "movie", rated_sets)
    loaded = load_split(Config(), source, "train", meta=meta)
    from dlkit.apps.sentiment.edge import has_words

    kept = [
        r for (text, _), r in zip(source.rows("train"), source.ratings["train"]) if has_words(words(text))
    ]
    ratings = np.array(kept)
    positive = loaded.fit_targets[:, 1]
    assert np.allclose(loaded.fit_targets.sum(axis=1), 1) and np.all(
        (positive > 0.5) == (loaded.targets == 1)
    )
    np.testing.assert_allclose(positive, 1 / (1 + np.exp(-2.0 * ratings)), rtol=1e-5)
    hard = load_split(Config(soft_labels=0), source, "train", meta=meta)
    np.testing.assert_array_equal(hard.fit_targets, np.eye(2)[hard.targets])


def test_tfds_text_source_on_a_local_builder(tmp_path, monkeypatch):
    """An imdb_reviews-like builder (text, label with names; train and test only)."""
    tfds = pytest.importorskip("tensorflow_datasets")

    class DlkitTinyReviews(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {"text": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["neg", "pos"])}
                ),
                supervised_keys=("text", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(60, 0), "test": self._generate_examples(10, 1)}

        def _generate_examples(self, count, seed):
            for i in range(count):
                yield (
                    f"{seed}-{i}",
                    {"text": f"review {seed} {i} was {'good' if i % 2 else 'bad'}", "label": i % 2},
                )

    DlkitTinyReviews(data_dir=str(tmp_path)).download_and_prepare()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    source = open_source(Config(), "tfds:dlkit_tiny_reviews")
    assert source.labels == ("neg", "pos") and len(source.rows("test")) == 10
    assert len(source.rows("train")) + len(source.rows("val")) == 60 and source.rows("val")
    assert all(label == int(text.endswith("good")) for text, label in source.rows("train"))


def test_train_stops_on_bad_data_with_one_line(tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "train.csv").write_text("review,stars\ngreat,5\n")
    result = run_cli("sentiment", "train", "--data", folder, "--tiny", "--run-dir", tmp_path / "run1")
    assert_one_line_error(result, "train.csv: no column 'text'")
    rows = [
        f"{word} film number {i},{label}"
        for i in range(20)
        for word, label in (("great", "pos"), ("awful", "neg"))
    ]
    (folder / "train.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    glove = tmp_path / "glove.txt"
    glove.write_text("great 0.1 0.2\nfilm 0.3\n")
    result = run_cli(
        "sentiment",
        "train",
        "--data",
        folder,
        "--tiny",
        "--set",
        f"vectors={glove}",
        "--run-dir",
        tmp_path / "run2",
    )
    assert_one_line_error(result, "glove.txt:2: 1 numbers after the word, the file's vectors have 2")


def test_five_classes_from_the_mean_rating(tmp_path):
    run_dir = tmp_path / "five"
    result = run_cli(
        "sentiment", "train", "--tiny", "--set", "classes=five", "--set", "epochs=1", "--run-dir", run_dir
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["labels"] == ["very negative", "negative", "neutral", "positive", "very positive"]
    metrics = json.loads((run_dir / "metrics.json").read_text())["keras"]["test"]
    assert np.array(metrics["confusion_matrix"]).shape == (5, 5) and metrics["count"] >= 1500


def test_shipped_model_replays_its_golden_vectors_on_the_edge_path():
    from dlkit.edge.bundle import ModelBundle
    from dlkit.engine import runner_for
    from dlkit.paths import shipped_model_dir
    from dlkit.registry import get_app

    folder = shipped_model_dir("sentiment")
    bundle = ModelBundle.load(folder / "model.dynamic.tflite")
    assert bundle.meta["vocab"][:2] == [PAD, UNK] and len(bundle.meta["vocab"]) > 20_000
    golden = np.load(folder / "model.dynamic.golden.npz")
    outputs = runner_for(get_app("sentiment"), bundle)(golden["inputs"])
    np.testing.assert_allclose(outputs[0], golden["tflite_output_0"], atol=1e-5)
    np.testing.assert_allclose(outputs[0], golden["keras_output_0"], atol=0.05)
