"""The caption grammar: words for one event (`_realise`), templates that join events, `describe`."""

import re

import numpy as np

from audiocaps_tf.data.demo.scenes import _CAPTION_STREAM
from audiocaps_tf.data.demo.sources import SOURCES

CAPTIONS_PER_CLIP = {"train": 1, "val": 5, "test": 5}
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

