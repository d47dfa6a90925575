"""Renderers of machines and devices: engine, siren, car horn, bell, clock, telephone, drill, helicopter.

Each returns `n` samples of an event (any scale; levels are set when mixing).
"""

import numpy as np

from audiocaps_tf.data.demo.dsp import (
    SR, _TOP_HZ, _bandpass, _blit, _damped, _formants, _harmonic_tone, _highpass, _lowpass, _noise_burst, _pulses,
    _segments_envelope, _smooth, _tilt, _time, _unit_length, _unit_onsets, _wander,
)


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


def _render_phone(rng, ev, n):
    clapper = rng.uniform(17, 22)  # the bell clapper rate of an old telephone ring
    f = rng.uniform(950, 1350)
    kernel = (_damped(f, 0.03, 0.1) + 0.6 * _damped(f * 1.52, 0.02, 0.1) + 0.3 * _damped(f * 2.7, 0.01, 0.1))
    unit = _unit_length(ev)
    times = np.concatenate([onset + np.arange(0, unit - 0.1, 1 / clapper) for onset in _unit_onsets(ev)])
    return _pulses(n, times, rng.uniform(0.85, 1.0, len(times)), kernel)


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

