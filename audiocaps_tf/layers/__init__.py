"""Keras 3 layers of audiocaps-tf, each registered for serialization under the package `audiocaps_tf`."""

from audiocaps_tf.layers.layer_norm_lstm_cell import LayerNormLSTM, LayerNormLSTMCell
from audiocaps_tf.layers.log_mel_frontend import LogMelFrontend
from audiocaps_tf.layers.log_mel_cnn import LogMelCNNEncoder
from audiocaps_tf.layers.caption_decoder import CaptionDecoder
from audiocaps_tf.layers.feature_masking import FeatureMasking
from audiocaps_tf.layers.feature_shift import FeatureShift
from audiocaps_tf.layers.input_augmentation import InputAugmentation
from audiocaps_tf.layers.waveform_augmentation import WaveformAugmentation
from audiocaps_tf.layers.luong_decoder import LuongDecoder
from audiocaps_tf.layers.masking import masked_mean, time_mask
from audiocaps_tf.layers.nearest_neighbour_index import NearestNeighbourIndex
from audiocaps_tf.layers.mfcc_frontend import MFCCFrontend
from audiocaps_tf.layers.vggish import VGGish
from audiocaps_tf.layers.vggish_weights import load_vggish_weights, save_vggish_weights
from audiocaps_tf.layers.attention_flow import AttentionFlow
from audiocaps_tf.layers.mfcc_encoder import MFCCEncoder
from audiocaps_tf.layers.semantic_encoder import SemanticEncoder
from audiocaps_tf.layers.sequence_encoder import BiLSTMEncoder
from audiocaps_tf.layers.top_down_encoder import TopDownEncoder
from audiocaps_tf.layers.transformer_decoder import TransformerDecoder

__all__ = [
    "CaptionDecoder",
    "FeatureMasking",
    "FeatureShift",
    "InputAugmentation",
    "WaveformAugmentation",
    "NearestNeighbourIndex",
    "masked_mean",
    "time_mask",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "LuongDecoder",
    "LogMelFrontend",
    "LogMelCNNEncoder",
    "MFCCFrontend",
    "VGGish",
    "load_vggish_weights",
    "save_vggish_weights",
    "AttentionFlow",
    "BiLSTMEncoder",
    "MFCCEncoder",
    "SemanticEncoder",
    "TopDownEncoder",
    "TransformerDecoder",
]
