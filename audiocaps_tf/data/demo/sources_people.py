"""Renderers of people: male and female speech, baby, whistling, knocking, footsteps, applause, typing, hammer.

Each returns `n` samples of an event (any scale; levels are set when mixing).
"""

import numpy as np

from audiocaps_tf.data.demo.dsp import (
    SR, _TOP_HZ, _bandpass, _blit, _damped, _formants, _highpass, _lowpass, _noise_burst, _poisson_times, _pulses,
    _segments_envelope, _smooth, _tilt, _time, _unit_onsets, _wander,
)


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

