"""Fixed-length windows over a stream of audio blocks: how a recording longer than a model's clip is captioned.

Windows start every `hop` samples. Every window is `window` samples long; the last one, when the audio goes on past
the end of the previous window, holds the rest zero-padded at its end (as `load_audio` pads a short clip), so a
file shorter than one window is one window, captioned as `caption` always captioned it. Memory holds at most one
window, one hop and one block, whatever the length of the audio.
"""

import collections

import numpy as np

__all__ = ["Window", "windows"]

# start and end: sample offsets in the audio (end: start + window, or the audio's end for the padded last window);
# samples: float32 [window].
Window = collections.namedtuple("Window", "start end samples")


def windows(blocks, window, hop):
    """The `Window`s over the concatenation of `blocks` (1-D float arrays), in order; `window`, `hop` in samples."""
    window, hop = int(window), int(hop)
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be at least one sample; got {window} and {hop}")
    buffer = np.zeros(0, np.float32)
    buffer_start = 0  # offset of buffer[0] in the audio
    start = 0  # of the next window
    covered = 0  # end of the last full window
    total = 0
    for block in blocks:
        buffer = np.concatenate([buffer, np.asarray(block, np.float32)])
        total += len(block)
        while start + window <= total:
            offset = start - buffer_start
            yield Window(start, start + window, buffer[offset : offset + window].copy())
            covered = start + window
            start += hop
        dropped = min(start - buffer_start, len(buffer))  # samples no later window reads
        buffer = buffer[dropped:]
        buffer_start += dropped
    if start < total and covered < total:
        rest = buffer[start - buffer_start :]
        yield Window(start, total, np.pad(rest, (0, window - len(rest))))
