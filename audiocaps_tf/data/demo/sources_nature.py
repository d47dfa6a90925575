"""Renderers of animals and weather: dog, birds, cat, crickets, rain, wind, water, thunder.

Each returns `n` samples of an event (any scale; levels are set when mixing).
"""

import numpy as np

from audiocaps_tf.data.demo.dsp import (
    SR, _bandpass, _blit, _damped, _decay, _formants, _highpass, _lowpass, _poisson_times, _pulses, _smooth, _time,
    _unit_length, _unit_onsets, _wander,
)


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

