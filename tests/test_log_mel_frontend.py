import numpy as np
import pytest
import soundfile as sf
import soxr

import vggish_reference
from audiocaps_tf import params
from audiocaps_tf.layers import LogMelFrontend
from audiocaps_tf.layers.log_mel_frontend import num_log_mel_examples
from layer_test_case import run_layer_test


def _sine(num_samples, hz=1000.0):
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(num_samples) / params.SAMPLE_RATE)).astype("float32")


def test_layer_contract(tmp_path):
    waveform = np.stack([_sine(32000), _sine(32000, 250.0)])
    run_layer_test(
        LogMelFrontend,
        init_kwargs={},
        input_data=waveform,
        expected_output_shape=(2, 2, 96, 64),
        tmp_path=tmp_path,
    )


def test_ten_seconds_make_ten_examples():
    assert LogMelFrontend()(np.zeros((1, 160000), "float32")).shape == (1, 10, 96, 64)


@pytest.mark.parametrize("num_samples", [15600, 15999, 30959, 30960, 160000, 148320])
def test_example_count_matches_reference(num_samples):
    reference = vggish_reference.log_mel_examples(_sine(num_samples))
    assert num_log_mel_examples(num_samples) == reference.shape[0]
    assert LogMelFrontend()(_sine(num_samples)[None]).shape[1] == reference.shape[0]


def test_short_waveform_is_zero_padded_to_one_example():
    short = _sine(5000)
    padded = np.concatenate([short, np.zeros(params.MIN_EXAMPLE_SAMPLES - 5000, "float32")])
    output = LogMelFrontend()(short[None]).numpy()
    assert output.shape == (1, 1, 96, 64)
    np.testing.assert_allclose(output[0], vggish_reference.log_mel_examples(padded), atol=1e-3)


def test_batch_rows_are_independent():
    a, b = _sine(48000, 440.0), _sine(48000, 3000.0)
    frontend = LogMelFrontend()
    batch = frontend(np.stack([a, b])).numpy()
    np.testing.assert_allclose(batch[1], frontend(b[None]).numpy()[0], atol=1e-5)


def test_padding_is_zero_and_changes_no_example_of_the_clip():
    clip = _sine(40000, 440.0)
    batch = np.zeros((2, 100000), "float32")
    batch[0, : clip.size], batch[1] = clip, _sine(100000, 3000.0)
    frontend = LogMelFrontend()
    alone, padded = frontend(clip[None]).numpy()[0], frontend(batch).numpy()[0]
    assert alone.shape[0] == num_log_mel_examples(40000) == 2 < padded.shape[0] == 6
    np.testing.assert_allclose(padded[:2], alone, atol=1e-5)
    assert not padded[2:].any()


def test_silence_past_the_first_example_is_padding():
    output = LogMelFrontend()(np.zeros((1, 48000), "float32")).numpy()[0]
    np.testing.assert_allclose(output[0], np.log(params.LOG_OFFSET), rtol=1e-6)
    assert not output[1:].any()


def test_matches_float64_reference_on_real_clips(example_paths):
    """Max |difference| <= 1e-3 against the float64 NumPy pipeline on all 13 clips at 16 kHz."""
    frontend = LogMelFrontend()
    for path in example_paths:
        data, rate = sf.read(path, always_2d=True)
        waveform = soxr.resample(data.mean(axis=1), rate, params.SAMPLE_RATE, "HQ").astype("float32")
        expected = vggish_reference.log_mel_examples(waveform)
        got = frontend(waveform[None]).numpy()[0]
        assert got.shape == expected.shape, path.name
        assert np.abs(got - expected).max() <= 1e-3, path.name
