"""Scenes of the benchmark: which recordings sound when (`draw_scene`) and captions that tell it (`captions`).

A scene is 10 s with 1-3 events, one of five kinds:
    single       one sound                                       "a dog growls"
    sequence     two or three sounds one after the other          "a door creaks, then glass shatters"
    during       a short sound while a longer one goes on         "a bell rings while rain falls"
    background   one or two sounds over a texture heard throughout "a cow moos with wind blowing in the background"
Every caption names the events in the order they start; "during" and "background" captions say which sound goes
on under which. A scene of split S only uses recordings dealt to S (`inventory.split_recordings`).
"""

import dataclasses

import numpy as np

import catalogue

__all__ = ["Event", "Scene", "draw_scene", "captions", "SCENE_SECONDS", "KINDS"]

SCENE_SECONDS = 10.0
KINDS = {"single": 0.2, "sequence": 0.3, "during": 0.2, "background": 0.3}  # probabilities
_CLASSES = {c.name: c for c in catalogue.CLASSES}


@dataclasses.dataclass(frozen=True)
class Event:
    """One sound of a scene: `repeats` cuts of `recording` (for a texture, one looped stretch) from `onset` for
    at most `duration` seconds; `level_db` its RMS level in dBFS."""

    cls: str
    recording: str
    onset: float
    duration: float
    repeats: int
    level_db: float
    background: bool = False


@dataclasses.dataclass(frozen=True)
class Scene:
    split: str
    index: int
    kind: str
    events: tuple  # foreground events in order of onset, then the background (if any)

    @property
    def name(self):
        return f"real-{self.split}-{self.index:05d}"

    @property
    def recordings(self):
        return {e.recording for e in self.events}

    @property
    def foreground(self):
        return [e for e in self.events if not e.background]

    @property
    def background(self):
        return next((e for e in self.events if e.background), None)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _classes(rng, available, count, texture=None):
    """`count` distinct class names from `available`; texture True/False restricts to textures / short sounds."""
    pool = [c for c in available if texture is None or _CLASSES[c].texture == texture]
    return [pool[i] for i in rng.choice(len(pool), size=count, replace=False)]


def _event(rng, cls, split_recordings, onset, duration, background=False):
    repeats = 1 if _CLASSES[cls].texture else int(rng.integers(1, 4))
    level = rng.uniform(-34, -28) if background else rng.uniform(-24, -16)
    return Event(cls, _pick(rng, split_recordings[cls]), round(onset, 2), round(duration, 2), repeats,
                 round(float(level), 1), background)


def _sequence(rng, classes, recordings, start, end):
    """Events of `classes` one after another between `start` and `end` seconds, with gaps."""
    slot = (end - start) / len(classes)
    events = []
    for i, cls in enumerate(classes):
        onset = start + i * slot + rng.uniform(0.0, 0.25 * slot)
        duration = rng.uniform(0.5, 0.75) * slot
        events.append(_event(rng, cls, recordings, onset, duration))
    return events


def draw_scene(split, index, seed, split_recordings):
    """The scene `index` of `split`, deterministic for `seed`. `split_recordings`: {class: [recording ids]} of the
    split."""
    split_code = ("train", "val", "test").index(split)
    rng = np.random.default_rng([seed, split_code, index])
    available = sorted(split_recordings)
    kind = _pick(rng, [k for k, p in KINDS.items() for _ in range(int(p * 10))])
    if kind == "single":
        (cls,) = _classes(rng, available, 1)
        onset = 0.0 if _CLASSES[cls].texture else rng.uniform(0.3, 2.0)
        events = [_event(rng, cls, split_recordings, onset, SCENE_SECONDS - onset - rng.uniform(0.0, 1.5))]
    elif kind == "sequence":
        count = int(rng.integers(2, 4))
        events = _sequence(rng, _classes(rng, available, count), split_recordings, rng.uniform(0.2, 1.0),
                           SCENE_SECONDS - rng.uniform(0.0, 0.5))
    elif kind == "during":
        (long_cls,) = _classes(rng, available, 1, texture=True)
        (short_cls,) = _classes(rng, [c for c in available if c != long_cls], 1, texture=False)
        long_onset = rng.uniform(0.0, 1.0)
        short_onset = long_onset + rng.uniform(1.5, 3.5)
        events = [_event(rng, long_cls, split_recordings, long_onset, SCENE_SECONDS - long_onset),
                  _event(rng, short_cls, split_recordings, short_onset, rng.uniform(1.5, 3.5))]
    else:  # background
        (texture,) = _classes(rng, available, 1, texture=True)
        count = int(rng.integers(1, 3))
        classes = _classes(rng, [c for c in available if c != texture], count, texture=False)
        events = _sequence(rng, classes, split_recordings, rng.uniform(0.5, 1.5), SCENE_SECONDS - 0.5)
        events.append(_event(rng, texture, split_recordings, 0.0, SCENE_SECONDS, background=True))
    return Scene(split, index, kind, tuple(events))


# Templates: {A}, {B}, {C} the foreground events in order of onset, {G} the background; ":c" a clause, ":n" a noun
# phrase.
_TEMPLATES = {
    ("single", 1): ("{A:c}", "{A:n}", "{A:n} is heard", "you can hear {A:n}"),
    ("sequence", 2): ("{A:c}, then {B:c}", "{A:n} followed by {B:n}", "{A:c} and then {B:c}",
                      "first {A:c}, then {B:c}", "{A:c} before {B:c}"),
    ("sequence", 3): ("{A:c}, then {B:c}, then {C:c}", "{A:n} followed by {B:n} and then {C:n}",
                      "first {A:c}, then {B:c}, and finally {C:c}", "{A:c}, {B:c}, and then {C:c}"),
    ("during", 2): ("{B:c} while {A:c}", "{A:c} as {B:c}", "{A:n} with {B:n} in the middle",
                    "{A:c} and meanwhile {B:c}", "{B:n} during {A:n}"),
    ("background", 1): ("{A:c} while {G:c}", "{A:n} with {G:n} in the background", "{A:c} over {G:n}",
                        "{G:c} as {A:c}"),
    ("background", 2): ("{A:c}, then {B:c} while {G:c}", "{A:n} followed by {B:n} with {G:n} in the background",
                        "{G:c} as {A:c} and then {B:c}", "over {G:n}, {A:c} and then {B:c}"),
}


def _realise(template, phrases):
    text = template
    for slot, (clause, noun) in phrases.items():
        text = text.replace(f"{{{slot}:c}}", clause).replace(f"{{{slot}:n}}", noun)
    return text


def captions(scene, count, seed):
    """`count` distinct captions of `scene` (fewer only if the templates run out), deterministic for `seed`."""
    split_code = ("train", "val", "test").index(scene.split)
    rng = np.random.default_rng([seed, split_code, scene.index, 1])
    foreground = scene.foreground
    templates = _TEMPLATES[(scene.kind, len(foreground))]
    slots = dict(zip("ABC", foreground))
    if scene.background is not None:
        slots["G"] = scene.background
    made, attempts = [], 0
    while len(made) < count and attempts < 50 * count:
        attempts += 1
        phrases = {}
        for slot, event in slots.items():
            variant = int(rng.integers(len(_CLASSES[event.cls].clauses)))
            phrases[slot] = (_CLASSES[event.cls].clauses[variant], _CLASSES[event.cls].nouns[variant])
        text = _realise(_pick(rng, templates), phrases)
        if text not in made:
            made.append(text)
    return made
