"""Masks of zero-padded feature sequences, and means over their valid steps (`keras.ops`)."""

from keras import ops

__all__ = ["time_mask", "signal_lengths", "step_mask", "masked_mean", "masked_standardize"]


def time_mask(features):
    """[B, T, C] features -> [B, T] bool: True where a step has any non-zero value, step 0 always True.

    The input pipeline pads features with zeros to the longest clip of a batch; a real feature row is never exactly
    zero in every channel. Step 0 stays valid so a clip never has no step at all.
    """
    valid = ops.any(ops.not_equal(features, 0), axis=-1)
    first = ops.expand_dims(ops.equal(ops.arange(ops.shape(features)[1]), 0), 0)
    return ops.logical_or(valid, first)


def signal_lengths(waveform):
    """[B, N] waveforms -> int32 [B]: one past each row's last non-zero sample (0 for a silent row).

    A batch is zero-padded at the end to its longest clip, so this is a clip's own length whatever it is batched
    with; the frontends zero the frames past it, which the encoders' masks (`time_mask`) then leave out.
    """
    positions = ops.arange(1, ops.shape(waveform)[1] + 1, dtype="int32")[None, :]
    return ops.max(ops.where(ops.not_equal(waveform, 0), positions, 0), axis=1)


def step_mask(counts, steps):
    """bool [B, steps]: True at the first counts[b] steps of row b."""
    return ops.arange(steps, dtype="int32")[None, :] < ops.cast(counts, "int32")[:, None]


def masked_mean(features, mask):
    """Mean of [B, T, C] features over the steps where mask [B, T] is True, in float32: [B, C]."""
    features = ops.cast(features, "float32")
    weights = ops.expand_dims(ops.cast(mask, "float32"), -1)
    return ops.sum(features * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


def masked_standardize(features, mask=None, epsilon=1e-3):
    """[B, T, C] features with every channel of every clip at zero mean and unit variance over its valid steps
    (mask [B, T], None: all), in float32; padded steps stay zero. Per-clip cepstral mean and variance
    normalisation: it removes what is constant over a recording (its microphone, level and room colour)."""
    features = ops.cast(features, "float32")
    if mask is None:
        mask = ops.ones(ops.shape(features)[:2], dtype="bool")
    weights = ops.expand_dims(ops.cast(mask, "float32"), -1)
    count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
    mean = ops.sum(features * weights, axis=1, keepdims=True) / count
    variance = ops.sum(ops.square(features - mean) * weights, axis=1, keepdims=True) / count
    return (features - mean) * ops.rsqrt(variance + epsilon) * weights
