"""A scene's audio: its recordings cut, looped, levelled and mixed at MIX_RATE, then written at the scene's own
sample rate and channel count (`output_format`), so the benchmark's files vary as users' files do."""

import numpy as np
import soundfile

from audiocaps_tf.audio.resampling import resample

from catalogue import CLASSES
from inventory import load_mono
from scenes import SCENE_SECONDS

__all__ = ["AudioBank", "render_scene", "output_format", "write_scene", "MIX_RATE"]

MIX_RATE = 32000
OUTPUT_RATES = (16000, 22050, 32000, 44100, 48000)
OUTPUT_FORMATS = (("wav", "PCM_16"), ("flac", "PCM_16"))
_FADE_SECONDS = 0.02
_CLIP_PEAK = 0.89  # -1 dBFS
_SILENCE_DB = -50.0  # frames quieter than this (relative to the peak) do not count towards an event's RMS
_TEXTURES = {c.name for c in CLASSES if c.texture}


class AudioBank:
    """Decoded recordings, loaded once: `files(recording)` -> [float32 mono at MIX_RATE]."""

    def __init__(self, recordings):
        self._paths = {rid: [path for _, path in files] for rid, files in recordings.items()}
        self._audio = {}

    def files(self, recording):
        if recording not in self._audio:
            self._audio[recording] = [_trim_silence(load_mono(p, MIX_RATE)) for p in self._paths[recording]]
        return self._audio[recording]


def _trim_silence(samples):
    """Drops leading and trailing samples more than 50 dB below the peak."""
    level = np.abs(samples)
    loud = np.flatnonzero(level > level.max() * 10 ** (_SILENCE_DB / 20))
    return samples[loud[0]:loud[-1] + 1] if loud.size else samples


def _fade(samples):
    n = min(int(_FADE_SECONDS * MIX_RATE), len(samples) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        samples = samples.copy()
        samples[:n] *= ramp
        samples[-n:] *= ramp[::-1]
    return samples


def _active_rms(samples):
    frame = 1024
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame) if len(samples) >= frame else samples[None]
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    active = rms[rms > rms.max() * 10 ** (_SILENCE_DB / 20)]
    return float(np.sqrt(np.mean(active ** 2))) if active.size else 1e-9


def _texture(rng, cuts, length):
    """`length` samples of a texture: a random stretch of one cut, looped with short fades when it is shorter."""
    cut = cuts[int(rng.integers(len(cuts)))]
    if len(cut) > length:
        start = int(rng.integers(len(cut) - length))
        return _fade(cut[start:start + length])
    pieces, total = [], 0
    while total < length:
        pieces.append(_fade(cut))
        total += len(cut)
    return np.concatenate(pieces)[:length]


def _bursts(rng, cuts, repeats, length):
    """`repeats` cuts (random ones of the recording) with short gaps, cut to at most `length` samples."""
    pieces = []
    for i in range(repeats):
        if i:
            pieces.append(np.zeros(int(rng.uniform(0.1, 0.6) * MIX_RATE), np.float32))
        pieces.append(_fade(cuts[int(rng.integers(len(cuts)))]))
    audio = np.concatenate(pieces)
    return _fade(audio[:length]) if len(audio) > length else audio


def render_scene(scene, bank, seed):
    """float32 mono [SCENE_SECONDS * MIX_RATE] of `scene`, peak at most -1 dBFS."""
    split_code = ("train", "val", "test").index(scene.split)
    rng = np.random.default_rng([seed, split_code, scene.index, 2])
    total = int(SCENE_SECONDS * MIX_RATE)
    mix = np.zeros(total, np.float32)
    for event in scene.events:
        start = int(event.onset * MIX_RATE)
        length = min(int(event.duration * MIX_RATE), total - start)
        cuts = bank.files(event.recording)
        if event.cls in _TEXTURES:
            audio = _texture(rng, cuts, length)
        else:
            audio = _bursts(rng, cuts, event.repeats, length)
        audio = audio * (10 ** (event.level_db / 20) / _active_rms(audio))
        mix[start:start + len(audio)] += audio
    mix += rng.normal(0.0, 10 ** (-70 / 20), total).astype(np.float32)  # a faint noise floor, never pure silence
    peak = np.max(np.abs(mix))
    if peak > _CLIP_PEAK:
        mix *= _CLIP_PEAK / peak
    return mix


def output_format(scene, seed):
    """(sample rate, channels, extension, soundfile subtype) of the scene's file."""
    split_code = ("train", "val", "test").index(scene.split)
    rng = np.random.default_rng([seed, split_code, scene.index, 3])
    extension, subtype = OUTPUT_FORMATS[int(rng.integers(len(OUTPUT_FORMATS)))]
    return int(OUTPUT_RATES[int(rng.integers(len(OUTPUT_RATES)))]), int(rng.integers(1, 3)), extension, subtype


def write_scene(path, mix, rate, channels, subtype):
    """Writes `mix` resampled to `rate`, as `channels` channels (stereo: slightly different gains per side)."""
    audio = resample(mix, MIX_RATE, rate) if rate != MIX_RATE else mix
    audio = np.clip(audio, -1.0, 1.0)
    if channels == 2:
        audio = np.stack([audio * 0.95, audio], axis=1)
    soundfile.write(str(path), audio, rate, subtype=subtype)
