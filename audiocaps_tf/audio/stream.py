"""Audio of any length as mono blocks at the model's rate, in bounded memory: `open_audio_stream`.

The steps are `load_audio`'s (channels averaged, `audio.resampling`, clipping to [-1, 1]) applied block by block.
Its `ResampleStream` gives the samples of resampling the whole file at once, so a stream and `load_audio` see the
same audio. Files libsndfile cannot read are decoded by ffmpeg into a temporary WAV on disk, then streamed.

A source damaged part-way (a truncated WAV or Ogg file, corrupt FLAC or MP3 data, NaN samples) yields its blocks
up to the damage, then raises `AudioError` naming the file and the time at which its audio stops.
"""

import contextlib

import numpy as np
import soundfile

from audiocaps_tf.audio.loading import (
    _UNKNOWN_FRAME_COUNT,
    SoundfileCannotOpen,
    allowed_shortfall,
    check_sample_rate,
    ffmpeg_wav,
    required_ffmpeg,
    resolve_source,
    truncation,
)
from audiocaps_tf.audio.resampling import ResampleStream
from audiocaps_tf.params import SAMPLE_RATE

__all__ = ["AudioStream", "open_audio_stream", "BLOCK_SECONDS"]

BLOCK_SECONDS = 10.0  # of source audio per read


class AudioStream:
    """One open audio source: `label`, `native_rate`, `channels`, `seconds` (its declared length) and `blocks`."""

    def __init__(self, audio_source, sound_file, sample_rate, truncation_cause):
        self.label = audio_source.label
        self.native_rate = sound_file.samplerate
        self.channels = sound_file.channels
        self.sample_rate = sample_rate
        self.seconds = sound_file.frames / self.native_rate
        self._source = audio_source
        self._file = sound_file
        self._truncation_cause = truncation_cause

    def _error(self, frames_read, cause):
        return self._source.error(f"{cause}; its audio stops at {frames_read / self.native_rate:.2f} s")

    def blocks(self, block_seconds=BLOCK_SECONDS):
        """float32 mono blocks in [-1, 1] at `sample_rate`, in order, about `block_seconds` of audio each; their
        concatenation is `load_audio(source, sample_rate, duration=None)`. AudioError at damage (module doc)."""
        sound_file = self._file
        dtype = "float64" if sound_file.subtype == "DOUBLE" else "float32"
        resampler = None
        if self.native_rate != self.sample_rate:
            resampler = ResampleStream(self.native_rate, self.sample_rate)
        block_frames = max(1, round(block_seconds * self.native_rate))
        frames_read = 0
        while True:
            try:
                samples = sound_file.read(block_frames, dtype=dtype, always_2d=True)
            except soundfile.LibsndfileError as err:
                raise self._error(frames_read, f"corrupt or truncated {sound_file.format} data "
                                                f"({err.error_string})") from err
            if not len(samples):
                break
            finite = np.isfinite(samples).all(axis=1)
            if not finite.all():
                raise self._error(frames_read + int(np.argmin(finite)), "the audio holds NaN or infinite samples")
            frames_read += len(samples)
            mono = samples.mean(axis=1)
            if resampler is not None:
                mono = resampler.resample_chunk(mono)
            if len(mono):
                yield np.clip(mono.astype(np.float32), -1.0, 1.0)
        if frames_read == 0:
            raise self._source.error("the file holds no audio samples")
        if self._truncation_cause:
            raise self._error(frames_read, f"truncated file: {self._truncation_cause}")
        declared = sound_file.frames
        if frames_read < declared - allowed_shortfall(sound_file.format, self.native_rate, declared):
            raise self._error(frames_read, f"truncated or corrupt {sound_file.format} file: it declares "
                                           f"{declared} frames but only {frames_read} could be decoded")
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                yield np.clip(tail.astype(np.float32), -1.0, 1.0)


def _open_sound_file(audio_source, stack):
    """A soundfile.SoundFile over the source, closed with `stack`; SoundfileCannotOpen when libsndfile cannot."""
    stream = stack.enter_context(audio_source.open_binary())
    try:
        sound_file = stack.enter_context(soundfile.SoundFile(stream))
    except soundfile.LibsndfileError as err:
        raise SoundfileCannotOpen(err.error_string) from err
    if sound_file.frames >= _UNKNOWN_FRAME_COUNT:
        raise SoundfileCannotOpen("the stream does not declare its length")
    return sound_file


@contextlib.contextmanager
def open_audio_stream(source, sample_rate=SAMPLE_RATE):
    """Opens `source` (a path, bytes or a binary file object, as `load_audio` takes) as an `AudioStream`.

    A path is read from disk as it is consumed, never whole. Raises AudioError when the source cannot be opened.
    """
    audio_source = resolve_source(source)
    truncation_cause = truncation(audio_source)  # reported once the audio before the damage is out
    with contextlib.ExitStack() as stack:
        try:
            sound_file = _open_sound_file(audio_source, stack)
        except SoundfileCannotOpen as cannot_open:
            ffmpeg = required_ffmpeg(audio_source, cannot_open)
            decoded = stack.enter_context(ffmpeg_wav(audio_source, ffmpeg, cannot_open.reason))
            try:
                sound_file = stack.enter_context(soundfile.SoundFile(decoded))
            except soundfile.LibsndfileError as err:
                raise audio_source.error(f"ffmpeg's output could not be read ({err.error_string})") from err
        check_sample_rate(audio_source, sound_file.samplerate)
        yield AudioStream(audio_source, sound_file, sample_rate, truncation_cause)
