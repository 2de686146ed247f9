"""AdditiveAttention against a numpy reference, with masking; save/load round trip."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlkit.layers import AdditiveAttention, PaddingMask  # noqa: E402


def reference(layer, query, values, mask=None):
    """e = v . tanh(W_q q + W_k k + b), a = softmax over unmasked steps, context = a @ values."""
    w_q = layer.query_dense.kernel.numpy()
    w_k, b_k = layer.key_dense.kernel.numpy(), layer.key_dense.bias.numpy()
    v = layer.energy.kernel.numpy()[:, 0]
    q = query[:, None] if query.ndim == 2 else query  # (b, Tq, dq)
    energies = np.tanh((q @ w_q)[:, :, None, :] + (values @ w_k + b_k)[:, None, :, :]) @ v  # (b, Tq, Tv)
    if mask is not None:
        energies = np.where(mask[:, None, :], energies, -np.inf)
    weights = np.exp(energies - energies.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    context = weights @ values
    return (context[:, 0], weights[:, 0]) if query.ndim == 2 else (context, weights)


@pytest.mark.parametrize("query_shape", [(3, 5), (3, 4, 5)])
def test_additive_attention_matches_numpy(query_shape):
    rng = np.random.default_rng(0)
    layer = AdditiveAttention(6)
    query = rng.normal(size=query_shape).astype("float32")
    values = rng.normal(size=(3, 7, 4)).astype("float32")
    mask = np.ones((3, 7), bool)
    mask[1, 3:] = False
    mask[2, 6:] = False
    context, weights = layer(query, values, values_mask=mask, return_attention_scores=True)
    expected_context, expected_weights = reference(layer, query, values, mask)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=1e-5)
    np.testing.assert_allclose(np.asarray(context), expected_context, atol=1e-5)
    assert np.all(np.asarray(weights)[1, ..., 3:] == 0)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-6)
    # Without a mask every step gets weight.
    unmasked = np.asarray(layer(query, values, return_attention_scores=True)[1])
    np.testing.assert_allclose(unmasked, reference(layer, query, values)[1], atol=1e-5)


def test_attention_model_saves_and_loads(tmp_path):
    ids = keras.Input((5,), dtype="int32")
    mask = PaddingMask()(ids)
    x = keras.layers.Embedding(10, 4)(ids)
    query = keras.layers.GlobalAveragePooling1D()(x)
    context = AdditiveAttention(3)(query, x, values_mask=mask)
    model = keras.Model(ids, context)
    data = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], np.int32)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode: registered layers only, no Lambda
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0), atol=1e-6)
