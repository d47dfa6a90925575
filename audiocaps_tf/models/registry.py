"""The paper's models by name: one entry per row of Tables 2 and 3 that this package reproduces, then ours.

    name                     paper row                        features                   encoder   memories
    1nn-mfcc                 1NN-MFCC                         mfcc                       (1NN retrieval)
    1nn-vggish               1NN-VGGish                       fc2                        (1NN retrieval)
    mfcc-lstm                MFCC-LSTM                        mfcc                       mfcc      none
    vggish-lstm              VGGish-LSTM                      fc2                        bilstm    none
    tempatt-mfcc-lstm        TempAtt-MFCC-LSTM                mfcc                       mfcc      audio
    tempatt-vggish-fc2-lstm  TempAtt-VGGish(FC2)-LSTM         fc2                        bilstm    audio
    tempatt-vggish-c4-lstm   TempAtt-VGGish(C4)-LSTM          conv4                      bilstm    audio
    tempatt-vggish-c3-lstm   TempAtt-VGGish(C3)-LSTM          conv3                      bilstm    audio
    topdown-vggish-lstm      TopDown-VGGish(FC2,C4)-LSTM      fc2, conv4                 topdown   audio
    topdown-vggish3-lstm     TopDown-VGGish(FC2,C4,C3)-LSTM   fc2, conv4, conv3          topdown   audio
    topdown-semtempatt       TopDown-SemTempAtt(1NN|GT)       fc2, conv4 + attributes    topdown   words, audio
    topdown-alignedatt       TopDown-AlignedAtt(1NN|GT)       fc2, conv4 + attributes    topdown   words, context
    tempatt-logmel-cnn-lstm  TempAtt-LogMelCNN-LSTM (ours)    log_mel                    logmelcnn audio

(fc2, conv4, conv3: the record fields vggish_fc2, vggish_conv4, vggish_conv3; `audiocaps_tf.features`.)
Entries after the paper's rows are ours (`paper=False`): not in the paper, e.g. tempatt-logmel-cnn-lstm, a small CNN
over the log-mel spectrogram trained from scratch, for users who have no pretrained weights (no VGGish).

The registry is data: each name is a `ModelSpec` (the features its preprocessor computes, its encoder class, its
decoder, the paper's row), and `models.builder.build_captioner` turns one into a model. A new encoder is one class
(`models.encoders`) and one `ModelSpec` line here.

Every generative model initialises its decoder with the encoded audio (section 5.2: "-LSTM ... the encoded audio
feature is set as the initial state of the LSTM"); "-LSTM" baselines have no other path from the audio
(`attention=False`), the others also attend over time ("TempAtt", Luong et al. 2015). Our choice, the paper does not
say: the TopDown rows attend over the top-down encoder's outputs, because the paper compares them with the TempAtt
rows ("they outperform their counterparts") and its Figure 4 applies temporal attention to the TopDown features.
`audio_captioner.AudioCaptioner` documents the wiring.
"""

import dataclasses

from audiocaps_tf.decoding import MAX_CAPTION_LENGTH
from audiocaps_tf.features import feature, vggish_outputs
from audiocaps_tf.models.encoders import (
    ATTRIBUTE_SOURCES,
    BiLSTMAudioEncoder,
    LogMelCNNAudioEncoder,
    MFCCAudioEncoder,
    SemanticTopDownEncoder,
    TopDownAudioEncoder,
)

__all__ = [
    "ModelSpec",
    "MODELS",
    "MODEL_NAMES",
    "PAPER_MODEL_NAMES",
    "ATTRIBUTE_SOURCES",
    "EXCLUDED_ROWS",
    "DEFAULT_HYPER_PARAMETERS",
    "resolve_hyper_parameters",
    "get_spec",
]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a model name means.

    features: the cached record fields it consumes, which its preprocessor computes from "waveform".
    encoder: the `models.encoders` class (its `from_spec` builds it), or None for the 1NN retrieval models.
    attention: whether the decoder attends over memories (False: the "-LSTM" baselines).
    semantic: None, "semtempatt" (attribute words as a second memory, independent of the temporal attention) or
        "alignedatt" (attention flow + context biLSTM: the paper's aligned semantic attention).
    decoder: the decoder's name in `models.builder.DECODERS` ("luong": `LuongDecoder`).
    row: the paper's row label; "{attributes}" is filled with "1NN" or "GT" (`row_label`); for entries of ours,
        a label in the same style ending with "(ours)".
    table: the paper's table holding the row.
    paper: False for entries of ours, which are no row of the paper's tables (`table` means nothing for them).
    defaults: (hyper-parameter, value) pairs the entry uses instead of DEFAULT_HYPER_PARAMETERS' (a recipe of ours,
        e.g. augmentation on); the paper's entries have none.
    """

    name: str
    row: str
    features: tuple
    encoder: type = None
    attention: bool = True
    semantic: str = None
    table: int = 2
    decoder: str = "luong"
    paper: bool = True
    defaults: tuple = ()

    @property
    def is_retrieval(self):
        return self.encoder is None

    @property
    def uses_attributes(self):
        return self.semantic is not None

    @property
    def uses_vggish(self):
        return any(feature(field).frontend == "vggish" for field in self.features)

    @property
    def vggish_outputs(self):
        """VGGish outputs the model needs, in the order of `features`."""
        return vggish_outputs(self.features)

    def row_label(self, attributes=None):
        """The row's label in the paper's tables, e.g. "TopDown-AlignedAtt(1NN)"."""
        if "{attributes}" not in self.row:
            return self.row
        return self.row.format(attributes=(attributes or "1nn").upper())


_SPECS = (
    ModelSpec("1nn-mfcc", "1NN-MFCC", ("mfcc",), None, attention=False),
    ModelSpec("1nn-vggish", "1NN-VGGish", ("vggish_fc2",), None, attention=False),
    ModelSpec("mfcc-lstm", "MFCC-LSTM", ("mfcc",), MFCCAudioEncoder, attention=False),
    ModelSpec("vggish-lstm", "VGGish-LSTM", ("vggish_fc2",), BiLSTMAudioEncoder, attention=False),
    ModelSpec("tempatt-mfcc-lstm", "TempAtt-MFCC-LSTM", ("mfcc",), MFCCAudioEncoder),
    ModelSpec("tempatt-vggish-fc2-lstm", "TempAtt-VGGish(FC2)-LSTM", ("vggish_fc2",), BiLSTMAudioEncoder),
    ModelSpec("tempatt-vggish-c4-lstm", "TempAtt-VGGish(C4)-LSTM", ("vggish_conv4",), BiLSTMAudioEncoder),
    ModelSpec("tempatt-vggish-c3-lstm", "TempAtt-VGGish(C3)-LSTM", ("vggish_conv3",), BiLSTMAudioEncoder),
    ModelSpec("topdown-vggish-lstm", "TopDown-VGGish(FC2,C4)-LSTM", ("vggish_fc2", "vggish_conv4"),
              TopDownAudioEncoder),
    ModelSpec("topdown-vggish3-lstm", "TopDown-VGGish(FC2,C4,C3)-LSTM", ("vggish_fc2", "vggish_conv4", "vggish_conv3"),
              TopDownAudioEncoder),
    ModelSpec("topdown-semtempatt", "TopDown-SemTempAtt({attributes})", ("vggish_fc2", "vggish_conv4"),
              SemanticTopDownEncoder, semantic="semtempatt"),
    ModelSpec("topdown-alignedatt", "TopDown-AlignedAtt({attributes})", ("vggish_fc2", "vggish_conv4"),
              SemanticTopDownEncoder, semantic="alignedatt"),
    # Ours, after the paper's rows.
    ModelSpec("tempatt-logmel-cnn-lstm", "TempAtt-LogMelCNN-LSTM (ours)", ("log_mel",), LogMelCNNAudioEncoder,
              paper=False),
    # TempAtt-MFCC-LSTM as the real-sound benchmark trains it best: SpecAugment-style masks in training, decoding
    # with no repeated 3-gram and a beam of 3 (benchmarks/real_sounds).
    ModelSpec("tempatt-mfcc-lstm-specaug", "TempAtt-MFCC-LSTM + SpecAugment, no-repeat 3, beam 3 (ours)", ("mfcc",),
              MFCCAudioEncoder, paper=False,
              defaults=(("time_masks", 2), ("feature_masks", 2), ("no_repeat_ngram_size", 3), ("beam_size", 3))),
    # The same with a Transformer decoder: the best recipe on the real-sound benchmark for data without pretrained
    # weights, and `fit`'s default (benchmarks/real_sounds).
    ModelSpec("tempatt-mfcc-transformer-specaug", "TempAtt-MFCC-Transformer + SpecAugment, no-repeat 3, beam 3 (ours)",
              ("mfcc",), MFCCAudioEncoder, paper=False, decoder="transformer",
              defaults=(("time_masks", 2), ("feature_masks", 2), ("no_repeat_ngram_size", 3), ("beam_size", 3))),
)

MODELS = {spec.name: spec for spec in _SPECS}
MODEL_NAMES = tuple(spec.name for spec in _SPECS)  # the order of the paper's Table 2, then ours
PAPER_MODEL_NAMES = tuple(spec.name for spec in _SPECS if spec.paper)  # the paper's rows only

# Paper rows not reproduced, and why (for the README and `--help`).
EXCLUDED_ROWS = {
    "WaveNet-LSTM": "needs the pretrained NSynth WaveNet autoencoder (Engel et al. 2017), whose weights exist only as "
    "a TF1 Magenta checkpoint of its own graph code: not loadable into a Keras 3 model without re-implementing and "
    "verifying that network.",
    "TempAtt-WaveNet-LSTM": "same WaveNet encoder as WaveNet-LSTM.",
    "1NN-SoundNet": "needs SoundNet's pretrained weights (Aytar et al. 2016), released for Torch7 (plus unofficial "
    "ports), not in a form Keras 3 loads.",
    "SoundNet-LSTM": "same SoundNet weights as 1NN-SoundNet.",
    "TempAtt-SoundNet-LSTM": "same SoundNet weights as 1NN-SoundNet.",
    "SemTempAtt/AlignedAtt(1NN|GT)-VGGish-LSTM (Table 3)": "ablations on fc2 alone; the package's semantic models "
    "use the top-down encoder (the paper's best); `attributes='gt'` gives them the ground-truth upper bound of "
    "Table 3.",
    "Human": "not a model: `evaluate human` scores one reference against the other four.",
}

# The authors' hyper-parameters (shared/docs/original-code.md) and our architecture defaults.
DEFAULT_HYPER_PARAMETERS = {
    "units": 128,  # LSTM units of every encoder, the word encoder, the context encoder and the decoder
    "embedding_dim": 300,  # caption word embeddings (fastText size)
    "attribute_embedding_dim": 300,  # attribute word embeddings of the semantic encoder
    "encoder_dropout": 0.25,
    "word_dropout": 0.25,  # semantic (word) encoder
    "context_dropout": 0.2,  # context biLSTM of aligned attention
    "decoder_dropout": 0.25,
    "max_caption_length": MAX_CAPTION_LENGTH,  # 51 tokens including <eos>
    "score": "general",  # Luong score
    "attention_layer": "shared",  # eq. 12 as written; "per_memory" is the authors' AttentionWrapper
    "attention_activation": "tanh",  # eq. 12; None is TF1's attention layer
    "audio_to_word": "weighted",  # eq. 7; "max" is the authors' code
    "mfcc_kernel_size": 3,
    "mfcc_num_blocks": 2,
    "mfcc_pool_size": 2,
    "mfcc_standardize": False,  # ours: per-clip mean and variance normalisation of the MFCCs (`MFCCEncoder`)
    # tempatt-logmel-cnn-lstm's CNN (`layers.LogMelCNNEncoder`): first block's channels (doubled each block), blocks
    # (each halves the mel bands) and the total time downsampling (a power of two: 4 makes 10 ms frames 40 ms steps).
    "log_mel_channels": 16,
    "log_mel_num_blocks": 3,
    "log_mel_time_pool": 4,
    "length_penalty": 1.0,  # decoding score: mean per-token log-probability
    # Decoding never repeats an n-gram of this size within a caption, unless a call says otherwise; 0: off (the
    # paper's decoding). Held by the model, so `generate`, `caption` and `export` decode as training validated.
    "no_repeat_ngram_size": 0,
    # Beam width of decoding (the test split, `generate`, `caption`, `export`) unless a call says otherwise; 1:
    # greedy, the paper's. Validation always decodes greedily.
    "beam_size": 1,
    # The decoder: None is the registry entry's own ("luong"); "transformer" is `layers.TransformerDecoder`.
    "decoder": None,
    "transformer_dim": 256,
    "transformer_layers": 2,
    "transformer_heads": 4,
    "transformer_ff_dim": 1024,
    "transformer_dropout": 0.1,
    # Training-only SpecAugment-style masking of the features (`layers.FeatureMasking`); 0 bands: off, the paper's.
    "time_masks": 0,
    "time_mask_fraction": 0.1,
    "feature_masks": 0,
    "feature_mask_fraction": 0.1,
    # Training-only gain (waveform input only) and time shift (waveform or cached features) of every clip, at most
    # this many dB / seconds either way (`layers.InputAugmentation`); 0: off. Mode: "circular" or "zeros".
    "gain_db": 0.0,
    "time_shift_seconds": 0.0,
    "time_shift_mode": "circular",
}

_DROPOUT_KEYS = {"encoder": "encoder_dropout", "word": "word_dropout", "context": "context_dropout",
                 "decoder": "decoder_dropout"}


def resolve_hyper_parameters(overrides=None, model=None):
    """DEFAULT_HYPER_PARAMETERS updated with the registry entry `model`'s own defaults (if given), then `overrides`.

    Besides the keys of DEFAULT_HYPER_PARAMETERS, `dropouts` (or `dropout`) sets dropout rates at once: a float for
    all four, or a dict with any of "encoder", "word", "context", "decoder". Unknown keys raise a TypeError.
    """
    overrides = dict(overrides or {})
    resolved = dict(DEFAULT_HYPER_PARAMETERS)
    if model is not None:
        resolved.update(get_spec(model).defaults)
    for alias in ("dropouts", "dropout"):
        if alias not in overrides:
            continue
        rates = overrides.pop(alias)
        if isinstance(rates, dict):
            unknown = sorted(set(rates) - set(_DROPOUT_KEYS))
            if unknown:
                raise TypeError(f"unknown dropout names {unknown}; expected some of {sorted(_DROPOUT_KEYS)}")
            resolved.update({_DROPOUT_KEYS[key]: float(rate) for key, rate in rates.items()})
        else:
            resolved.update({key: float(rates) for key in _DROPOUT_KEYS.values()})
    unknown = sorted(set(overrides) - set(DEFAULT_HYPER_PARAMETERS))
    if unknown:
        raise TypeError(f"unknown hyper-parameters {unknown}; known: {sorted(DEFAULT_HYPER_PARAMETERS)}")
    resolved.update(overrides)
    return resolved


def get_spec(name):
    """The ModelSpec of `name`; a ValueError lists the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}") from None
