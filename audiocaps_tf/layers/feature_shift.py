"""Random time shifts of cached feature sequences, for training only; `shift_in_time`, the shift both shifts use.

A clip's steps t < L (L: its valid length, the rest of a padded batch is padding and stays so) move by s steps:

    circular   y[t] = x[(t - s) mod L]                                 the clip rolled: nothing is lost
    zeros      y[t] = x[t - s] where 0 <= t - s < L, else 0             the clip slid in silence-as-padding

`FeatureShift` draws one shift per clip, u ~ U(-1, 1) times `time_shift_seconds`, and moves every [B, T, D] field
of the clip by the same share of its own length: s = round(u * time_shift_seconds / clip_seconds * L), so fields
of different frame rates (fc2 and conv4 of one clip, the MFCC frames) stay aligned, whatever each field's hop.
A gain would be an additive offset of log-mel energies and MFCC c0 only, which VGGish embeddings do not have:
gain is applied to waveforms alone (`layers.WaveformAugmentation`). Outside training the layer returns its inputs.
"""

import keras
from keras import ops

from audiocaps_tf import params
from audiocaps_tf.layers.masking import time_mask

__all__ = ["FeatureShift", "SHIFT_MODES", "shift_in_time", "valid_lengths"]

SHIFT_MODES = ("circular", "zeros")


def valid_lengths(valid):
    """int32 [B]: one past the last True step of bool [B, T] (T when a row has none: nothing to tell apart)."""
    steps = ops.shape(valid)[1]
    last_from_end = ops.argmax(ops.cast(ops.flip(valid, axis=1), "int32"), axis=1)
    return ops.cast(steps - last_from_end, "int32")


def shift_in_time(x, shifts, lengths, circular=True):
    """x [B, T, ...] with row b's first lengths[b] steps moved by shifts[b] steps (module docstring), int32 [B] both.

    Steps at or after a row's length stay as they are (padding, zeros).
    """
    steps = ops.shape(x)[1]
    positions = ops.arange(steps, dtype="int32")[None, :]
    lengths = ops.cast(lengths, "int32")[:, None]
    source = positions - ops.cast(shifts, "int32")[:, None]
    if circular:
        source = ops.mod(source, ops.maximum(lengths, 1))
    keep = ops.logical_and(positions < lengths, ops.logical_and(source >= 0, source < lengths))
    source = ops.clip(source, 0, steps - 1)
    for _ in range(len(x.shape) - 2):  # [B, T] -> [B, T, 1, ...], the rank of x
        source, keep = ops.expand_dims(source, -1), ops.expand_dims(keep, -1)
    moved = ops.take_along_axis(x, ops.broadcast_to(source, ops.shape(x)), axis=1)
    return ops.where(keep, moved, ops.zeros_like(moved))


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class FeatureShift(keras.layers.Layer):
    """Shifts every [B, T, D] field of a features dict in time while training (module docstring).

    Args:
        time_shift_seconds: the largest shift, in seconds of a `clip_seconds` clip (0: none).
        mode: "circular" (roll within the clip) or "zeros" (slide, filling with zeros).
        clip_seconds: the clip duration the shift is a share of (10 s, AudioCaps').
        seed: the seed of the layer's `keras.random.SeedGenerator`.
    """

    def __init__(self, time_shift_seconds=1.0, mode="circular", clip_seconds=params.CLIP_SECONDS, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if float(time_shift_seconds) < 0 or not float(clip_seconds) > 0:
            raise ValueError(f"time_shift_seconds must be >= 0 and clip_seconds > 0; got {time_shift_seconds}, "
                             f"{clip_seconds}")
        if mode not in SHIFT_MODES:
            raise ValueError(f"mode must be one of {SHIFT_MODES}; got {mode!r}")
        self.time_shift_seconds = float(time_shift_seconds)
        self.mode = mode
        self.clip_seconds = float(clip_seconds)
        self.seed = seed

    def build(self, input_shape=None):
        # Made here, not in __init__, as in `FeatureMasking`: a captioner's weights do not depend on it.
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.built = True

    def call(self, features, training=False):
        if not training or not self.time_shift_seconds:
            return features
        fields = [name for name, value in features.items() if len(value.shape) == 3]
        if not fields:
            return features
        batch = ops.shape(features[fields[0]])[0]
        share = keras.random.uniform((batch,), -1.0, 1.0, seed=self.seed_generator)
        share = share * (self.time_shift_seconds / self.clip_seconds)
        shifted = dict(features)
        for name in fields:
            lengths = valid_lengths(time_mask(features[name]))
            shifts = ops.cast(ops.round(share * ops.cast(lengths, "float32")), "int32")
            shifted[name] = shift_in_time(features[name], shifts, lengths, circular=self.mode == "circular")
        return shifted

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "time_shift_seconds": self.time_shift_seconds,
            "mode": self.mode,
            "clip_seconds": self.clip_seconds,
            "seed": self.seed,
        }
