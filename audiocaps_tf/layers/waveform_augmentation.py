"""Random gain and time shift of waveforms, for training only: what a captioner fed audio sees before its frontends.

For every clip b of a waveform batch x [B, N] (16 kHz):

    gain     g_b ~ U(-gain_db, gain_db) dB:           x_b <- x_b * 10 ** (g_b / 20)
    shift    s_b ~ U{-S .. S} samples, S = round(time_shift_seconds * sample_rate), within the clip's length L_b
             (one past its last non-zero sample; the zeros after it are padding): `feature_shift.shift_in_time`,
             circular (rolled) or zeros (slid, filling with silence)

The gain is not clipped to [-1, 1]: the frontends take any float. Both are drawn anew on every call; outside
training the layer returns its input unchanged, so validation, test and export outputs never see it. Cached
features get the shift from `layers.FeatureShift` instead, and no gain (see there).
"""

import keras
from keras import ops

from audiocaps_tf import params
from audiocaps_tf.layers.feature_shift import SHIFT_MODES, shift_in_time, valid_lengths

__all__ = ["WaveformAugmentation"]


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class WaveformAugmentation(keras.layers.Layer):
    """waveform float [B, N] -> the same with a random gain and time shift per clip while training.

    Args:
        gain_db: the largest gain either way, in dB (0: none).
        time_shift_seconds: the largest shift either way, in seconds (0: none).
        mode: "circular" (roll within the clip) or "zeros" (slide, filling with zeros).
        sample_rate: samples per second of the waveforms.
        seed: the seed of the layer's `keras.random.SeedGenerator`.
    """

    def __init__(self, gain_db=0.0, time_shift_seconds=0.0, mode="circular", sample_rate=params.SAMPLE_RATE,
                 seed=None, **kwargs):
        super().__init__(autocast=False, **kwargs)  # waveforms keep their dtype, as the frontends take them
        if float(gain_db) < 0 or float(time_shift_seconds) < 0:
            raise ValueError(f"gain_db and time_shift_seconds must be >= 0; got {gain_db}, {time_shift_seconds}")
        if mode not in SHIFT_MODES:
            raise ValueError(f"mode must be one of {SHIFT_MODES}; got {mode!r}")
        self.gain_db = float(gain_db)
        self.time_shift_seconds = float(time_shift_seconds)
        self.mode = mode
        self.sample_rate = int(sample_rate)
        self.seed = seed

    @property
    def max_shift(self):
        """The largest shift, in samples."""
        return int(round(self.time_shift_seconds * self.sample_rate))

    def build(self, input_shape=None):
        # Made here, not in __init__, as in `FeatureMasking`: a captioner's weights do not depend on it.
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.built = True

    def call(self, waveform, training=False):
        if not training:
            return waveform
        batch = ops.shape(waveform)[0]
        if self.gain_db:
            gain = keras.random.uniform((batch,), -self.gain_db, self.gain_db, seed=self.seed_generator)
            waveform = waveform * ops.cast(ops.power(10.0, gain / 20.0), waveform.dtype)[:, None]
        if self.max_shift:
            draws = keras.random.uniform((batch,), seed=self.seed_generator)
            shifts = ops.cast(ops.floor(draws * (2 * self.max_shift + 1)), "int32") - self.max_shift
            lengths = valid_lengths(ops.not_equal(waveform, 0))
            waveform = shift_in_time(waveform, shifts, lengths, circular=self.mode == "circular")
        return waveform

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "gain_db": self.gain_db,
            "time_shift_seconds": self.time_shift_seconds,
            "mode": self.mode,
            "sample_rate": self.sample_rate,
            "seed": self.seed,
        }
