"""Log-mel -> a small CNN trained from scratch: the encoder of TempAtt-LogMelCNN-LSTM (ours, not a paper row)."""

import keras

from audiocaps_tf.layers.log_mel_cnn import LogMelCNNEncoder
from audiocaps_tf.layers.masking import masked_mean, time_mask
from audiocaps_tf.models.encoders.base import AudioEncoder

__all__ = ["LogMelCNNAudioEncoder"]


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class LogMelCNNAudioEncoder(AudioEncoder, LogMelCNNEncoder):
    """`LogMelCNNEncoder` over the "log_mel" field: one memory, the CNN's steps [B, ceil(T / time_pool), units];
    the encoded audio is their masked time mean. Needs no pretrained weights. Arguments as `LogMelCNNEncoder`."""

    fields = ("log_mel",)

    @classmethod
    def from_spec(cls, spec, hyper, dtype=None, **attribute_options):
        return cls(hyper["units"], channels=hyper["log_mel_channels"], num_blocks=hyper["log_mel_num_blocks"],
                   time_pool=hyper["log_mel_time_pool"], dropout=hyper["encoder_dropout"], name="log_mel_encoder",
                   dtype=dtype)

    @property
    def memory_depths(self):
        return (self.units,)

    @property
    def state_size(self):
        return self.units

    def build_encoder(self):
        self.build(self.feature_shapes()["log_mel"])

    def encode(self, features, inputs=None, training=False):
        x = features["log_mel"]
        mask = time_mask(x)
        sequence = self(x, mask=mask, training=training)
        sequence_mask = self.compute_mask(x, mask)
        return {"memories": [sequence], "memory_masks": [sequence_mask],
                "initial_state": masked_mean(sequence, sequence_mask)}
