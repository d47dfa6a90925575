import librosa
import numpy as np
import pytest
import soundfile as sf
import soxr

from audiocaps_tf import params
from audiocaps_tf.layers import MFCCFrontend
from layer_test_case import run_layer_test

# Tolerance against librosa.feature.mfcc with the paper's parameters: 1e-3 absolute on coefficients
# whose magnitudes reach several hundred (measured: at most 2.2e-4 on the 13 example clips).
MFCC_ATOL = 1e-3


def _librosa_mfcc(waveform, n_mfcc=20, n_mels=128, top_db=80.0):
    """librosa.feature.mfcc(y, sr=16000, n_fft=1024, hop_length=664, center=False), spelled out to reach top_db."""
    power = librosa.feature.melspectrogram(
        y=waveform,
        sr=params.SAMPLE_RATE,
        n_fft=params.MFCC_FFT_LENGTH,
        hop_length=params.MFCC_HOP_SAMPLES,
        center=False,
        n_mels=n_mels,
    )
    return librosa.feature.mfcc(S=librosa.power_to_db(power, top_db=top_db), n_mfcc=n_mfcc).T


def _noise(num_samples, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(num_samples)).astype("float32")


def test_layer_contract(tmp_path):
    run_layer_test(
        MFCCFrontend,
        init_kwargs={"num_coefficients": 13},
        input_data=np.stack([_noise(16000), _noise(16000, 1)]),
        expected_output_shape=(2, 23, 13),
        tmp_path=tmp_path,
    )


def test_ten_seconds_make_240_frames():
    """The paper: 240 frames per 10 s clip."""
    assert MFCCFrontend()(_noise(160000)[None]).shape == (1, 240, 20)


def test_options_match_librosa():
    waveform = _noise(40000)
    got = MFCCFrontend(num_coefficients=40, num_mel_bands=64, top_db=None)(waveform[None]).numpy()[0]
    expected = _librosa_mfcc(waveform, n_mfcc=40, n_mels=64, top_db=None)
    np.testing.assert_allclose(got, expected, atol=MFCC_ATOL)


def test_short_waveform_is_zero_padded_to_one_window():
    waveform = _noise(700)
    padded = np.concatenate([waveform, np.zeros(params.MFCC_FFT_LENGTH - 700, "float32")])
    got = MFCCFrontend()(waveform[None]).numpy()[0]
    np.testing.assert_allclose(got, _librosa_mfcc(padded), atol=MFCC_ATOL)


def test_padding_is_zero_and_changes_no_frame_of_the_clip():
    """A clip zero-padded in a batch of longer clips keeps its own frames, with the top_db peak of its own frames
    only (a loud tail that no whole frame holds would raise it), and its frames past its end are zero."""
    clip = _noise(30000)
    clip[-200:] = 0.9  # inside no whole frame of the clip alone
    batch = np.zeros((2, 60000), "float32")
    batch[0, : clip.size], batch[1] = clip, _noise(60000, 1)
    frontend = MFCCFrontend()
    alone = frontend(clip[None]).numpy()[0]
    padded = frontend(batch).numpy()[0]
    assert alone.shape[0] == 1 + (30000 - 1024) // 664 < padded.shape[0]
    np.testing.assert_allclose(padded[: alone.shape[0]], alone, atol=1e-4)
    np.testing.assert_allclose(alone, _librosa_mfcc(clip), atol=MFCC_ATOL)
    assert not padded[alone.shape[0]:].any()


def test_rejects_more_coefficients_than_bands():
    with pytest.raises(ValueError, match="num_coefficients"):
        MFCCFrontend(num_coefficients=65, num_mel_bands=64)


def test_matches_librosa_on_real_clips(example_paths):
    frontend = MFCCFrontend()
    for path in example_paths:
        data, rate = sf.read(path, always_2d=True, dtype="float32")
        waveform = soxr.resample(data.mean(axis=1), rate, params.SAMPLE_RATE, "HQ").astype("float32")
        expected = librosa.feature.mfcc(
            y=waveform, sr=params.SAMPLE_RATE, n_fft=1024, hop_length=664, center=False
        ).T
        got = frontend(waveform[None]).numpy()[0]
        assert got.shape == expected.shape, path.name
        np.testing.assert_allclose(got, expected, atol=MFCC_ATOL, err_msg=path.name)
