"""The MFCC encoder of the paper's baselines (section 5.1): a biLSTM then a gated convolutional encoder."""

import math

import keras

from audiocaps_tf.layers.masking import masked_standardize
from audiocaps_tf.layers.sequence_encoder import BiLSTMEncoder


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class MFCCEncoder(keras.layers.Layer):
    """MFCC frames [B, F, 20] -> {"sequence": [B, F', 2 * units], "state": [B, 2 * units]}.

    Section 5.1: MFCCs are "encoded further with a bi-directional LSTM followed by a gated
    convolutional encoder (Xu et al., 2018)". The paper gives no more detail; this is our reading:

    0. Only with `standardize` (ours; off in the paper's models): every MFCC channel of every clip to zero mean
       and unit variance over the clip's valid frames (`masking.masked_standardize`, per-clip CMVN).
    1. x = biLSTM(mfcc) [B, F, C] with C = 2 * units (the form of eq. 1).
    2. `num_blocks` gated convolution blocks, each (Xu et al.'s gated linear unit, GLU):
         [A ; G] = Conv1D(x) with 2C filters, `kernel_size` taps, "same" padding,
         x <- x + A * sigmoid(G)   (a residual around the GLU, so the block starts near identity),
         x <- MaxPool1D(x, pool_size, stride pool_size, "same")   (Xu et al. pool after each block),
       with dropout on each block's input. F' = ceil(F / pool_size) per block: the paper's 240 frames
       (41.5 ms hop) become 60 steps of 166 ms with the defaults, so temporal attention over them is
       4x cheaper and each step sees a longer context.

    Outputs:
      - "sequence" [B, F', 2 * units]: the gated conv output; zero at padded steps.
      - "state" [B, 2 * units]: the biLSTM's [final forward ; final backward] hidden states (taken at the
        last valid frame), the encoded audio for the "-LSTM" baselines.
    Masking: `mask` [B, F] (True = valid frame, right padding) or None. Padded frames are zeroed
      before every convolution (the zero padding a shorter clip would get) and never win a max pool,
      so padding changes nothing at valid steps. The output mask of "sequence" is the mask pooled like
      the features (a step is valid if any of its frames is); "state" has none.

    Args:
        units: LSTM units per direction (128 in the authors' code); C = 2 * units channels.
        kernel_size: taps of each gated convolution.
        num_blocks: gated convolution blocks.
        pool_size: temporal max-pool size and stride after each block (1 for no downsampling).
        dropout: biLSTM input dropout and dropout before each convolution.
        standardize: per-clip mean and variance normalisation of the MFCCs first (step 0).
    """

    def __init__(self, units=128, kernel_size=3, num_blocks=2, pool_size=2, dropout=0.25, standardize=False,
                 **kwargs):
        super().__init__(**kwargs)
        if int(num_blocks) < 1 or int(pool_size) < 1 or int(kernel_size) < 1:
            raise ValueError("MFCCEncoder needs num_blocks, pool_size and kernel_size of at least 1.")
        self.units = int(units)
        self.kernel_size = int(kernel_size)
        self.num_blocks = int(num_blocks)
        self.pool_size = int(pool_size)
        self.dropout = float(dropout)
        self.standardize = bool(standardize)
        channels = 2 * self.units
        self.encoder = BiLSTMEncoder(self.units, dropout=self.dropout, dtype=self.dtype_policy, name="encoder")
        self.convolutions = [
            keras.layers.Conv1D(
                2 * channels, self.kernel_size, padding="same", dtype=self.dtype_policy, name=f"glu_conv_{i}"
            )
            for i in range(self.num_blocks)
        ]
        self.dropouts = [
            keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name=f"dropout_{i}")
            for i in range(self.num_blocks)
        ]

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.encoder.build(input_shape)
        for convolution in self.convolutions:
            convolution.build((input_shape[0], None, 2 * self.units))
        self.built = True

    def _pool_mask(self, mask):
        pooled = keras.ops.max_pool(
            keras.ops.expand_dims(keras.ops.cast(mask, "float32"), -1), self.pool_size, self.pool_size, padding="same"
        )
        return keras.ops.squeeze(pooled, -1) > 0.5

    def call(self, inputs, mask=None, training=None):
        ops = keras.ops
        if self.standardize:
            inputs = ops.cast(masked_standardize(inputs, mask), self.compute_dtype)
        encoded = self.encoder(inputs, mask=mask, training=training)
        x = encoded["sequence"]
        channels = 2 * self.units
        for convolution, dropout in zip(self.convolutions, self.dropouts):
            if mask is not None:
                valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
                x = ops.where(valid, x, ops.zeros_like(x))
            gates = convolution(dropout(x, training=training))
            x = x + gates[..., :channels] * ops.sigmoid(gates[..., channels:])  # GLU with a residual
            if self.pool_size > 1:
                if mask is not None:
                    x = ops.where(valid, x, float("-inf"))  # padded frames never win the max
                    mask = self._pool_mask(mask)
                x = ops.max_pool(x, self.pool_size, self.pool_size, padding="same")
        if mask is not None:
            x = ops.where(ops.expand_dims(ops.cast(mask, "bool"), -1), x, ops.zeros_like(x))
        return {"sequence": x, "state": encoded["state"]}

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return {"sequence": None, "state": None}
        if self.pool_size > 1:
            for _ in range(self.num_blocks):
                mask = self._pool_mask(mask)
        return {"sequence": mask, "state": None}

    def compute_output_shape(self, input_shape):
        batch, steps = input_shape[0], input_shape[1]
        if steps is not None:
            for _ in range(self.num_blocks):
                steps = math.ceil(steps / self.pool_size)
        return {"sequence": (batch, steps, 2 * self.units), "state": (batch, 2 * self.units)}

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_size=self.kernel_size,
            num_blocks=self.num_blocks,
            pool_size=self.pool_size,
            dropout=self.dropout,
        )
        if self.standardize:  # configs of the paper's encoder stay as they were
            config["standardize"] = True
        return config
