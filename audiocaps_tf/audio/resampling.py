"""The package's one resampling definition, in NumPy: `resample` for whole clips, `ResampleStream` for blocks.

`audio.graph.resample` computes the same filter in core TensorFlow ops for the serving graph (which learns the
input rate only at run time) from the constants below, so training features, the `caption` command and the
SavedModel see the same samples (within float32 rounding, ~1e-6; tests/test_resampling.py holds them to 1e-4).

The filter: output sample n is the input at position t = n * input_rate / output_rate (exact in integers),
interpolated from the input samples within `ZERO_CROSSINGS` zero crossings of a sinc at cutoff
`ROLLOFF` * min(1, output_rate / input_rate) of the input Nyquist frequency (anti-aliasing when downsampling),
with a Kaiser window of beta `KAISER_BETA`, each output's taps normalised to sum to one (a constant stays
constant), samples beyond both ends counting as zeros. The output has round(N * output_rate / input_rate) samples,
halves rounded up. The constants were fitted to soxr "HQ" over the band the frontends look at (up to 8 kHz at
16 kHz): flat (< 0.01 dB) to 7.4 kHz, within 0.4 dB down to -25 dB (7.8 kHz), >= 120 dB down beyond 8 kHz.
(A gentler filter, -60 dB at 8 kHz, changed the top MFCC bands by several dB and 5 of 13 example captions.)
"""

import functools
import math

import numpy as np
import scipy.special

__all__ = ["ROLLOFF", "ZERO_CROSSINGS", "KAISER_BETA", "MAX_POLYPHASE_WEIGHTS", "output_length", "half_width",
           "resample", "ResampleStream"]

ROLLOFF = 0.957  # cutoff (-6 dB) as a fraction of the lower Nyquist frequency of the two rates
ZERO_CROSSINGS = 96  # of the sinc on each side of the centre (the window spans 96 / cutoff input samples)
KAISER_BETA = 13.5
# Largest polyphase kernel (float32 weights) built for a pair of rates; beyond it (rates whose ratio has a long
# period, such as 44101 Hz) the outputs are computed in blocks, each with its own taps.
MAX_POLYPHASE_WEIGHTS = 1 << 22
_BLOCK_TAPS = 1 << 18  # taps per block of outputs on the blockwise path (~1 MB of float32)


def output_length(num_in, input_rate, output_rate):
    """round(num_in * output_rate / input_rate), halves up, in exact integer arithmetic (soxr's length)."""
    return (2 * num_in * output_rate + input_rate) // (2 * input_rate)


def _cutoff(input_rate, output_rate):
    return ROLLOFF * min(output_rate / input_rate, 1.0)


def half_width(input_rate, output_rate):
    """Input samples on each side of an output sample's position that its taps reach."""
    return math.ceil(ZERO_CROSSINGS / _cutoff(input_rate, output_rate))


def _filter_weights(frac, offsets, cutoff):
    """float32 taps [outputs, taps]: output at input position i + frac, from the input samples at i + offsets."""
    u = cutoff * (offsets[np.newaxis, :] - frac[:, np.newaxis])  # in sinc zero crossings
    v = u / ZERO_CROSSINGS
    window = scipy.special.i0(KAISER_BETA * np.sqrt(np.maximum(1.0 - v * v, 0.0))) / scipy.special.i0(KAISER_BETA)
    taps = np.where(np.abs(v) < 1.0, np.sinc(u) * window, 0.0)
    return (taps / taps.sum(axis=1, keepdims=True)).astype(np.float32)


def _positions(n, input_rate, output_rate):
    """The whole input sample before output n and its fraction, exact for any length."""
    scaled = n * input_rate
    whole = scaled // output_rate
    return whole, (scaled - whole * output_rate) / output_rate


@functools.lru_cache(maxsize=16)
def _polyphase_kernel(input_rate, output_rate):
    """(kernel [width * step, phases] float32, step, phases), or None when it would exceed MAX_POLYPHASE_WEIGHTS.

    Output k * phases + p sits at input position k * step + whole[p] + frac[p], so each output frame k is the
    same linear map of the `width * step` zero-padded input samples from k * step: one matrix product.
    """
    common = math.gcd(input_rate, output_rate)
    phases, step = output_rate // common, input_rate // common
    reach = half_width(input_rate, output_rate)
    num_taps = 2 * reach + 1
    if phases * (2 * step + num_taps) > MAX_POLYPHASE_WEIGHTS:
        return None
    whole, frac = _positions(np.arange(phases), input_rate, output_rate)
    weights = _filter_weights(frac, np.arange(-reach, reach + 1), _cutoff(input_rate, output_rate))
    width = -(-(step + num_taps - 1) // step)  # input blocks under one output frame's taps
    kernel = np.zeros((width * step, phases), np.float32)
    rows = whole[:, np.newaxis] + np.arange(num_taps)[np.newaxis, :]
    kernel[rows, np.arange(phases)[:, np.newaxis]] = weights
    return kernel, step, phases


def _resample_polyphase(x, num_out, reach, kernel, step, phases):
    """Like a stride-1 convolution over blocks of `step` input samples: `width` matrix products, no copies."""
    num_frames = -(-num_out // phases)
    width = kernel.shape[0] // step
    padded = np.zeros((num_frames + width - 1) * step, np.float32)  # input sample i at padded[i + reach]
    kept = min(len(x), len(padded) - reach)
    padded[reach : reach + kept] = x[:kept]
    blocks = padded.reshape(-1, step)
    out = np.zeros((num_frames, phases), np.float32)
    for w in range(width):
        out += blocks[w : w + num_frames] @ kernel[w * step : (w + 1) * step]
    return out.reshape(-1)[:num_out]


def _resample_blockwise(x, num_out, reach, input_rate, output_rate):
    offsets = np.arange(-reach, reach + 1)
    cutoff = _cutoff(input_rate, output_rate)
    padded = np.pad(x, (reach, reach + 1))
    out = np.empty(num_out, np.float32)
    block = max(_BLOCK_TAPS // len(offsets), 1)
    for start in range(0, num_out, block):
        whole, frac = _positions(np.arange(start, min(start + block, num_out)), input_rate, output_rate)
        taps = padded[whole[:, np.newaxis] + offsets[np.newaxis, :] + reach]
        out[start : start + len(whole)] = np.einsum("ot,ot->o", taps, _filter_weights(frac, offsets, cutoff))
    return out


def resample(x, input_rate, output_rate):
    """float32 mono samples [N] at `input_rate` -> [output_length(N, ...)] at `output_rate` (module doc)."""
    input_rate, output_rate = int(input_rate), int(output_rate)
    if input_rate <= 0 or output_rate <= 0:
        raise ValueError(f"resample: rates must be positive, got {input_rate} and {output_rate}")
    x = np.asarray(x, np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample: samples must be one-dimensional, got shape {x.shape}")
    if input_rate == output_rate:
        return x.copy()
    num_out = output_length(len(x), input_rate, output_rate)
    if num_out == 0:
        return np.zeros(0, np.float32)
    reach = half_width(input_rate, output_rate)
    polyphase = _polyphase_kernel(input_rate, output_rate)
    if polyphase is None:
        return _resample_blockwise(x, num_out, reach, input_rate, output_rate)
    return _resample_polyphase(x, num_out, reach, *polyphase)


class ResampleStream:
    """`resample` over a signal given in consecutive chunks: the outputs, joined, are `resample` of the whole.

    Outputs are made up to the last input period (`step` samples, input_rate / gcd) whose taps the input so far
    covers; the input kept between calls is that period's taps' reach, so memory is bounded by the chunk size.
    """

    def __init__(self, input_rate, output_rate):
        self.input_rate, self.output_rate = int(input_rate), int(output_rate)
        common = math.gcd(self.input_rate, self.output_rate)
        self._step, self._phases = self.input_rate // common, self.output_rate // common
        reach = half_width(self.input_rate, self.output_rate)
        self._context = -(-(reach + 1) // self._step) * self._step  # whole periods, beyond the taps' reach
        self._buffer = np.zeros(0, np.float32)
        self._start = 0  # input index of _buffer[0]: a whole number of periods
        self._emitted = 0  # output samples returned so far
        self._finished = False

    def resample_chunk(self, x, last=False):
        """The next output samples for the next input chunk `x`; `last=True` flushes the end of the signal."""
        if self._finished:
            raise ValueError("ResampleStream: the stream has already been flushed with last=True")
        self._buffer = np.concatenate([self._buffer, np.asarray(x, np.float32)])
        total_in = self._start + len(self._buffer)
        if last:
            self._finished = True
            end_in, end_out = total_in, output_length(total_in, self.input_rate, self.output_rate)
        else:
            periods = max(total_in - self._context, 0) // self._step
            end_in, end_out = periods * self._step, periods * self._phases
        if end_out <= self._emitted:
            return np.zeros(0, np.float32)
        base = self._start // self._step * self._phases  # the output index of the buffer's first output
        local = resample(self._buffer[: end_in + self._context - self._start], self.input_rate, self.output_rate)
        out = local[self._emitted - base : end_out - base]
        self._emitted = end_out
        keep_from = max(end_in - self._context, self._start)
        self._buffer = self._buffer[keep_from - self._start :]
        self._start = keep_from
        return out
