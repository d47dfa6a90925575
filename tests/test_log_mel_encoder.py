"""The log-mel CNN trained from scratch: `LogMelCNNEncoder` against a NumPy oracle, the "log_mel" field (preprocessor,
prepare, pipeline) and the tempatt-logmel-cnn-lstm captioner (training step, save / load, core-op export)."""

import io
import math

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf

import vggish_reference
from layer_test_case import run_layer_test
from model_test_case import run_captioner_test
from saved_model_ops import non_core_ops, saved_model_op_types
from test_prepare import OPTIONS, audio_path, make_dataset, parse_shard
from audiocaps_tf import params
from audiocaps_tf.audio.loading import load_audio
from audiocaps_tf.data import pipeline, prepare
from audiocaps_tf.data.layout import read_splits
from audiocaps_tf.export import export_model
from audiocaps_tf.layers import LogMelCNNEncoder, LogMelFrontend
from audiocaps_tf.layers.log_mel_cnn import time_pool_sizes
from audiocaps_tf.layers.log_mel_frontend import num_log_mel_examples
from audiocaps_tf.models import MODELS, AudioPreprocessor, build_captioner
from audiocaps_tf.models.encoders import LogMelCNNAudioEncoder
from audiocaps_tf.tokens.vocabulary import BOS_ID, WordVocabulary

NAME = "tempatt-logmel-cnn-lstm"
CAPTIONS = ["a dog barks", "rain falls on a roof", "a man speaks then a dog barks", "birds sing"]
TINY = dict(units=8, embedding_dim=8, log_mel_channels=4, log_mel_num_blocks=2, log_mel_time_pool=4)
LAYER = dict(units=4, channels=3, num_blocks=2, time_pool=2, dropout=0.0)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _log_mel(batch, steps, bands, seed=0):
    return np.random.default_rng(seed).normal(-2.0, 2.0, size=(batch, steps, bands)).astype("float32")


def _waveforms(seconds=2.5, count=2, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * params.SAMPLE_RATE)) / params.SAMPLE_RATE
    tone = 0.1 * np.sin(2 * np.pi * np.array([[440.0], [1500.0], [3000.0]])[:count] * t)
    return (tone + rng.normal(0.0, 0.05, size=tone.shape)).astype("float32")


def _random_statistics(layer, seed=0):
    """Moving means and variances away from (0, 1), so inference-mode BatchNorm is not the identity; scales of
    both signs (a negative one turns a padded -inf into +inf: the layer must zero it)."""
    rng = np.random.default_rng(seed)
    for normalization in layer.normalizations:
        shape = normalization.moving_mean.shape
        normalization.moving_mean.assign(rng.normal(0.0, 0.5, shape).astype("float32"))
        normalization.moving_variance.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
        normalization.gamma.assign((rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)).astype("float32"))
        normalization.beta.assign(rng.normal(0.0, 0.1, shape).astype("float32"))


# ---------------------------------------------------------------- the layer


def _oracle(layer, clip):
    """One unpadded clip [T, M] through the layer's equations in float64 NumPy (inference-mode BatchNorm)."""
    x = np.asarray(clip, np.float64)[:, :, None]
    for convolution, normalization, pool in zip(layer.convolutions, layer.normalizations, layer.pool_sizes):
        kernel = _np(convolution.kernel).astype(np.float64)  # [3, 3, C_in, C_out]
        padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
        steps, bands = x.shape[:2]
        x = sum(padded[dt : dt + steps, db : db + bands] @ kernel[dt, db] for dt in range(3) for db in range(3))
        out_steps, out_bands = math.ceil(steps / pool), math.ceil(bands / 2)
        x = np.pad(x, ((0, out_steps * pool - steps), (0, out_bands * 2 - bands), (0, 0)), constant_values=-np.inf)
        x = x.reshape(out_steps, pool, out_bands, 2, -1).max(axis=(1, 3))
        mean, variance = _np(normalization.moving_mean), _np(normalization.moving_variance)
        gamma, beta = _np(normalization.gamma), _np(normalization.beta)
        x = np.maximum(0.0, (x - mean) / np.sqrt(variance + normalization.epsilon) * gamma + beta)
    return x.mean(axis=1) @ _np(layer.projection.kernel) + _np(layer.projection.bias)


def test_log_mel_cnn_encoder_contract(tmp_path):
    run_layer_test(LogMelCNNEncoder, init_kwargs=LAYER, input_data=_log_mel(2, 9, 10),
                   expected_output_shape=(2, 5, 4), tmp_path=tmp_path)


def test_padded_clips_give_what_each_clip_gives_alone_and_match_the_oracle():
    layer = LogMelCNNEncoder(**LAYER)
    lengths = [9, 5]  # odd: clip 1's last pool window holds a padded frame
    x = _log_mel(2, 9, 10, seed=1)
    x[1, 5:] = 0.0
    mask = np.arange(9)[None, :] < np.array(lengths)[:, None]
    layer.build(x.shape)
    _random_statistics(layer)
    out, out_mask = _np(layer(x, mask=mask)), _np(layer.compute_mask(x, mask))
    assert out.shape == (2, 5, 4) and out_mask.tolist() == [[True] * 5, [True] * 3 + [False] * 2]
    for row, length in enumerate(lengths):
        steps = math.ceil(length / 2)
        np.testing.assert_allclose(out[row, :steps], _oracle(layer, x[row, :length]), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out[row, :steps], _np(layer(x[row : row + 1, :length]))[0], atol=1e-5)
        assert np.all(out[row, steps:] == 0.0)


@pytest.mark.parametrize("training", [False, True])
def test_what_padding_holds_changes_nothing(training):
    """Padded frames are zeroed, out of every max pool and out of the batch statistics (in training too)."""
    layer = LogMelCNNEncoder(**{**LAYER, "num_blocks": 3, "time_pool": 4})
    x = _log_mel(3, 13, 16, seed=2)
    mask = np.arange(13)[None, :] < np.array([13, 5, 10])[:, None]
    garbage = np.where(mask[:, :, None], x, 100.0).astype("float32")
    zeros = np.where(mask[:, :, None], x, 0.0).astype("float32")
    out = _np(layer(garbage, mask=mask, training=training))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, _np(layer(zeros, mask=mask, training=training)), atol=1e-5)


def test_batch_statistics_are_the_valid_frames():
    """In training, the first BatchNorm's moving mean moves towards the mean over the valid (pooled) frames of the
    batch: each clip's first block alone, unpadded (the oracle's convolution and pooling), pooled together."""
    layer = LogMelCNNEncoder(**LAYER)
    lengths = [9, 5, 2]
    x = _log_mel(3, 9, 10, seed=5)
    mask = np.arange(9)[None, :] < np.array(lengths)[:, None]
    layer.build(x.shape)
    normalization = layer.normalizations[0]
    layer(np.where(mask[:, :, None], x, 100.0).astype("float32"), mask=mask, training=True)
    kernel = _np(layer.convolutions[0].kernel).astype(np.float64)
    pooled = []
    for clip, length in zip(x, lengths):
        padded = np.pad(clip[:length, :, None].astype(np.float64), ((1, 1), (1, 1), (0, 0)))
        y = sum(padded[dt : dt + length, db : db + 10] @ kernel[dt, db] for dt in range(3) for db in range(3))
        y = np.pad(y, ((0, length % 2), (0, 0), (0, 0)), constant_values=-np.inf)
        pooled.append(y.reshape(-1, 2, 5, 2, y.shape[-1]).max(axis=(1, 3)).reshape(-1, y.shape[-1]))
    batch_mean = np.concatenate(pooled).mean(axis=0)
    np.testing.assert_allclose(_np(normalization.moving_mean), (1 - normalization.momentum) * batch_mean,
                               rtol=1e-4, atol=1e-6)


def test_time_pooling_and_its_checks():
    assert time_pool_sizes(3, 4) == (2, 2, 1) and time_pool_sizes(2, 1) == (1, 1) and time_pool_sizes(3, 8) == (2,) * 3
    for blocks, pool in ((3, 16), (3, 3), (2, 0)):
        with pytest.raises(ValueError, match="power of two"):
            time_pool_sizes(blocks, pool)
    with pytest.raises(ValueError, match="channels >= 2"):
        LogMelCNNEncoder(channels=1)
    # The defaults: 10 s of audio (960 frames) -> 240 memory steps, 64 bands -> 8.
    layer = LogMelCNNEncoder()
    assert layer.compute_output_shape((None, 960, 64)) == (None, 240, 128) and layer.output_channels == 64
    assert _np(layer(_log_mel(1, 960, 64))).shape == (1, 240, 128)


# ---------------------------------------------------------------- the log_mel field


def test_the_preprocessor_computes_log_mel_frames_as_vggish_frames_them():
    waveforms = _waveforms(2.5)  # 2 whole 0.96 s examples: 192 frames, the rest dropped as VGGish drops it
    preprocessor = AudioPreprocessor(["log_mel"])
    computed = _np(preprocessor(waveforms)["log_mel"])
    examples = _np(LogMelFrontend()(waveforms))
    assert examples.shape == (2, 2, 96, 64) and computed.shape == (2, 192, 64)
    np.testing.assert_array_equal(computed, examples.reshape(2, 192, 64))
    for waveform, frames in zip(waveforms, computed):  # the frames in time order: the float64 reference's
        np.testing.assert_allclose(frames, vggish_reference.log_mel_examples(waveform).reshape(-1, 64), atol=1e-3)
    assert preprocessor.vggish is None and preprocessor.mfcc_frontend is None
    # In a graph of unknown batch and length, and next to other fields (one log-mel for log_mel and VGGish).
    both = AudioPreprocessor(["mfcc", "log_mel"])
    graph = tf.function(both, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    outputs = graph(tf.constant(waveforms))
    np.testing.assert_allclose(_np(outputs["log_mel"]), computed, atol=1e-5)
    assert sorted(outputs) == ["log_mel", "mfcc"] and tuple(graph(tf.zeros((0, 16000)))["log_mel"].shape) == (0, 96, 64)


def test_prepare_writes_log_mel_and_the_pipeline_reads_it(tmp_path):
    data_dir = make_dataset(tmp_path / "audiocaps")
    out = tmp_path / "out"
    manifest = prepare.prepare_dataset(data_dir, out, features="log_mel", splits="val", workers=0, **OPTIONS)
    assert manifest["record_fields"] == ["log_mel"] and manifest["feature_shapes"] == {"log_mel": [None, 64]}
    examples = parse_shard(out / "val-00000-of-00001.tfrecord", ["log_mel"])
    frontend = AudioPreprocessor(["log_mel"])
    for example, clip in zip(examples, read_splits(data_dir, ["val"])["val"]):
        # What prepare computes from: the whole clip (1.5 and 2 s long: 1 and 2 examples of 0.96 s), int16-quantised.
        quantised = np.round(load_audio(audio_path(data_dir, clip), duration=None) * 32767) / 32767
        expected = _np(frontend(quantised[None].astype("float32"))["log_mel"])[0]
        assert example["num_samples"] == quantised.size
        assert example["log_mel"].shape == (96 * num_log_mel_examples(quantised.size), 64)
        np.testing.assert_allclose(example["log_mel"], expected, atol=1e-4)
    source = pipeline.TFRecordSource(out, "val")
    assert source.available_fields == ("log_mel",)
    inputs, targets = next(iter(pipeline.training_dataset(source, "log_mel", batch_size=8, shuffle=False)))
    longest = max(example["log_mel"].shape[0] for example in examples)
    assert [e["log_mel"].shape[0] for e in examples] == [96, 192]
    assert inputs["log_mel"].shape.as_list() == [8, longest, 64] and targets.shape[0] == 8  # 3 + 5 captions
    first = inputs["log_mel"][0].numpy()  # clip 0's first caption, padded to the longer clip
    np.testing.assert_array_equal(first[:96], examples[0]["log_mel"])
    assert not first[96:].any()
    batch = next(iter(pipeline.evaluation_dataset(source, ["log_mel"], batch_size=2)))
    assert batch["log_mel"].shape.as_list() == [2, longest, 64]


# ---------------------------------------------------------------- the captioner


@pytest.fixture(scope="module")
def vocabulary():
    return WordVocabulary.build(CAPTIONS)


def _batch(vocabulary):
    log_mel = _log_mel(2, 24, 64, seed=3)
    log_mel[1, 15:] = 0.0
    ids = [vocabulary.encode(caption, add_eos=True) for caption in CAPTIONS[:2]]
    width = max(len(i) for i in ids)
    caption_in, targets = np.zeros((2, width), "int32"), np.zeros((2, width), "int32")
    for row, caption_ids in enumerate(ids):
        caption_in[row, : len(caption_ids)] = [BOS_ID] + caption_ids[:-1]
        targets[row, : len(caption_ids)] = caption_ids
    return {"log_mel": log_mel, "caption_in": caption_in}, targets


def test_the_registry_model_passes_the_captioner_test(vocabulary, tmp_path):
    spec = MODELS[NAME]
    assert not spec.paper and spec.encoder is LogMelCNNAudioEncoder and not spec.uses_vggish
    keras.utils.set_random_seed(0)  # a fixed tiny model: its captions are arbitrary, the same every run
    model = build_captioner(NAME, vocabulary, **TINY)
    assert model.required_fields == ("log_mel",) and model.vggish is None
    encoder = model.encoder
    assert (encoder.channels, encoder.num_blocks, encoder.time_pool) == (4, 2, 4)
    assert encoder.memory_depths == (8,) and encoder.state_size == 8
    inputs, targets = _batch(vocabulary)
    encoded = model.encode(inputs)
    assert tuple(encoded["memories"][0].shape) == (2, 6, 8) and tuple(encoded["initial_state"].shape) == (2, 8)
    assert _np(encoded["memory_masks"][0]).tolist() == [[True] * 6, [True] * 4 + [False] * 2]  # 15 frames: 4 steps
    restored = run_captioner_test(model, inputs, targets, tmp_path)
    assert all(np.all(np.isfinite(_np(weight))) for weight in model.weights)  # no inf from the padding's -inf
    assert isinstance(restored.encoder, LogMelCNNAudioEncoder)
    # The moving statistics are saved: the reloaded model normalises as the trained one.
    np.testing.assert_array_equal(_np(restored.encoder.normalizations[0].moving_mean),
                                  _np(model.encoder.normalizations[0].moving_mean))


def _wav(waveform):
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, params.SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_the_waveform_path_equals_cached_frames_and_exports_with_core_ops_only(vocabulary, tmp_path):
    keras.utils.set_random_seed(1)
    model = build_captioner(NAME, vocabulary, max_caption_length=8, **TINY)
    waveforms = _waveforms(2.5, count=2, seed=4)
    cached = {"log_mel": _np(LogMelFrontend()(waveforms)).reshape(2, -1, 64)}
    caption_in = np.array([[BOS_ID, 4, 5], [BOS_ID, 6, 0]], "int32")
    np.testing.assert_allclose(_np(model({**cached, "caption_in": caption_in})),
                               _np(model({"waveform": waveforms, "caption_in": caption_in})), rtol=1e-4, atol=1e-4)
    result = export_model(model, tmp_path / "base")  # checks the SavedModel captions the warm-up clips as Keras does
    op_types = saved_model_op_types(result.path)
    assert {"Conv2D", "MaxPool", "RFFT", "DecodeRaw"} <= op_types
    assert non_core_ops(op_types) == []
    served = tf.saved_model.load(str(result.path))
    captions = served.signatures["serving_default"](audio=tf.constant([_wav(w) for w in waveforms]))["caption"]
    assert [c.decode() for c in captions.numpy()] == model.generate(list(waveforms))
