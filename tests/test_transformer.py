"""The BERT layers against numpy: self-attention (softmax(QK^T/sqrt(d)) V with a padding
mask), the post-LayerNorm encoder block with exact GELU, position embeddings, the tied
reversible embedding and the masked-position gather; config and .keras round trips."""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlkit.layers import (  # noqa: E402
    MaskedPositions,
    MultiHeadSelfAttention,
    PositionEmbedding,
    ReversibleEmbedding,
    TransformerEncoder,
)


def dense(layer, x):
    return x @ layer.kernel.numpy() + layer.bias.numpy()


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention_reference(layer, x, mask):
    """Per head h: softmax(Q_h K_h^T / sqrt(d) - 10000 (1 - mask)) V_h, heads concatenated."""
    heads, d = layer.heads, x.shape[-1] // layer.heads
    q, k, v = dense(layer.query, x), dense(layer.key, x), dense(layer.value, x)
    outs, all_weights = [], []
    for h in range(heads):
        part = slice(h * d, (h + 1) * d)
        scores = q[..., part] @ np.swapaxes(k[..., part], 1, 2) / math.sqrt(d)  # (b, L, L)
        scores = scores - 10000.0 * (1 - mask[:, None, :])
        weights = softmax(scores)
        all_weights.append(weights)
        outs.append(weights @ v[..., part])
    return dense(layer.output_dense, np.concatenate(outs, -1)), np.stack(all_weights, 1)


def layer_norm(x, layer):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * layer.gamma.numpy() + layer.beta.numpy()


def gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 8)).astype("float32")
    mask = np.ones((3, 6), np.int32)
    mask[1, 4:] = 0
    mask[2, 1:] = 0
    return x, mask


def test_self_attention_matches_numpy(batch):
    x, mask = batch
    layer = MultiHeadSelfAttention(2)
    out, weights = layer(x, padding_mask=mask, return_attention_scores=True)
    expected, expected_weights = attention_reference(layer, x, mask)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-4)
    assert np.asarray(weights)[1, :, :, 4:].max() < 1e-6  # nobody attends to padding
    with pytest.raises(ValueError, match="divide"):
        MultiHeadSelfAttention(3)(x)


def test_encoder_block_matches_numpy(batch):
    x, mask = batch
    block = TransformerEncoder(heads=2, intermediate_size=16, dropout=0.5)
    out = np.asarray(block(x, padding_mask=mask))  # inference: dropout off
    attended, _ = attention_reference(block.attention, x, mask)
    h = layer_norm(x + attended, block.attention_norm)
    ffn = dense(block.output_dense, gelu(dense(block.intermediate, h)))
    np.testing.assert_allclose(out, layer_norm(h + ffn, block.output_norm), atol=1e-4)
    assert out.shape == x.shape


def test_position_embedding_adds_the_first_rows():
    layer = PositionEmbedding(10)
    x = np.zeros((2, 4, 3), np.float32)
    out = np.asarray(layer(x))
    table = layer.embeddings.numpy()
    np.testing.assert_allclose(out, np.broadcast_to(table[:4], (2, 4, 3)))
    with pytest.raises(ValueError, match="covers 10"):
        PositionEmbedding(10)(np.zeros((1, 11, 3), np.float32))


def test_reversible_embedding_is_tied():
    layer = ReversibleEmbedding(7, 4)
    ids = np.array([[1, 2, 6]])
    hidden = np.asarray(layer(ids))
    matrix = layer.embeddings.numpy()
    np.testing.assert_allclose(hidden, matrix[ids])
    logits = np.asarray(layer(hidden, reverse=True))
    np.testing.assert_allclose(logits, hidden @ matrix.T + layer.bias.numpy(), atol=1e-5)
    # One variable: changing the embedding changes the output projection as well.
    layer.embeddings.assign(matrix * 2)
    np.testing.assert_allclose(np.asarray(layer(hidden, reverse=True)), hidden @ (2 * matrix).T, atol=1e-5)
    assert len(layer.trainable_weights) == 2  # the matrix and the reverse bias


def test_masked_positions_gathers_rows(batch):
    x, _ = batch
    positions = np.array([[0, 5], [3, 3], [1, 0]], np.int32)
    out = np.asarray(MaskedPositions()(x, positions))
    np.testing.assert_allclose(out, np.take_along_axis(x, positions[..., None], axis=1), atol=1e-6)


def test_layers_round_trip_through_config_and_keras_file(tmp_path, batch):
    x, mask = batch
    tokens = keras.Input((6,), dtype="int32")
    attention = keras.Input((6,), dtype="int32")
    positions = keras.Input((2,), dtype="int32")
    embedding = ReversibleEmbedding(11, 8, name="tokens")
    h = PositionEmbedding(6)(embedding(tokens))
    h = TransformerEncoder(2, 16, name="block")(h, padding_mask=attention)
    logits = embedding(MaskedPositions()(h, positions), reverse=True)
    model = keras.Model([tokens, attention, positions], logits)
    ids = np.random.default_rng(1).integers(0, 11, (3, 6)).astype(np.int32)
    where = np.array([[0, 1], [2, 3], [4, 5]], np.int32)
    path = tmp_path / "bert.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict([ids, mask, where], verbose=0), model.predict([ids, mask, where], verbose=0), atol=1e-5
    )
    # Loaded, the output projection is still the input embedding.
    assert len([w for w in loaded.weights if "embeddings" in w.path and "tokens" in w.path]) == 1
    for layer in (
        TransformerEncoder(2, 16, dropout=0.2, epsilon=1e-6),
        PositionEmbedding(9),
        ReversibleEmbedding(5, 3, reverse_bias=False),
    ):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
