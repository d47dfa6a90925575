"""A small CNN over the log-mel spectrogram, trained from scratch: the encoder for users without pretrained weights."""

import math

import keras
from keras import ops

__all__ = ["LogMelCNNEncoder", "time_pool_sizes"]


def time_pool_sizes(num_blocks, time_pool):
    """Time pool size of each block: 2 in the first log2(time_pool) blocks, 1 after."""
    halvings = int(time_pool).bit_length() - 1
    if int(time_pool) < 1 or 2**halvings != int(time_pool) or halvings > int(num_blocks):
        raise ValueError(f"time_pool must be a power of two up to 2 ** num_blocks ({2 ** int(num_blocks)}); "
                         f"got {time_pool}")
    return tuple(2 if block < halvings else 1 for block in range(int(num_blocks)))


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class LogMelCNNEncoder(keras.layers.Layer):
    """Log-mel frames [B, T, M] -> memories [B, ceil(T / time_pool), units].

    The spectrogram is a one-channel image x [B, T, M, 1] (time, mel band). Block b (b = 0 .. num_blocks - 1):

        x <- Conv2D(x), channels * 2^b filters, 3x3, "same" padding, no bias
        x <- MaxPool2D(x, (p_b, 2), "same")        p_b = 2 in the first log2(time_pool) blocks, else 1
        x <- ReLU(BatchNorm(x))                    batch statistics over the valid frames only

    so every block halves the mel bands and the first blocks halve time. Pooling before the normalisation (it
    commutes with the ReLU; with BatchNorm only up to the sign of its scale) makes the block 2-4x cheaper: the
    normalisation's passes dominate the first block, whose convolution has one input channel. Then

        h = Dense(Dropout(mean over the remaining ceil(M / 2^num_blocks) bands of x)) [B, T', units].

    With the defaults (16 channels, 3 blocks, time_pool 4) the 960 frames (10 ms hop) of a 10 s clip become
    240 memory steps of 40 ms.

    Masking: `mask` [B, T] (True = valid frame, right padding) or None. Padded frames are zeroed before every
    convolution (the zeros a shorter clip alone gets from "same" padding), never win a max pool (-inf) and are
    left out of the batch statistics: valid outputs do not depend on the padding, nor on what it holds. (In
    training they depend on the other clips of the batch, as always with BatchNorm.) The output mask is the mask
    pooled like the frames (a step is valid if any of its frames is); padded output steps are 0.

    Args:
        units: depth of the output steps.
        channels: filters of the first block; doubled in each next block.
        num_blocks: convolution blocks.
        time_pool: total time downsampling, a power of two up to 2 ** num_blocks (1: none).
        dropout: dropout before the projection to `units`.
    """

    def __init__(self, units=128, channels=16, num_blocks=3, time_pool=4, dropout=0.25, **kwargs):
        super().__init__(**kwargs)
        if int(num_blocks) < 1 or int(channels) < 2:
            raise ValueError(f"LogMelCNNEncoder needs num_blocks >= 1 and channels >= 2; got {num_blocks}, "
                             f"{channels}")
        self.units = int(units)
        self.channels = int(channels)
        self.num_blocks = int(num_blocks)
        self.time_pool = int(time_pool)
        self.dropout = float(dropout)
        self.supports_masking = True
        object.__setattr__(self, "pool_sizes", time_pool_sizes(self.num_blocks, self.time_pool))  # untracked
        policy = self.dtype_policy
        self.convolutions = [
            keras.layers.Conv2D(self.channels * 2**b, 3, padding="same", use_bias=False, dtype=policy,
                                name=f"conv_{b}")
            for b in range(self.num_blocks)
        ]
        self.normalizations = [keras.layers.BatchNormalization(dtype=policy, name=f"batch_norm_{b}")
                               for b in range(self.num_blocks)]
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy, name="dropout")
        self.projection = keras.layers.Dense(self.units, dtype=policy, name="projection")

    @property
    def output_channels(self):
        """Channels of the last block: what the projection reads."""
        return self.channels * 2 ** (self.num_blocks - 1)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        bands, depth = input_shape[-1], 1
        for b, (convolution, normalization) in enumerate(zip(self.convolutions, self.normalizations)):
            convolution.build((None, None, bands, depth))
            depth = self.channels * 2**b
            normalization.build((None, None, bands, depth))
            bands = None if bands is None else math.ceil(bands / 2)
        self.projection.build((None, None, self.output_channels))
        self.built = True

    def _pool_mask(self, mask, pool_size):
        pooled = ops.max_pool(ops.expand_dims(ops.cast(mask, "float32"), -1), pool_size, pool_size, padding="same")
        return ops.squeeze(pooled, -1) > 0.5

    def call(self, inputs, mask=None, training=None):
        x = ops.expand_dims(inputs, -1)  # [B, T, M, 1]
        if mask is not None:
            x = ops.where(self._frames(mask), x, ops.zeros_like(x))
        for convolution, normalization, pool_size in zip(self.convolutions, self.normalizations, self.pool_sizes):
            x = convolution(x)
            if mask is not None:
                x = ops.where(self._frames(mask), x, float("-inf"))  # padded frames never win the max
                mask = self._pool_mask(mask, pool_size) if pool_size > 1 else mask
            x = ops.max_pool(x, (pool_size, 2), (pool_size, 2), padding="same")
            frames = None if mask is None else ops.cast(mask, "bool")[:, :, None]  # [B, T', 1]
            x = ops.relu(normalization(x, training=training, mask=frames))
            if mask is not None:
                x = ops.where(self._frames(mask), x, ops.zeros_like(x))  # what "same" padding gives a shorter clip
        x = self.projection(self.dropout_layer(ops.mean(x, axis=2), training=training))
        if mask is not None:
            x = ops.where(ops.expand_dims(ops.cast(mask, "bool"), -1), x, ops.zeros_like(x))
        return x

    @staticmethod
    def _frames(mask):
        """[B, T] -> bool [B, T, 1, 1], broadcasting over bands and channels."""
        return ops.cast(mask, "bool")[:, :, None, None]

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        for pool_size in self.pool_sizes:
            if pool_size > 1:
                mask = self._pool_mask(mask, pool_size)
        return mask

    def compute_output_shape(self, input_shape):
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else math.ceil(steps / self.time_pool), self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, channels=self.channels, num_blocks=self.num_blocks,
                      time_pool=self.time_pool, dropout=self.dropout)
        return config
