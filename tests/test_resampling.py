"""One resampling definition: `load_audio` (NumPy), its stream and the serving graph give the same samples.

The 13 real example clips, converted to 8, 22.05, 44.1 and 48 kHz WAVs, go through `load_audio`, `open_audio_stream`
and `audio.graph.wav_to_waveform` (the SavedModel's audio input); all three must agree within 1e-4.
"""

import io

import numpy as np
import pytest
import soundfile

from audiocaps_tf.audio import graph, load_audio
from audiocaps_tf.audio.resampling import ResampleStream, output_length, resample
from audiocaps_tf.audio.stream import open_audio_stream

RATES = (8000, 22050, 44100, 48000)


def wav_at(path, rate):
    """WAV bytes (float32) of the clip at `rate`, made by the package's resampler from the 16 kHz original."""
    samples, native = soundfile.read(path, dtype="float32")
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    converted = resample(resample(mono, native, 16000), 16000, rate)
    buffer = io.BytesIO()
    soundfile.write(buffer, converted, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


@pytest.mark.parametrize("rate", RATES)
def test_load_audio_its_stream_and_the_serving_graph_give_the_same_samples(example_paths, rate):
    worst = 0.0
    for path in example_paths:
        data = wav_at(path, rate)
        loaded = load_audio(data, duration=None)
        with open_audio_stream(data) as stream:
            streamed = np.concatenate(list(stream.blocks(block_seconds=1.3)))
        served = graph.wav_to_waveform(data, duration=None).numpy()
        assert loaded.shape == streamed.shape == served.shape, path
        np.testing.assert_allclose(streamed, loaded, rtol=0, atol=1e-4, err_msg=f"{path} stream at {rate} Hz")
        np.testing.assert_allclose(served, loaded, rtol=0, atol=1e-4, err_msg=f"{path} graph at {rate} Hz")
        worst = max(worst, float(np.abs(served - loaded).max()))
    assert worst < 1e-4


@pytest.mark.parametrize("rate", (44101, 11025, 192000, 96000, 12345))
def test_numpy_and_graph_resamplers_agree_at_unusual_rates(rate):
    """Both computation paths (polyphase and blockwise) of both implementations, on a noisy chirp."""
    rng = np.random.default_rng(rate)
    t = np.arange(int(1.7 * rate)) / rate
    x = (0.5 * np.sin(2 * np.pi * (200 + 2000 * t) * t) + 0.1 * rng.standard_normal(len(t))).astype(np.float32)
    ours = resample(x, rate, 16000)
    assert ours.shape == (output_length(len(x), rate, 16000),)
    np.testing.assert_allclose(graph.resample(x, rate).numpy(), ours, rtol=0, atol=1e-4)


@pytest.mark.parametrize("rates", [(44100, 16000), (8000, 16000), (44101, 16000), (16000, 48000)])
@pytest.mark.parametrize("chunk", [1, 997, 44100])
def test_the_stream_joined_is_the_whole_signal_resampled(rates, chunk):
    rng = np.random.default_rng(chunk)
    x = rng.uniform(-1, 1, 20000 if chunk == 1 else 100003).astype(np.float32)
    stream = ResampleStream(*rates)
    parts = [stream.resample_chunk(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    joined = np.concatenate(parts + [stream.resample_chunk(np.zeros(0, np.float32), last=True)])
    np.testing.assert_allclose(joined, resample(x, *rates), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="already been flushed"):
        stream.resample_chunk(x[:10])


def test_a_constant_stays_constant_and_bad_arguments_are_refused():
    out = resample(np.full(30000, 0.25, np.float32), 44100, 16000)
    np.testing.assert_allclose(out[1000:-1000], 0.25, atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10, np.float32), 0, 16000)
    with pytest.raises(ValueError, match="one-dimensional"):
        resample(np.zeros((2, 10), np.float32), 44100, 16000)
