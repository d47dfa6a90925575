"""The encoder layers: BiLSTMEncoder, TopDownEncoder (eqs. 1-3), SemanticEncoder (eq. 4),
AttentionFlow (eqs. 5-9) and MFCCEncoder. Tiny sizes: every test runs in about a second."""

import gc

import keras
import numpy as np
import pytest

from audiocaps_tf.layers import AttentionFlow, BiLSTMEncoder, MFCCEncoder, SemanticEncoder, TopDownEncoder
from layer_test_case import run_layer_test

# run_layer_test builds functional models from dicts of unnamed keras.Input: Keras warns about the names.
pytestmark = pytest.mark.filterwarnings("ignore:When providing `inputs` as a dict:UserWarning")

UNITS = 4  # LSTM units per direction in these tests: features of 2 * UNITS = 8


def _random(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _lengths_mask(lengths, steps):
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def _numpy(structure):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, structure)


# ---------------------------------------------------------------- layer contracts (run_layer_test)


def test_bilstm_encoder_contract(tmp_path):
    run_layer_test(
        BiLSTMEncoder,
        init_kwargs={"units": UNITS},
        input_data=_random(2, 5, 3),
        expected_output_shape={"sequence": (2, 5, 2 * UNITS), "state": (2, 2 * UNITS)},
        tmp_path=tmp_path,
    )


def test_semantic_encoder_contract(tmp_path):
    ids = np.array([[3, 7, 1, 0], [5, 0, 0, 0]], dtype="int32")
    run_layer_test(
        SemanticEncoder,
        init_kwargs={"vocabulary_size": 10, "embedding_dim": 6, "units": UNITS},
        input_data=ids,
        expected_output_shape=(2, 4, 2 * UNITS),
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("levels", [("fc2", "conv4"), ("fc2", "conv4", "conv3")])
def test_top_down_encoder_contract(tmp_path, levels):
    sizes = {"fc2": 4, "conv4": 6, "conv3": 5}
    run_layer_test(
        TopDownEncoder,
        init_kwargs={"units": UNITS, "levels": levels},
        input_data={level: _random(2, 5, sizes[level], seed=i) for i, level in enumerate(levels)},
        expected_output_shape={"sequence": (2, 5, 2 * UNITS), "state": (2, 2 * UNITS), "context": (2, 6)},
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("audio_to_word", ["weighted", "max"])
def test_attention_flow_contract(tmp_path, audio_to_word):
    run_layer_test(
        AttentionFlow,
        init_kwargs={"audio_to_word": audio_to_word},
        input_data={"audio": _random(2, 5, 8), "words": _random(2, 3, 8, seed=1)},
        expected_output_shape=(2, 5, 32),
        tmp_path=tmp_path,
    )


def test_attention_flow_contract_with_attention(tmp_path):
    run_layer_test(
        AttentionFlow,
        init_kwargs={"return_attention": True},
        input_data={"audio": _random(2, 5, 8), "words": _random(2, 3, 8, seed=1)},
        expected_output_shape={"flow": (2, 5, 32), "word_attention": (2, 5, 3), "audio_attention": (2, 5)},
        tmp_path=tmp_path,
    )


def test_mfcc_encoder_contract(tmp_path):
    run_layer_test(
        MFCCEncoder,
        init_kwargs={"units": UNITS, "kernel_size": 3, "num_blocks": 2, "pool_size": 2},
        input_data=_random(2, 11, 20),
        expected_output_shape={"sequence": (2, 3, 2 * UNITS), "state": (2, 2 * UNITS)},  # 11 -> 6 -> 3
        tmp_path=tmp_path,
    )


# ---------------------------------------------------------------- masking: padding changes nothing


def test_bilstm_encoder_padding_changes_nothing():
    layer = BiLSTMEncoder(UNITS)
    lengths, steps = [5, 3], 8
    padded = _random(2, steps, 3)
    out = _numpy(layer(padded, mask=_lengths_mask(lengths, steps)))
    for row, length in enumerate(lengths):
        alone = _numpy(layer(padded[row : row + 1, :length]))
        np.testing.assert_allclose(out["sequence"][row, :length], alone["sequence"][0], atol=1e-5)
        np.testing.assert_allclose(out["state"][row], alone["state"][0], atol=1e-5)
        assert np.all(out["sequence"][row, length:] == 0)


def test_bilstm_encoders_are_created_safely_while_a_model_loads():
    """While Keras loads a model it remembers the objects it serialises by id(); encoders created one after the
    other (as a model's are) must never get another one's LSTM. Before the fix, about 9 in 200 raised."""
    from keras.src.saving.serialization_lib import ObjectSharingScope  # what keras.models.load_model opens

    encoders = []
    gc.freeze()  # what exists already is never collected below, so each collection only scans the encoders' objects
    try:
        with ObjectSharingScope():
            for _ in range(200):
                gc.collect()  # frees what an encoder left behind, so its address can be reused at once
                encoders.append(BiLSTMEncoder(units=4))
    finally:
        gc.unfreeze()
    lstms = [lstm for encoder in encoders for lstm in (encoder.bilstm.forward_layer, encoder.bilstm.backward_layer)]
    assert len({id(lstm) for lstm in lstms}) == len(lstms)
    assert all(encoder.bilstm.backward_layer.go_backwards for encoder in encoders)


def test_semantic_encoder_padding_and_empty_rows():
    layer = SemanticEncoder(vocabulary_size=10, embedding_dim=6, units=UNITS)
    ids = np.array([[3, 7, 1, 0, 0], [5, 2, 0, 0, 0], [0, 0, 0, 0, 0]], dtype="int32")
    out = keras.ops.convert_to_numpy(layer(ids))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask(ids)), ids != 0)
    for row in range(2):
        length = int((ids[row] != 0).sum())
        alone = keras.ops.convert_to_numpy(layer(ids[row : row + 1, :length]))
        np.testing.assert_allclose(out[row, :length], alone[0], atol=1e-5)
        assert np.all(out[row, length:] == 0)
    assert np.all(out[2] == 0)  # no attribute words: zeros, not NaN

    # In a functional model the mask follows the output.
    inputs = keras.Input((None,), dtype="int32")
    outputs = layer(inputs)
    assert outputs._keras_mask is not None


def test_top_down_encoder_padding_changes_nothing():
    layer = TopDownEncoder(units=UNITS, levels=("fc2", "conv4", "conv3"))
    sizes = {"fc2": 4, "conv4": 6, "conv3": 5}
    lengths, steps = [5, 2], 7
    padded = {level: _random(2, steps, size, seed=i) for i, (level, size) in enumerate(sizes.items())}
    mask = _lengths_mask(lengths, steps)
    out = _numpy(layer(padded, mask={"fc2": mask, "conv4": None, "conv3": mask}))
    for row, length in enumerate(lengths):
        alone = _numpy(layer({level: x[row : row + 1, :length] for level, x in padded.items()}))
        np.testing.assert_allclose(out["sequence"][row, :length], alone["sequence"][0], atol=1e-5)
        np.testing.assert_allclose(out["state"][row], alone["state"][0], atol=1e-5)
        np.testing.assert_allclose(out["context"][row], alone["context"][0], atol=1e-5)
    output_mask = layer.compute_mask(padded, {"fc2": mask, "conv4": mask, "conv3": mask})
    np.testing.assert_array_equal(output_mask["sequence"], mask)
    assert output_mask["state"] is None and output_mask["context"] is None


def test_attention_flow_padding_changes_nothing():
    layer = AttentionFlow(return_attention=True)
    audio, words = _random(2, 7, 8), _random(2, 5, 8, seed=1)
    audio_lengths, word_lengths = [4, 7], [2, 5]
    mask = {"audio": _lengths_mask(audio_lengths, 7), "words": _lengths_mask(word_lengths, 5)}
    out = _numpy(layer({"audio": audio, "words": words}, mask=mask))
    for row in range(2):
        t, n = audio_lengths[row], word_lengths[row]
        alone = _numpy(layer({"audio": audio[row : row + 1, :t], "words": words[row : row + 1, :n]}))
        np.testing.assert_allclose(out["flow"][row, :t], alone["flow"][0], atol=1e-5)
        np.testing.assert_allclose(out["word_attention"][row, :t, :n], alone["word_attention"][0], atol=1e-5)
        np.testing.assert_allclose(out["audio_attention"][row, :t], alone["audio_attention"][0], atol=1e-5)
        assert np.all(out["word_attention"][row, :, n:] == 0)  # padded words get exactly no attention
        assert np.all(out["audio_attention"][row, t:] == 0)


def test_mfcc_encoder_padding_changes_nothing():
    layer = MFCCEncoder(units=UNITS, kernel_size=3, num_blocks=2, pool_size=2)
    lengths, frames = [11, 6], 16  # 11 frames: a pooling window half padding
    padded = _random(2, frames, 20)
    mask = _lengths_mask(lengths, frames)
    out = _numpy(layer(padded, mask=mask))
    output_mask = keras.ops.convert_to_numpy(layer.compute_mask(padded, mask)["sequence"])
    np.testing.assert_array_equal(output_mask, _lengths_mask([3, 2], 4))  # ceil(ceil(F / 2) / 2)
    for row, length in enumerate(lengths):
        alone = _numpy(layer(padded[row : row + 1, :length]))
        steps = alone["sequence"].shape[1]
        np.testing.assert_allclose(out["sequence"][row, :steps], alone["sequence"][0], atol=1e-5)
        np.testing.assert_allclose(out["state"][row], alone["state"][0], atol=1e-5)
        assert np.all(out["sequence"][row, steps:] == 0)


def test_mfcc_encoder_standardizes_each_clip_over_its_valid_frames(tmp_path):
    """`standardize`: per-clip CMVN (NumPy oracle) before the biLSTM; padding still changes nothing, and a clip
    at another level and offset (a louder take, another microphone's colour) encodes the same."""
    from audiocaps_tf.layers.masking import masked_standardize

    lengths, frames = [11, 6], 16
    padded = _random(2, frames, 20) * 3.0 + 1.5
    mask = _lengths_mask(lengths, frames)
    got = keras.ops.convert_to_numpy(masked_standardize(padded, mask))
    for row, length in enumerate(lengths):
        clip = padded[row, :length].astype("float64")
        expected = (clip - clip.mean(0)) / np.sqrt(clip.var(0) + 1e-3)
        np.testing.assert_allclose(got[row, :length], expected, atol=1e-4)
        assert np.all(got[row, length:] == 0)

    layer = MFCCEncoder(units=UNITS, kernel_size=3, num_blocks=2, pool_size=2, standardize=True)
    out = _numpy(layer(padded, mask=mask))
    for row, length in enumerate(lengths):
        alone = _numpy(layer(padded[row : row + 1, :length]))
        steps = alone["sequence"].shape[1]
        np.testing.assert_allclose(out["sequence"][row, :steps], alone["sequence"][0], atol=1e-5)
        shifted = _numpy(layer(padded[row : row + 1, :length] * 2.0 - 4.0))
        np.testing.assert_allclose(shifted["sequence"], alone["sequence"], atol=1e-3)
    plain = MFCCEncoder(units=UNITS, kernel_size=3, num_blocks=2, pool_size=2)
    assert "standardize" not in plain.get_config() and layer.get_config()["standardize"] is True
    run_layer_test(
        MFCCEncoder,
        init_kwargs={"units": UNITS, "kernel_size": 3, "num_blocks": 2, "pool_size": 2, "standardize": True},
        input_data=_random(2, 11, 20),
        expected_output_shape={"sequence": (2, 3, 2 * UNITS), "state": (2, 2 * UNITS)},
        tmp_path=tmp_path,
    )


# ---------------------------------------------------------------- equations


def _reference_attention_flow(h, hw, kernel, audio_mask, word_mask, audio_to_word):
    """Eqs. 5-9 in float64 NumPy, one clip, one pair at a time."""
    steps, num_words = h.shape[0], hw.shape[0]
    w = kernel[:, 0].astype("float64")
    scores = np.array(
        [[np.concatenate([h[t], hw[n], h[t] * hw[n]]) @ w for n in range(num_words)] for t in range(steps)]
    )
    a = np.zeros((steps, num_words))
    attended_words = np.zeros_like(h, dtype="float64")
    for t in range(steps):
        if audio_mask[t] and word_mask.any():
            valid = scores[t, word_mask]
            e = np.exp(valid - valid.max())
            a[t, word_mask] = e / e.sum()
            if audio_to_word == "weighted":
                attended_words[t] = a[t] @ hw
            else:
                attended_words[t] = (a[t, word_mask, None] * hw[word_mask]).max(axis=0)
    b = np.zeros(steps)
    if word_mask.any():
        max_scores = scores[:, word_mask].max(axis=1)[audio_mask]
        e = np.exp(max_scores - max_scores.max())
        b[audio_mask] = e / e.sum()
    attended_audio = b @ h
    flow = np.concatenate([h, attended_words, h * attended_words, h * attended_audio[None, :]], axis=-1)
    return flow, a, b


@pytest.mark.parametrize("audio_to_word", ["weighted", "max"])
def test_attention_flow_matches_equations_5_to_9(audio_to_word):
    layer = AttentionFlow(audio_to_word=audio_to_word, return_attention=True)
    audio, words = _random(3, 6, 8), _random(3, 4, 8, seed=1)
    audio_mask = _lengths_mask([6, 4, 5], 6)
    word_mask = _lengths_mask([4, 2, 0], 4)  # the last clip has no attribute words
    out = _numpy(layer({"audio": audio, "words": words}, mask={"audio": audio_mask, "words": word_mask}))
    kernel = keras.ops.convert_to_numpy(layer.score.kernel)
    assert kernel.shape == (24, 1) and not layer.score.use_bias
    for row in range(3):
        flow, a, b = _reference_attention_flow(
            audio[row], words[row], kernel, audio_mask[row], word_mask[row], audio_to_word
        )
        np.testing.assert_allclose(out["flow"][row], flow, atol=1e-5)
        np.testing.assert_allclose(out["word_attention"][row], a, atol=1e-5)
        np.testing.assert_allclose(out["audio_attention"][row], b, atol=1e-5)
    assert np.all(np.isfinite(out["flow"]))
    assert np.all(out["word_attention"][~np.broadcast_to(word_mask[:, None, :], (3, 6, 4))] == 0)
    np.testing.assert_allclose(out["flow"][2, :, 8:], 0)  # no words: [h ; 0 ; 0 ; 0]


def test_attention_flow_without_masks_is_plain_softmax():
    layer = AttentionFlow(return_attention=True)
    out = _numpy(layer({"audio": _random(1, 3, 8), "words": _random(1, 2, 8, seed=1)}))
    np.testing.assert_allclose(out["word_attention"].sum(-1), 1, atol=1e-6)
    np.testing.assert_allclose(out["audio_attention"].sum(-1), 1, atol=1e-6)


def test_top_down_encoder_adds_the_context_at_every_step():
    layer = TopDownEncoder(units=UNITS, levels=("fc2", "conv4", "conv3"))
    inputs = {"fc2": _random(2, 5, 4), "conv4": _random(2, 5, 6, seed=1), "conv3": _random(2, 5, 5, seed=2)}
    out = _numpy(layer(inputs))
    first, second = layer.context_projections
    assert tuple(first.kernel.shape) == (2 * UNITS, 6) and tuple(second.kernel.shape) == (2 * UNITS, 5)

    # Eqs. 1-3 composed by hand from the layer's own sublayers.
    level_1 = layer.level_encoders[0](inputs["fc2"])  # eq. 1
    context_1 = first(level_1["state"])  # eq. 2
    level_2 = layer.level_encoders[1](inputs["conv4"] + context_1[:, None, :])  # eq. 3
    context_2 = second(level_2["state"])
    level_3 = layer.level_encoders[2](inputs["conv3"] + context_2[:, None, :])
    np.testing.assert_allclose(out["context"], keras.ops.convert_to_numpy(context_1), atol=1e-6)
    np.testing.assert_allclose(out["sequence"], keras.ops.convert_to_numpy(level_3["sequence"]), atol=1e-6)
    np.testing.assert_allclose(out["state"], keras.ops.convert_to_numpy(level_3["state"]), atol=1e-6)

    # The context really enters: without it the next level sees its bare features.
    without_context = layer.level_encoders[2](inputs["conv3"])["sequence"]
    assert np.abs(out["sequence"] - keras.ops.convert_to_numpy(without_context)).max() > 1e-3
    second.set_weights([np.zeros_like(w) for w in second.get_weights()])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(inputs)["sequence"]), keras.ops.convert_to_numpy(without_context), atol=1e-6
    )


def test_invalid_arguments():
    with pytest.raises(ValueError, match="audio_to_word"):
        AttentionFlow(audio_to_word="mean")
    with pytest.raises(ValueError, match="two distinct levels"):
        TopDownEncoder(levels=("fc2",))
    with pytest.raises(ValueError, match="lack levels"):
        TopDownEncoder(units=UNITS)({"fc2": _random(1, 2, 4)})
