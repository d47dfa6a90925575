"""Keras 3 layers of audiocaps-tf, each registered for serialization under the package `audiocaps_tf`."""

from audiocaps_tf.layers.log_mel_frontend import LogMelFrontend
from audiocaps_tf.layers.mfcc_frontend import MFCCFrontend
from audiocaps_tf.layers.vggish import VGGish
from audiocaps_tf.layers.vggish_weights import load_vggish_weights

__all__ = ["LogMelFrontend", "MFCCFrontend", "VGGish", "load_vggish_weights"]
