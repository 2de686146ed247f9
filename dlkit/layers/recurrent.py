"""A GRU written out step by step with its gates fused, for exported streaming models."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dlkit")
class UnrolledGRU(keras.layers.Layer):
    """Keras's GRU (`reset_after=True`, sigmoid and tanh) over a sequence of static
    length, each step its own ops: (inputs (batch, steps, features), initial_state
    (batch, units)) -> [outputs (batch, steps, units), final state (batch, units)].

    It holds the GRU's own weights (`set_weights(gru.get_weights())`) and computes the
    same function in fewer, larger ops:

    - the input projection of every step is one matrix product before the loop, not one
      per step;
    - the update and reset gates take one addition and one sigmoid over both (2 x units),
      then a split;
    - the new state is `n + z * (h - n)`, three ops where `z * h + (1 - z) * n` takes four.

    Eleven ops a step where Keras's unrolled GRU gives the converter seventeen: the
    trigger streaming model's two GRUs take 290 LiteRT ops a chunk instead of 431, which
    saved only 3% of a chunk's time (most of it was the spectrogram's FFT). It is not for
    training (no dropout, no mask); `from_gru` builds one from a trained layer.

    Args:
        units: int. The GRU's units.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    @classmethod
    def from_gru(cls, gru, name=None):
        """An UnrolledGRU computing what the built keras.layers.GRU `gru` computes.

        Raises:
            ValueError: a GRU configuration it does not write out (the gates' order and
                activations, `reset_after`, a bias, a forward direction).
        """
        cell = gru.cell
        unsupported = {
            "reset_after=False": not cell.reset_after,
            "use_bias=False": not cell.use_bias,
            "go_backwards": gru.go_backwards,
            f"activation {cell.activation.__name__}": cell.activation is not keras.activations.tanh,
            f"recurrent_activation {cell.recurrent_activation.__name__}": (
                cell.recurrent_activation is not keras.activations.sigmoid
            ),
        }
        found = [what for what, present in unsupported.items() if present]
        if found:
            raise ValueError(
                f"UnrolledGRU writes out the default GRU only; {gru.name} has {', '.join(found)}"
            )
        return cls(cell.units, name=name or gru.name)

    def build(self, inputs_shape, initial_state_shape=None):
        features = inputs_shape[-1]
        self.kernel = self.add_weight(shape=(features, 3 * self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, 3 * self.units), name="recurrent_kernel")
        self.bias = self.add_weight(shape=(2, 3 * self.units), name="bias", initializer="zeros")

    def call(self, inputs, initial_state):
        units = self.units
        if inputs.shape[1] is None:
            raise ValueError("UnrolledGRU needs a static number of steps")
        projected = ops.matmul(inputs, self.kernel) + self.bias[0]  # (batch, steps, 3 units)
        x_gates, x_candidate = ops.split(projected, [2 * units], axis=-1)  # z and r; n
        x_gates, x_candidate = ops.unstack(x_gates, axis=1), ops.unstack(x_candidate, axis=1)
        state, outputs = initial_state, []
        for x_zr, x_n in zip(x_gates, x_candidate):
            h_zr, h_n = ops.split(
                ops.matmul(state, self.recurrent_kernel) + self.bias[1], [2 * units], axis=-1
            )
            z, r = ops.split(ops.sigmoid(x_zr + h_zr), 2, axis=-1)
            candidate = ops.tanh(x_n + r * h_n)
            state = candidate + z * (state - candidate)
            outputs.append(state)
        return [ops.stack(outputs, axis=1), state]

    def compute_output_shape(self, inputs_shape, initial_state_shape=None):
        return [(inputs_shape[0], inputs_shape[1], self.units), (inputs_shape[0], self.units)]

    def get_config(self):
        return {**super().get_config(), "units": self.units}
