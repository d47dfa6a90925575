"""A layer-normalised LSTM cell (TF1's `LayerNormBasicLSTMCell`) and the RNN layer around it.

Every LSTM of the AudioCaps model (encoders, word encoder, context encoder, decoder) is a 128-unit
layer-normalised LSTM in the authors' code (shared/docs/original-code.md). This is that cell, written
with `keras.ops` so it runs in `keras.layers.RNN`, in `keras.layers.Bidirectional` (via `LayerNormLSTM`)
and one step at a time (the decoder, `LuongDecoder`).
"""

import keras
from keras import ops


def _layer_norm(x, gamma, beta, epsilon):
    """Normalises the last axis of `x`; moments in float32 (safe under mixed_float16), result in x.dtype."""
    dtype = x.dtype
    x = ops.cast(x, "float32")
    mean = ops.mean(x, axis=-1, keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
    x = (x - mean) * ops.rsqrt(variance + epsilon)
    return ops.cast(x * ops.cast(gamma, "float32") + ops.cast(beta, "float32"), dtype)


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class LayerNormLSTMCell(keras.layers.Layer):
    """LSTM cell with layer normalisation of every gate pre-activation and of the cell state.

    One step, for input x_t [B, D] and state (h_{t-1}, c_{t-1}), each [B, units]:

        [i; g; f; o] = W [x_t; h_{t-1}]              W: [D + units, 4 * units], Xavier init, no bias
        i, g, f, o   = LN_i(i), LN_g(g), LN_f(f), LN_o(o)    one (gamma, beta) pair per gate
        c_t = LN_c(c_{t-1} * sigmoid(f + forget_bias) + sigmoid(i) * tanh(g))
        h_t = tanh(c_t) * sigmoid(o)

    as TF1's `tf.contrib.rnn.LayerNormBasicLSTMCell(layer_norm=True)`, the authors' cell: the input and
    recurrent contributions are summed and then normalised per gate (not normalised separately as in
    Ba et al. 2016), the layer-norm shifts replace the bias, `forget_bias` (1.0) is added after the norm,
    and the *normalised* cell c_t is both the carried state and the input of the output tanh.
    LN: gamma initialised to 1, beta to 0, moments over the `units` axis computed in float32.

    Args:
        units: size of h and c.
        dropout: rate of dropout on the input x_t (training only), a fresh mask every step.
        recurrent_dropout: rate of dropout on the candidate tanh(g) (training only), a fresh mask
            every step: the "recurrent dropout without memory loss" of TF1's `dropout_keep_prob`
            (Semeniuta et al. 2016). Unlike `keras.layers.LSTMCell`, h_{t-1} itself is never dropped.
        forget_bias: added to the normalised forget-gate pre-activation (TF1 default 1.0).
        epsilon: variance epsilon of the layer norms (TF1 hard-coded 1e-12; 1e-5 keeps the gradient of
            a near-constant pre-activation bounded).
        seed: seed of the dropout masks.

    `state_size` is [units, units] (h, c), `output_size` units; `call(inputs, states, training)` returns
    (h_t, [h_t, c_t]). Works in `keras.layers.RNN` and when called step by step.
    """

    def __init__(
        self, units, dropout=0.0, recurrent_dropout=0.0, forget_bias=1.0, epsilon=1e-5, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        if units <= 0:
            raise ValueError(f"units must be positive; got {units}.")
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1); got {rate}.")
        self.units = int(units)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.forget_bias = float(forget_bias)
        self.epsilon = float(epsilon)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"LayerNormLSTMCell needs a known input depth; got input shape {input_shape}.")
        units = self.units
        self.kernel = self.add_weight(shape=(input_dim + units, 4 * units), initializer="glorot_uniform", name="kernel")
        # Gate order i, g (candidate), f, o; one layer norm per gate.
        self.gate_gamma = self.add_weight(shape=(4, units), initializer="ones", name="gate_gamma")
        self.gate_beta = self.add_weight(shape=(4, units), initializer="zeros", name="gate_beta")
        self.cell_gamma = self.add_weight(shape=(units,), initializer="ones", name="cell_gamma")
        self.cell_beta = self.add_weight(shape=(units,), initializer="zeros", name="cell_beta")
        self.built = True

    def call(self, inputs, states, training=False):
        h, c = states[0], states[1]
        if training and self.dropout > 0.0:
            inputs = keras.random.dropout(inputs, self.dropout, seed=self.seed_generator)
        z = ops.matmul(ops.concatenate([inputs, h], axis=-1), self.kernel)
        z = _layer_norm(ops.reshape(z, (-1, 4, self.units)), self.gate_gamma, self.gate_beta, self.epsilon)
        i, g, f, o = z[:, 0], z[:, 1], z[:, 2], z[:, 3]
        g = ops.tanh(g)
        if training and self.recurrent_dropout > 0.0:
            g = keras.random.dropout(g, self.recurrent_dropout, seed=self.seed_generator)
        c = c * ops.sigmoid(f + self.forget_bias) + ops.sigmoid(i) * g
        c = _layer_norm(c, self.cell_gamma, self.cell_beta, self.epsilon)
        h = ops.tanh(c) * ops.sigmoid(o)
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "forget_bias": self.forget_bias,
                "epsilon": self.epsilon,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class LayerNormLSTM(keras.layers.RNN):
    """`keras.layers.RNN(LayerNormLSTMCell(...))` as one layer, like `keras.layers.LSTM` for `LSTMCell`.

    Input [B, T, D] (with an optional time mask [B, T]) -> [B, T, units] if `return_sequences` else
    [B, units]; with `return_state`, also h_T and c_T [B, units]. Its config is flat (no nested cell),
    so `keras.layers.Bidirectional(LayerNormLSTM(128, return_sequences=True))` can recreate the backward
    copy. The cell is created with this layer's dtype policy, so mixed_float16 reaches it.
    Cell arguments: see `LayerNormLSTMCell`.
    """

    def __init__(
        self,
        units,
        dropout=0.0,
        recurrent_dropout=0.0,
        forget_bias=1.0,
        epsilon=1e-5,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        **kwargs,
    ):
        cell = LayerNormLSTMCell(
            units,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            forget_bias=forget_bias,
            epsilon=epsilon,
            seed=seed,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="layer_norm_lstm_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            **kwargs,
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)

    @property
    def units(self):
        return self.cell.units

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        config.update(
            {
                "units": self.cell.units,
                "dropout": self.cell.dropout,
                "recurrent_dropout": self.cell.recurrent_dropout,
                "forget_bias": self.cell.forget_bias,
                "epsilon": self.cell.epsilon,
                "seed": self.cell.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
