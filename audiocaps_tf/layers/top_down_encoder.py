"""The top-down multi-scale encoder (paper, section 4.1, eqs. 1-3)."""

import keras

from audiocaps_tf.layers.sequence_encoder import BiLSTMEncoder


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class TopDownEncoder(keras.layers.Layer):
    """Multi-level audio features, top (semantic) level first -> fused encoding.

    Eq. (1): h_a1_t = biLSTM(f_t) over the first level (VGGish fc2).
    Eq. (2): h_ctxt = W_c [fw_h_a1_T ; bw_h_a1_1] + b_c, a Dense from the final forward and backward
      hidden states to the feature size of the NEXT level (512 for conv4, as the authors' code).
    Eq. (3): h_a2_t = biLSTM(c_t + h_ctxt) over the next level (conv4), h_ctxt added at every step.
    With a third level (e.g. conv3) eqs. (2)-(3) repeat once more: the second level's final states are
    projected to the third level's feature size (256 for conv3) and added to it.

    Inputs: a dict {level name: [B, T, C_level]} holding every name of `levels` (same T for all),
      e.g. {"fc2": [B, T, 128], "conv4": [B, T, 512]}.
    Mask: None, or a dict of the same keys with [B, T] boolean masks (True = valid step, right
      padding) or None entries; a level without a mask uses the mask of another level (all levels
      share the time axis). Final states are taken at the last valid step, so padding changes nothing
      at valid steps.
    Outputs, a dict:
      - "sequence" [B, T, 2 * units]: the last level's biLSTM outputs (h_a2 of eq. 3); zero at padded
        steps; its output mask is the time mask.
      - "state" [B, 2 * units]: the last level's [final fw ; final bw] hidden states (for the "-LSTM"
        baselines that initialise the decoder with the encoded audio).
      - "context" [B, C_2]: h_ctxt of eq. (2), the first level's projected summary (C_2 = 512 for conv4).

    Args:
        units: LSTM units per direction of every level (128 in the authors' code).
        levels: level names in top-down order; the keys of the input dict.
        dropout: input dropout of every biLSTM (0.25 in the authors' code).

    The context sizes follow the input feature sizes, so no size argument is needed.
    """

    def __init__(self, units=128, levels=("fc2", "conv4"), dropout=0.25, **kwargs):
        super().__init__(**kwargs)
        if isinstance(levels, str):
            levels = (levels,)
        levels = tuple(levels)
        if len(levels) < 2 or len(set(levels)) != len(levels):
            raise ValueError(f"TopDownEncoder needs at least two distinct levels; got {levels}.")
        self.units = int(units)
        self.levels = levels
        self.dropout = float(dropout)
        self.level_encoders = [
            BiLSTMEncoder(self.units, dropout=self.dropout, dtype=self.dtype_policy, name=f"{level}_encoder")
            for level in levels
        ]

    def build(self, input_shape):
        missing = [level for level in self.levels if level not in input_shape]
        if missing:
            raise ValueError(f"TopDownEncoder inputs lack levels {missing}; got keys {sorted(input_shape)}.")
        # Eq. 2's W_c of each level but the last; sizes come from the next level's features.
        projections = []
        for level, next_level in zip(self.levels[:-1], self.levels[1:]):
            next_features = input_shape[next_level][-1]
            if next_features is None:
                raise ValueError(f"TopDownEncoder needs the feature size of {next_level!r}.")
            projections.append(
                keras.layers.Dense(next_features, dtype=self.dtype_policy, name=f"{level}_to_{next_level}_context")
            )
        self.context_projections = projections
        for index, level in enumerate(self.levels):
            self.level_encoders[index].build(tuple(input_shape[level]))
            if index < len(projections):
                projections[index].build((input_shape[level][0], 2 * self.units))
        self.built = True

    def _level_masks(self, mask):
        if mask is None:
            return [None] * len(self.levels)
        if not isinstance(mask, dict):  # one time mask for every level
            return [mask] * len(self.levels)
        fallback = next((mask[level] for level in self.levels if mask.get(level) is not None), None)
        return [mask.get(level) if mask.get(level) is not None else fallback for level in self.levels]

    def call(self, inputs, mask=None, training=None):
        masks = self._level_masks(mask)
        contexts = []
        for index, level in enumerate(self.levels):
            features = inputs[level]
            if contexts:
                features = features + keras.ops.expand_dims(contexts[-1], 1)  # eq. 3: h_ctxt at every step
            encoded = self.level_encoders[index](features, mask=masks[index], training=training)  # eqs. 1, 3
            if index < len(self.context_projections):
                contexts.append(self.context_projections[index](encoded["state"]))  # eq. 2
        return {"sequence": encoded["sequence"], "state": encoded["state"], "context": contexts[0]}

    def compute_mask(self, inputs, mask=None):
        return {"sequence": self._level_masks(mask)[-1], "state": None, "context": None}

    def compute_output_shape(self, input_shape):
        last = input_shape[self.levels[-1]]
        return {
            "sequence": (last[0], last[1], 2 * self.units),
            "state": (last[0], 2 * self.units),
            "context": (last[0], input_shape[self.levels[1]][-1]),
        }

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, levels=list(self.levels), dropout=self.dropout)
        return config
