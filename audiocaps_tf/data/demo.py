"""Synthesise a captioned sound-scene dataset in the AudioCaps layout: no download, deterministic for a seed.

    python -m audiocaps_tf.data demo --out DIR [--clips 600] [--seed 0] [--workers N]

It writes DIR/audio/demoNNNNN_T.wav (10 s, 16 kHz, mono, 16-bit), DIR/{train,val,test}.csv (about 80/10/10;
one caption per train clip, five different ones per val and test clip, and a `labels` column) and DIR/demo.json
(the parameters). Each clip holds 1-3 events from 25 synthetic sources (engine, siren, car horn, dog, birds,
rain, wind, water, thunder, male and female speech, baby, bell, knocking, footsteps, applause, drill, clock,
cat, telephone, crickets, helicopter, whistling, typing, hammer), one after another ("followed by"),
overlapping ("while", "as") or over a background heard throughout, at varied loudness and distance ("in the
distance": quieter, low-passed and smeared by a reverberant tail), with counts for discrete events ("a dog
barks twice"). Captions follow the actual order of the events.

A directory that already holds the same demo dataset is left as it is; any other non-empty directory is
refused. An interrupted run resumes where it stopped.

In Python: `make_demo_dataset(out_dir, num_clips=600, seed=0, workers=None)`; `clip_specs` draws the clip
specifications, `describe` writes captions for one and `render` synthesises its audio.
"""

import csv
import dataclasses
import functools
import json
import multiprocessing
import os
import pathlib
import re
import sys

import numpy as np
import scipy.ndimage
import scipy.signal
import soundfile
import tqdm

from audiocaps_tf.data.layout import AUDIO_DIR, LABEL_SEPARATOR, SPLITS, read_splits, split_path
from audiocaps_tf.params import CLIP_SECONDS, SAMPLE_RATE

HELP = "synthesise a captioned demo dataset in the AudioCaps layout (no download)"

DEFAULT_CLIPS = 600
GENERATOR_VERSION = 1  # bump when a change alters the audio or captions written for a seed
PARAMETERS_FILE = "demo.json"
CAPTIONS_PER_CLIP = {"train": 1, "val": 5, "test": 5}
SPLIT_FRACTIONS = {"val": 0.1, "test": 0.1}  # the rest is train

SR = SAMPLE_RATE
CLIP_SAMPLES = int(round(CLIP_SECONDS * SR))
_TOP_HZ = 7500.0  # highest partial a harmonic source synthesises (below Nyquist)
_EVENT_PEAK = 0.6  # each event is scaled down to at most this peak before mixing
_CLIP_PEAK = 0.89  # the mix is scaled down to at most this peak (-1 dBFS): never clips
_NOISE_FLOOR_DB = -66.0  # a faint recording noise floor: no clip is digitally silent

# Random streams of one clip: np.random.default_rng([seed, clip index, stream, ...]).
_SPEC_STREAM, _RENDER_STREAM, _CAPTION_STREAM = 0, 1, 2
_SPLIT_STREAM = 3


class DemoError(RuntimeError):
    """The demo dataset cannot be written where asked (e.g. the directory holds something else)."""


# ---------------------------------------------------------------------------------------------------------------
# Clip specifications
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Event:
    """One sound in a clip. Times in seconds from the clip start.

    Discrete sources (`count` > 0) sound `count` units (barks, honks, strikes...) `period` s apart; `duration`
    runs from the first unit's onset to the end of the last. `gain_db` is the event's active level in dBFS
    (loudness and distance included); `distant` events are also low-passed and reverberant.
    """

    source: str
    onset: float
    duration: float
    count: int = 0
    period: float = 0.0
    variant: str = ""
    level: str = "normal"  # "loud", "normal" or "soft"
    distant: bool = False
    background: bool = False  # heard throughout the clip, under the other events
    gain_db: float = -20.0

    @property
    def offset(self):
        return self.onset + self.duration


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """Everything about one demo clip: its name, split, layout of events and the seed of its audio."""

    index: int
    seed: int
    youtube_id: str
    start_time: int
    split: str
    structure: str  # "single", "sequence", "overlap", "background" or "background_sequence"
    events: tuple

    @property
    def key(self):
        return f"{self.youtube_id}_{self.start_time}"

    @property
    def labels(self):
        """The sources' labels in order of onset (background first), without repeats."""
        return tuple(dict.fromkeys(SOURCES[e.source].label for e in self.events))


# ---------------------------------------------------------------------------------------------------------------
# Signal helpers (float64 NumPy, 16 kHz)
# ---------------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------------
# Sources: each renderer returns `n` samples of the event (any scale; levels are set when mixing)
# ---------------------------------------------------------------------------------------------------------------


def _render_engine(rng, ev, n):
    fire = rng.uniform(22, 36)  # idle firing rate of a four-stroke engine, Hz
    f = fire * (1 + 0.025 * _wander(rng, n, 2.0))
    cycles = np.cumsum(f) / SR
    fires = np.flatnonzero(np.diff(np.floor(cycles))) / SR
    cylinders = rng.uniform(0.6, 1.0, 4)
    amplitudes = cylinders[np.arange(len(fires)) % 4] * rng.uniform(0.85, 1.0, len(fires))
    body = rng.uniform(120, 260)
    kernel = (_damped(body, 0.012, 0.05, phase=rng.uniform(0, np.pi))
              + 1.5 * _lowpass(_noise_burst(rng, 0.05, 0.008), rng.uniform(900, 1500)))
    thumps = _pulses(n, fires, amplitudes, kernel)
    hum = _harmonic_tone(f, [0.3, 0.5, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.12, 0.1]) * 0.3
    rumble = _bandpass(rng.standard_normal(n), 80, 500, order=2) * 0.3
    return _lowpass(thumps + hum + rumble, rng.uniform(1500, 2500))


def _render_siren(rng, ev, n):
    t = _time(n)
    if ev.variant == "yelp":
        rate = rng.uniform(2.5, 4.0)
        sweep = (t * rate) % 1.0
        f = rng.uniform(650, 800) + rng.uniform(500, 700) * np.sin(np.pi / 2 * sweep)
    elif ev.variant == "hilo":
        low = rng.uniform(440, 560)
        step = rng.uniform(0.45, 0.65)
        f = np.where((t // step) % 2 == 0, low * 1.335, low)
        f = _smooth(f, 0.01)
    else:  # wail
        period = rng.uniform(2.5, 4.5)
        low, high = rng.uniform(550, 750), rng.uniform(1250, 1550)
        start = rng.uniform(0, 2 * np.pi)
        f = low + (high - low) * (0.5 - 0.5 * np.cos(2 * np.pi * t / period + start))
    f = f * (1 + 0.003 * _wander(rng, n, 8.0))
    tone = _harmonic_tone(f, [1.0, 0.45, 0.3, 0.15, 0.1])
    return tone * (1 + 0.08 * _wander(rng, n, 3.0))


def _render_car_horn(rng, ev, n):
    f1 = rng.uniform(360, 460)
    f2 = f1 * rng.choice([1.19, 1.26, 1.33])
    unit = _unit_length(ev)
    segments = []
    for onset in _unit_onsets(ev):
        segments.append((onset, onset + unit * rng.uniform(0.9, 1.0)))
    env = _segments_envelope(n, segments, attack=0.012, release=0.04)
    f1_track = np.full(n, f1) * (1 + 0.002 * _wander(rng, n, 5.0))
    tone = _tilt(_blit(f1_track) + 0.8 * _blit(f1_track * f2 / f1), 0.5)
    formants = [(rng.uniform(600, 900), 600), (rng.uniform(1800, 2600), 1200), (3200, 1500)]
    tone = _formants(tone, formants, (1.0, 0.8, 0.4))
    tone = np.tanh(1.5 * tone / (np.max(np.abs(tone)) + 1e-9))
    return _lowpass(tone, rng.uniform(3000, 4000), order=4) * env


def _render_dog(rng, ev, n):
    base = {"small": (650, 900), "large": (220, 330)}.get(ev.variant, (380, 560))
    bark = {"small": 0.11, "large": 0.24}.get(ev.variant, 0.17)
    f0 = np.full(n, 100.0)
    env = np.zeros(n)
    for onset in _unit_onsets(ev):
        length = bark * rng.uniform(0.8, 1.2)
        a, m = int(onset * SR), int(length * SR)
        m = min(m, n - a)
        if m <= 0:
            continue
        x = np.linspace(0, 1, m)
        peak = rng.uniform(*base)
        f0[a:a + m] = peak * (0.85 + 0.35 * np.sin(np.pi * np.minimum(x * 1.6, 1.0)) - 0.35 * x)
        env[a:a + m] = np.minimum(1.0, x * m / (0.006 * SR)) * np.exp(-3.5 * x) * (1 - x) ** 0.5
    f0 = np.maximum(f0, 80)
    voiced = _blit(f0) * (1 + 0.5 * np.sin(np.pi * np.cumsum(f0) / SR))  # subharmonic roughness
    voiced /= np.std(voiced[env > 0]) + 1e-9
    noise = rng.standard_normal(n) * 0.25
    formants = [(rng.uniform(500, 800), 500), (rng.uniform(1300, 1900), 900), (2800, 1400)]
    shaped = _formants(voiced + noise, formants, (1.0, 0.8, 0.35))
    return shaped * env


def _render_birds(rng, ev, n):
    out = np.zeros(n)
    seconds = n / SR
    species = 1 if ev.variant == "one" else int(rng.integers(2, 4))
    for _ in range(species):
        centre = rng.uniform(2500, 5500)
        length = rng.uniform(0.04, 0.14)
        sweep = rng.uniform(-0.5, 0.5)
        trill = rng.uniform(0, 40) if rng.random() < 0.4 else 0.0
        # Birds sing in phrases: bursts of chirps with silences between.
        t = rng.uniform(0, 0.8)
        while t < seconds - length:
            for _ in range(int(rng.integers(2, 7))):
                m = int(length * SR * rng.uniform(0.8, 1.2))
                a = int(t * SR)
                if a + m > n:
                    break
                x = np.linspace(0, 1, m)
                f = centre * rng.uniform(0.9, 1.1) * (1 + sweep * x)
                f *= 1 + 0.08 * np.sin(2 * np.pi * trill * x * m / SR)
                out[a:a + m] += np.sin(2 * np.pi * np.cumsum(f) / SR) * np.sin(np.pi * x) ** 2 * rng.uniform(0.5, 1.0)
                t += length * rng.uniform(1.3, 2.5)
            t += rng.uniform(0.4, 2.0) * (1.5 if ev.variant == "one" else 1.0)
    return out


def _render_rain(rng, ev, n):
    seconds = n / SR
    heavy, light = ev.variant == "heavy", ev.variant == "light"
    wash = _bandpass(rng.standard_normal(n), 400 if heavy else 900, 7000, order=2)
    wash *= 1.0 if heavy else (0.25 if light else 0.6)
    rate = 900 if heavy else (80 if light else 300)
    drops = np.zeros(n)
    for centre in rng.uniform(1200, 6500, 8):
        kernel = _damped(centre, rng.uniform(0.0006, 0.0015), 0.008, phase=rng.uniform(0, np.pi))
        times = _poisson_times(rng, seconds, rate / 8)
        drops += _pulses(n, times, rng.exponential(1.0, len(times)), kernel)
    return wash + drops * (1.6 if light else 1.0)


def _render_wind(rng, ev, n):
    strength = {"strong": 1.0, "gentle": 0.35}.get(ev.variant, 0.65)
    gust = np.exp(1.2 * strength * _wander(rng, n, 0.5) + 0.4 * _wander(rng, n, 1.5))
    low = _lowpass(rng.standard_normal(n), 250, order=2)
    mid = _lowpass(_bandpass(rng.standard_normal(n), 250, 1000, order=2), 1500, order=2)
    howl_f = rng.uniform(380, 750)
    howl = _bandpass(rng.standard_normal(n), howl_f * 0.93, howl_f * 1.07, order=2) * 4.0
    howl_env = np.clip(_wander(rng, n, 0.4) + 0.3, 0, None) * strength
    return (1.2 * low + 0.8 * mid) * gust + howl * howl_env * gust


def _render_water(rng, ev, n):
    seconds = n / SR
    rushing = ev.variant == "rushing"
    out = np.zeros(n)
    for _ in range(10):
        f = rng.uniform(500, 2200) if not rushing else rng.uniform(300, 1500)
        m = int(0.03 * SR)
        t = _time(m)
        tau = rng.uniform(0.004, 0.012)
        kernel = np.sin(2 * np.pi * np.cumsum(f * (1 + 2.5 * t / 0.03)) / SR) * np.exp(-t / tau)
        times = _poisson_times(rng, seconds, 70 if rushing else 25)
        out += _pulses(n, times, rng.uniform(0.3, 1.0, len(times)), kernel)
    flow = _bandpass(rng.standard_normal(n), 200, 3000, order=1)
    flow *= 1.0 + 0.8 * _lowpass(rng.standard_normal(n), 12)
    return out + flow * (0.35 if rushing else 0.08)


def _render_thunder(rng, ev, n):
    seconds = n / SR
    t = _time(n)
    rumble_src = _lowpass(rng.standard_normal(n), rng.uniform(250, 450), order=2)
    rumble_src += 0.5 * _lowpass(rng.standard_normal(n), 90, order=2) * 3
    env = np.zeros(n)
    for _ in range(int(rng.integers(3, 7))):
        start = rng.uniform(0, seconds * 0.5)
        env += rng.uniform(0.4, 1.0) * np.where(t >= start, np.exp(-(t - start) / rng.uniform(0.5, 1.6)), 0.0)
    env = _smooth(env, 0.08) * np.minimum(1, t / 0.15) * np.minimum(1, (seconds - t) / 0.4)
    out = rumble_src * env
    if ev.variant == "crack":
        crack = _highpass(rng.standard_normal(int(0.4 * SR)), 300) * _decay(0.4, 0.08)
        crack = crack * np.minimum(1, _time(len(crack)) / 0.004)
        out[: len(crack)] += 0.8 * crack / (np.std(crack) + 1e-9) * np.std(out)
    return out


_VOWELS = {  # (F1, F2, F3) in Hz for an adult male; scaled up for female voices
    "a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (300, 2250, 3000),
    "o": (570, 840, 2410), "u": (320, 900, 2250),
}


def _render_speech(rng, ev, n, female):
    seconds = n / SR
    base = rng.uniform(185, 245) if female else rng.uniform(95, 135)
    scale = 1.17 if female else 1.0
    syllables = []  # (start, length, vowel, stress)
    t = rng.uniform(0.0, 0.2)
    while t < seconds - 0.2:
        words = int(rng.integers(4, 13))
        phrase_start = t
        for _ in range(words):
            length = rng.uniform(0.11, 0.27)
            if t + length > seconds - 0.05:
                break
            syllables.append((t, length, rng.choice(list(_VOWELS)), rng.random() < 0.3, phrase_start))
            t += length + rng.uniform(0.0, 0.06)
        t += rng.uniform(0.25, 0.75)
    env = np.zeros(n)
    f0_points, f0_times = [], []
    vowel_weights = {v: np.zeros(n) for v in _VOWELS}
    consonants = np.zeros(n)
    for start, length, vowel, stress, phrase_start in syllables:
        a, m = int(start * SR), int(length * SR)
        m = min(m, n - a)
        x = np.linspace(0, 1, m)
        env[a:a + m] = np.sin(np.pi * x) ** 0.6 * (1.25 if stress else 1.0)
        vowel_weights[vowel][a:a + m] = 1.0
        declination = 1.1 - 0.25 * min(1.0, (start - phrase_start) / 2.5)
        f0_times.append(start + length / 2)
        f0_points.append(base * declination * (1.15 if stress else 1.0) * rng.uniform(0.95, 1.05))
        if rng.random() < 0.5:  # a fricative or plosive onset
            burst = int(rng.uniform(0.015, 0.06) * SR)
            b = max(0, a - burst // 2)
            consonants[b:b + burst] += rng.uniform(0.1, 0.35) * np.hanning(len(consonants[b:b + burst]))
    if not syllables:
        return np.zeros(n)
    f0 = np.interp(_time(n), f0_times, f0_points) * (1 + 0.03 * _wander(rng, n, 6.0))
    excitation = _tilt(_blit(f0), 0.7) + 0.02 * rng.standard_normal(n)
    voiced = np.zeros(n)
    for vowel, weight in vowel_weights.items():
        if not weight.any():
            continue
        f1, f2, f3 = (scale * f for f in _VOWELS[vowel])
        formants = [(f1, 90 * scale), (f2, 120 * scale), (f3, 180 * scale)]
        voiced += _smooth(weight, 0.03) * _formants(excitation, formants)
    hiss = _highpass(rng.standard_normal(n), rng.uniform(2500, 4500), order=2) * consonants
    voiced = voiced / (np.std(voiced) + 1e-9)
    return voiced * env + 0.6 * hiss


def _render_baby(rng, ev, n):
    seconds = n / SR
    base = rng.uniform(380, 520)
    f0 = np.full(n, base)
    env = np.zeros(n)
    t = rng.uniform(0, 0.2)
    while t < seconds - 0.3:
        length = min(rng.uniform(0.5, 1.4), seconds - t)
        a, m = int(t * SR), int(length * SR)
        x = np.linspace(0, 1, m)
        f0[a:a + m] = base * (0.95 + 0.3 * np.sin(np.pi * x) ** 0.7 - 0.1 * x) * rng.uniform(0.93, 1.07)
        env[a:a + m] = np.minimum(1, x * m / (0.06 * SR)) * np.minimum(1, (1 - x) * m / (0.12 * SR))
        t += length + rng.uniform(0.2, 0.55)
    vibrato = 1 + 0.02 * np.sin(2 * np.pi * rng.uniform(5, 8) * _time(n))
    f0 = _smooth(f0, 0.02) * vibrato * (1 + 0.01 * _wander(rng, n, 30))
    voiced = _blit(f0) + 0.05 * rng.standard_normal(n)
    formants = [(rng.uniform(1000, 1300), 400), (rng.uniform(2000, 2600), 600), (3800, 900)]
    return _formants(voiced, formants, (1.0, 0.7, 0.3)) * env


def _render_bell(rng, ev, n):
    fundamental = rng.uniform(250, 380) if ev.variant == "church" else rng.uniform(450, 800)
    ratios = np.array([0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011])
    ratios = ratios[ratios * fundamental < _TOP_HZ]
    amplitudes = np.array([0.5, 1.0, 0.7, 0.4, 0.8, 0.3, 0.25, 0.2])[: len(ratios)]
    taus = np.array([3.0, 2.2, 1.6, 1.2, 1.0, 0.7, 0.6, 0.5])[: len(ratios)] * (1.3 if ev.variant == "church" else 0.8)
    out = np.zeros(n)
    for onset in _unit_onsets(ev):
        a = int(onset * SR)
        m = n - a
        if m <= 0:
            continue
        t = _time(m)
        strike = rng.uniform(0.8, 1.0)
        for ratio, amplitude, tau in zip(ratios, amplitudes, taus):
            f = fundamental * ratio * (1 + 0.001 * rng.standard_normal())
            out[a:] += strike * amplitude * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t / tau)
        click = _noise_burst(rng, 0.01, 0.002)
        out[a:a + len(click)] += 0.5 * click[: max(0, min(len(click), m))]
    tail = min(n, int(0.05 * SR))
    out[n - tail:] *= np.linspace(1, 0, tail)
    return out


def _render_knocking(rng, ev, n):
    body = rng.uniform(110, 220)
    panel = rng.uniform(500, 1100)
    kernel = (_damped(body, rng.uniform(0.015, 0.03), 0.09) + 0.5 * _damped(panel, 0.008, 0.09)
              + 0.3 * _highpass(_noise_burst(rng, 0.09, 0.0015), 1500))
    times = np.array(_unit_onsets(ev)) + rng.uniform(-0.01, 0.01, max(ev.count, 1))
    times[0] = 0.0
    return _pulses(n, times, rng.uniform(0.75, 1.0, len(times)), kernel)


def _render_footsteps(rng, ev, n):
    seconds = n / SR
    step = rng.uniform(0.27, 0.34) if ev.variant == "run" else rng.uniform(0.45, 0.6)
    starts = np.arange(rng.uniform(0, 0.1), max(seconds - 0.1, 0.01), step)
    times = np.maximum(0.0, starts + rng.normal(0, 0.012, len(starts)))
    surface = rng.uniform(700, 2500)
    out = np.zeros(n)
    for foot in range(2):  # a heel-and-toe kernel per foot, slightly different
        heel = _lowpass(_noise_burst(rng, 0.05, 0.01), surface) + 0.6 * _damped(rng.uniform(70, 120), 0.015, 0.05)
        toe = 0.5 * _lowpass(_noise_burst(rng, 0.04, 0.008), surface * 1.3)
        gap = int(rng.uniform(0.04, 0.09) * SR)
        kernel = np.zeros(len(heel) + gap + len(toe))
        kernel[: len(heel)] += heel
        kernel[gap: gap + len(toe)] += toe
        steps = times[foot::2]
        out += _pulses(n, steps, rng.uniform(0.6, 1.0, len(steps)), kernel)
    return out


def _render_applause(rng, ev, n):
    seconds = n / SR
    small = ev.variant == "small"
    rate = rng.uniform(8, 20) if small else rng.uniform(60, 150)
    out = np.zeros(n)
    for _ in range(4):
        centre = rng.uniform(900, 2800)
        kernel = _bandpass(_noise_burst(rng, 0.02, rng.uniform(0.002, 0.004)), centre * 0.6, centre * 1.6)
        times = _poisson_times(rng, seconds, rate / 4)
        out += _pulses(n, times, rng.uniform(0.4, 1.0, len(times)), kernel)
    t = _time(n)
    fade_out = rng.uniform(0.4, 1.2)
    return out * np.minimum(1, t / 0.3) * np.clip((seconds - t) / fade_out, 0, 1)


def _render_drill(rng, ev, n):
    seconds = n / SR
    speed = rng.uniform(110, 200)
    if ev.variant == "bursts":
        segments, t = [], 0.0
        while t < seconds - 0.4:
            length = rng.uniform(0.7, 1.8)
            segments.append((t, min(seconds, t + length)))
            t += length + rng.uniform(0.3, 0.8)
    else:
        segments = [(0.0, seconds)]
    run = _segments_envelope(n, segments, attack=0.02, release=0.05)
    spin = _smooth(run, 0.2)  # motor spin-up and spin-down: pitch follows it
    f = speed * (0.45 + 0.55 * spin) * (1 + 0.004 * _wander(rng, n, 10))
    motor = _blit(f)
    motor /= np.std(motor) + 1e-9
    whine = np.sin(2 * np.pi * np.cumsum(f * rng.uniform(14, 22)) / SR) * 0.5
    grind = _bandpass(rng.standard_normal(n), 2000, 5000, order=2) * (0.5 + 0.5 * np.sin(2 * np.pi * np.cumsum(f) / SR))
    return (_tilt(motor, 0.6) * 2 + whine + 0.3 * grind) * np.maximum(run, 0.2 * spin)


def _render_clock(rng, ev, n):
    seconds = n / SR
    rate = rng.choice([1.0, 2.0, 2.5, 3.0])
    times = np.arange(rng.uniform(0, 1 / rate), seconds - 0.01, 1 / rate)
    tick_f, tock_f = rng.uniform(2500, 4200), rng.uniform(1500, 2400)
    out = np.zeros(n)
    for parity, f in ((0, tick_f), (1, tock_f)):
        kernel = _damped(f, 0.002, 0.015) + 0.3 * _highpass(_noise_burst(rng, 0.015, 0.0008), 2000)
        chosen = times[parity::2]
        out += _pulses(n, chosen, np.full(len(chosen), 1.0 if parity == 0 else 0.75), kernel)
    return out


def _render_cat(rng, ev, n):
    base = rng.uniform(480, 700)
    f0 = np.full(n, base)
    env = np.zeros(n)
    bright = np.zeros(n)  # weight of the "ee" formants against the "ow" ones
    unit = _unit_length(ev)
    for onset in _unit_onsets(ev):
        a, m = int(onset * SR), int(unit * rng.uniform(0.85, 1.0) * SR)
        m = min(m, n - a)
        x = np.linspace(0, 1, m)
        f0[a:a + m] = base * (0.85 + 0.4 * np.sin(np.pi * np.minimum(1, x * 1.3)) - 0.15 * x)
        env[a:a + m] = np.minimum(1, x * m / (0.05 * SR)) * np.minimum(1, (1 - x) * m / (0.15 * SR))
        bright[a:a + m] = np.clip(np.sin(np.pi * np.minimum(1, x * 1.6)), 0, 1)
    f0 = _smooth(f0, 0.01)
    voiced = _blit(f0) + 0.03 * rng.standard_normal(n)
    ee = _formants(voiced, [(900, 300), (2600, 500), (3800, 700)], (1.0, 0.9, 0.3))
    ow = _formants(voiced, [(700, 250), (1100, 300), (2800, 600)], (1.0, 0.7, 0.2))
    return (bright * ee + (1 - bright) * ow) * env


def _render_phone(rng, ev, n):
    clapper = rng.uniform(17, 22)  # the bell clapper rate of an old telephone ring
    f = rng.uniform(950, 1350)
    kernel = (_damped(f, 0.03, 0.1) + 0.6 * _damped(f * 1.52, 0.02, 0.1) + 0.3 * _damped(f * 2.7, 0.01, 0.1))
    unit = _unit_length(ev)
    times = np.concatenate([onset + np.arange(0, unit - 0.1, 1 / clapper) for onset in _unit_onsets(ev)])
    return _pulses(n, times, rng.uniform(0.85, 1.0, len(times)), kernel)


def _render_crickets(rng, ev, n):
    t = _time(n)
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, 5))):
        carrier = rng.uniform(3800, 5200)
        pulse_rate = rng.uniform(25, 45)
        pulses = int(rng.integers(3, 6))
        chirp_period = rng.uniform(0.35, 0.8)
        phase = (t + rng.uniform(0, chirp_period)) % chirp_period
        in_chirp = phase < pulses / pulse_rate
        pulse = np.sin(np.pi * ((phase * pulse_rate) % 1.0)) ** 2
        out += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * carrier * t) * pulse * in_chirp
    return out


def _render_helicopter(rng, ev, n):
    seconds = n / SR
    blade = rng.uniform(13, 22)
    times = np.arange(0, seconds, 1 / blade)
    kernel = _lowpass(_noise_burst(rng, 0.05, 0.012), 900) + 0.8 * _damped(rng.uniform(50, 90), 0.02, 0.05)
    slaps = _pulses(n, times, rng.uniform(0.8, 1.0, len(times)), kernel)
    turbine = 0.05 * np.sin(2 * np.pi * rng.uniform(1500, 2800) * _time(n))
    wash = _lowpass(rng.standard_normal(n), 1200) * 0.4
    out = slaps + turbine + wash
    if ev.variant == "pass":  # flies over: louder in the middle
        x = np.linspace(-1, 1, n) - rng.uniform(-0.3, 0.3)
        out = _lowpass(out, 3000) * (0.25 + 0.75 * np.exp(-3 * x**2))
    return out


def _render_whistle(rng, ev, n):
    seconds = n / SR
    key = rng.uniform(900, 1500)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    notes, times, t = [], [], rng.uniform(0, 0.1)
    while t < seconds:
        notes.append(key * 2 ** (scale[int(rng.integers(0, len(scale)))] / 12))
        times.append(t)
        t += rng.choice([0.15, 0.25, 0.25, 0.4, 0.6])
    f = np.array(notes)[np.searchsorted(times, _time(n), side="right") - 1]
    f = _smooth(f, 0.03) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * _time(n)))
    tone = np.sin(2 * np.pi * np.cumsum(f) / SR)
    breath = _bandpass(rng.standard_normal(n), key * 0.8, key * 2.2, order=2) * 0.03
    gaps = _segments_envelope(n, [(a, b - 0.03) for a, b in zip(times, times[1:] + [seconds])], 0.02, 0.02)
    return (tone + breath) * np.maximum(gaps, 0.3 * _smooth(gaps, 0.05))


def _render_typing(rng, ev, n):
    seconds = n / SR
    presses, t = [], rng.uniform(0, 0.2)
    while t < seconds - 0.15:
        for _ in range(int(rng.integers(3, 12))):
            presses.append(t)
            t += rng.uniform(0.08, 0.2)
        t += rng.uniform(0.25, 0.9)
    presses = np.array([p for p in presses if p < seconds - 0.15])
    out = np.zeros(n)
    for k in range(3):
        centre = rng.uniform(1800, 4500)
        press = _bandpass(_noise_burst(rng, 0.012, 0.0015), centre * 0.7, centre * 1.4)
        press += 0.4 * _damped(centre / 3, 0.002, 0.012)
        release = 0.4 * _bandpass(_noise_burst(rng, 0.01, 0.001), centre, centre * 1.5)
        gap = int(rng.uniform(0.06, 0.1) * SR)
        kernel = np.zeros(gap + len(release))
        kernel[: len(press)] += press
        kernel[gap:] += release
        chosen = presses[k::3]
        out += _pulses(n, chosen, rng.uniform(0.5, 1.0, len(chosen)), kernel)
    return out


def _render_hammer(rng, ev, n):
    partials = rng.uniform(1200, 1800) * np.array([1.0, 2.76, 5.4])
    kernel = sum(a * _damped(f, tau, 0.25, phase=rng.uniform(0, np.pi))
                 for f, a, tau in zip(partials, (1.0, 0.5, 0.3), (0.06, 0.03, 0.015)) if f < _TOP_HZ)
    kernel = kernel + 0.8 * _damped(rng.uniform(90, 160), 0.02, 0.25) + 0.4 * _noise_burst(rng, 0.25, 0.002)
    times = np.array(_unit_onsets(ev))
    return _pulses(n, times, rng.uniform(0.8, 1.0, len(times)), kernel)


# ---------------------------------------------------------------------------------------------------------------
# The source table: sound, timing and words
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Phrase:
    """One way to name a source: `subject finite` as a clause ("a dog barks"), `subject participle` as a noun
    phrase ("a dog barking"). No `finite`: the phrase is only a noun phrase ("applause"). `variants`: the
    source variants it is true of (None: all). `counts`: whether a count ("twice") may follow it."""

    subject: str
    finite: str = None
    participle: str = ""
    variants: tuple = None
    adjective: bool = True  # "a distant dog", "loud applause"; False for "someone"
    counts: bool = True


def _phrases(subjects, verbs, variants=None, adjective=True, plural=False):
    """Every subject ("a dog; a large dog") with every verb ("barks|barking, is barking|barking"): finite form
    in the 3rd person singular, turned plural when `plural` ("birds chirp"), and participle."""
    out = []
    for subject in subjects.split("; "):
        for verb in verbs.split(", "):
            finite, participle = verb.split("|")
            out.append(Phrase(subject, _plural_verb(finite) if plural else finite, participle, variants, adjective))
    return out


def _plural_verb(finite):
    first, _, rest = finite.partition(" ")
    if first == "is":
        first = "are"
    elif first.endswith(("shes", "ches", "sses", "zzes", "xes")):
        first = first[:-2]
    elif first.endswith("ies"):
        first = first[:-3] + "y"
    elif first.endswith("s"):
        first = first[:-1]
    return f"{first} {rest}".strip()


def _bare(*nouns, variants=None, adjective=True):
    return [Phrase(noun, None, "", variants, adjective, counts=False) for noun in nouns]


@dataclasses.dataclass(frozen=True)
class Source:
    """A synthetic sound source: its renderer, timing ranges and the words captions use for it.

    Discrete sources have `counts` (min, max units), `period` (s between unit onsets) and `unit` (length of
    one unit; `single_unit` when there is only one). Continuous ones last `duration` s; `ambient` ones can
    also fill the whole clip as a background. `keywords` is a regular expression that every phrase of the
    source matches and no phrase of another source does.
    """

    name: str
    label: str
    render: object
    phrases: tuple
    keywords: str
    variants: tuple = ("",)
    counts: tuple = None
    period: tuple = None
    unit: tuple = None
    single_unit: tuple = None
    duration: tuple = (2.0, 6.0)
    ambient: bool = False
    distant_ok: bool = True

    @property
    def discrete(self):
        return self.counts is not None


def _source_table():
    P, B = _phrases, _bare
    s = [
        Source("engine", "engine", _render_engine, (
            *P("an engine; a vehicle engine; a motor", "idles|idling, runs|running, rumbles|rumbling, hums|humming"),
            *B("engine noise", "an idling engine", "a running motor"),
        ), r"\bengine\b|\bmotor\b", duration=(3.0, 8.0), ambient=True),
        Source("siren", "siren", _render_siren, (
            *P("a siren; an emergency siren; a police siren",
               "wails|wailing, blares|blaring, sounds|sounding, is wailing|wailing"),
            *P("an emergency vehicle siren", "wails|wailing"),
            *B("a siren", "a wailing siren"),
        ), r"\bsirens?\b", variants=("wail", "yelp", "hilo"), duration=(3.0, 8.0)),
        Source("car_horn", "car horn", _render_car_horn, (
            *P("a car horn; a vehicle horn; a horn", "honks|honking, beeps|beeping, sounds|sounding"),
            *P("a car", "honks|honking"),
            *B("a car horn", "a horn honk"),
        ), r"\bhorns?\b|\bhonk\w*|\bcar\b", counts=(1, 4), period=(0.5, 0.9), unit=(0.2, 0.4), single_unit=(0.4, 1.3)),
        Source("dog", "dog", _render_dog, (
            *P("a dog", "barks|barking, is barking|barking"),
            *P("a dog", "woofs|woofing", variants=("", "large")),
            *P("a small dog", "barks|barking, yaps|yapping", variants=("small",)),
            *P("a large dog; a big dog", "barks|barking", variants=("large",)),
            *B("a dog barking", "a barking dog", "dog barking", "barking"),
        ), r"\bdogs?\b|\bbark\w*|\byap\w*", variants=("", "small", "large"),
            counts=(1, 6), period=(0.35, 0.75), unit=(0.15, 0.25)),
        Source("birds", "birds", _render_birds, (
            *P("birds; several birds", "chirps|chirping, sings|singing, tweets|tweeting, is chirping|chirping",
               variants=("many",), plural=True),
            *P("a bird", "chirps|chirping, sings|singing, tweets|tweeting", variants=("one",)),
            *B("birdsong", "chirping birds", variants=("many",)),
            *B("birdsong", "a chirping bird", variants=("one",)),
        ), r"\bbirds?\b|\bbirdsong\b", variants=("one", "many"), duration=(3.0, 8.0), ambient=True),
        Source("rain", "rain", _render_rain, (
            *P("rain", "falls|falling, falls steadily|falling steadily, patters on a surface|pattering on a surface"),
            *P("heavy rain", "falls|falling, pours down|pouring down", variants=("heavy",)),
            *P("rain", "pours|pouring, pours down|pouring down", variants=("heavy",)),
            *P("light rain", "falls|falling, patters|pattering", variants=("light",)),
            *B("rain", "falling rain", "the sound of rain"),
            *B("a downpour", variants=("heavy",)),
        ), r"\brain\w*|\bdownpour\b", variants=("steady", "heavy", "light"), duration=(3.0, 8.0), ambient=True,
            distant_ok=False),
        Source("wind", "wind", _render_wind, (
            *P("wind", "blows|blowing, gusts|gusting, is blowing|blowing"),
            *P("strong wind; wind", "howls|howling, blows hard|blowing hard", variants=("strong",)),
            *P("a gentle wind; a light breeze", "blows|blowing", variants=("gentle",)),
            *B("wind", "blowing wind", "wind noise"),
        ), r"\bwind\b|\bbreeze\b", variants=("", "strong", "gentle"), duration=(3.0, 8.0), ambient=True,
            distant_ok=False),
        Source("water", "water", _render_water, (
            *P("water", "flows|flowing, runs|running, trickles|trickling", variants=("stream",)),
            *P("a stream", "trickles|trickling, flows|flowing, babbles|babbling", variants=("stream",)),
            *P("water", "flows|flowing, rushes|rushing, runs|running", variants=("rushing",)),
            *P("a river; a stream", "rushes|rushing, flows|flowing", variants=("rushing",)),
            *B("running water", "flowing water"),
            *B("a trickling stream", variants=("stream",)),
        ), r"\bwater\b|\bstream\b|\briver\b", variants=("stream", "rushing"), duration=(3.0, 8.0), ambient=True),
        Source("thunder", "thunder", _render_thunder, (
            *P("thunder", "rumbles|rumbling, roars|roaring, rolls|rolling"),
            *P("thunder", "cracks|cracking, booms|booming", variants=("crack",)),
            *B("thunder", "a rumble of thunder", "rolling thunder"),
            *B("a crack of thunder", "a thunderclap", variants=("crack",)),
        ), r"\bthunder\w*", variants=("crack", "rumble"), duration=(3.0, 7.0)),
        Source("male_speech", "male speech", functools.partial(_render_speech, female=False), (
            *P("a man; a male voice", "speaks|speaking, talks|talking, is speaking|speaking"),
            *P("a man", "says something|saying something"),
            *B("a male voice", "a man speaking", "male speech"),
        ), r"\b(?:man|male)\b", duration=(2.0, 7.0)),
        Source("female_speech", "female speech", functools.partial(_render_speech, female=True), (
            *P("a woman; a female voice", "speaks|speaking, talks|talking, is speaking|speaking"),
            *P("a woman", "says something|saying something"),
            *B("a female voice", "a woman speaking", "female speech"),
        ), r"\b(?:woman|female)\b", duration=(2.0, 7.0)),
        Source("baby", "baby", _render_baby, (
            *P("a baby; an infant", "cries|crying, wails|wailing, is crying|crying"),
            *B("a crying baby", "a baby crying"),
        ), r"\bbaby\b|\binfant\b", duration=(2.0, 6.0)),
        Source("bell", "bell", _render_bell, (
            *P("a bell", "rings|ringing, chimes|chiming, dings|dinging"),
            *P("a church bell; a large bell", "rings|ringing, tolls|tolling", variants=("church",)),
            *P("a small bell", "rings|ringing, chimes|chiming", variants=("small",)),
            *B("a ringing bell"),
        ), r"\bbells?\b", variants=("church", "small"), counts=(1, 4), period=(0.9, 1.6), unit=(1.4, 2.2)),
        Source("knocking", "knocking", _render_knocking, (
            *P("someone; a person", "knocks on a door|knocking on a door, knocks|knocking, "
               "knocks on wood|knocking on wood", adjective=False),
            *B("knocking", "knocking on a door"),
        ), r"\bknock\w*", counts=(2, 6), period=(0.16, 0.3), unit=(0.1, 0.1)),
        Source("footsteps", "footsteps", _render_footsteps, (
            *P("someone; a person", "walks|walking, walks on a hard floor|walking on a hard floor", variants=("walk",),
               adjective=False),
            *P("someone; a person", "jogs|jogging, jogs past|jogging past", variants=("run",), adjective=False),
            *B("footsteps", "footsteps on a hard surface"),
            *B("running footsteps", variants=("run",)),
        ), r"\bfootsteps\b|\bwalk\w*|\bjog\w*", variants=("walk", "run"), duration=(2.0, 6.0)),
        Source("applause", "applause", _render_applause, (
            *P("a crowd; an audience", "applauds|applauding, claps|clapping", variants=("crowd",)),
            *P("people", "clap|clapping, applaud|applauding", variants=("crowd",)),
            *P("a few people", "claps|clapping, applauds|applauding", variants=("small",), plural=True),
            *P("a small group", "claps|clapping, applauds|applauding", variants=("small",)),
            *B("applause", "clapping"),
            *B("scattered applause", "light clapping", variants=("small",)),
            *B("a round of applause", variants=("crowd",)),
        ), r"\bapplau\w*|\bclap\w*", variants=("crowd", "small"), duration=(2.0, 6.0)),
        Source("drill", "drill", _render_drill, (
            *P("a drill; a power drill; an electric drill", "whirs|whirring, runs|running, buzzes|buzzing"),
            *P("a drill; a power drill", "runs intermittently|running intermittently, "
               "whirs in bursts|whirring in bursts", variants=("bursts",)),
            *B("drilling", "a power drill"),
        ), r"\bdrill\w*", variants=("steady", "bursts"), duration=(2.0, 6.0)),
        Source("clock", "clock", _render_clock, (
            *P("a clock", "ticks|ticking, is ticking|ticking, ticks steadily|ticking steadily, "
               "tick-tocks|tick-tocking"),
            *B("a ticking clock", "ticking", "a clock ticking", "the ticking of a clock"),
        ), r"\bclock\b|\btick\w*", duration=(3.0, 8.0), ambient=True, distant_ok=False),
        Source("cat", "cat", _render_cat, (
            *P("a cat; a kitten", "meows|meowing, mews|mewing"),
            *B("a cat meowing", "meowing"),
        ), r"\bcats?\b|\bkitten\b|\bme(?:o)?w\w*", counts=(1, 3), period=(1.0, 1.5), unit=(0.5, 0.85)),
        Source("phone", "telephone", _render_phone, (
            *P("a telephone; a phone; an old telephone", "rings|ringing, is ringing|ringing"),
            *B("a ringing telephone", "a telephone ringing"),
        ), r"\b(?:tele)?phones?\b", counts=(1, 3), period=(2.0, 2.8), unit=(0.9, 1.4)),
        Source("crickets", "crickets", _render_crickets, (
            *P("crickets; insects", "chirps|chirping, is chirping|chirping", plural=True),
            *B("crickets", "chirping crickets", "insects chirping"),
        ), r"\bcrickets?\b|\binsects?\b", duration=(3.0, 8.0), ambient=True, distant_ok=False),
        Source("helicopter", "helicopter", _render_helicopter, (
            *P("a helicopter", "hovers|hovering, whirs|whirring, hovers overhead|hovering overhead",
               variants=("hover",)),
            *P("a helicopter", "flies overhead|flying overhead, passes by|passing by, flies by|flying by",
               variants=("pass",)),
            *P("helicopter blades; helicopter rotors", "whirs|whirring, thumps|thumping", plural=True),
            *B("a helicopter", "helicopter blades whirring"),
        ), r"\bhelicopters?\b", variants=("hover", "pass"), duration=(4.0, 8.0), ambient=True),
        Source("whistle", "whistling", _render_whistle, (
            *P("someone; a person", "whistles|whistling, whistles a tune|whistling a tune, "
               "whistles a melody|whistling a melody", adjective=False),
            *B("whistling", "a whistled tune"),
        ), r"\bwhistl\w*", duration=(2.0, 6.0), distant_ok=False),
        Source("typing", "typing", _render_typing, (
            *P("someone; a person", "types on a keyboard|typing on a keyboard, types|typing, "
               "is typing on a keyboard|typing on a keyboard", adjective=False),
            *B("typing on a keyboard", "keyboard typing", "typing"),
        ), r"\btyp\w*|\bkeyboard\b", duration=(2.0, 6.0), distant_ok=False),
        Source("hammer", "hammer", _render_hammer, (
            *P("someone; a person", "hammers|hammering, hammers a nail|hammering a nail, "
               "hits metal with a hammer|hitting metal with a hammer", adjective=False),
            *P("a hammer", "strikes metal|striking metal, bangs|banging"),
            *B("hammering", "hammering on metal"),
        ), r"\bhammer\w*", counts=(2, 6), period=(0.35, 0.7), unit=(0.25, 0.25)),
    ]
    return {source.name: source for source in s}


SOURCES = _source_table()
AMBIENT_SOURCES = tuple(name for name, source in SOURCES.items() if source.ambient)
CONTINUOUS_SOURCES = tuple(name for name, source in SOURCES.items() if not source.discrete)

# ---------------------------------------------------------------------------------------------------------------
# Drawing specifications
# ---------------------------------------------------------------------------------------------------------------

_STRUCTURES = ("single", "sequence", "overlap", "background", "background_sequence")
_STRUCTURE_WEIGHTS = (0.2, 0.3, 0.15, 0.2, 0.15)
_FOREGROUND_DB = (-23.0, -16.0)
_BACKGROUND_DB = (-34.0, -27.0)
_LOUD_DB, _SOFT_DB, _DISTANT_DB = 5.0, -8.0, -9.0
_MIN_CONTINUOUS_SECONDS = 1.5


def _draw_extent(rng, source, max_seconds):
    """(duration, count, period) of an event of `source` lasting at most `max_seconds`, or None."""
    if source.discrete:
        count = int(rng.integers(source.counts[0], source.counts[1] + 1))
        period = rng.uniform(*source.period)
        while True:
            unit_range = source.single_unit if count == 1 and source.single_unit else source.unit
            unit = rng.uniform(*unit_range)
            duration = (count - 1) * period + unit
            if duration <= max_seconds:
                return round(duration, 3), count, round(period, 3)
            if count == source.counts[0]:
                return None
            count -= 1
    low, high = source.duration
    if max_seconds < low:  # squeezed between other events: shorter, but long enough to be heard
        low = high = _MIN_CONTINUOUS_SECONDS
        if max_seconds < low:
            return None
        high = max_seconds
    return round(rng.uniform(low, min(high, max_seconds)), 3), 0, 0.0


def _draw_event(rng, name, onset, extent, background=False):
    source = SOURCES[name]
    duration, count, period = extent
    variant = str(rng.choice(source.variants))
    level, distant, gain = "normal", False, rng.uniform(*_FOREGROUND_DB)
    if background:
        gain = rng.uniform(*_BACKGROUND_DB)
    else:
        roll = rng.random()
        if roll < 0.2 and source.distant_ok:
            distant, gain = True, gain + _DISTANT_DB
        elif roll < 0.35:
            level, gain = "loud", gain + _LOUD_DB
        elif roll < 0.45:
            level, gain = "soft", gain + _SOFT_DB
    return Event(name, round(float(onset), 3), float(duration), int(count), float(period), variant, level, distant,
                 background, round(float(gain), 2))


def _pick_sources(rng, pool, k, exclude=()):
    choices = [name for name in pool if name not in exclude]
    return [str(name) for name in rng.choice(choices, size=k, replace=False)]


def _sequence(rng, names, start, end):
    """Events one after another between `start` and `end` s, separated by 0.4-1.5 s of their absence."""
    for _ in range(20):
        gaps = rng.uniform(0.4, 1.5, len(names) - 1)
        budget = (end - start - gaps.sum()) / len(names)
        extents = [_draw_extent(rng, SOURCES[name], budget * rng.uniform(1.0, 1.4)) for name in names]
        if any(e is None for e in extents):
            continue
        total = sum(e[0] for e in extents) + gaps.sum()
        if total > end - start:
            continue
        onset = start + rng.uniform(0, end - start - total)
        events = []
        for name, extent, gap in zip(names, extents, [*gaps, 0.0]):
            events.append(_draw_event(rng, name, onset, extent))
            onset = events[-1].offset + gap
        return events
    return None


def clip_spec(index, seed=0, split="train"):
    """The specification of demo clip `index` for `seed`: the same whatever the dataset size or process."""
    rng = np.random.default_rng([seed, index, _SPEC_STREAM])
    structure = str(rng.choice(_STRUCTURES, p=_STRUCTURE_WEIGHTS))
    start_time = int(rng.integers(0, 30)) * 10
    events = None
    while events is None:
        if structure == "single":
            (name,) = _pick_sources(rng, SOURCES, 1)
            source = SOURCES[name]
            if source.ambient and rng.random() < 0.6:
                events = [_draw_event(rng, name, 0.0, (CLIP_SECONDS, 0, 0.0))]
            else:
                extent = _draw_extent(rng, source, CLIP_SECONDS - 0.5)
                onset = rng.uniform(0.1, CLIP_SECONDS - 0.2 - extent[0])
                events = [_draw_event(rng, name, onset, extent)]
        elif structure == "sequence":
            names = _pick_sources(rng, SOURCES, 3 if rng.random() < 0.3 else 2)
            events = _sequence(rng, names, 0.1, CLIP_SECONDS - 0.2)
        elif structure == "overlap":
            (long_name,) = _pick_sources(rng, CONTINUOUS_SOURCES, 1)
            (short_name,) = _pick_sources(rng, SOURCES, 1, exclude=(long_name,))
            long_extent = _draw_extent(rng, SOURCES[long_name], CLIP_SECONDS - 0.5)
            long_extent = (max(long_extent[0], 4.0), 0, 0.0)
            long_onset = rng.uniform(0.1, CLIP_SECONDS - 0.2 - long_extent[0])
            short_extent = _draw_extent(rng, SOURCES[short_name], long_extent[0] - 0.6)
            if short_extent is None:
                continue
            # The shorter event starts after the longer one and lies mostly inside it.
            latest = min(long_onset + long_extent[0] - 0.6 * short_extent[0], CLIP_SECONDS - 0.1 - short_extent[0])
            short_onset = rng.uniform(long_onset + 0.3, max(long_onset + 0.3, latest))
            events = [_draw_event(rng, long_name, long_onset, long_extent),
                      _draw_event(rng, short_name, short_onset, short_extent)]
        else:
            (bg_name,) = _pick_sources(rng, AMBIENT_SOURCES, 1)
            background = _draw_event(rng, bg_name, 0.0, (CLIP_SECONDS, 0, 0.0), background=True)
            if structure == "background":
                (name,) = _pick_sources(rng, SOURCES, 1, exclude=(bg_name,))
                extent = _draw_extent(rng, SOURCES[name], CLIP_SECONDS - 1.0)
                onset = rng.uniform(0.3, CLIP_SECONDS - 0.3 - extent[0])
                events = [background, _draw_event(rng, name, onset, extent)]
            else:
                names = _pick_sources(rng, SOURCES, 2, exclude=(bg_name,))
                sequence = _sequence(rng, names, 0.3, CLIP_SECONDS - 0.3)
                events = None if sequence is None else [background, *sequence]
    return ClipSpec(index, seed, f"demo{index:05d}", start_time, split, structure, tuple(events))


def _split_of_each(num_clips, seed):
    n_val = round(num_clips * SPLIT_FRACTIONS["val"])
    n_test = round(num_clips * SPLIT_FRACTIONS["test"])
    if num_clips >= 3:
        n_val, n_test = max(1, n_val), max(1, n_test)
    order = np.random.default_rng([seed, _SPLIT_STREAM, num_clips]).permutation(num_clips)
    splits = ["train"] * num_clips
    for i in order[:n_val]:
        splits[i] = "val"
    for i in order[n_val:n_val + n_test]:
        splits[i] = "test"
    return splits


def clip_specs(num_clips, seed=0):
    """Specifications of the `num_clips` clips of the demo dataset for `seed` (about 80/10/10 train/val/test)."""
    return [clip_spec(i, seed, split) for i, split in enumerate(_split_of_each(num_clips, seed))]


# ---------------------------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------------------------

_COUNT_WORDS = {1: ["once"], 2: ["twice", "two times"], 3: ["three times"], 4: ["four times", "several times"],
                5: ["five times", "several times", "repeatedly"], 6: ["six times", "several times", "repeatedly"]}


def _with_adjective(subject, adjective):
    words = subject.split(" ")
    if words[0] in ("a", "an"):
        article = "an" if adjective[0] in "aeiou" else "a"
        return " ".join([article, adjective, *words[1:]])
    if words[0] in ("several", "the"):
        return " ".join([words[0], adjective, *words[1:]])
    return f"{adjective} {subject}"


def _choice(rng, options):
    return options[int(rng.integers(len(options)))]


def _realise(event, form, rng):
    """Words for one event: form "C" a clause ("a dog barks twice in the distance"), "N" a noun phrase
    ("a distant dog barking twice"), "B" a bare noun phrase ("a dog barking")."""
    source = SOURCES[event.source]
    options = [p for p in source.phrases if p.variants is None or event.variant in p.variants]
    if form == "C":
        options = [p for p in options if p.finite]
    elif form == "B":
        options = [p for p in options if not p.finite]
    phrase = _choice(rng, options)
    subject, adverbs = phrase.subject, []
    if event.count and phrase.counts and (event.count > 1 or rng.random() < 0.5) and rng.random() < 0.85:
        adverbs.append(_choice(rng, _COUNT_WORDS[min(event.count, 6)]))
    if event.distant and rng.random() < 0.9:
        if phrase.adjective and rng.random() < 0.35:
            subject = _with_adjective(subject, "distant")
        else:
            adverbs.append("in the distance")
    elif event.level != "normal" and rng.random() < 0.6:
        loud = event.level == "loud"
        verb_has_adverb = (phrase.finite or "").endswith("ly")  # "ticks steadily": no second adverb
        if phrase.adjective and (not phrase.finite or verb_has_adverb or rng.random() < 0.4):
            subject = _with_adjective(subject, _choice(rng, ["loud"] if loud else ["faint", "quiet"]))
        elif phrase.participle and not verb_has_adverb and not any(a.endswith("ly") for a in adverbs):
            adverbs.insert(0, _choice(rng, ["loudly"] if loud else ["softly", "quietly"]))
    verb = phrase.finite if form == "C" else phrase.participle
    if not verb:  # a bare noun takes no adverbs but the place one
        adverbs = [a for a in adverbs if a == "in the distance"]
    return " ".join(w for w in [subject, verb, *adverbs] if w)


# Templates name events A, B, C (in order of onset) or G (the background) with a form: C clause, N noun
# phrase, B bare noun phrase.
_SEQUENCE_2 = (
    "{A:C} followed by {B:N}", "{A:N} followed by {B:N}", "{A:C}, followed by {B:N}", "{A:C}, then {B:C}",
    "{A:C} and then {B:C}", "{A:C} before {B:C}", "first {A:C}, then {B:C}", "{A:C}, after which {B:C}",
)
_SEQUENCE_2_CLAUSE = ("{A:C} followed by {B:N}", "{A:C}, then {B:C}", "{A:C} and then {B:C}", "{A:C} before {B:C}")
_SEQUENCE_3 = (
    "{A:C}, then {B:C}, followed by {C:N}", "{A:N} followed by {B:N} and then {C:N}", "{A:C}, {B:C}, and then {C:C}",
    "{A:C} followed by {B:N}, then {C:C}", "first {A:C}, then {B:C}, and finally {C:C}",
)
_OVERLAP = (
    "{A:C} while {B:C}", "{A:C} as {B:C}", "{A:N} and {B:N}", "{B:C} while {A:C}",
    "{A:N} along with {B:N}", "{B:C} as {A:C}", "{A:C} and {B:C} at the same time",
)
_BACKGROUND = (
    "{A:C} while {G:C}", "{A:C} as {G:C}", "{G:C} as {A:C}", "{A:C} with {G:N} in the background",
    "{A:N} with {G:N} in the background", "{G:N} and {A:N}", "{A:C} over {G:B}", "{G:C} in the background as {A:C}",
    "{A:C} while {G:C} in the background",
)
_BACKGROUND_SEQUENCE = (
    "{SEQ} while {G:C}", "{SEQ} with {G:N} in the background", "{G:C} as {SEQ}", "{G:C} in the background as {SEQ}",
    "{G:N} in the background as {SEQ}",
)
_TEMPLATE_SLOT = re.compile(r"\{([ABCG]):([CNB])\}")


def _fill(template, roles, rng):
    return _TEMPLATE_SLOT.sub(lambda m: _realise(roles[m.group(1)], m.group(2), rng), template)


def _caption(spec, rng):
    events = sorted(spec.events, key=lambda e: (not e.background, e.onset))
    background = [e for e in events if e.background]
    foreground = [e for e in events if not e.background]
    structure = spec.structure
    if structure == "single":
        caption = _realise(foreground[0], "C" if rng.random() < 0.65 else "N", rng)
    elif structure == "sequence":
        roles = dict(zip("ABC", foreground))
        caption = _fill(_choice(rng, _SEQUENCE_3 if len(foreground) == 3 else _SEQUENCE_2), roles, rng)
    elif structure == "overlap":
        caption = _fill(_choice(rng, _OVERLAP), dict(zip("AB", foreground)), rng)
    elif structure == "background":
        caption = _fill(_choice(rng, _BACKGROUND), {"A": foreground[0], "G": background[0]}, rng)
    else:
        roles = {"A": foreground[0], "B": foreground[1], "G": background[0]}
        template = _choice(rng, _BACKGROUND_SEQUENCE)
        sequence_templates = _SEQUENCE_2 if template.startswith("{SEQ} with") else _SEQUENCE_2_CLAUSE
        caption = _fill(template.replace("{SEQ}", _choice(rng, sequence_templates)), roles, rng)
    return caption[0].upper() + caption[1:]


def describe(spec, num_captions=None, rng=None):
    """`num_captions` different true captions of `spec` (default: 1 for train, 5 for val and test clips).

    The same spec gives the same captions unless another `rng` is passed. Sequential events are mentioned
    in the order they occur.
    """
    if num_captions is None:
        num_captions = CAPTIONS_PER_CLIP[spec.split]
    if rng is None:
        rng = np.random.default_rng([spec.seed, spec.index, _CAPTION_STREAM])
    captions = []
    for _ in range(200 * num_captions):
        caption = _caption(spec, rng)
        if caption.lower() not in (c.lower() for c in captions):
            captions.append(caption)
            if len(captions) == num_captions:
                return captions
    raise RuntimeError(f"could not write {num_captions} different captions for {spec}")


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------


def _active_rms(x):
    """RMS over the 20 ms frames within 20 dB of the loudest: the level of a sound while it sounds."""
    frame = int(0.02 * SR)
    usable = len(x) // frame * frame
    if usable == 0:
        return float(np.sqrt(np.mean(x**2)) + 1e-12)
    energy = np.mean(x[:usable].reshape(-1, frame) ** 2, axis=1)
    active = energy[energy >= energy.max() * 0.01]
    return float(np.sqrt(np.mean(active)) + 1e-12)


def _reverberate(x, rng, tail_seconds, direct, lowpass_hz):
    """`direct` times the dry sound plus a reverberant tail: exponentially decaying noise that falls 60 dB
    over `tail_seconds`, after a 12 ms gap (the first reflection). The result is longer than `x`."""
    m = int(tail_seconds * SR)
    ir = rng.standard_normal(m) * np.exp(-_time(m) * 6.9 / tail_seconds)
    ir[: int(0.012 * SR)] = 0.0
    ir = _lowpass(ir, lowpass_hz) / np.sqrt(np.sum(ir**2) + 1e-12)
    out = scipy.signal.oaconvolve(x, ir)
    out[: len(x)] += direct * x
    return out


def _make_distant(x, rng):
    """Far away: air absorbs the highs and reverberation (more than the direct sound) smears it."""
    x = _lowpass(x, rng.uniform(900, 2000), order=2)
    return _reverberate(x, rng, rng.uniform(0.8, 1.4), direct=rng.uniform(0.3, 0.5), lowpass_hz=2500)


def _make_near(x, rng):
    """Close by, with the faint short reverberation of the place it was recorded in."""
    return _reverberate(x, rng, rng.uniform(0.2, 0.45), direct=rng.uniform(3.0, 6.0), lowpass_hz=5000)


def render_event(event, rng):
    """Samples of one event at its level (dry part first, any reverberant tail after), float64."""
    source = SOURCES[event.source]
    n = max(1, int(round(event.duration * SR)))
    x = np.asarray(source.render(rng, event, n), dtype=np.float64)[:n]
    if not source.discrete:  # continuous sounds fade in and out over a few tens of ms
        fade = min(n // 2, int((0.01 if event.background else rng.uniform(0.04, 0.15)) * SR))
        if fade > 0:
            ramp = np.linspace(0, 1, fade)
            x[:fade] *= ramp
            x[n - fade:] *= ramp[::-1]
    x = x - np.mean(x)
    x /= _active_rms(x)
    if event.distant:
        x = _make_distant(x, rng)
    elif not event.background:
        x = _make_near(x, rng)
    x *= 10 ** (event.gain_db / 20) / _active_rms(x)
    peak = np.max(np.abs(x))
    if peak > _EVENT_PEAK:
        x *= _EVENT_PEAK / peak
    return x


def render(spec):
    """The clip's 10 s of audio: float32 [160000] at 16 kHz, peak below -1 dBFS."""
    mix = np.zeros(CLIP_SAMPLES)
    for k, event in enumerate(spec.events):
        x = render_event(event, np.random.default_rng([spec.seed, spec.index, _RENDER_STREAM, k]))
        start = int(round(event.onset * SR))
        end = min(CLIP_SAMPLES, start + len(x))
        mix[start:end] += x[: end - start]
    floor_rng = np.random.default_rng([spec.seed, spec.index, _RENDER_STREAM, len(spec.events)])
    mix += _lowpass(floor_rng.standard_normal(CLIP_SAMPLES), 4000) * 10 ** (_NOISE_FLOOR_DB / 20)
    peak = np.max(np.abs(mix))
    if peak > _CLIP_PEAK:
        mix *= _CLIP_PEAK / peak
    return mix.astype(np.float32)


def write_wav(path, waveform):
    """16-bit PCM WAV, written to a temporary name and renamed: a file that exists is complete."""
    path = pathlib.Path(path)
    temporary = path.with_name(path.name + ".partial")
    pcm = np.clip(np.round(np.asarray(waveform, np.float64) * 32767), -32768, 32767).astype(np.int16)
    soundfile.write(temporary, pcm, SR, subtype="PCM_16", format="WAV")
    os.replace(temporary, path)


def _synthesise(task):
    spec, path = task
    write_wav(path, render(spec))
    return spec.index


# ---------------------------------------------------------------------------------------------------------------
# The dataset on disk
# ---------------------------------------------------------------------------------------------------------------


def _parameters(num_clips, seed):
    return {"generator": "audiocaps_tf.data.demo", "version": GENERATOR_VERSION, "clips": num_clips, "seed": seed,
            "sample_rate": SR, "clip_seconds": CLIP_SECONDS}


def _parameters_text(parameters, complete):
    return json.dumps({**parameters, "complete": complete}, indent=2, sort_keys=True) + "\n"


def _write_text(path, text):
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(text, encoding="utf-8", newline="")
    os.replace(temporary, path)


def _complete(out_dir, specs):
    return (all(split_path(out_dir, split).is_file() for split in SPLITS)
            and all((out_dir / AUDIO_DIR / f"{spec.key}.wav").is_file() for spec in specs))


def _check_directory(out_dir, parameters):
    """Raises DemoError unless `out_dir` is new, empty or a demo dataset made with `parameters`.
    Returns the parameters file's contents, or None."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"{out_dir} is a file, not a directory")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return None
    marker = out_dir / PARAMETERS_FILE
    if not marker.is_file():
        raise DemoError(f"{out_dir} is not empty and holds no demo dataset ({PARAMETERS_FILE} is missing): refusing "
                        "to write into it; choose a new or empty directory")
    try:
        previous = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DemoError(f"{marker} cannot be read ({err}): refusing to write into {out_dir}") from None
    recorded = {k: previous.get(k) for k in parameters}
    if recorded != parameters:
        different = ", ".join(f"{k}={recorded[k]!r} (asked {parameters[k]!r})"
                              for k in parameters if recorded[k] != parameters[k])
        raise DemoError(f"{out_dir} holds a demo dataset made with other parameters: {different}; "
                        "choose another directory or delete this one")
    return previous


def make_demo_dataset(out_dir, num_clips=DEFAULT_CLIPS, seed=0, workers=None, progress=True):
    """Writes the demo dataset for (`num_clips`, `seed`) to `out_dir` and returns its path.

    Does nothing when `out_dir` already holds it complete; finishes it when an earlier run was interrupted;
    raises DemoError when `out_dir` holds anything else. Clips are synthesised by `workers` processes
    (default: one per CPU) and the CSVs are written only once every audio file is. `progress` shows a
    progress bar and messages on stderr.
    """
    out_dir = pathlib.Path(out_dir)
    num_clips, seed = int(num_clips), int(seed)
    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    parameters = _parameters(num_clips, seed)
    previous = _check_directory(out_dir, parameters)
    specs = clip_specs(num_clips, seed)
    if previous is not None and previous.get("complete") and _complete(out_dir, specs):
        if progress:
            print(f"{out_dir} already holds the demo dataset ({num_clips} clips, seed {seed}): nothing to do",
                  file=sys.stderr)
        return out_dir

    audio_dir = out_dir / AUDIO_DIR
    audio_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / PARAMETERS_FILE, _parameters_text(parameters, complete=False))
    tasks = [(spec, audio_dir / f"{spec.key}.wav") for spec in specs]
    tasks = [(spec, path) for spec, path in tasks if not path.is_file()]  # an interrupted run resumes
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    bar = tqdm.tqdm(total=len(tasks), unit="clip", desc="demo audio", disable=not progress or not tasks)
    try:
        if workers == 1 or len(tasks) < 8:
            for task in tasks:
                _synthesise(task)
                bar.update()
        else:
            methods = multiprocessing.get_all_start_methods()
            # fork: workers start at once and need not import TensorFlow again; they only run NumPy.
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            with context.Pool(min(workers, len(tasks))) as pool:
                for _ in pool.imap_unordered(_synthesise, tasks, chunksize=4):
                    bar.update()
    finally:
        bar.close()
    for leftover in audio_dir.glob("*.partial"):  # from workers killed by an earlier interruption
        leftover.unlink()

    for split in SPLITS:
        rows = []
        for spec in specs:
            if spec.split != split:
                continue
            labels = LABEL_SEPARATOR.join(spec.labels)
            for j, caption in enumerate(describe(spec)):
                rows.append([spec.index * 5 + j + 1, spec.youtube_id, spec.start_time, caption, labels])
        _write_csv(split_path(out_dir, split), rows)
    _write_text(out_dir / PARAMETERS_FILE, _parameters_text(parameters, complete=True))
    return out_dir


def _write_csv(path, rows):
    temporary = path.with_name(path.name + ".partial")
    with open(temporary, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["audiocap_id", "youtube_id", "start_time", "caption", "labels"])
        writer.writerows(rows)
    os.replace(temporary, path)


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


def add_arguments(parser):
    parser.add_argument("--out", required=True, type=pathlib.Path, metavar="DIR",
                        help="directory to write (new, empty, or an earlier demo dataset with the same parameters)")
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS, metavar="N",
                        help=f"number of clips (default {DEFAULT_CLIPS}: about 80/10/10 train/val/test)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes synthesising audio (default: one per CPU)")


def run(args):
    try:
        out_dir = make_demo_dataset(args.out, num_clips=args.clips, seed=args.seed, workers=args.workers)
    except (DemoError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    splits = read_splits(out_dir)
    counts = ", ".join(f"{split} {len(clips)} clips" for split, clips in splits.items())
    print(f"demo dataset in {out_dir}: {counts}")
    return 0
