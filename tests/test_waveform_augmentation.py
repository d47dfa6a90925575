"""Random gain and time shifts (WaveformAugmentation, FeatureShift, InputAugmentation): training inputs only."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layer_test_case import run_layer_test
from model_test_case import assert_augmentation_is_training_only, run_captioner_test
from saved_model_ops import non_core_ops, saved_model_op_types
from audiocaps_tf.export.serving_graph import CaptionSignatures
from audiocaps_tf.layers import FeatureMasking, FeatureShift, InputAugmentation, WaveformAugmentation
from audiocaps_tf.models import build_captioner
from audiocaps_tf.tokens.vocabulary import WordVocabulary

CAPTIONS = ["a dog barks", "rain falls on a roof", "a man speaks then a dog barks", "birds sing"]
RATE = 100  # samples per second of the test waveforms: a 0.05 s shift is 5 samples


def _waveform(seed=0, samples=50, lengths=(50, 50, 30)):
    """[3, samples], no zero inside a clip; the last clip is zero-padded after `lengths[-1]` samples."""
    x = np.random.default_rng(seed).uniform(0.1, 1.0, size=(len(lengths), samples)).astype("float32")
    for row, length in enumerate(lengths):
        x[row, length:] = 0
    return x


def _shifted(x, shift, length, circular):
    """The oracle: the first `length` steps of x (a 1-D or [T, D] clip) moved by `shift` steps."""
    y = np.zeros_like(x)
    for t in range(length):
        source = (t - shift) % length if circular else t - shift
        if 0 <= source < length:
            y[t] = x[source]
    return y


def _shift_of(out, x, length, max_shift, circular):
    """(shift, gain) with out == gain * _shifted(x, shift): the one shift within max_shift that explains `out`."""
    found = []
    for shift in range(-max_shift, max_shift + 1):
        moved = _shifted(x, shift, length, circular)
        gain = float(np.sum(out * moved) / np.sum(moved * moved))
        if np.allclose(out, gain * moved, rtol=1e-5, atol=1e-6):
            found.append((shift, gain))
    assert len(found) == 1, f"{len(found)} shifts within {max_shift} explain the output"
    return found[0]


def test_waveform_augmentation_contract(tmp_path):
    x = _waveform()
    out = run_layer_test(WaveformAugmentation, init_kwargs={"gain_db": 6.0, "time_shift_seconds": 0.05,
                                                            "sample_rate": RATE, "seed": 1},
                         input_data=x, expected_output_shape=(3, 50), tmp_path=tmp_path,
                         run_mixed_precision_check=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), x)  # not training
    mixed = WaveformAugmentation(6.0, 0.05, sample_rate=RATE, seed=1, dtype="mixed_float16")
    assert keras.backend.standardize_dtype(mixed(x, training=True).dtype) == "float32"  # as the frontends take it


@pytest.mark.parametrize("mode", ["circular", "zeros"])
def test_gain_and_shift_per_clip_match_the_oracle(mode):
    layer = WaveformAugmentation(6.0, 0.05, mode=mode, sample_rate=RATE, seed=3)
    x = _waveform(1)
    shifts, gains = set(), []
    for _ in range(12):  # new draws every call
        out = keras.ops.convert_to_numpy(layer(x, training=True))
        for row, length in enumerate((50, 50, 30)):
            shift, gain = _shift_of(out[row], x[row], length, 5, mode == "circular")
            assert -6.0 - 1e-4 <= 20 * np.log10(gain) <= 6.0 + 1e-4
            np.testing.assert_array_equal(out[row, length:], 0)  # padding stays padding
            shifts.add(shift)
            gains.append(gain)
    assert min(shifts) < 0 < max(shifts) and np.ptp(gains) > 0.5


def test_gain_alone_and_shift_alone():
    x = _waveform(2)
    gained = keras.ops.convert_to_numpy(WaveformAugmentation(3.0, seed=4)(x, training=True))
    ratios = gained[:, :30] / x[:, :30]
    np.testing.assert_allclose(ratios, ratios[:, :1] * np.ones_like(ratios), rtol=1e-6)  # one gain per clip
    assert np.all(np.abs(20 * np.log10(ratios[:, 0])) <= 3.0 + 1e-4)
    shifted = keras.ops.convert_to_numpy(WaveformAugmentation(0.0, 0.05, sample_rate=RATE, seed=4)(x, training=True))
    np.testing.assert_allclose(np.sort(shifted, axis=1), np.sort(x, axis=1))  # rolled, not scaled


@pytest.mark.parametrize("mode", ["circular", "zeros"])
def test_feature_shift_moves_every_field_of_a_clip_by_the_same_share(mode):
    rng = np.random.default_rng(5)
    features = {"mfcc": rng.uniform(1.0, 2.0, size=(3, 40, 4)).astype("float32"),
                "vggish_fc2": rng.uniform(1.0, 2.0, size=(3, 10, 3)).astype("float32")}
    features["mfcc"][2, 30:] = 0  # a shorter clip in a padded batch
    features["vggish_fc2"][2, 8:] = 0
    lengths = {"mfcc": (40, 40, 30), "vggish_fc2": (10, 10, 8)}
    layer = FeatureShift(2.0, mode=mode, seed=6)  # at most 2 s of a 10 s clip: a fifth of its steps
    seen = set()
    for _ in range(8):
        out = {name: keras.ops.convert_to_numpy(value) for name, value in layer(features, training=True).items()}
        for row in range(3):
            shares = []
            for name in features:
                length = lengths[name][row]
                shift, gain = _shift_of(out[name][row], features[name][row], length, round(0.2 * length),
                                        mode == "circular")
                assert gain == pytest.approx(1.0)
                np.testing.assert_array_equal(out[name][row, length:], 0)
                shares.append((shift, length))
                seen.add(shift)
            (s1, l1), (s2, l2) = shares
            assert abs(s1 / l1 - s2 / l2) <= 0.5 / l1 + 0.5 / l2  # the same share of each field's length
    assert len(seen) > 3


def test_shifts_run_in_a_tf_function_with_unknown_shapes():
    waveform_layer, feature_layer = WaveformAugmentation(6.0, 0.05, sample_rate=RATE, seed=7), FeatureShift(3.0,
                                                                                                            seed=7)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None, None, 4])])
    def augmented(waveform, mfcc):
        return waveform_layer(waveform, training=True), feature_layer({"mfcc": mfcc}, training=True)["mfcc"]

    waveform, mfcc = augmented(_waveform(3), np.ones((2, 17, 4), "float32"))
    assert waveform.shape == (3, 50) and mfcc.shape == (2, 17, 4)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="gain_db"):
        WaveformAugmentation(gain_db=-1)
    with pytest.raises(ValueError, match="mode"):
        WaveformAugmentation(time_shift_seconds=1, mode="wrap")
    with pytest.raises(ValueError, match="time_shift_seconds"):
        FeatureShift(-1.0)


def test_input_augmentation_shifts_cached_features_only_and_round_trips(tmp_path):
    features = {"mfcc": np.random.default_rng(8).uniform(1.0, 2.0, size=(3, 40, 4)).astype("float32")}
    augmentation = InputAugmentation(shift=FeatureShift(3.0, seed=9))
    run_layer_test(InputAugmentation, init_kwargs={"shift": FeatureShift(3.0, seed=9),
                                                   "masking": FeatureMasking(1, 0.2, 0, seed=9)},
                   input_data=features, expected_output_shape={"mfcc": (3, 40, 4)}, tmp_path=tmp_path)
    from_waveform = augmentation(features, training=True, cached=False)["mfcc"]  # shifted as a waveform already
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(from_waveform), features["mfcc"])
    assert not np.array_equal(keras.ops.convert_to_numpy(augmentation(features, training=True)["mfcc"]),
                              features["mfcc"])


AUGMENTED = dict(gain_db=6.0, time_shift_seconds=2.0, time_masks=1, time_mask_fraction=0.2)


def _pair(vocabulary, **augmentation):
    """The same tiny model (same seed, same weights) without and with augmentation; no dropout."""
    options = dict(units=8, embedding_dim=8, dropouts=0.0)
    keras.utils.set_random_seed(7)
    plain = build_captioner("tempatt-mfcc-lstm", vocabulary, **options)
    keras.utils.set_random_seed(7)
    augmented = build_captioner("tempatt-mfcc-lstm", vocabulary, **options, **augmentation)
    for a, b in zip(plain.trainable_weights, augmented.trainable_weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    return plain, augmented


def test_the_builder_makes_what_the_hyper_parameters_ask_for():
    vocabulary = WordVocabulary.build(CAPTIONS)
    masks_only = build_captioner("tempatt-mfcc-lstm", vocabulary, units=8, embedding_dim=8, time_masks=2)
    assert isinstance(masks_only.augmentation, FeatureMasking)  # as models saved before gain and shifts
    gain_only = build_captioner("tempatt-mfcc-lstm", vocabulary, units=8, embedding_dim=8, gain_db=3.0)
    parts = gain_only.augmentation
    assert isinstance(parts, InputAugmentation) and parts.shift is None and parts.masking is None
    assert parts.waveform.gain_db == 3.0 and parts.waveform.time_shift_seconds == 0.0
    assert build_captioner("tempatt-mfcc-lstm", vocabulary, units=8, embedding_dim=8).augmentation is None


def test_augmentation_changes_training_inputs_only(tmp_path):
    vocabulary = WordVocabulary.build(CAPTIONS)
    plain, augmented = _pair(vocabulary, **AUGMENTED)
    rng = np.random.default_rng(10)
    caption_in = np.array([[1, 4, 5], [1, 6, 0], [1, 7, 8]], "int32")
    cached = {"mfcc": rng.uniform(1.0, 2.0, size=(3, 24, 20)).astype("float32")}
    waveform = {"waveform": rng.uniform(-0.5, 0.5, size=(3, 8000)).astype("float32")}  # 0.5 s at 16 kHz

    for features in (cached, waveform):
        assert_augmentation_is_training_only(augmented, plain, features, caption_in)

    targets = np.array([[4, 5, 2], [6, 2, 0], [7, 8, 2]], "int32")
    restored = run_captioner_test(augmented, {**cached, "caption_in": caption_in}, targets, tmp_path)
    assert isinstance(restored.augmentation, InputAugmentation)
    assert restored.augmentation.get_config() == augmented.augmentation.get_config()


def test_gain_alone_reaches_a_model_fed_waveforms():
    vocabulary = WordVocabulary.build(CAPTIONS)
    plain, gained = _pair(vocabulary, gain_db=6.0)
    inputs = {"waveform": np.random.default_rng(11).uniform(-0.5, 0.5, size=(2, 8000)).astype("float32"),
              "caption_in": np.array([[1, 4], [1, 6]], "int32")}
    assert not np.allclose(keras.ops.convert_to_numpy(gained(inputs, training=True)),
                           keras.ops.convert_to_numpy(plain(inputs, training=True)))
    cached = {"mfcc": np.ones((2, 12, 20), "float32"), "caption_in": inputs["caption_in"]}  # no gain for features
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(gained(cached, training=True)),
                                  keras.ops.convert_to_numpy(plain(cached, training=True)))


def test_the_exported_serving_graph_captions_as_without_augmentation(tmp_path):
    vocabulary = WordVocabulary.build(CAPTIONS)
    plain, augmented = _pair(vocabulary, **AUGMENTED)
    CaptionSignatures(augmented).archive().write_out(str(tmp_path), verbose=False)
    assert non_core_ops(saved_model_op_types(tmp_path)) == []
    waveform = np.random.default_rng(12).uniform(-0.5, 0.5, size=(2, 8000)).astype("float32")
    served = tf.saved_model.load(str(tmp_path)).signatures["caption_waveform"]
    captions = served(waveform=tf.constant(waveform), sample_rate=tf.constant([16000, 16000]))["caption"].numpy()
    assert [c.decode() for c in captions] == plain.generate(waveform)  # both pad to 10 s
