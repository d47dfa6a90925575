"""load_audio: every supported format, source kind and sample rate, and every kind of bad input.

All test audio is generated here (soundfile, and the ffmpeg of imageio-ffmpeg for m4a / webm), so each check
compares against a known sine rather than a stored result.
"""

import io
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import soundfile
import soxr

from audiocaps_tf.audio import loading
from audiocaps_tf.audio.loading import AudioError, load_audio
from audiocaps_tf.params import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

RATE = 16000
FREQUENCY = 440.0
AMPLITUDE = 0.5


def sine(rate, seconds, frequency=FREQUENCY, amplitude=AMPLITUDE):
    """The analytic test tone, sampled at `rate` for `seconds`."""
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(round(rate * seconds)) / rate)


def write(path, samples, rate, **kwargs):
    soundfile.write(path, samples, rate, **kwargs)
    return path


def middle(x, rate=RATE, margin_seconds=0.05):
    """Drops the edges, where resamplers and lossy codecs ramp in and out."""
    margin = round(margin_seconds * rate)
    return x[margin:-margin]


def correlation(a, b):
    return np.corrcoef(a, b)[0, 1]


@pytest.fixture(scope="session")
def ffmpeg():
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(ffmpeg, *args):
    subprocess.run([ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="session")
def ffmpeg_files(ffmpeg, tmp_path_factory):
    """A 1 s, 44.1 kHz sine as AAC in m4a and Opus in webm, plus a video-only mp4 (no audio stream)."""
    folder = tmp_path_factory.mktemp("ffmpeg")
    source = write(folder / "source.wav", sine(44100, 1.0), 44100, subtype="PCM_16")
    files = {"wav": source}
    for name, codec_args in [("m4a", ["-c:a", "aac", "-movflags", "+faststart"]), ("webm", ["-c:a", "libopus"])]:
        files[name] = folder / f"sine.{name}"
        run_ffmpeg(ffmpeg, "-i", source, *codec_args, files[name])
    files["video_only"] = folder / "video_only.mp4"
    run_ffmpeg(ffmpeg, "-f", "lavfi", "-i", "testsrc=duration=0.2:size=64x64", "-c:v", "mpeg4", files["video_only"])
    return files


@pytest.fixture
def no_ffmpeg(monkeypatch):
    monkeypatch.setattr(loading, "find_ffmpeg", lambda: None)


# --- formats -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subtype, tolerance",
    [
        ("PCM_U8", 2**-7),  # one quantisation step of each bit depth
        ("PCM_16", 2**-15),
        ("PCM_24", 2**-23),
        ("PCM_32", 1e-7),  # read as float32: float32 rounding of values up to 0.5
        ("FLOAT", 1e-7),
        ("DOUBLE", 1e-7),
    ],
)
def test_wav_subtypes_give_the_sine_scaled_like_soundfile(tmp_path, subtype, tolerance):
    expected = sine(RATE, 0.5)
    path = write(tmp_path / f"{subtype}.wav", expected, RATE, subtype=subtype)
    waveform = load_audio(path, duration=None)
    assert waveform.dtype == np.float32
    assert waveform.shape == expected.shape
    np.testing.assert_allclose(waveform, expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize(
    "extension, kwargs, tolerance",
    [
        ("flac", {"subtype": "PCM_16"}, 2**-15),  # lossless
        ("ogg", {"subtype": "VORBIS"}, 0.05),  # lossy: compare loosely, and by correlation
        ("mp3", {"subtype": "MPEG_LAYER_III"}, 0.05),
        ("opus", {"format": "OGG", "subtype": "OPUS"}, 0.05),
    ],
)
def test_soundfile_formats(tmp_path, extension, kwargs, tolerance):
    if kwargs["subtype"] not in soundfile.available_subtypes(kwargs.get("format", extension.upper())):
        pytest.skip(f"this libsndfile cannot write {kwargs['subtype']}")
    expected = sine(RATE, 1.0)
    path = write(tmp_path / f"sine.{extension}", expected, RATE, **kwargs)
    waveform = load_audio(path, duration=None)
    assert waveform.dtype == np.float32
    assert len(waveform) == len(expected)
    assert correlation(middle(waveform), middle(expected)) > 0.99
    np.testing.assert_allclose(middle(waveform), middle(expected), rtol=0, atol=tolerance)


@pytest.mark.parametrize("extension", ["m4a", "webm"])
def test_ffmpeg_formats_match_the_source_sine(ffmpeg_files, extension):
    waveform = load_audio(ffmpeg_files[extension], duration=None)
    expected = sine(RATE, 1.0)
    assert waveform.dtype == np.float32
    assert abs(len(waveform) - len(expected)) <= RATE // 100  # codecs round to whole frames
    length = min(len(waveform), len(expected))
    assert correlation(middle(waveform[:length]), middle(expected[:length])) > 0.99
    np.testing.assert_allclose(middle(waveform[:length]), middle(expected[:length]), rtol=0, atol=0.05)


def test_ffmpeg_formats_without_ffmpeg_explain_how_to_install_it(ffmpeg_files, no_ffmpeg):
    path = ffmpeg_files["m4a"]
    with pytest.raises(AudioError) as error:
        load_audio(path)
    message = str(error.value)
    assert str(path) in message
    assert "Format not recognised" in message  # soundfile's own reason
    for hint in ["apt-get install ffmpeg", "conda install ffmpeg", 'pip install "audiocaps-tf[ffmpeg]"', "m4a"]:
        assert hint in message
    assert isinstance(error.value.__cause__, soundfile.LibsndfileError)


def test_find_ffmpeg_prefers_the_env_var_then_path_then_imageio(monkeypatch, ffmpeg):
    monkeypatch.setenv(loading.FFMPEG_ENV_VAR, "/opt/custom/ffmpeg")
    monkeypatch.setattr(loading.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert loading.find_ffmpeg() == "/opt/custom/ffmpeg"
    monkeypatch.delenv(loading.FFMPEG_ENV_VAR)
    assert loading.find_ffmpeg() == "/usr/bin/ffmpeg"
    monkeypatch.setattr(loading.shutil, "which", lambda name: None)
    assert loading.find_ffmpeg() == ffmpeg
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # makes the import fail
    assert loading.find_ffmpeg() is None


def test_a_broken_ffmpeg_env_var_is_reported(ffmpeg_files, monkeypatch, tmp_path):
    missing_binary = tmp_path / "no-such-ffmpeg"
    monkeypatch.setenv(loading.FFMPEG_ENV_VAR, str(missing_binary))
    with pytest.raises(AudioError, match="could not be run") as error:
        load_audio(ffmpeg_files["webm"])
    assert str(missing_binary) in str(error.value)
    assert isinstance(error.value.__cause__, OSError)


# --- sources -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wav", "m4a"])
def test_path_str_bytes_and_file_objects_give_identical_results(ffmpeg_files, kind, monkeypatch, tmp_path):
    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    path = ffmpeg_files[kind]
    reference = load_audio(path)
    with open(path, "rb") as file_object:
        results = [load_audio(str(path)), load_audio(path.read_bytes()), load_audio(file_object)]
    results.append(load_audio(io.BytesIO(path.read_bytes())))
    assert np.abs(reference).max() > 0.1
    for result in results:
        np.testing.assert_array_equal(result, reference)
    assert list(temp_root.iterdir()) == []  # ffmpeg's temporary files are gone


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = sine(RATE, 0.5, 440.0, 0.6), sine(RATE, 0.5, 660.0, 0.2)
    path = write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, duration=None), (left + right) / 2, rtol=0, atol=1e-7)


def test_more_channels_are_averaged_too(tmp_path):
    channels = [sine(RATE, 0.25, f, a) for f, a in [(300.0, 0.1), (500.0, 0.4), (700.0, 0.3), (900.0, 0.2)]]
    path = write(tmp_path / "quad.wav", np.stack(channels, axis=1), RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, duration=None), np.mean(channels, axis=0), rtol=0, atol=1e-7)


# --- resampling, length, range -------------------------------------------------------------------------------


@pytest.mark.parametrize("input_rate", [8000, 22050, 44100, 48000, 96000, 192000])
def test_resampling_keeps_frequency_and_amplitude(tmp_path, input_rate):
    path = write(tmp_path / f"{input_rate}.wav", sine(input_rate, 1.0), input_rate, subtype="FLOAT")
    waveform = load_audio(path, duration=None)
    expected = sine(RATE, 1.0)
    assert len(waveform) == len(expected)
    np.testing.assert_allclose(middle(waveform), middle(expected), rtol=0, atol=1e-3)


def test_resampling_to_another_output_rate(tmp_path):
    path = write(tmp_path / "in.wav", sine(44100, 1.0), 44100, subtype="FLOAT")
    waveform = load_audio(path, sample_rate=22050, duration=0.5)
    assert len(waveform) == 11025
    np.testing.assert_allclose(middle(waveform, 22050), middle(sine(22050, 0.5), 22050), rtol=0, atol=1e-3)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # audioread's imports, pulled in by librosa
def test_resampling_matches_librosa_load(example_paths):
    librosa = pytest.importorskip("librosa")
    path = example_paths[0]
    expected, _ = librosa.load(path, sr=RATE, mono=True)  # res_type 'soxr_hq', which our filter was fitted to
    waveform = load_audio(path, duration=None)
    # Near soxr HQ, not equal: the filters differ in the top 0.6 kHz band (transition), a few 1e-4 at most.
    np.testing.assert_allclose(waveform, np.clip(expected, -1, 1), rtol=0, atol=1e-3)
    assert np.abs(waveform - np.clip(expected, -1, 1)).mean() < 2e-5


@pytest.mark.parametrize("input_rate", [MIN_SAMPLE_RATE - 1, 4000, MAX_SAMPLE_RATE + 1, 384000])
def test_sample_rates_outside_the_supported_range_are_rejected(tmp_path, input_rate):
    path = write(tmp_path / "odd_rate.wav", sine(input_rate, 0.05), input_rate, subtype="PCM_16")
    with pytest.raises(AudioError) as error:
        load_audio(path)
    message = str(error.value)
    assert str(path) in message and str(input_rate) in message
    assert f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE}" in message


def test_short_clips_are_zero_padded_at_the_end(tmp_path):
    expected = sine(RATE, 0.5)
    path = write(tmp_path / "short.wav", expected, RATE, subtype="FLOAT")
    waveform = load_audio(path, duration=1.0)
    assert waveform.shape == (RATE,)
    np.testing.assert_allclose(waveform[: len(expected)], expected, rtol=0, atol=1e-7)
    assert np.all(waveform[len(expected) :] == 0)


def test_long_clips_are_cut(tmp_path):
    expected = sine(RATE, 2.0)
    path = write(tmp_path / "long.wav", expected, RATE, subtype="FLOAT")
    for duration in [1.0, 0.75, 0.123456]:
        waveform = load_audio(path, duration=duration)
        assert waveform.shape == (round(duration * RATE),)
        np.testing.assert_allclose(waveform, expected[: len(waveform)], rtol=0, atol=1e-7)
    assert load_audio(path, duration=None).shape == expected.shape
    assert load_audio(path, duration=0).shape == (0,)


def test_output_is_float32_and_clipped_to_unit_range(tmp_path):
    # A full-scale square wave overshoots (Gibbs) when resampled; a float WAV may hold values beyond 1.
    rate = 44100
    square = np.where(np.sin(2 * np.pi * 100 * np.arange(rate // 2) / rate) >= 0, 1.0, -1.0)
    loud = np.concatenate([square, 1.5 * square])
    path = write(tmp_path / "loud.wav", loud, rate, subtype="FLOAT")
    assert np.abs(soxr.resample(square.astype(np.float32), rate, RATE, quality="HQ")).max() > 1  # overshoots
    waveform = load_audio(path, duration=None)
    assert waveform.dtype == np.float32
    assert waveform.min() == -1.0 and waveform.max() == 1.0


# --- bad input ---------------------------------------------------------------------------------------------


def _truncated(path, fraction=0.5):
    data = path.read_bytes()
    cut = path.with_name(f"cut_{path.name}")
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


def _sine_file(folder, name, **kwargs):
    return write(folder / name, sine(RATE, 1.0), RATE, **kwargs)


def _nan_wav(folder):
    samples = sine(RATE, 0.1)
    samples[100] = np.nan
    return write(folder / "nan.wav", samples, RATE, subtype="FLOAT")


def _inf_wav(folder):
    samples = sine(RATE, 0.1)
    samples[-1] = -np.inf
    return write(folder / "inf.wav", samples, RATE, subtype="DOUBLE")


def _riff_then_garbage(folder):
    path = folder / "garbage.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", 4004) + b"WAVE" + np.random.default_rng(0).bytes(4000))
    return path


def _header_then_garbage(folder):
    # A valid 1 s header, followed by far fewer bytes of noise than it declares.
    header = _sine_file(folder, "header_source.wav", subtype="PCM_16").read_bytes()[:44]
    path = folder / "header_garbage.wav"
    path.write_bytes(header + np.random.default_rng(1).bytes(1000))
    return path


def _header_only(folder):
    path = folder / "header_only.wav"
    path.write_bytes(_sine_file(folder, "header_source.wav", subtype="PCM_16").read_bytes()[:44])
    return path


def _file_with(folder, name, data):
    path = folder / name
    path.write_bytes(data)
    return path


def _text_file(folder):
    path = folder / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    return path


BAD_FILES = {
    "missing file": (lambda folder: folder / "absent.wav", "file not found"),
    "empty file": (lambda folder: _file_with(folder, "empty.wav", b""), "empty"),
    "directory": (lambda folder: folder, "directory"),
    "truncated WAV 16-bit": (lambda folder: _truncated(_sine_file(folder, "a.wav", subtype="PCM_16")), "truncated"),
    "truncated WAV float": (lambda folder: _truncated(_sine_file(folder, "a.wav", subtype="FLOAT"), 0.9), "truncated"),
    "truncated FLAC": (lambda folder: _truncated(_sine_file(folder, "a.flac")), "truncated"),
    "truncated OGG": (lambda folder: _truncated(_sine_file(folder, "a.ogg"), 0.95), "truncated"),
    "truncated MP3": (lambda folder: _truncated(_sine_file(folder, "a.mp3"), 0.7), "truncated"),
    "random bytes": (lambda folder: _file_with(folder, "r.wav", np.random.default_rng(3).bytes(3000)), "cannot read"),
    "RIFF header then garbage": (_riff_then_garbage, "data' chunk"),
    "WAV header then garbage": (_header_then_garbage, "truncated"),
    "header but no samples": (_header_only, "truncated"),
    "valid header, zero samples": (lambda folder: write(folder / "z.wav", np.zeros(0), RATE), "no audio samples"),
    "text file": (_text_file, "cannot read"),
    "NaN sample": (_nan_wav, "NaN or infinite"),
    "infinite sample": (_inf_wav, "NaN or infinite"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_raise_audio_error_naming_the_file(tmp_path, case):
    make, cause = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(AudioError) as error:
        load_audio(path)
    assert isinstance(error.value, ValueError)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert cause in message


@pytest.mark.parametrize("case", ["truncated WAV 16-bit", "truncated OGG", "random bytes", "NaN sample"])
def test_bad_bytes_and_file_objects_are_named_too(tmp_path, case):
    make, cause = BAD_FILES[case]
    data = make(tmp_path).read_bytes()
    with pytest.raises(AudioError, match=cause) as error:
        load_audio(data)
    assert str(error.value).startswith("<bytes>: ")
    with pytest.raises(AudioError, match=cause) as error:
        load_audio(io.BytesIO(data))
    assert str(error.value).startswith("<file object>: ")
    named = tmp_path / "named.bin"
    named.write_bytes(data)
    with open(named, "rb") as file_object, pytest.raises(AudioError, match=cause) as error:
        load_audio(file_object)
    assert str(error.value).startswith(f"{named}: ")


def test_empty_bytes_and_file_objects(tmp_path):
    with pytest.raises(AudioError, match=r"^<bytes>: .*0 bytes"):
        load_audio(b"")
    with pytest.raises(AudioError, match=r"^<file object>: .*0 bytes"):
        load_audio(io.BytesIO(b""))


def test_errors_chain_the_original_exception(tmp_path, no_ffmpeg):
    with pytest.raises(AudioError) as error:
        load_audio(tmp_path / "absent.wav")
    assert isinstance(error.value.__cause__, FileNotFoundError)
    with pytest.raises(AudioError) as error:
        load_audio(_truncated(_sine_file(tmp_path, "a.flac")))
    assert isinstance(error.value.__cause__, soundfile.LibsndfileError)
    with pytest.raises(AudioError, match="Format not recognised") as error:
        load_audio(_text_file(tmp_path))
    assert isinstance(error.value.__cause__, soundfile.LibsndfileError)


@pytest.mark.parametrize("case", ["truncated m4a", "truncated webm", "video without audio", "random bytes"])
def test_ffmpeg_failures_carry_ffmpegs_message(ffmpeg_files, tmp_path, monkeypatch, case):
    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    if case == "truncated m4a":
        path = _truncated(ffmpeg_files["m4a"], 0.7)
    elif case == "truncated webm":
        path = _truncated(ffmpeg_files["webm"], 0.7)
    elif case == "video without audio":
        path = ffmpeg_files["video_only"]
    else:
        path = tmp_path / "noise.m4a"
        path.write_bytes(np.random.default_rng(2).bytes(5000))
    for source, label in [(path, str(path)), (path.read_bytes(), "<bytes>")]:
        with pytest.raises(AudioError) as error:
            load_audio(source)
        message = str(error.value)
        assert message.startswith(f"{label}: ")
        assert "ffmpeg failed" in message and "[" in message.split("ffmpeg failed", 1)[1]  # ffmpeg's log lines
    assert list(temp_root.iterdir()) == []


def test_bad_arguments(tmp_path):
    path = _sine_file(tmp_path, "a.wav")
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(path, sample_rate=0)
    with pytest.raises(ValueError, match="duration"):
        load_audio(path, duration=-1.0)
    with pytest.raises(TypeError, match="source"):
        load_audio(12345)
    with open(path, encoding="latin-1") as text_file, pytest.raises(AudioError, match="binary mode"):
        load_audio(text_file)


# --- real clips ----------------------------------------------------------------------------------------------


def test_real_clips_give_ten_seconds_at_16k(example_paths):
    short_clip = next(p for p in example_paths if p.name == "31WGUPOYS5g_22.wav")
    for path in example_paths:
        info = soundfile.info(path)
        assert info.samplerate == 22050  # most are stereo, two are mono
        waveform = load_audio(path)
        assert waveform.shape == (160000,) and waveform.dtype == np.float32
        assert np.abs(waveform).max() <= 1.0
        assert np.abs(waveform).max() > 0.01  # real audio, not silence
        if path == short_clip:
            audio_length = round(info.frames * RATE / info.samplerate)
            assert audio_length < 160000 - RATE // 2  # 9.27 s
            assert np.all(waveform[audio_length:] == 0)
            assert np.any(waveform[audio_length - RATE // 10 : audio_length] != 0)
            np.testing.assert_array_equal(waveform[:audio_length], load_audio(path, duration=None))
