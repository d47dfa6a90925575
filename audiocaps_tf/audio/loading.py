"""Audio files to the mono float32 waveforms every frontend expects.

`load_audio` reads WAV, FLAC, OGG and MP3 with soundfile (libsndfile), and m4a, mp4, webm, opus and anything
else libsndfile cannot open with ffmpeg when one is installed. Every format then goes through the same steps:
mean over channels, resampling (`audio.resampling`, the serving graph's filter too), clipping to [-1, 1] and padding or cutting to a fixed length.

Bad input never turns into silence: a missing, empty, truncated or corrupt file, or one holding NaN or
infinite samples, raises `AudioError` naming the file and the cause.
"""

import contextlib
import io
import os
import shutil
import struct
import subprocess
import tempfile

import numpy as np
import soundfile

from audiocaps_tf.audio.resampling import resample
from audiocaps_tf.params import CLIP_SECONDS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SAMPLE_RATE

FFMPEG_ENV_VAR = "AUDIOCAPS_FFMPEG"

FFMPEG_INSTALL_HINT = (
    "to read m4a/mp4/webm/opus files install ffmpeg (`apt-get install ffmpeg`, `conda install ffmpeg`, "
    'or `pip install "audiocaps-tf[ffmpeg]"`, which brings imageio-ffmpeg), '
    f"or set {FFMPEG_ENV_VAR} to the path of an ffmpeg binary"
)

# libsndfile reports this frame count when a stream does not declare its length (e.g. FLAC written to a pipe).
_UNKNOWN_FRAME_COUNT = 2**63 - 1
# An MP3 with a Xing/LAME header declares its exact length; without one libsndfile estimates the length from
# the file size and the first frame, and measured estimates run up to ~0.5 % + one frame above the samples
# actually decoded (CBR at 22.05/44.1 kHz, whose frames alternate in size). Allow one frame plus 1 %.
_MP3_LENGTH_ESTIMATE_SLACK = 0.01
# The largest Ogg page: 27-byte header, 255 lacing values, 255 segments of 255 bytes.
_MAX_OGG_PAGE_BYTES = 27 + 255 + 255 * 255
_OGG_END_OF_STREAM_FLAG = 0x04
# WAV writers that cannot seek back (pipes) leave the data size as 0 or 0xFFFFFFFF: "until end of file".
_WAV_UNKNOWN_DATA_SIZES = (0, 0xFFFFFFFF)
_FFMPEG_STDERR_TAIL_CHARS = 1000


class AudioError(ValueError):
    """An audio source that cannot be turned into a waveform; the message names the source and the cause."""


class _Source:
    """One audio input, kept either as a path on disk or as the bytes in memory, with a label for messages."""

    def __init__(self, label, path=None, data=None):
        self.label = label
        self.path = path
        self.data = data

    def open_binary(self):
        """A fresh binary file object over the whole source, for soundfile and the header checks."""
        return open(self.path, "rb") if self.path is not None else io.BytesIO(self.data)

    def error(self, cause):
        return AudioError(f"{self.label}: {cause}")


def find_ffmpeg():
    """Path of the ffmpeg binary used for formats libsndfile cannot read, or None when there is none.

    Looks, in order, at the AUDIOCAPS_FFMPEG environment variable, `ffmpeg` on PATH, and the static binary
    shipped by the optional imageio-ffmpeg package.
    """
    configured = os.environ.get(FFMPEG_ENV_VAR)
    if configured:
        return configured
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the package is installed but has no binary for this platform
        return None


def load_audio(source, sample_rate=SAMPLE_RATE, duration=CLIP_SECONDS):
    """Reads an audio file into a float32 mono waveform in [-1, 1] at `sample_rate`.

    Args:
        source: a path (str or os.PathLike), the file's `bytes`, or a binary file object (read to its end).
        sample_rate: output sample rate in Hz. Input files may be at any rate from 8 to 192 kHz.
        duration: output length in seconds; the waveform is zero-padded at the end or cut to exactly
            `round(duration * sample_rate)` samples, so every clip gives the frontends the same shape.
            None keeps the whole file.

    Samples are scaled the way soundfile does (int16 / 32768), channels are averaged, and the result is
    resampled by `audio.resampling.resample`, the filter the exported serving graph computes too (fitted to soxr
    "HQ", librosa's default, within 0.01 dB up to 7.4 kHz), so training, `caption` and serving see the same
    samples. Values are clipped to [-1, 1] after resampling, which can overshoot slightly.

    WAV, FLAC, OGG and MP3 are read with soundfile; other formats (m4a, mp4, webm, ...) are decoded by ffmpeg
    (see `find_ffmpeg`) to a temporary float WAV at the native rate, then take the same path.

    Returns:
        A 1-D float32 NumPy array.

    Raises:
        AudioError: (a ValueError) the source is missing, empty, truncated, corrupt, in an unsupported format,
            at a sample rate outside 8-192 kHz, or holds NaN or infinite samples.
    """
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    if duration is not None and not (np.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be None or a finite number of seconds >= 0, got {duration!r}")

    audio_source = resolve_source(source)
    cause = truncation(audio_source)
    if cause:
        raise audio_source.error(f"truncated file: {cause}")
    samples, native_rate = _decode(audio_source)
    return _to_model_waveform(samples, native_rate, audio_source, sample_rate, duration)


def load_clip(source, sample_rate=SAMPLE_RATE, max_seconds=None):
    """(waveform, seconds): `load_audio(source, sample_rate, duration=None)` cut to its first `max_seconds`
    (None: whole), and the length in seconds of the audio before the cut, so a caller can report the cut."""
    waveform = load_audio(source, sample_rate=sample_rate, duration=None)
    seconds = waveform.size / sample_rate
    if max_seconds is not None:
        waveform = waveform[: round(max_seconds * sample_rate)]
    return waveform, seconds


def resolve_source(source):
    """Checks that the source exists and is not empty, and wraps it as a `_Source`."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        audio_source = _Source("<bytes>", data=bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        audio_source = _Source(str(path), path=path)
        try:
            size = os.path.getsize(path)
        except FileNotFoundError as err:
            raise audio_source.error("file not found") from err
        except OSError as err:
            raise audio_source.error(f"cannot open the file ({err})") from err
        if os.path.isdir(path):
            raise audio_source.error("this is a directory, not an audio file")
        if size == 0:
            raise audio_source.error("the file is empty (0 bytes)")
        return audio_source
    elif hasattr(source, "read"):
        name = getattr(source, "name", None)
        label = os.fspath(name) if isinstance(name, (str, os.PathLike)) else "<file object>"
        try:
            data = source.read()
        except OSError as err:
            raise AudioError(f"{label}: cannot read the file object ({err})") from err
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise AudioError(f"{label}: the file object returned {type(data).__name__}, open it in binary mode ('rb')")
        audio_source = _Source(str(label), data=bytes(data))
    else:
        raise TypeError(f"source must be a path, bytes or a binary file object, got {type(source).__name__}")
    if not audio_source.data:
        raise audio_source.error("no audio data (0 bytes)")
    return audio_source


def truncation(audio_source):
    """Why a WAV or Ogg source is cut short (libsndfile and ffmpeg would decode it silently), or None.

    A WAV file whose data chunk is shorter than its header declares reads as a shorter clip, and an Ogg file
    cut after its last complete page reads as a shorter clip, so both would end in padded silence.
    """
    with audio_source.open_binary() as stream:
        magic = stream.read(12)
        stream.seek(0, io.SEEK_END)
        size = stream.tell()
        if magic[:4] == b"RIFF" and magic[8:12] == b"WAVE":
            return wav_truncation(stream, size)
        if magic[:4] == b"OggS":
            return ogg_truncation(stream, size)
    return None


def wav_truncation(stream, size):
    """Compares the size the RIFF 'data' chunk declares with the bytes that follow it; None when they agree."""
    position = 12
    while position + 8 <= size:
        stream.seek(position)
        chunk_id, chunk_size = struct.unpack("<4sI", stream.read(8))
        position += 8
        if chunk_id == b"data":
            present = size - position
            if chunk_size not in _WAV_UNKNOWN_DATA_SIZES and present < chunk_size:
                return f"the WAV header declares {chunk_size} bytes of audio data but only {present} are present"
            return None
        position += chunk_size + (chunk_size & 1)  # chunks are padded to an even size
    return None  # no data chunk: libsndfile rejects the file with its own message


def ogg_truncation(stream, size):
    """Checks that the file ends with a complete Ogg page flagged end-of-stream; None when it does.

    Scans every "OggS" capture pattern in the last page-sized window, so a pattern inside page data
    cannot hide the real last page.
    """
    window_start = max(0, size - _MAX_OGG_PAGE_BYTES)
    stream.seek(window_start)
    tail = stream.read()
    position = tail.rfind(b"OggS")
    while position >= 0:
        header_end = position + 27  # fixed header; its last byte counts the segments
        if header_end <= len(tail):
            header_flags, segment_count = tail[position + 5], tail[position + 26]
            segment_table_end = header_end + segment_count
            if segment_table_end <= len(tail):
                page_end = segment_table_end + sum(tail[header_end:segment_table_end])
                if page_end == len(tail):
                    if header_flags & _OGG_END_OF_STREAM_FLAG:
                        return None
                    return "the last Ogg page does not end the stream"
        position = tail.rfind(b"OggS", 0, position)
    return "the file ends inside an Ogg page"


class SoundfileCannotOpen(Exception):
    """libsndfile does not know the format (or its length); the caller may hand the file to ffmpeg."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _decode(audio_source):
    """Samples as a (frames, channels) float array and the native sample rate, via soundfile or ffmpeg."""
    try:
        return _decode_with_soundfile(audio_source)
    except SoundfileCannotOpen as cannot_open:
        return _decode_with_ffmpeg(audio_source, required_ffmpeg(audio_source, cannot_open), cannot_open.reason)


def required_ffmpeg(audio_source, cannot_open):
    """The ffmpeg binary for a source libsndfile cannot read (`SoundfileCannotOpen`); AudioError without one."""
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        raise audio_source.error(
            f"soundfile cannot read it ({cannot_open.reason}) and no ffmpeg was found; {FFMPEG_INSTALL_HINT}"
        ) from (cannot_open.__cause__ or cannot_open)
    return ffmpeg


def _decode_with_soundfile(audio_source):
    """Reads the whole file with soundfile and checks that it decoded as many frames as it declares."""
    with audio_source.open_binary() as stream:
        try:
            sound_file = soundfile.SoundFile(stream)
        except soundfile.LibsndfileError as err:
            raise SoundfileCannotOpen(err.error_string) from err
        with sound_file:
            declared_frames = sound_file.frames
            if declared_frames >= _UNKNOWN_FRAME_COUNT:
                raise SoundfileCannotOpen("the stream does not declare its length")
            dtype = "float64" if sound_file.subtype == "DOUBLE" else "float32"
            try:
                samples = sound_file.read(dtype=dtype, always_2d=True)
            except soundfile.LibsndfileError as err:
                raise audio_source.error(f"corrupt or truncated {sound_file.format} data ({err.error_string})") from err
            file_format, native_rate = sound_file.format, sound_file.samplerate

    if len(samples) < declared_frames - allowed_shortfall(file_format, native_rate, declared_frames):
        raise audio_source.error(
            f"truncated or corrupt {file_format} file: it declares {declared_frames} frames "
            f"but only {len(samples)} could be decoded"
        )
    return samples, native_rate


def allowed_shortfall(file_format, native_rate, declared_frames):
    """Frames a complete file of this format may decode short of the count libsndfile declares (MP3 only)."""
    if file_format != "MP3":
        return 0
    samples_per_mp3_frame = 1152 if native_rate >= 32000 else 576  # MPEG-1 vs MPEG-2/2.5 layer III
    return samples_per_mp3_frame + int(_MP3_LENGTH_ESTIMATE_SLACK * declared_frames)


def _decode_with_ffmpeg(audio_source, ffmpeg, soundfile_reason):
    """Decodes with ffmpeg (`ffmpeg_wav`) and reads the whole result back with soundfile."""
    with ffmpeg_wav(audio_source, ffmpeg, soundfile_reason) as decoded_path:
        try:
            with soundfile.SoundFile(decoded_path) as decoded:
                return decoded.read(dtype="float32", always_2d=True), decoded.samplerate
        except soundfile.LibsndfileError as err:
            raise audio_source.error(f"ffmpeg's output could not be read ({err.error_string})") from err


@contextlib.contextmanager
def ffmpeg_wav(audio_source, ffmpeg, soundfile_reason):
    """The path of a temporary float32 WAV that ffmpeg decoded the source into, at its native rate and channels;
    deleted on exit. `soundfile_reason` (why libsndfile could not read it) goes into the error messages.

    Any ffmpeg error message counts as a failure (-xerror stops at the first one), because ffmpeg otherwise
    keeps going past corrupt or missing data and would return a shortened clip.
    """
    with tempfile.TemporaryDirectory(prefix="audiocaps_tf_") as temp_dir:
        input_path = audio_source.path
        if input_path is None:
            input_path = os.path.join(temp_dir, "input")
            with open(input_path, "wb") as f:
                f.write(audio_source.data)
        decoded_path = os.path.join(temp_dir, "decoded.wav")
        command = [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror",
            "-i", input_path, "-vn", "-acodec", "pcm_f32le", "-f", "wav", "-y", decoded_path,
        ]  # fmt: skip
        try:
            finished = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True)
        except OSError as err:
            raise audio_source.error(
                f"soundfile cannot read it ({soundfile_reason}) and ffmpeg '{ffmpeg}' could not be run ({err})"
            ) from err
        stderr = finished.stderr.decode("utf-8", errors="replace").strip()
        if finished.returncode != 0 or stderr:
            raise audio_source.error(
                f"soundfile cannot read it ({soundfile_reason}) and ffmpeg failed "
                f"(exit code {finished.returncode}): {stderr[-_FFMPEG_STDERR_TAIL_CHARS:] or 'no message'}"
            )
        yield decoded_path


def check_sample_rate(audio_source, native_rate):
    """AudioError unless the source's rate is one the frontends accept (8-192 kHz)."""
    if not MIN_SAMPLE_RATE <= native_rate <= MAX_SAMPLE_RATE:
        raise audio_source.error(
            f"sample rate {native_rate} Hz is outside the supported range {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )


def _to_model_waveform(samples, native_rate, audio_source, sample_rate, duration):
    """Validates decoded samples, then averages channels, resamples, clips and fixes the length."""
    if len(samples) == 0:
        raise audio_source.error("the file holds no audio samples")
    check_sample_rate(audio_source, native_rate)
    if not np.all(np.isfinite(samples)):
        raise audio_source.error("the audio holds NaN or infinite samples")

    waveform = samples.mean(axis=1)
    if native_rate != sample_rate:
        waveform = resample(waveform, native_rate, sample_rate)
    waveform = np.clip(waveform.astype(np.float32), -1.0, 1.0)

    if duration is None:
        return waveform
    target_length = round(duration * sample_rate)
    if len(waveform) >= target_length:
        return waveform[:target_length]
    return np.pad(waveform, (0, target_length - len(waveform)))
