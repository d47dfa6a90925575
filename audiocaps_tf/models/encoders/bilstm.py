"""One biLSTM over one VGGish feature (eq. 1's form): the encoder of VGGish-LSTM and the TempAtt-VGGish rows."""

import keras

from audiocaps_tf.layers.masking import time_mask
from audiocaps_tf.layers.sequence_encoder import BiLSTMEncoder
from audiocaps_tf.models.encoders.base import AudioEncoder

__all__ = ["BiLSTMAudioEncoder"]


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class BiLSTMAudioEncoder(AudioEncoder, BiLSTMEncoder):
    """`BiLSTMEncoder` over the record field `field`: one memory, its outputs [B, T, 2 * units]; the encoded
    audio is [fw_h_T; bw_h_1]. Arguments: `field` ("vggish_fc2", "vggish_conv4", ...) and those of
    `BiLSTMEncoder`."""

    def __init__(self, field="vggish_fc2", units=128, dropout=0.25, **kwargs):
        super().__init__(units=units, dropout=dropout, **kwargs)
        self.field = str(field)

    @classmethod
    def from_spec(cls, spec, hyper, dtype=None, **attribute_options):
        return cls(spec.features[0], hyper["units"], dropout=hyper["encoder_dropout"], name="audio_encoder",
                   dtype=dtype)

    @property
    def fields(self):
        return (self.field,)

    def build_encoder(self):
        self.build(self.feature_shapes()[self.field])

    def encode(self, features, inputs=None, training=False):
        x = features[self.field]
        mask = time_mask(x)
        encoded = self(x, mask=mask, training=training)
        return {"memories": [encoded["sequence"]], "memory_masks": [mask], "initial_state": encoded["state"]}

    def get_config(self):
        return {**super().get_config(), "field": self.field}
