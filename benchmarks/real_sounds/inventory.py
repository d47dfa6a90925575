"""The benchmark's recordings: catalogue rules applied to the unpacked packages, duplicates joined, then split.

    find_files(cache)            [(class, "CODE:path", absolute path)] of every catalogued file, byte-identical
                                 copies (and symlinks) counted once
    group_recordings(files)      {class: {recording id: [files]}}: ids by name (`catalogue.recording_id`), then
                                 near-identical audio joined (NEAR_DUPLICATE)
    split_recordings(...)        {class: {"train"|"val"|"test": [recording ids]}}: every class in every split,
                                 no recording in two splits
"""

import hashlib
import re

import numpy as np
import scipy.signal
import soundfile

from audiocaps_tf.audio.resampling import resample

import catalogue
from sources import PACKAGES, package_root

__all__ = ["find_files", "group_recordings", "split_recordings", "describe", "NEAR_DUPLICATE", "load_mono"]

AUDIO_SUFFIXES = (".wav", ".ogg", ".flac")
NEAR_DUPLICATE = 0.9  # peak normalised cross-correlation (first 8 s, 8 kHz mono) above which two files are one take
_FINGERPRINT_RATE = 8000
_FINGERPRINT_SECONDS = 8.0
SPLIT_SHARES = {"val": 0.2, "test": 0.2}  # of each class's recordings, at least one each; the rest is train


def load_mono(path, rate):
    """float32 mono samples of an audio file at `rate` Hz."""
    samples, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if file_rate != rate:
        mono = resample(mono, file_rate, rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _all_audio(cache):
    for code in PACKAGES:
        root = package_root(cache, code)
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
                yield f"{code}:{path.relative_to(root).as_posix()}", path


def find_files(cache):
    """(class name, catalogue path, absolute path) of every file a class claims; a file two classes claim is an
    error (the rules overlap), a copy of a file already taken is skipped."""
    rules = [(c.name, re.compile(pattern)) for c in catalogue.CLASSES for pattern in c.files]
    excluded = [re.compile(pattern) for pattern in catalogue.EXCLUDED]
    found, seen = [], {}
    for name, path in _all_audio(cache):
        classes = sorted({cls for cls, rule in rules if rule.fullmatch(name)})
        if not classes or any(rule.fullmatch(name) for rule in excluded):
            continue
        if len(classes) > 1:
            raise ValueError(f"{name} matches the rules of several classes: {classes}")
        digest = hashlib.sha256(path.resolve().read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen[digest] = name
        found.append((classes[0], name, path.resolve()))
    return found


def _fingerprint(path):
    mono = load_mono(path, _FINGERPRINT_RATE)[: int(_FINGERPRINT_RATE * _FINGERPRINT_SECONDS)]
    mono = mono - mono.mean()
    return mono / (np.linalg.norm(mono) + 1e-9)


def _similarity(a, b):
    """Peak of the normalised cross-correlation of two fingerprints (1: the same audio, at some lag)."""
    return float(np.max(np.abs(scipy.signal.fftconvolve(a, b[::-1], mode="full"))))


def group_recordings(files, log=print):
    """{class: {recording id: [(catalogue path, absolute path)]}}; near-identical files join one recording."""
    classes = {}
    for cls, name, path in files:
        classes.setdefault(cls, {}).setdefault(catalogue.recording_id(name), []).append((name, path))
    for cls, recordings in classes.items():
        ids = sorted(recordings)
        prints = {i: [_fingerprint(path) for _, path in recordings[i]] for i in ids}
        parent = {i: i for i in ids}

        def root(i):
            while parent[i] != i:
                i = parent[i]
            return i

        for a_index, a in enumerate(ids):
            for b in ids[a_index + 1:]:
                score = max(_similarity(x, y) for x in prints[a] for y in prints[b])
                if score >= NEAR_DUPLICATE and root(a) != root(b):
                    log(f"  {cls}: {b} joins {a} (near-identical audio, correlation {score:.2f})")
                    parent[root(b)] = root(a)
        joined = {}
        for i in ids:
            joined.setdefault(root(i), []).extend(recordings[i])
        classes[cls] = joined
    return classes


def split_recordings(classes, seed):
    """Shuffles each class's recordings (seeded) and deals them to test, val and train; classes with fewer than
    `catalogue.MIN_RECORDINGS` recordings are left out."""
    splits = {}
    for cls_index, cls in enumerate(c.name for c in catalogue.CLASSES):
        ids = sorted(classes.get(cls, {}))
        if len(ids) < catalogue.MIN_RECORDINGS:
            continue
        order = np.random.default_rng([seed, cls_index]).permutation(len(ids))
        ids = [ids[i] for i in order]
        counts = {split: max(1, int(round(share * len(ids)))) for split, share in SPLIT_SHARES.items()}
        splits[cls] = {"test": ids[:counts["test"]], "val": ids[counts["test"]:counts["test"] + counts["val"]],
                       "train": ids[counts["test"] + counts["val"]:]}
    for cls, sides in splits.items():
        taken = [set(sides[s]) for s in ("train", "val", "test")]
        assert all(sides[s] for s in sides), f"{cls}: a split has no recording"
        assert not (taken[0] & taken[1] or taken[0] & taken[2] or taken[1] & taken[2]), f"{cls}: shared recording"
    return splits


def describe(classes, splits):
    """Lines of a table: class, files, recordings, recordings per split."""
    lines = ["class        files  recordings  train/val/test"]
    for cls in (c.name for c in catalogue.CLASSES):
        recordings = classes.get(cls, {})
        files = sum(len(v) for v in recordings.values())
        sides = splits.get(cls)
        shares = "/".join(str(len(sides[s])) for s in ("train", "val", "test")) if sides else "left out"
        lines.append(f"{cls:<12} {files:>5}  {len(recordings):>10}  {shares}")
    return lines
