"""MFCC -> biLSTM -> gated convolutions (section 5.1): the encoder of MFCC-LSTM and TempAtt-MFCC-LSTM."""

import keras

from audiocaps_tf.layers.masking import masked_mean, time_mask
from audiocaps_tf.layers.mfcc_encoder import MFCCEncoder
from audiocaps_tf.models.encoders.base import AudioEncoder

__all__ = ["MFCCAudioEncoder"]


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class MFCCAudioEncoder(AudioEncoder, MFCCEncoder):
    """`MFCCEncoder` over the "mfcc" field: one memory, the gated convolutions' output [B, ceil(F / 4), 2 * units];
    the encoded audio is its masked time mean (the paper's MFCC encoder ends with the convolutions, so the "-LSTM"
    state goes through them too). Arguments as `MFCCEncoder`."""

    fields = ("mfcc",)

    @classmethod
    def from_spec(cls, spec, hyper, dtype=None, **attribute_options):
        return cls(hyper["units"], kernel_size=hyper["mfcc_kernel_size"], num_blocks=hyper["mfcc_num_blocks"],
                   pool_size=hyper["mfcc_pool_size"], dropout=hyper["encoder_dropout"],
                   standardize=hyper["mfcc_standardize"], name="mfcc_encoder",
                   dtype=dtype)

    def build_encoder(self):
        self.build(self.feature_shapes()["mfcc"])

    def encode(self, features, inputs=None, training=False):
        x = features["mfcc"]
        mask = time_mask(x)
        sequence = self(x, mask=mask, training=training)["sequence"]
        sequence_mask = self.compute_mask(x, mask)["sequence"]
        return {"memories": [sequence], "memory_masks": [sequence_mask],
                "initial_state": masked_mean(sequence, sequence_mask)}
