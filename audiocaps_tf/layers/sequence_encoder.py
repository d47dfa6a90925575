"""A bi-directional LSTM encoder: the building block of every encoder of the paper (eqs. 1, 3, 4)."""

import keras


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class BiLSTMEncoder(keras.layers.Layer):
    """Sequence [B, T, C] -> {"sequence": [B, T, 2 * units], "state": [B, 2 * units]}.

    One bi-directional LSTM, the form of eqs. (1), (3) and (4) of the paper:
    h_t = [fw_h_t ; bw_h_t] with fw_h_t = LSTM(x_t, fw_h_{t-1}) and bw_h_t = LSTM(x_t, bw_h_{t+1}).
    On its own it is the audio encoder of the TempAtt / "-LSTM" baselines (section 5.2); TopDownEncoder,
    SemanticEncoder and MFCCEncoder are built from it.

    Outputs:
      - "sequence" [B, T, 2 * units]: forward and backward hidden states concatenated at every step;
        zeros at padded steps.
      - "state" [B, 2 * units]: [final forward hidden state ; final backward hidden state], i.e.
        [fw_h_T ; bw_h_1] (the input of eq. 2). With a mask, fw_h_T is the state at the last valid step
        and the backward LSTM starts at the last valid step, so right padding changes nothing.

    Masking: `mask` [B, T] (True = valid step, right padding) or None. The output mask of "sequence"
    is the input mask; "state" has none.

    Args:
        units: LSTM units per direction (128 in the authors' code).
        dropout: input dropout of each LSTM direction (the authors' `DropoutWrapper(input_keep_prob)`;
            Keras draws one mask per sequence). Only active with `training=True`.

    Glorot-uniform input kernels and orthogonal recurrent kernels (Keras' LSTM defaults). Plain LSTM
    cells: the authors used layer-normalised cells, which Keras does not provide.
    """

    def __init__(self, units=128, dropout=0.25, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.dropout = float(dropout)
        template = keras.layers.LSTM(
            self.units,
            return_sequences=True,
            return_state=True,
            dropout=self.dropout,
            dtype=self.dtype_policy,
            name="lstm",
        )
        self.bilstm = keras.layers.Bidirectional(template, merge_mode="concat", dtype=self.dtype_policy, name="bilstm")
        # Bidirectional copies `template` through Keras serialization, which while a model loads remembers objects
        # by id(): a freed template whose address a later one reuses would hand that one another encoder's LSTM
        # ("Forward layer and backward layer should have different `go_backwards` value"). Keeping the template
        # alive keeps its id unique; object.__setattr__ keeps it out of the layer's tracked weights.
        object.__setattr__(self, "_bilstm_template", template)

    def build(self, input_shape):
        self.bilstm.build(tuple(input_shape))
        self.built = True

    def call(self, inputs, mask=None, training=None):
        sequence, forward_h, _, backward_h, _ = self.bilstm(inputs, mask=mask, training=training)
        state = keras.ops.concatenate([forward_h, backward_h], axis=-1)
        return {"sequence": sequence, "state": state}

    def compute_mask(self, inputs, mask=None):
        return {"sequence": mask, "state": None}

    def compute_output_shape(self, input_shape):
        batch, steps = input_shape[0], input_shape[1]
        return {"sequence": (batch, steps, 2 * self.units), "state": (batch, 2 * self.units)}

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, dropout=self.dropout)
        return config
