"""FeatureMasking (SpecAugment-style bands, training only) and what a captioner with it does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layer_test_case import run_layer_test
from model_test_case import assert_augmentation_is_training_only, run_captioner_test
from audiocaps_tf.layers import FeatureMasking
from audiocaps_tf.models import build_captioner
from audiocaps_tf.tokens.vocabulary import WordVocabulary

CAPTIONS = ["a dog barks", "rain falls on a roof", "a man speaks then a dog barks", "birds sing"]


def _features(seed=0, steps=40, channels=20):
    rng = np.random.default_rng(seed)
    return {"mfcc": rng.uniform(1.0, 2.0, size=(3, steps, channels)).astype("float32")}  # no zero anywhere


def test_feature_masking_contract(tmp_path):
    features = _features()
    outputs = run_layer_test(FeatureMasking, init_kwargs={"seed": 1}, input_data=features,
                             expected_output_shape={"mfcc": (3, 40, 20)}, tmp_path=tmp_path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs["mfcc"]), features["mfcc"])  # not training


@pytest.mark.parametrize("time_masks, feature_masks", [(2, 0), (0, 3), (2, 2)])
def test_bands_are_zeroed_within_their_bounds_while_training(time_masks, feature_masks):
    layer = FeatureMasking(time_masks, 0.2, feature_masks, 0.25, seed=3)
    x = _features(1)["mfcc"]
    seen_masked = False
    for _ in range(5):  # new bands every call
        out = keras.ops.convert_to_numpy(layer({"mfcc": x}, training=True)["mfcc"])
        zero = out == 0
        np.testing.assert_array_equal(out[~zero], x[~zero])  # the rest is untouched
        zero_steps = zero.all(axis=2)  # [B, T]
        zero_channels = zero.all(axis=1)  # [B, D]
        assert np.array_equal(zero, zero_steps[:, :, None] | zero_channels[:, None, :])  # only whole bands
        assert (zero_steps.sum(axis=1) <= time_masks * int(0.2 * 40)).all()
        assert (zero_channels.sum(axis=1) <= feature_masks * int(0.25 * 20)).all()
        assert zero_steps.any() == bool(time_masks) or not zero_steps.any()
        seen_masked |= zero.any()
    assert seen_masked


def test_masking_runs_in_a_tf_function_with_unknown_steps():
    layer = FeatureMasking(2, 0.5, 2, 0.5, seed=4)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 20], tf.float32)])
    def masked(x):
        return layer({"mfcc": x}, training=True)["mfcc"]

    out = masked(_features(2, steps=17)["mfcc"]).numpy()
    assert out.shape == (3, 17, 20) and (out == 0).any()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="time_mask_fraction"):
        FeatureMasking(time_mask_fraction=1.5)
    with pytest.raises(ValueError, match="time_masks"):
        FeatureMasking(time_masks=-1)


def _pair(vocabulary):
    """The same tiny model (same seed, same weights) without and with feature masking; no dropout."""
    options = dict(units=8, embedding_dim=8, dropouts=0.0)
    keras.utils.set_random_seed(7)
    plain = build_captioner("tempatt-mfcc-lstm", vocabulary, **options)
    keras.utils.set_random_seed(7)
    masked = build_captioner("tempatt-mfcc-lstm", vocabulary, time_masks=2, time_mask_fraction=0.5,
                             feature_masks=2, feature_mask_fraction=0.5, **options)
    return plain, masked


def test_masking_changes_training_inputs_only(tmp_path):
    vocabulary = WordVocabulary.build(CAPTIONS)
    plain, masked = _pair(vocabulary)
    assert plain.augmentation is None and isinstance(masked.augmentation, FeatureMasking)
    for a, b in zip(plain.trainable_weights, masked.trainable_weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    features = _features(5, steps=24)
    caption_in = np.array([[1, 4, 5], [1, 6, 0], [1, 7, 8]], "int32")
    assert_augmentation_is_training_only(masked, plain, features, caption_in)
    inputs = {**features, "caption_in": caption_in}
    targets = np.array([[4, 5, 2], [6, 2, 0], [7, 8, 2]], "int32")
    restored = run_captioner_test(masked, inputs, targets, tmp_path)
    assert restored.augmentation.get_config() == masked.augmentation.get_config()
