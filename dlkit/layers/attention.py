"""Additive (Bahdanau) attention, shared by the translate models."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="dlkit")
class AdditiveAttention(layers.Layer):
    """Bahdanau attention: `e_t = v . tanh(W_q q + W_k k_t)`, `a = softmax_t(e)`,
    `context = sum_t a_t k_t`.

    The course's date model writes the same score as a small dense network over the
    concatenation `[s_prev, a_t]` (concatenation followed by a dense layer is `W_q q +
    W_k k_t`); energies go through a softmax over the input time axis.

    Args:
        units: int. Width of the hidden tanh layer.

    Call args:
        query: (batch, d_q) for one decoder step, or (batch, T_q, d_q) for all steps.
        values: (batch, T_v, d_v) encoder annotations.
        values_mask: optional bool (batch, T_v); False positions get zero weight.
        return_attention_scores: bool. Also return the weights (batch, [T_q,] T_v).

    Returns:
        context (batch, [T_q,] d_v), and the weights when asked.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.query_dense = layers.Dense(units, use_bias=False, name="query")
        self.key_dense = layers.Dense(units, name="key")
        self.energy = layers.Dense(1, use_bias=False, name="energy")

    def build(self, query_shape, values_shape):
        self.query_dense.build(query_shape)
        self.key_dense.build(values_shape)
        self.energy.build((*values_shape[:-1], self.units))
        self.built = True

    def call(self, query, values, values_mask=None, return_attention_scores=False):
        single = len(query.shape) == 2
        if single:
            query = ops.expand_dims(query, 1)  # (batch, 1, d_q)
        q = ops.expand_dims(self.query_dense(query), 2)  # (batch, T_q, 1, units)
        k = ops.expand_dims(self.key_dense(values), 1)  # (batch, 1, T_v, units)
        energies = ops.squeeze(self.energy(ops.tanh(q + k)), -1)  # (batch, T_q, T_v)
        if values_mask is not None:
            keep = ops.expand_dims(ops.cast(values_mask, energies.dtype), 1)  # (batch, 1, T_v)
            energies = energies * keep + (1.0 - keep) * -1e9
        weights = ops.softmax(energies, axis=-1)  # (batch, T_q, T_v)
        context = ops.matmul(weights, values)  # (batch, T_q, d_v)
        if single:
            context, weights = context[:, 0], weights[:, 0]
        return (context, weights) if return_attention_scores else context

    def compute_output_spec(self, query, values, values_mask=None, return_attention_scores=False):
        context = keras.KerasTensor((*query.shape[:-1], values.shape[-1]), dtype=self.compute_dtype)
        if not return_attention_scores:
            return context
        weights = keras.KerasTensor((*query.shape[:-1], values.shape[1]), dtype=self.compute_dtype)
        return context, weights

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="dlkit")
class PaddingMask(layers.Layer):
    """Token ids -> bool mask, True where the id is not the padding id (0)."""

    def __init__(self, pad_id=0, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = pad_id

    def call(self, ids):
        return ops.not_equal(ids, self.pad_id)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}
