"""SpecAugment-style masking of feature sequences (Park et al. 2019), for training only.

For every clip and every feature field x [B, T, D] (MFCC, log-mel, VGGish embeddings or conv features):

    time bands      `time_masks` bands of t ~ U{0 .. floor(time_mask_fraction * T)} steps, each starting at
                    t0 ~ U{0 .. T - t}: x[b, t0 : t0 + t, :] = 0
    feature bands   `feature_masks` bands of f ~ U{0 .. floor(feature_mask_fraction * D)} channels, each starting at
                    f0 ~ U{0 .. D - f}: x[b, :, f0 : f0 + f] = 0

Bands are drawn independently per clip and per field. Zero is the masked value, as in SpecAugment; a step that
every band zeroes looks like padding to the encoders' masks (`layers.masking`), i.e. the clip loses that step.
Outside training the layer returns its inputs unchanged, so validation, test and export outputs never see it.
"""

import keras
from keras import ops

__all__ = ["FeatureMasking"]


def _bands(batch, size, count, fraction, seed):
    """bool [batch, size]: True inside one of `count` random bands of at most floor(fraction * size) entries."""
    size_float = ops.cast(size, "float32")
    max_width = ops.floor(fraction * size_float)
    widths = ops.floor(keras.random.uniform((batch, count), seed=seed) * (max_width + 1.0))
    starts = ops.floor(keras.random.uniform((batch, count), seed=seed) * (size_float - widths + 1.0))
    positions = ops.cast(ops.arange(size), "float32")[None, None, :]
    inside = ops.logical_and(positions >= starts[:, :, None], positions < (starts + widths)[:, :, None])
    return ops.any(inside, axis=1)


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class FeatureMasking(keras.layers.Layer):
    """Zeroes random time and feature bands of every [B, T, D] field of a features dict while training.

    Args:
        time_masks: bands over time per clip and field (0: none).
        time_mask_fraction: widest time band, as a fraction of the field's steps T.
        feature_masks: bands over channels per clip and field (0: none).
        feature_mask_fraction: widest feature band, as a fraction of the field's channels D.
        seed: the seed of the layer's `keras.random.SeedGenerator`.
    """

    def __init__(self, time_masks=2, time_mask_fraction=0.1, feature_masks=2, feature_mask_fraction=0.1, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        for name, value in (("time_mask_fraction", time_mask_fraction),
                            ("feature_mask_fraction", feature_mask_fraction)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {value}")
        if int(time_masks) < 0 or int(feature_masks) < 0:
            raise ValueError(f"time_masks and feature_masks must be 0 or more; got {time_masks}, {feature_masks}")
        self.time_masks = int(time_masks)
        self.time_mask_fraction = float(time_mask_fraction)
        self.feature_masks = int(feature_masks)
        self.feature_mask_fraction = float(feature_mask_fraction)
        self.seed = seed

    def build(self, input_shape=None):
        # Made here, not in __init__: a SeedGenerator without a seed draws one, and a captioner builds its
        # augmentation after its weights, so a seed gives the same weights with and without it.
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.built = True

    def _mask(self, x):
        batch, steps, channels = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        if self.time_masks:
            masked = _bands(batch, steps, self.time_masks, self.time_mask_fraction, self.seed_generator)
            x = x * ops.cast(ops.logical_not(masked), x.dtype)[:, :, None]
        if self.feature_masks:
            masked = _bands(batch, channels, self.feature_masks, self.feature_mask_fraction, self.seed_generator)
            x = x * ops.cast(ops.logical_not(masked), x.dtype)[:, None, :]
        return x

    def call(self, features, training=False):
        if not training:
            return features
        return {name: self._mask(value) if len(value.shape) == 3 else value for name, value in features.items()}

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "time_masks": self.time_masks,
            "time_mask_fraction": self.time_mask_fraction,
            "feature_masks": self.feature_masks,
            "feature_mask_fraction": self.feature_mask_fraction,
            "seed": self.seed,
        }
