"""The serving graph's audio input (audiocaps_tf.audio.graph): WAV decoding, resampling, export in core TF ops.

Reference values come from soundfile (decoding), the analytic signal and soxr (resampling), and
`load_audio` (the NumPy path the model is trained on).
"""

import io
import re
import struct

import numpy as np
import pytest
import soundfile
import soxr
import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.audio import decode_wav, load_audio, resample, wav_to_waveform
from audiocaps_tf.layers import LogMelFrontend
from saved_model_ops import non_core_ops, saved_model_op_types

# Traced once each, with the unknown-length signatures of the serving graph.
decode_wav_graph = tf.function(decode_wav, input_signature=[tf.TensorSpec([], tf.string)])
resample_graph = tf.function(
    resample, input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)]
)
wav_to_waveform_graph = tf.function(wav_to_waveform, input_signature=[tf.TensorSpec([], tf.string)])

DECODERS = {"eager": decode_wav, "tf.function": decode_wav_graph}


def wav_bytes(samples, rate, subtype="PCM_16", file_format="WAV"):
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=file_format, subtype=subtype)
    return buffer.getvalue()


def chunk_offset(data, chunk_id):
    """Byte offset of the header of the first RIFF chunk `chunk_id` (walked in Python, independently)."""
    position = 12
    while position + 8 <= len(data):
        found_id, size = struct.unpack("<4sI", data[position : position + 8])
        if found_id == chunk_id:
            return position
        position += 8 + size + (size & 1)
    raise AssertionError(f"no {chunk_id!r} chunk")


def patch(data, offset, fmt, value):
    data = bytearray(data)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def noise(frames, channels, seed=0):
    """Noise spanning the whole range, with both extremes, so that scaling errors show."""
    samples = np.random.RandomState(seed).uniform(-1.0, 1.0, (frames, channels))
    samples[0] = -1.0
    samples[1] = 0.999
    samples[2] = 0.0
    return samples


def sine(frequency, rate, seconds, amplitude=0.5):
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def level_db(x):
    """Level of a sine-like signal relative to amplitude 1 (peak from the RMS)."""
    return 20 * np.log10(np.sqrt(2 * np.mean(np.square(x, dtype=np.float64))) + 1e-30)


# --- decode_wav -------------------------------------------------------------------------------------

FORMATS = [
    ("WAV", "PCM_U8"),
    ("WAV", "PCM_16"),
    ("WAV", "PCM_24"),
    ("WAV", "PCM_32"),
    ("WAV", "FLOAT"),
    ("WAV", "DOUBLE"),
    ("WAVEX", "PCM_U8"),
    ("WAVEX", "PCM_16"),
    ("WAVEX", "PCM_24"),
    ("WAVEX", "PCM_32"),
    ("WAVEX", "FLOAT"),
]


@pytest.mark.parametrize("mode", DECODERS)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("file_format,subtype", FORMATS)
def test_decode_wav_matches_soundfile(file_format, subtype, channels, mode):
    rate = 11025 if channels == 1 else 44100
    data = wav_bytes(noise(301, channels), rate, subtype, file_format)
    tag = struct.unpack_from("<H", data, chunk_offset(data, b"fmt ") + 8)[0]
    assert (tag == 0xFFFE) == (file_format == "WAVEX")  # the test covers what it claims to

    expected, expected_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    samples, sample_rate = DECODERS[mode](tf.constant(data))

    assert samples.dtype == tf.float32 and sample_rate.dtype == tf.int32
    assert int(sample_rate) == expected_rate == rate
    assert samples.shape == expected.shape == (301, channels)
    # int32 and float64 round to float32 once, as soundfile's float32 read does: equal to 1 ulp.
    np.testing.assert_allclose(samples.numpy(), expected, rtol=0, atol=1e-7)
    if subtype in ("PCM_U8", "PCM_16", "PCM_24", "FLOAT"):
        np.testing.assert_array_equal(samples.numpy(), expected)  # exact in float32


@pytest.mark.parametrize("mode", DECODERS)
def test_decode_wav_skips_other_chunks(mode):
    """A LIST chunk of odd size (so padded to even) between 'fmt ' and 'data' is skipped."""
    samples = noise(200, 2, seed=1)
    data = wav_bytes(samples, 22050, "PCM_24")
    data_at = chunk_offset(data, b"data")
    list_chunk = b"LIST" + struct.pack("<I", 9) + b"INFOISFT\x01" + b"\x00"  # 9 bytes + pad byte
    edited = data[:data_at] + list_chunk + data[data_at:]
    edited = patch(edited, 4, "<I", len(edited) - 8)
    assert chunk_offset(edited, b"data") == data_at + len(list_chunk)

    decoded, rate = DECODERS[mode](tf.constant(edited))
    expected, _ = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    np.testing.assert_array_equal(decoded.numpy(), expected)
    assert int(rate) == 22050


@pytest.mark.parametrize("mode", DECODERS)
def test_decode_wav_reads_streaming_placeholder_size_to_end_of_file(mode):
    """Writers to a pipe leave the data size at 0xFFFFFFFF; libsndfile (and so load_audio) reads to the end."""
    data = wav_bytes(noise(150, 2, seed=2), 16000, "PCM_16")
    edited = patch(data, chunk_offset(data, b"data") + 4, "<I", 0xFFFFFFFF)
    decoded, _ = DECODERS[mode](tf.constant(edited))
    expected, _ = soundfile.read(io.BytesIO(edited), dtype="float32", always_2d=True)
    assert expected.shape == (150, 2)
    np.testing.assert_array_equal(decoded.numpy(), expected)


def _fmt_field(data, offset, fmt, value):
    """Patches a field of the 'fmt ' chunk body at `offset`."""
    return patch(data, chunk_offset(data, b"fmt ") + 8 + offset, fmt, value)


def _float_with(value):
    data = wav_bytes(np.zeros((50, 1)), 16000, "FLOAT")
    return patch(data, chunk_offset(data, b"data") + 8 + 4 * 20, "<f", value)


def _short_fmt(data):
    """The file with a 'fmt ' chunk of 12 bytes instead of 16 (bits per sample missing)."""
    fmt_at, data_at = chunk_offset(data, b"fmt "), chunk_offset(data, b"data")
    body = data[fmt_at + 8 : fmt_at + 20]
    edited = data[:12] + b"fmt " + struct.pack("<I", 12) + body + data[data_at:]
    return patch(edited, 4, "<I", len(edited) - 8)


def _bad_inputs():
    pcm = wav_bytes(noise(100, 2, seed=3), 16000, "PCM_16")
    wavex = wav_bytes(noise(100, 2, seed=3), 16000, "PCM_16", "WAVEX")
    data_at = chunk_offset(pcm, b"data")
    fmt_at = chunk_offset(pcm, b"fmt ")
    return {
        "empty": (b"", "audio: not a RIFF/WAVE file"),
        "header only": (pcm[:10], "audio: not a RIFF/WAVE file"),
        "wrong RIFF magic": (b"RIFX" + pcm[4:], "audio: not a RIFF/WAVE file"),
        "wrong WAVE magic": (pcm[:8] + b"AVI " + pcm[12:], "audio: not a RIFF/WAVE file"),
        "not audio": (b"<html><body>not found</body></html>", "audio: not a RIFF/WAVE file"),
        "no fmt chunk": (pcm[:fmt_at] + b"junk" + pcm[fmt_at + 4 :], "audio: WAV file has no fmt chunk"),
        "no data chunk": (pcm[:data_at] + b"dat2" + pcm[data_at + 4 :], "audio: WAV file has no data chunk"),
        "short fmt chunk": (_short_fmt(pcm), "audio: WAV fmt chunk is too short or truncated (12 bytes)"),
        "format tag 85 (MP3)": (
            _fmt_field(pcm, 0, "<H", 85),
            "audio: unsupported WAV format tag 85 (MP3 in WAV); supported: PCM 8/16/24/32-bit",
        ),
        "format tag 2 (ADPCM)": (_fmt_field(pcm, 0, "<H", 2), "audio: unsupported WAV format tag 2 (Microsoft ADPCM)"),
        "extensible with an unknown GUID": (
            _fmt_field(wavex, 30, "<I", 0x12345678),
            "audio: unsupported WAVE_FORMAT_EXTENSIBLE subformat GUID",
        ),
        "extensible with subformat 85": (_fmt_field(wavex, 24, "<H", 85), "audio: unsupported WAV format tag 85"),
        "PCM 12-bit": (_fmt_field(pcm, 14, "<H", 12), "audio: unsupported PCM bit depth 12"),
        "float 16-bit": (
            _fmt_field(wav_bytes(np.zeros((50, 1)), 16000, "FLOAT"), 14, "<H", 16),
            "audio: unsupported IEEE float bit depth 16",
        ),
        "zero channels": (_fmt_field(pcm, 2, "<H", 0), "audio: WAV file declares zero channels"),
        "4 kHz": (
            wav_bytes(noise(100, 1), 4000),
            "audio: sample rate 4000 Hz is outside the supported range [8000, 192000] Hz",
        ),
        "384 kHz": (_fmt_field(pcm, 4, "<I", 384000), "audio: sample rate 384000 Hz is outside"),
        "truncated data": (
            pcm[:-100],
            "audio: WAV data chunk is truncated: it declares 400 bytes but the file holds 300",
        ),
        "zero frames": (patch(pcm[: data_at + 8], data_at + 4, "<I", 0), "audio: WAV file has no audio frames"),
        "less than one frame": (
            patch(pcm[: data_at + 11], data_at + 4, "<I", 3),
            "audio: WAV file has no audio frames",
        ),
        "NaN sample": (_float_with(float("nan")), "audio: WAV float samples contain NaN or infinity"),
        "infinite sample": (_float_with(float("-inf")), "audio: WAV float samples contain NaN or infinity"),
    }


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize("mode", DECODERS)
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_decode_wav_rejects_bad_input(case, mode):
    data, message = BAD_INPUTS[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        samples, rate = DECODERS[mode](tf.constant(data))
        samples.numpy(), rate.numpy()


def test_bad_inputs_are_built_right():
    """Only the edit breaks each bad input: the unedited files it comes from decode, and soundfile agrees
    that the edited ones are not valid audio."""
    pcm = wav_bytes(noise(100, 2, seed=3), 16000, "PCM_16")
    wavex = wav_bytes(noise(100, 2, seed=3), 16000, "PCM_16", "WAVEX")
    for data in (pcm, wavex, _float_with(0.5)):
        decode_wav(tf.constant(data))
    for case in ("wrong RIFF magic", "format tag 85 (MP3)", "zero channels", "no data chunk"):
        with pytest.raises(soundfile.LibsndfileError):
            soundfile.read(io.BytesIO(BAD_INPUTS[case][0]))


# --- resample ---------------------------------------------------------------------------------------

# Output samples this close to either end see the zero padding beyond the input: 96 zero crossings of
# the filter span 96 / 0.957 < 101 input samples, 202 output samples when upsampling from 8 kHz.
EDGE = 250
SINE_TOLERANCE = 5e-5  # of a 0.5 amplitude sine: -80 dB


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000, 192000, 44101])
def test_resample_sine_matches_analytic(rate):
    """A 1 kHz sine at `rate` becomes the 1 kHz sine at 16 kHz (44101 Hz: the path without shared phases)."""
    out = resample_graph(sine(1000, rate, 1.0), rate).numpy()
    assert out.shape == (16000,)
    expected = sine(1000, 16000, 1.0)
    np.testing.assert_allclose(out[EDGE:-EDGE], expected[EDGE:-EDGE], rtol=0, atol=SINE_TOLERANCE)


def test_resample_keeps_phase_over_long_clips():
    """Positions come from exact integer arithmetic, so a minute in, the sine is still in phase."""
    seconds = 60.0
    out = resample_graph(sine(1000, 22050, seconds), 22050).numpy()
    expected = sine(1000, 16000, seconds)
    np.testing.assert_allclose(out[-16000:-EDGE], expected[-16000:-EDGE], rtol=0, atol=SINE_TOLERANCE)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 192000, 37799])
@pytest.mark.parametrize("num_samples", [0, 1, 2, 3, 7, 100, 1001, 4567])
def test_resample_output_length_matches_soxr(rate, num_samples):
    """Length round(N * 16000 / rate), halves up, like soxr (ceil would differ when the fraction is < 1/2)."""
    x = np.random.RandomState(num_samples).uniform(-0.5, 0.5, num_samples).astype(np.float32)
    out = resample_graph(x, rate)
    assert out.shape == (len(soxr.resample(x, rate, 16000, quality="HQ")),)
    assert out.shape == (int(np.floor(num_samples * 16000 / rate + 0.5)),)


@pytest.mark.parametrize(
    "rate,frequency,min_attenuation_db",
    [(44100, 10000, 40.0), (48000, 12000, 40.0), (192000, 20000, 40.0), (44100, 8500, 60.0)],
)
def test_resample_attenuates_tones_above_the_output_nyquist(rate, frequency, min_attenuation_db):
    """Downsampling filters out what would alias (10 kHz would fold to 6 kHz)."""
    x = sine(frequency, rate, 1.0)
    out = resample_graph(x, rate).numpy()[EDGE:-EDGE]
    assert level_db(x) - level_db(out) > min_attenuation_db


@pytest.mark.parametrize("rate", [22050, 48000])
@pytest.mark.parametrize("frequency", [100, 3000, 7000, 7400])
def test_resample_passband_is_flat(rate, frequency):
    """Tones the log-mel frontend sees (up to 7.5 kHz) keep their level within 0.05 dB, as with soxr HQ."""
    x = sine(frequency, rate, 1.0)
    out = resample_graph(x, rate).numpy()[EDGE:-EDGE]
    assert abs(level_db(out) - level_db(x)) < 0.05


@pytest.mark.parametrize("rate", [22050, 44100])
def test_resample_transition_band_follows_soxr(rate):
    """From 7.5 to 7.95 kHz soxr HQ falls from -0.4 to -77 dB; the MFCC frontend looks up to 8 kHz, so the graph's
    filter follows it (within 2 dB), and a tone at 8.1 kHz is gone from both (> 110 dB down)."""
    for frequency in (7500, 7600, 7700, 7800, 7900, 7950):
        x = sine(frequency, rate, 1.0)
        ours = level_db(resample_graph(x, rate).numpy()[EDGE:-EDGE])
        reference = level_db(soxr.resample(x, rate, 16000, quality="HQ")[EDGE:-EDGE])
        assert abs(ours - reference) < 2.0, frequency
    x = sine(8100, rate, 1.0)
    assert level_db(x) - level_db(resample_graph(x, rate).numpy()[EDGE:-EDGE]) > 110


def test_resample_same_rate_returns_input_unchanged():
    x = np.random.RandomState(4).uniform(-1, 1, 12345).astype(np.float32)
    np.testing.assert_array_equal(resample_graph(x, 16000).numpy(), x)
    np.testing.assert_array_equal(resample(x, 48000, output_rate=48000).numpy(), x)


def test_resample_batch_matches_rows():
    x = np.random.RandomState(5).uniform(-1, 1, (3, 5000)).astype(np.float32)
    batch = resample(x, tf.constant(22050)).numpy()
    assert batch.shape == (3, len(soxr.resample(x[0], 22050, 16000, quality="HQ")))
    for row, expected in zip(x, batch):
        np.testing.assert_allclose(resample(row, tf.constant(22050)).numpy(), expected, rtol=0, atol=1e-6)


def test_resample_matches_soxr_on_music_like_signal():
    """Tones spread over the passband come out as soxr HQ makes them, edges included."""
    rate = 44100
    t = np.arange(2 * rate) / rate
    x = sum(0.1 * np.sin(2 * np.pi * f * t + f) for f in (55, 440, 1234, 3520, 6000, 7300)).astype(np.float32)
    expected = soxr.resample(x, rate, 16000, quality="HQ")
    out = resample_graph(x, rate).numpy()
    np.testing.assert_allclose(out[EDGE:-EDGE], expected[EDGE:-EDGE], rtol=0, atol=3e-4)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-2)  # the first and last samples too


def test_resample_rejects_non_positive_rate():
    with pytest.raises(tf.errors.InvalidArgumentError, match="audio: resample input rate must be positive"):
        resample_graph(np.zeros(10, np.float32), 0).numpy()


# --- wav_to_waveform --------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [2.5, 10.0, 12.3])
def test_wav_to_waveform_mirrors_load_audio(seconds):
    """Stereo 44.1 kHz in, mono 16 kHz out, padded at the end or cut to 10 s, like load_audio."""
    rate = 44100
    t = np.arange(int(rate * seconds)) / rate
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    right = 0.3 * np.sin(2 * np.pi * 2500 * t + 1.0)
    data = wav_bytes(np.stack([left, right], axis=1), rate, "PCM_24")

    expected = load_audio(data)
    out = wav_to_waveform_graph(tf.constant(data)).numpy()
    assert out.shape == expected.shape == (round(params.CLIP_SECONDS * params.SAMPLE_RATE),)
    # The two resamplers treat the jumps where the signal starts and stops slightly differently;
    # elsewhere they agree to -100 dB.
    signal_end = int(min(seconds, params.CLIP_SECONDS) * params.SAMPLE_RATE)
    away_from_jumps = np.r_[EDGE : signal_end - EDGE]
    np.testing.assert_allclose(out[away_from_jumps], expected[away_from_jumps], rtol=0, atol=2e-5)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-2)
    if seconds < params.CLIP_SECONDS:
        assert not np.any(out[signal_end:])  # zeros at the end


def test_wav_to_waveform_options():
    rate = 22050
    data = wav_bytes(np.tile(sine(300, rate, 1.7)[:, None], (1, 2)), rate, "FLOAT")
    whole = wav_to_waveform(data, duration=None)
    assert whole.shape == (round(1.7 * 16000),)
    np.testing.assert_allclose(whole.numpy(), load_audio(data, duration=None), rtol=0, atol=1e-3)
    short = wav_to_waveform(data, sample_rate=8000, duration=0.5)
    assert short.shape == (4000,)
    np.testing.assert_allclose(short.numpy(), load_audio(data, sample_rate=8000, duration=0.5), rtol=0, atol=1e-3)


def test_wav_to_waveform_clips_like_load_audio():
    """A full-scale square wave overshoots when resampled; both paths clip it to [-1, 1]."""
    rate = 48000
    square = np.where(np.sin(2 * np.pi * 1000 * np.arange(rate) / rate) >= 0, 1.0, -1.0)
    data = wav_bytes(square, rate, "FLOAT")
    assert np.abs(soxr.resample(square.astype(np.float32), rate, 16000, quality="HQ")).max() > 1.0
    out = wav_to_waveform_graph(tf.constant(data)).numpy()
    assert np.abs(out).max() == 1.0
    np.testing.assert_allclose(out, load_audio(data), rtol=0, atol=2e-2)


def test_wav_to_waveform_rejects_bad_input():
    data, message = BAD_INPUTS["truncated data"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        wav_to_waveform_graph(tf.constant(data)).numpy()


LOG_MEL_MAD_LIMIT = 0.05


def test_log_mel_of_real_clips_matches_load_audio(example_paths):
    """The acceptance test: on the 13 AudioCaps clips (22.05 kHz, mostly stereo), VGGish log-mel features
    from the serving path and from load_audio differ by at most 0.05 on average (natural-log units)."""
    frontend = LogMelFrontend()
    differences = {}
    for path in example_paths:
        served = wav_to_waveform_graph(tf.constant(path.read_bytes()))
        loaded = load_audio(path)
        features = frontend(tf.stack([served, tf.constant(loaded)])).numpy()
        assert features.shape[1] > 0
        differences[path.name] = float(np.mean(np.abs(features[0] - features[1])))
    print("log-mel mean absolute differences:", {name: round(mad, 6) for name, mad in differences.items()})
    assert len(differences) == 13
    assert all(mad <= LOG_MEL_MAD_LIMIT for mad in differences.values()), differences


# --- export -----------------------------------------------------------------------------------------


class _ServingAudio(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def waveform(self, contents):
        return wav_to_waveform(contents)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)])
    def resample(self, waveform, rate):
        return resample(waveform, rate)


def test_saved_model_holds_only_core_ops(tmp_path):
    module = _ServingAudio()
    tf.saved_model.save(module, str(tmp_path))

    op_types = saved_model_op_types(tmp_path)
    assert {"Substr", "DecodeRaw", "GatherV2", "Assert"} <= op_types  # the walk found the real graph
    assert not non_core_ops(op_types)

    # And the exported graph serves: same waveform as the eager function, same errors.
    loaded = tf.saved_model.load(str(tmp_path))
    rate = 44100
    data = wav_bytes(np.stack([sine(500, rate, 1.5), sine(900, rate, 1.5)], axis=1), rate, "PCM_16", "WAVEX")
    np.testing.assert_allclose(loaded.waveform(tf.constant(data)).numpy(), wav_to_waveform(data).numpy(), atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape("audio: not a RIFF/WAVE file")):
        loaded.waveform(tf.constant(b"ID3\x04 not a wav")).numpy()
