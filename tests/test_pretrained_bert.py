"""The BERT checkpoint port on a tiny synthetic safetensors file: the Keras encoder gives
the hidden states a numpy BERT computes from the checkpoint's own tensors (PyTorch
layout), and a checkpoint of another architecture is refused before anything moves."""

import math
import re

import numpy as np
import pytest

keras = pytest.importorskip("keras")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from dlkit.errors import DlkitError  # noqa: E402
from dlkit.layers.bert import apply_bert_encoder, encoder_inputs  # noqa: E402
from dlkit.pretrained.bert import port_bert  # noqa: E402

VOCAB, WIDTH, HEADS, INTERMEDIATE, LAYERS, POSITIONS, LENGTH = 20, 8, 2, 16, 2, 40, 7


def checkpoint(seed=0, layers=LAYERS):
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.normal(0, 0.3, shape).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": r(VOCAB, WIDTH),
        "embeddings.token_type_embeddings.weight": r(2, WIDTH),
        "embeddings.position_embeddings.weight": r(POSITIONS, WIDTH),
        "embeddings.position_ids": np.arange(POSITIONS)[None],
        "embeddings.LayerNorm.weight": 1 + r(WIDTH),
        "embeddings.LayerNorm.bias": r(WIDTH),
        "pooler.dense.weight": r(WIDTH, WIDTH),
    }
    for k in range(layers):
        base = f"encoder.layer.{k}."
        for name in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ):
            weights[base + name + ".weight"], weights[base + name + ".bias"] = r(WIDTH, WIDTH), r(WIDTH)
        weights[base + "intermediate.dense.weight"] = r(INTERMEDIATE, WIDTH)
        weights[base + "intermediate.dense.bias"] = r(INTERMEDIATE)
        weights[base + "output.dense.weight"], weights[base + "output.dense.bias"] = (
            r(WIDTH, INTERMEDIATE),
            r(WIDTH),
        )
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[base + norm + ".weight"], weights[base + norm + ".bias"] = 1 + r(WIDTH), r(WIDTH)
    return weights


def numpy_bert(w, ids, segments, mask):
    """BERT's forward pass from the checkpoint (dense weights are (out, in))."""
    from scipy.special import erf

    def linear(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    def norm(x, name, eps=1e-12):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]

    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][segments]
    x = norm(x + w["embeddings.position_embeddings.weight"][: ids.shape[1]], "embeddings.LayerNorm")
    d = WIDTH // HEADS
    for k in range(LAYERS):
        base = f"encoder.layer.{k}."
        q, kk, v = (linear(x, base + f"attention.self.{n}") for n in ("query", "key", "value"))
        heads = []
        for h in range(HEADS):
            s = slice(h * d, (h + 1) * d)
            scores = q[..., s] @ np.swapaxes(kk[..., s], 1, 2) / math.sqrt(d) - 10000.0 * (
                1 - mask[:, None, :]
            )
            e = np.exp(scores - scores.max(-1, keepdims=True))
            heads.append((e / e.sum(-1, keepdims=True)) @ v[..., s])
        x = norm(
            x + linear(np.concatenate(heads, -1), base + "attention.output.dense"),
            base + "attention.output.LayerNorm",
        )
        inner = linear(x, base + "intermediate.dense")
        inner = 0.5 * inner * (1 + erf(inner / math.sqrt(2)))
        x = norm(x + linear(inner, base + "output.dense"), base + "output.LayerNorm")
    return x


def encoder(max_positions=16):
    inputs = encoder_inputs(LENGTH)
    hidden, _ = apply_bert_encoder(inputs, VOCAB, WIDTH, LAYERS, HEADS, INTERMEDIATE, max_positions)
    return keras.Model(inputs, hidden)


def test_port_gives_the_checkpoints_hidden_states(tmp_path):
    path = tmp_path / "model.safetensors"
    safetensors_numpy.save_file(checkpoint(), str(path))
    weights = safetensors_numpy.load_file(str(path))
    model = encoder()
    assert port_bert(model, weights) == 5 + LAYERS * 16
    rng = np.random.default_rng(1)
    ids = rng.integers(0, VOCAB, (3, LENGTH)).astype(np.int32)
    mask = np.ones((3, LENGTH), np.int32)
    mask[1, 4:], mask[2, 2:] = 0, 0
    ids[mask == 0] = 0
    segments = (np.arange(LENGTH) >= 3).astype(np.int32)[None].repeat(3, 0)
    ours = model.predict([ids, segments, mask], verbose=0)
    expected = numpy_bert(weights, ids, segments, mask)
    np.testing.assert_allclose(ours[mask == 1], expected[mask == 1], atol=1e-4)
    # The table is cut to the model's 16 positions.
    np.testing.assert_array_equal(
        model.get_layer("position_embedding").embeddings.numpy(),
        weights["embeddings.position_embeddings.weight"][:16],
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda w: w.pop("encoder.layer.1.output.dense.bias"), "no tensor encoder.layer.1.output.dense.bias"),
        (
            lambda w: w.update({"embeddings.word_embeddings.weight": np.zeros((21, WIDTH), np.float32)}),
            "shape (21, 8)",
        ),
        (lambda w: w.update({"encoder.layer.2.output.dense.bias": np.zeros(WIDTH, np.float32)}), "3 layers"),
        (
            lambda w: w.update({"embeddings.position_embeddings.weight": np.zeros((10, WIDTH), np.float32)}),
            "10 positions",
        ),
    ],
)
def test_another_architecture_is_refused_before_any_weight_moves(edit, message):
    model = encoder()
    before = [w.numpy().copy() for w in model.weights]
    weights = checkpoint()
    edit(weights)
    with pytest.raises(DlkitError, match=re.escape(message)) as caught:
        port_bert(model, weights)
    assert "\n" not in str(caught.value)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))


def test_sentence_encoder_is_the_unit_mean_of_the_checkpoints_token_states(monkeypatch):
    """sentence-transformers pooling: the mean of the last block's states over the real
    tokens, L2-normalised; padding changes nothing."""
    import dlkit.pretrained.text as text
    from dlkit.pretrained.bert import sentence_encoder

    settings = {
        "hidden_size": WIDTH,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
    }
    vocab = [f"t{k}" for k in range(VOCAB)]
    monkeypatch.setattr(text, "load_text_encoder", lambda name: (checkpoint(), vocab, settings))
    model, got_vocab = sentence_encoder("synthetic", LENGTH)
    assert got_vocab == vocab
    rng = np.random.default_rng(2)
    ids = rng.integers(1, VOCAB, (3, LENGTH)).astype(np.int32)
    mask = np.ones((3, LENGTH), np.int32)
    mask[1, 5:], mask[2, 3:] = 0, 0
    ids[mask == 0] = 0
    segments = np.zeros_like(ids)
    hidden = numpy_bert(checkpoint(), ids, segments, mask)
    mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    expected = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict([ids, segments, mask], verbose=0), expected, atol=1e-5)


@pytest.mark.parametrize(
    "setting, value",
    [("hidden_act", "relu"), ("position_embedding_type", "relative_key"), ("type_vocab_size", 1)],
)
def test_a_checkpoint_whose_settings_the_encoder_cannot_run_is_refused(monkeypatch, setting, value):
    """Settings a tensor's shape cannot tell (another activation, relative positions, one
    segment type) stop the sentence encoder in one line naming the setting."""
    import dlkit.pretrained.text as text
    from dlkit.pretrained.bert import sentence_encoder

    settings = {
        "hidden_size": WIDTH,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        setting: value,
    }
    vocab = [f"t{k}" for k in range(VOCAB)]
    monkeypatch.setattr(text, "load_text_encoder", lambda name: (checkpoint(), vocab, settings))
    with pytest.raises(DlkitError, match=re.escape(f"synthetic: {setting} is {value!r}")) as caught:
        sentence_encoder("synthetic", LENGTH)
    assert "\n" not in str(caught.value)
