"""The top-down multi-scale encoder (eqs. 1-3) over VGGish fc2, conv4 (, conv3): the TopDown rows' encoder."""

import keras

from audiocaps_tf.features import feature
from audiocaps_tf.layers.masking import time_mask
from audiocaps_tf.layers.top_down_encoder import TopDownEncoder
from audiocaps_tf.models.encoders.base import AudioEncoder

__all__ = ["TopDownAudioEncoder"]


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class TopDownAudioEncoder(AudioEncoder, TopDownEncoder):
    """`TopDownEncoder` over the VGGish record fields `fields`, top level first: one memory, h_a2 [B, T, 2 * units]
    (eq. 3); the encoded audio is the last level's final states. Arguments: `fields` (e.g. ["vggish_fc2",
    "vggish_conv4"]) and `units`, `dropout` of `TopDownEncoder`."""

    def __init__(self, fields=("vggish_fc2", "vggish_conv4"), units=128, dropout=0.25, **kwargs):
        fields = tuple(fields)
        levels = tuple(feature(field).vggish_output for field in fields)
        if None in levels:
            raise ValueError(f"TopDownAudioEncoder reads VGGish fields only; got {list(fields)}")
        kwargs.pop("levels", None)  # in TopDownEncoder's config; derived from `fields` here
        super().__init__(units=units, levels=levels, dropout=dropout, **kwargs)
        object.__setattr__(self, "_fields", fields)  # a plain tuple, untracked

    @classmethod
    def from_spec(cls, spec, hyper, dtype=None, **attribute_options):
        return cls(spec.features, hyper["units"], dropout=hyper["encoder_dropout"], name="top_down_encoder",
                   dtype=dtype)

    @property
    def fields(self):
        return self._fields

    def build_encoder(self):
        shapes = self.feature_shapes()
        self.build({feature(field).vggish_output: shapes[field] for field in self.fields})

    def encode_audio(self, features, training=False):
        """(h_a2 [B, T, 2 * units], its mask, the encoded audio [B, 2 * units])."""
        levels = {feature(field).vggish_output: features[field] for field in self.fields}
        mask = time_mask(features[self.fields[0]])
        encoded = self(levels, mask=mask, training=training)
        return encoded["sequence"], mask, encoded["state"]

    def encode(self, features, inputs=None, training=False):
        sequence, mask, state = self.encode_audio(features, training)
        return {"memories": [sequence], "memory_masks": [mask], "initial_state": state}

    def get_config(self):
        config = super().get_config()
        config.pop("levels", None)
        return {**config, "fields": list(self.fields)}
