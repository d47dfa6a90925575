"""Audio of any length captioned window by window: the `Segment`s behind `Captioner.caption_segments` and `caption`.

    source -> open_audio_stream (blocks, 16 kHz mono) -> windows -> captioned `batch_size` windows at a time
           -> one Segment per window -> merge_segments (neighbouring windows with one caption become one segment)

Windows of several sources share batches (`caption_windows`), so a folder of short clips decodes as fast as before.
Times are seconds from the start of the source. A window's score is the decoder's length-normalised log-probability
of its caption; a merged segment's is the mean of its windows' scores.
"""

import collections
import contextlib

import numpy as np
import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.audio.resampling import resample
from audiocaps_tf.audio.stream import open_audio_stream
from audiocaps_tf.audio.windows import Window, windows

__all__ = ["Segment", "caption_windows", "merge_segments", "source_windows", "window_lengths", "MIN_WINDOW_SECONDS"]

Segment = collections.namedtuple("Segment", "start end caption score")

MIN_WINDOW_SECONDS = 1.0  # VGGish needs 0.975 s of audio for one example


def window_lengths(window=None, hop=None):
    """(window, hop) in samples at the model rate from seconds (None: the 10-s training clip; hop: the window)."""
    window = params.CLIP_SECONDS if window is None else float(window)
    hop = window if hop is None else float(hop)
    if not (np.isfinite(window) and window >= MIN_WINDOW_SECONDS):
        raise ValueError(f"window must be at least {MIN_WINDOW_SECONDS} s; got {window}")
    if not (np.isfinite(hop) and hop > 0):
        raise ValueError(f"hop must be a positive number of seconds; got {hop}")
    return round(window * params.SAMPLE_RATE), max(1, round(hop * params.SAMPLE_RATE))


@contextlib.contextmanager
def open_source(audio, sample_rate=None):
    """(seconds, blocks) of a path, bytes or file object (its own rate; `sample_rate` must be None), or of a
    waveform [N] or [N, channels] at `sample_rate` Hz, as 16 kHz mono float32 blocks (`load_audio`'s steps)."""
    if isinstance(audio, (str, bytes, bytearray, memoryview)) or hasattr(audio, "read") or hasattr(audio, "__fspath__"):
        if sample_rate is not None:
            raise ValueError("sample_rate is for waveforms; a file or its bytes carries its own rate")
        with open_audio_stream(audio) as stream:
            yield stream.seconds, stream.blocks()
        return
    if sample_rate is None:
        raise ValueError("a waveform needs its sample_rate (e.g. caption_segments(waveform, sample_rate=44100))")
    waveform = np.asarray(audio, np.float32)
    if waveform.ndim == 2:
        waveform = waveform.mean(axis=1)
    if waveform.ndim != 1 or not len(waveform):
        raise ValueError(f"a waveform must be [N] or [N, channels] with N > 0; got shape {np.shape(audio)}")
    if not np.all(np.isfinite(waveform)):
        raise ValueError("the waveform holds NaN or infinite samples")
    if sample_rate != params.SAMPLE_RATE:
        waveform = resample(waveform, sample_rate, params.SAMPLE_RATE)
    yield len(waveform) / sample_rate, [np.clip(waveform.astype(np.float32), -1.0, 1.0)]


def source_windows(audio, window, hop, sample_rate=None, max_windows=None):
    """The source's length in seconds, then its `Window`s (lengths in samples, `window_lengths`), at most
    `max_windows` of them (None: all); the audio after the last one is never read."""
    with open_source(audio, sample_rate) as (seconds, blocks):
        yield seconds
        for count, item in enumerate(windows(blocks, window, hop), 1):
            yield item
            if max_windows is not None and count >= max_windows:
                return


def caption_windows(captioner, items, beam_size=None, no_repeat_ngram_size=None, batch_size=16):
    """`items`, (tag, value) pairs, with every `Window` value replaced by its (unmerged) `Segment`, in order;
    other values pass through.

    Decodes `batch_size` windows at a time, across tags (sources). When `items` raises, the windows before the
    error are captioned and yielded first.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    decode = captioner.decode_function(beam_size, None, no_repeat_ngram_size)
    pending, count = [], 0

    def flush():
        found = [value.samples for _, value in pending if isinstance(value, Window)]
        results = iter(())
        if found:
            outputs = tf.nest.map_structure(np.asarray, decode({"waveform": tf.constant(np.stack(found))}))
            results = iter(zip(captioner.captions_of(outputs), outputs["scores"].tolist()))
        for tag, value in pending:
            if isinstance(value, Window):
                caption, score = next(results)
                value = Segment(value.start / params.SAMPLE_RATE, value.end / params.SAMPLE_RATE, caption, score)
            yield tag, value
        pending.clear()

    try:
        for tag, value in items:
            pending.append((tag, value))
            count += isinstance(value, Window)
            if count == batch_size:
                yield from flush()
                count = 0
    except Exception:
        yield from flush()
        raise
    yield from flush()


def merge_segments(segments):
    """Joins runs of touching or overlapping segments with the same caption (score: their mean); when `segments`
    raises, the segment in progress is yielded first."""
    current, scores = None, []

    def finished():
        return current._replace(score=float(np.mean(scores)))

    try:
        for segment in segments:
            if current is not None and segment.caption == current.caption and segment.start <= current.end:
                current = current._replace(end=max(current.end, segment.end))
                scores.append(segment.score)
                continue
            if current is not None:
                yield finished()
            current, scores = segment, [segment.score]
    except Exception:
        if current is not None:
            yield finished()
        raise
    if current is not None:
        yield finished()
