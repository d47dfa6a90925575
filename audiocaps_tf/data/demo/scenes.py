"""Clip specifications and their audio: events drawn for a clip (`clip_spec`, `clip_specs`) and mixed (`render`)."""

import dataclasses

import numpy as np
import scipy.signal

from audiocaps_tf.data.demo.dsp import SR, _lowpass, _time
from audiocaps_tf.data.demo.sources import AMBIENT_SOURCES, CONTINUOUS_SOURCES, SOURCES
from audiocaps_tf.params import CLIP_SECONDS

SPLIT_FRACTIONS = {"val": 0.1, "test": 0.1}  # the rest is train

CLIP_SAMPLES = int(round(CLIP_SECONDS * SR))
_EVENT_PEAK = 0.6  # each event is scaled down to at most this peak before mixing
_CLIP_PEAK = 0.89  # the mix is scaled down to at most this peak (-1 dBFS): never clips
_NOISE_FLOOR_DB = -66.0  # a faint recording noise floor: no clip is digitally silent

# Random streams of one clip: np.random.default_rng([seed, clip index, stream, ...]).
_SPEC_STREAM, _RENDER_STREAM, _CAPTION_STREAM = 0, 1, 2
_SPLIT_STREAM = 3


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

