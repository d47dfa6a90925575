"""Captioner encoders, one class per family; each returns memories, their masks and an initial state (`base`).

    base.py       the `AudioEncoder` contract
    mfcc.py       `MFCCAudioEncoder`: MFCC -> biLSTM -> gated convolutions (MFCC rows)
    bilstm.py     `BiLSTMAudioEncoder`: one biLSTM over one VGGish feature (VGGish-LSTM, TempAtt-VGGish rows)
    top_down.py   `TopDownAudioEncoder`: eqs. 1-3 over fc2, conv4 (, conv3) (TopDown rows)
    semantic.py   `SemanticTopDownEncoder`: top-down + attribute words (SemTempAtt, AlignedAtt)
    log_mel_cnn.py  `LogMelCNNAudioEncoder`: a CNN over log-mel, trained from scratch (ours, not a paper row)

Each family class is its layer of `audiocaps_tf.layers` (the equations) with the `AudioEncoder` contract on top.
"""

from audiocaps_tf.models.encoders.base import AudioEncoder
from audiocaps_tf.models.encoders.bilstm import BiLSTMAudioEncoder
from audiocaps_tf.models.encoders.log_mel_cnn import LogMelCNNAudioEncoder
from audiocaps_tf.models.encoders.mfcc import MFCCAudioEncoder
from audiocaps_tf.models.encoders.semantic import ATTRIBUTE_SOURCES, SemanticTopDownEncoder
from audiocaps_tf.models.encoders.top_down import TopDownAudioEncoder

__all__ = [
    "ATTRIBUTE_SOURCES",
    "AudioEncoder",
    "BiLSTMAudioEncoder",
    "LogMelCNNAudioEncoder",
    "MFCCAudioEncoder",
    "SemanticTopDownEncoder",
    "TopDownAudioEncoder",
]
