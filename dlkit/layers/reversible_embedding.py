"""A token embedding that also projects hidden states back onto the vocabulary (tied weights)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="dlkit")
class ReversibleEmbedding(layers.Embedding):
    """`layers.Embedding` whose matrix also serves as the output layer of a language model.

    Called on token ids it looks them up; called with `reverse=True` on hidden states it
    returns `hidden @ embeddings^T (+ bias)`: logits over the vocabulary from the very
    same variable, so the input and output embeddings are tied (BERT's MLM head).

    Args:
        input_dim: int. Vocabulary size.
        output_dim: int. Embedding width.
        reverse_bias: bool. Add a learnt bias per vocabulary entry to the reverse logits.

    Example:
        >>> embedding = ReversibleEmbedding(100, 8)
        >>> hidden = embedding(ops.array([[3, 4]]))          # (1, 2, 8)
        >>> logits = embedding(hidden, reverse=True)         # (1, 2, 100)
    """

    def __init__(self, input_dim, output_dim, reverse_bias=True, **kwargs):
        super().__init__(input_dim, output_dim, **kwargs)
        self.reverse_bias = reverse_bias

    def build(self, input_shape=None):
        if self.built:
            return
        super().build(input_shape)
        if self.reverse_bias:
            self.bias = self.add_weight(name="reverse_bias", shape=(self.input_dim,), initializer="zeros")

    @property
    def variable_serialization_spec(self):
        """The embedding's own saved variables, then the reverse bias."""
        spec = dict(super().variable_serialization_spec)
        if self.reverse_bias:
            spec = {mode: [*names, "bias"] for mode, names in spec.items()}
        return spec

    def call(self, inputs, reverse=False):
        if not reverse:
            return super().call(inputs)
        logits = ops.matmul(inputs, ops.transpose(ops.convert_to_tensor(self.embeddings)))
        return logits + self.bias if self.reverse_bias else logits

    def compute_output_spec(self, inputs, reverse=False):
        if not reverse:
            return keras.KerasTensor((*inputs.shape, self.output_dim), dtype=self.compute_dtype)
        return keras.KerasTensor((*inputs.shape[:-1], self.input_dim), dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "reverse_bias": self.reverse_bias}
