"""Signal helpers of the demo synthesiser: float64 NumPy at 16 kHz (filters, envelopes, noise, pulses)."""

import functools

import numpy as np
import scipy.ndimage
import scipy.signal

from audiocaps_tf.params import SAMPLE_RATE

SR = SAMPLE_RATE
_TOP_HZ = 7500.0  # highest partial a harmonic source synthesises (below Nyquist)


@functools.lru_cache(maxsize=512)
def _sos(kind, low, high=None, order=2):
    nyquist = SR / 2
    if kind == "bandpass":
        wn = (max(low, 20.0) / nyquist, min(high, 7900.0) / nyquist)
    else:
        wn = min(max(low, 20.0), 7900.0) / nyquist
    return scipy.signal.butter(order, wn, btype=kind, output="sos")


def _lowpass(x, hz, order=2):
    return scipy.signal.sosfilt(_sos("lowpass", float(round(hz)), None, order), x)


def _highpass(x, hz, order=2):
    return scipy.signal.sosfilt(_sos("highpass", float(round(hz)), None, order), x)


def _bandpass(x, low, high, order=1):
    return scipy.signal.sosfilt(_sos("bandpass", float(round(low)), float(round(high)), order), x)


def _formants(x, formants, gains=(1.0, 0.5, 0.3)):
    """Parallel resonators: sum of band-passes (centre, bandwidth) weighted by `gains`."""
    out = np.zeros_like(x)
    for (centre, width), gain in zip(formants, gains):
        out += gain * _bandpass(x, centre - width / 2, centre + width / 2)
    return out


def _time(n):
    return np.arange(n) / SR


def _wander(rng, n, rate_hz, depth=1.0):
    """A smooth random curve around 0 (linear interpolation of uniform points `rate_hz` per second)."""
    points = max(2, int(n / SR * rate_hz) + 2)
    values = rng.uniform(-depth, depth, points)
    return np.interp(np.arange(n), np.linspace(0, n, points), values)


def _smooth(x, seconds):
    """Moving average over `seconds` (edges shrink): for envelopes and crossfade weights."""
    return scipy.ndimage.uniform_filter1d(x, max(1, int(seconds * SR)), mode="constant")


def _blit(f0, top_hz=_TOP_HZ):
    """Band-limited pulse train following the pitch track `f0` (Hz per sample): a flat spectrum of harmonics
    up to `top_hz`, aliasing-free while f0 stays below its maximum. Zero mean, unit-ish peak."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    harmonics = max(1, int(top_hz / max(float(np.max(f0)), 1.0)))
    half = np.sin(phase / 2)
    safe = np.where(np.abs(half) < 1e-6, 1.0, half)
    pulse = np.sin((harmonics + 0.5) * phase) / (2 * safe) - 0.5
    pulse = np.where(np.abs(half) < 1e-6, float(harmonics), pulse)
    return pulse / harmonics


def _harmonic_tone(f0, amplitudes):
    """Sum of the first partials of `f0` (per-sample Hz) with the given amplitudes."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    out = np.zeros_like(phase)
    for k, amplitude in enumerate(amplitudes, 1):
        out += amplitude * np.sin(k * phase) * (k * f0 < _TOP_HZ)
    return out


def _tilt(x, pole=0.9):
    """One-pole low-pass: the -6 dB/octave slope of voices and real resonators."""
    return scipy.signal.lfilter([1 - pole], [1, -pole], x)


def _pulses(n, times, amplitudes, kernel):
    """Copies of `kernel` starting at `times` (s) scaled by `amplitudes`, in an array of n samples."""
    train = np.zeros(n)
    idx = np.round(np.asarray(times) * SR).astype(int)
    keep = (idx >= 0) & (idx < n)
    np.add.at(train, idx[keep], np.asarray(amplitudes, dtype=float)[keep])
    return scipy.signal.oaconvolve(train, kernel)[:n]


def _poisson_times(rng, seconds, rate):
    count = rng.poisson(rate * seconds)
    return np.sort(rng.uniform(0, seconds, count))


def _decay(seconds, tau, n=None):
    n = int(seconds * SR) if n is None else n
    return np.exp(-_time(n) / tau)


def _damped(freq, tau, seconds, phase=0.0):
    t = _time(int(seconds * SR))
    return np.sin(2 * np.pi * freq * t + phase) * np.exp(-t / tau)


def _noise_burst(rng, seconds, tau):
    n = max(2, int(seconds * SR))
    return rng.standard_normal(n) * np.exp(-_time(n) / tau)


def _segments_envelope(n, segments, attack=0.01, release=0.02):
    """1 inside each (start, end) second interval, with linear attack/release ramps; 0 elsewhere."""
    env = np.zeros(n)
    for start, end in segments:
        a, b = int(start * SR), min(n, int(end * SR))
        if b <= a:
            continue
        length = b - a
        ramp_up = max(1, min(int(attack * SR), length // 2))
        ramp_down = max(1, min(int(release * SR), length // 2))
        seg = np.ones(length)
        seg[:ramp_up] = np.linspace(0, 1, ramp_up, endpoint=False)
        seg[length - ramp_down:] = np.linspace(1, 0, ramp_down)
        env[a:b] = np.maximum(env[a:b], seg)
    return env


def _unit_onsets(ev):
    return [i * ev.period for i in range(max(ev.count, 1))]


def _unit_length(ev):
    return ev.duration - (max(ev.count, 1) - 1) * ev.period

