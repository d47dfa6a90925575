"""TransformerDecoder: the layer contract, stepping equals teacher forcing, padding changes nothing, and every
encoder family with it passes the captioner test and exports with core ops only."""

import keras
import numpy as np
import pytest

from layer_test_case import run_layer_test
from model_test_case import run_captioner_test
from saved_model_ops import non_core_ops, saved_model_op_types
from audiocaps_tf.decoding import decoder_step_fn
from audiocaps_tf.export.serving_graph import CaptionSignatures
from audiocaps_tf.layers import TransformerDecoder
from audiocaps_tf.models import MODELS, build_captioner
from audiocaps_tf.tokens.vocabulary import WordVocabulary

V, T1, T2, S = 11, 5, 3, 6
CAPTION_IN = np.array([[1, 4, 5, 0], [1, 6, 7, 8]], "int32")
MEMORY_MASKS = [np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool), np.array([[1, 1, 0], [1, 1, 1]], bool)]
SMALL = dict(model_dim=8, num_layers=2, num_heads=2, feedforward_dim=16, max_length=9)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _inputs(rng):
    return {"caption_in": CAPTION_IN, "initial_state": rng.normal(size=(2, S)).astype("float32"),
            "memories": [rng.normal(size=(2, T1, 6)).astype("float32"),
                         rng.normal(size=(2, T2, 7)).astype("float32")]}


def _decoder(**kwargs):
    return TransformerDecoder(V, **{"num_memories": 2, "dropout": 0.0, **SMALL, **kwargs})


def _teacher_forced(seed):
    """(decoder, inputs, memory masks, teacher-forced logits) of a fresh small decoder on random inputs."""
    decoder = _decoder()
    inputs = _inputs(np.random.default_rng(seed))
    masks = [keras.ops.convert_to_tensor(m) for m in MEMORY_MASKS]
    return decoder, inputs, masks, _np(decoder(inputs, mask={"memories": masks}))


def test_transformer_decoder_contract(tmp_path):
    run_layer_test(TransformerDecoder, {"vocabulary_size": V, "num_memories": 2, **SMALL},
                   _inputs(np.random.default_rng(0)), (2, 4, V), run_mixed_precision_check=False, tmp_path=tmp_path)


def test_stepping_equals_teacher_forcing_with_padded_memories():
    decoder, inputs, masks, logits = _teacher_forced(seed=1)
    memories, memory_masks = decoder.prepare_memories(inputs["memories"], masks)
    state = decoder.initial_decoding_state(memories, memory_masks, inputs["initial_state"])
    step = decoder_step_fn(decoder, memories, memory_masks)
    for t in range(3):  # row 0's word 3 is <pad>: compare the steps both rows have
        log_probs, state, alphas = step(CAPTION_IN[:, t], state)
        expected = _np(keras.ops.log_softmax(logits[:, t], axis=-1))
        np.testing.assert_allclose(_np(log_probs), expected, rtol=1e-5, atol=1e-5)
        assert [tuple(a.shape) for a in alphas] == [(2, T1), (2, T2)]
        for alpha, mask in zip(alphas, MEMORY_MASKS):
            assert np.all(_np(alpha)[~mask] == 0)  # padded memory steps get no attention


def test_padding_changes_nothing():
    decoder, inputs, masks, logits = _teacher_forced(seed=2)
    # Garbage in the padded memory steps and a longer padded caption: the valid logits stay.
    noisy = [m.copy() for m in inputs["memories"]]
    for memory, mask in zip(noisy, MEMORY_MASKS):
        memory[~mask] = 100.0
    longer = np.concatenate([CAPTION_IN, np.zeros((2, 2), "int32")], axis=1)
    again = _np(decoder({**inputs, "memories": noisy, "caption_in": longer}, mask={"memories": masks}))
    np.testing.assert_allclose(again[:, :4], logits, rtol=1e-5, atol=1e-5)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        TransformerDecoder(V, model_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="memories"):
        _decoder()({"caption_in": CAPTION_IN, "initial_state": np.zeros((2, S), "float32"),
                    "memories": _inputs(np.random.default_rng(0))["memories"][:1]})


CAPTIONS = ["a dog barks", "rain falls on a roof", "a man speaks then a dog barks", "birds sing"]
TRANSFORMER = dict(units=8, embedding_dim=8, attribute_embedding_dim=8, decoder="transformer", transformer_dim=8,
                   transformer_heads=2, transformer_ff_dim=16, max_caption_length=8)
ONE_PER_ENCODER = ["mfcc-lstm", "tempatt-mfcc-lstm", "tempatt-vggish-fc2-lstm", "topdown-vggish-lstm",
                   "topdown-alignedatt"]


@pytest.mark.parametrize("name", ONE_PER_ENCODER)
def test_every_encoder_family_trains_generates_and_reloads_with_the_transformer(name, tmp_path):
    vocabulary = WordVocabulary.build(CAPTIONS)
    model = build_captioner(name, vocabulary, attribute_vocabulary=["dog", "rain", "birds"], **TRANSFORMER)
    assert isinstance(model.decoder, TransformerDecoder)
    spec = MODELS[name]
    rng = np.random.default_rng(4)
    sizes = {"mfcc": 20, "vggish_fc2": 128, "vggish_conv4": 512, "vggish_conv3": 256}
    inputs = {field: rng.normal(size=(2, 24 if field == "mfcc" else 3, sizes[field])).astype("float32")
              for field in spec.features}
    if spec.uses_attributes:
        model.set_attribute_index(rng.normal(size=(3, 128)), [["dog"], ["rain"], ["birds"]])
    inputs["caption_in"] = np.array([[1, 4, 5], [1, 6, 0]], "int32")
    targets = np.array([[4, 5, 2], [6, 2, 0]], "int32")
    run_captioner_test(model, inputs, targets, tmp_path)


def test_a_transformer_model_exports_with_core_ops_only(tmp_path):
    vocabulary = WordVocabulary.build(CAPTIONS)
    model = build_captioner("tempatt-mfcc-lstm", vocabulary, **TRANSFORMER)
    CaptionSignatures(model, beam_size=2, no_repeat_ngram_size=2).archive().write_out(str(tmp_path), verbose=False)
    assert non_core_ops(saved_model_op_types(tmp_path)) == []
