"""The pieces of a registry entry: `build_components(spec, ...)` -> its preprocessor, encoder and decoder, and the
training-only augmentation (`build_augmentation`) when its hyper-parameters ask for one.

They are made in the order their weights are drawn (preprocessor, encoder, decoder), so a seed gives the same
model as before the preprocessor / encoder / decoder split. The encoder class of a spec makes itself
(`AudioEncoder.from_spec`); `DECODERS` maps a spec's decoder name to the function that makes it.
"""

from audiocaps_tf.layers.feature_masking import FeatureMasking
from audiocaps_tf.layers.feature_shift import FeatureShift
from audiocaps_tf.layers.input_augmentation import InputAugmentation
from audiocaps_tf.layers.luong_decoder import LuongDecoder
from audiocaps_tf.layers.transformer_decoder import TransformerDecoder
from audiocaps_tf.layers.waveform_augmentation import WaveformAugmentation
from audiocaps_tf.models.preprocessor import AudioPreprocessor
from audiocaps_tf.tokens.vocabulary import PAD_ID

__all__ = ["DECODERS", "build_augmentation", "build_components", "luong_decoder", "transformer_decoder"]


def luong_decoder(spec, hyper, vocabulary_size, encoder, dtype=None):
    """The paper's decoder (eqs. 10-13) over the encoder's memories, or none for the "-LSTM" baselines."""
    return LuongDecoder(
        vocabulary_size,
        embedding_dim=hyper["embedding_dim"],
        units=hyper["units"],
        num_memories=len(encoder.memory_depths) if spec.attention else 1,
        score=hyper["score"],
        dropout=hyper["decoder_dropout"],
        use_attention=spec.attention,
        attention_layer=hyper["attention_layer"],
        attention_activation=hyper["attention_activation"],
        pad_id=PAD_ID,
        name="decoder",
        dtype=dtype,
    )


def transformer_decoder(spec, hyper, vocabulary_size, encoder, dtype=None):
    """A Transformer over the encoder's memories (or its initial state alone for the "-LSTM" rows)."""
    return TransformerDecoder(
        vocabulary_size,
        num_memories=len(encoder.memory_depths) if spec.attention else 1,
        model_dim=hyper["transformer_dim"],
        num_layers=hyper["transformer_layers"],
        num_heads=hyper["transformer_heads"],
        feedforward_dim=hyper["transformer_ff_dim"],
        dropout=hyper["transformer_dropout"],
        max_length=hyper["max_caption_length"] + 1,  # <bos> and the caption's tokens
        use_attention=spec.attention,
        pad_id=PAD_ID,
        name="decoder",
        dtype=dtype,
    )


DECODERS = {"luong": luong_decoder, "transformer": transformer_decoder}


def build_components(spec, vocabulary_size, hyper, attribute_vocabulary=None, attributes=None,
                     vggish_trainable=False, dtype=None):
    """{"preprocessor", "encoder", "decoder", "augmentation"} of a generative `spec` (resolved hyper-parameters
    `hyper`); "augmentation" is None unless `hyper` asks for masks, a gain or a shift (`build_augmentation`)."""
    preprocessor = AudioPreprocessor(spec.features, vggish_trainable=vggish_trainable, name="preprocessor",
                                     dtype=dtype)
    encoder = spec.encoder.from_spec(spec, hyper, dtype=dtype, **(
        {"attribute_vocabulary": attribute_vocabulary, "attributes": attributes} if spec.uses_attributes else {}))
    decoder_name = hyper["decoder"] or spec.decoder
    if decoder_name not in DECODERS:
        raise ValueError(f"unknown decoder {decoder_name!r}; choose one of: {', '.join(DECODERS)}")
    decoder = DECODERS[decoder_name](spec, hyper, vocabulary_size, encoder, dtype=dtype)
    return {"preprocessor": preprocessor, "encoder": encoder, "decoder": decoder,
            "augmentation": build_augmentation(hyper, dtype=dtype)}  # made last: it draws no weights


def build_augmentation(hyper, dtype=None):
    """The training-only augmentation `hyper` asks for: None, a `FeatureMasking` when it asks for masks alone
    (as models had before gain and shifts), else an `InputAugmentation` of the parts it asks for."""
    gain, shift, mode = hyper["gain_db"], hyper["time_shift_seconds"], hyper["time_shift_mode"]
    masking = None
    if hyper["time_masks"] or hyper["feature_masks"]:
        masking = FeatureMasking(hyper["time_masks"], hyper["time_mask_fraction"], hyper["feature_masks"],
                                 hyper["feature_mask_fraction"], name="masking" if gain or shift else "augmentation",
                                 dtype=dtype)
    if not (gain or shift):
        return masking
    return InputAugmentation(
        waveform=WaveformAugmentation(gain, shift, mode, name="waveform", dtype=dtype),
        shift=FeatureShift(shift, mode, name="shift", dtype=dtype) if shift else None,
        masking=masking, name="augmentation", dtype=dtype)
