"""The source table: for each of the 25 synthetic sources its renderer, timing ranges and the words captions use.

The renderers are in sources_nature.py, sources_people.py and sources_machines.py.
"""

import dataclasses
import functools

from audiocaps_tf.data.demo.sources_machines import (
    _render_bell, _render_car_horn, _render_clock, _render_drill, _render_engine, _render_helicopter,
    _render_phone, _render_siren,
)
from audiocaps_tf.data.demo.sources_nature import (
    _render_birds, _render_cat, _render_crickets, _render_dog, _render_rain, _render_thunder, _render_water,
    _render_wind,
)
from audiocaps_tf.data.demo.sources_people import (
    _render_applause, _render_baby, _render_footsteps, _render_hammer, _render_knocking, _render_speech,
    _render_typing, _render_whistle,
)


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

