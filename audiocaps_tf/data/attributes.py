"""Attribute words for semantic attention (paper section 4.2) and 1-nearest-neighbour retrieval (section 5.2).

A clip's attribute words are its `labels` (the optional CSV column: AudioSet word labels, the paper's GT variant)
or, when it has none, keywords of its captions: content words (not in `STOP_WORDS`) that belong to a keyword
vocabulary of the K most frequent content words of the training captions. Multi-word labels ("car horn") stay
one attribute string.

The 1NN variant gives a clip the attributes of its nearest training clip (`audiocaps_tf.neighbours`: mean-pooled
features, L2 distance, as the paper's retrieval baselines; re-exported here).

Keywords are surface forms after `normalize_caption` (no lemmatiser): "dog" and "dogs", "barks" and "barking"
are different keywords, as they are different words of the caption vocabulary.
"""

import collections

from audiocaps_tf.neighbours import DEFAULT_BLOCK_SIZE, mean_pool, nearest_training_clips
from audiocaps_tf.tokens.captions import tokenize

__all__ = [
    "STOP_WORDS",
    "DEFAULT_KEYWORDS",
    "DEFAULT_BLOCK_SIZE",
    "content_words",
    "build_keyword_vocabulary",
    "caption_keywords",
    "clip_attributes",
    "mean_pool",
    "nearest_training_clips",
    "nearest_neighbour_attributes",
]

# Keyword statistics with these stop words (official CSVs; train has 1 caption per clip, val/test have 5):
#   K     fewest train uses   train: clips with >= 1 keyword, mean (median)   val: mean   test: mean
#   75    505                 89.5 %, 2.31 (2)                                 5.49        6.76
#   150   284                 95.7 %, 2.85 (3)                                 6.92        8.78
#   300   116                 98.7 %, 3.38 (3)                                 8.62        11.02
#   500   53                  99.5 %, 3.69 (4)                                 9.92        12.47
#   1000  14                  99.9 %, 3.95 (4)                                 11.13       13.75
# Captions are noisier than the paper's curated 75-label set (each source comes in several inflections and
# synonyms: "dog", "dogs", "barks", "barking", "bark"), so 75 keywords leave 10 % of train clips without any.
# K = 300 covers 98.7 % with 3.4 words per train clip (the paper's Table 1: 4.25 labels per train clip) and
# keeps only words used at least 116 times in train, often enough for their embeddings to be learnt; larger
# K adds rare words for little coverage. Clips with 5 captions get many more keywords: use `max_words` to cap.
DEFAULT_KEYWORDS = 300

_FUNCTION_WORDS = """
a an the this that these those there here
i me my mine you your yours he him his she her hers it its itself they them their theirs we us our ours
himself herself themselves someone somebody something anyone anybody anything everyone everybody everything
no none nobody nothing who whom whose which what whatever when where why how
am is are was were be been being has have had having do does did doing done
can could will would shall should may might must
and or but nor so yet if than because though although whether either neither both
of in on at by for with without from to into onto upon over under above below across along alongside
around about against among amongst between through throughout toward towards within up down off out away
past near beside besides behind beyond inside outside via per like unlike despite except
as while then before after during until till since once twice again also too very just only even still
not all any some each every few several many much more most less least other another others such same own
various different multiple numerous lots lot bunch couple pair group series kind sort type
together apart back forth ahead else instead ever never always already soon almost nearly quite rather really
slightly barely mostly mainly somewhat extremely fairly simultaneously alternately perhaps maybe probably
possibly apparently seemingly
theres thats whats theyre youre hes shes isnt arent wasnt werent dont doesnt didnt cant wont
""".split()

# Caption scaffolding: words any caption can contain whatever the sound, so they tell no source or event apart.
_CAPTION_FILLER = """
sound sounds sounding noise noises audio recording clip video
background foreground distance distant nearby far close closer closely somewhere
indoors outdoors
followed follows following accompanied
occurs occur occurring occurred happens happening heard hear hears present
starts start starting started begins begin beginning began continues continue continuing continued
ongoing stops stop stopping stopped ends end ending ended
makes make making made gives give giving gave goes go going gone gets get getting got comes come coming
uses use using used
time times moment moments
thing things object objects item items surface
loud loudly louder loudest quiet quietly quieter soft softly softer faint faintly
volume frequency pitch pitched high higher low lower
brief briefly short shortly long longer quick quickly rapid rapidly fast slow slowly
continuous continuously constant constantly consistently steady steadily repeated repeatedly repetitive
occasional occasionally periodic periodically intermittent intermittently sometimes frequently
suddenly eventually finally later now first next last
small smaller large larger big bigger little tiny huge
heavy heavily light lightly strong strongly gentle gently hard harder moderate moderately medium mid
""".split()

_NUMBER_WORDS = """
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
seventeen eighteen nineteen twenty thirty forty fifty hundred thousand
""".split()

STOP_WORDS = frozenset(_FUNCTION_WORDS + _CAPTION_FILLER + _NUMBER_WORDS)
"""Words never used as keywords.

Three groups, written as `normalize_caption` leaves them (lowercase, apostrophes dropped: "it's" -> "its"):
- English function words: articles, pronouns (incl. "someone", "something"), prepositions, conjunctions,
  auxiliaries and modals, contractions ("theres", "isnt"), quantifiers ("several", "multiple", "some"),
  connectives ("then", "while", "as") and adverbs of degree or time ("very", "again", "together").
- Caption filler that carries no sound identity: "sound(s)", "noise(s)" (both follow any source: "engine noise"),
  where the sound is ("background", "distance", "nearby"), when and how it happens ("followed", "occurs",
  "starts", "continuously", "briefly", "repeatedly"), light verbs ("makes", "gives", "goes"), generic things
  ("object", "surface", "times") and modifiers of loudness, pitch, duration, speed, size and intensity ("loud",
  "faint", "high", "pitched", "small", "heavy"): they describe how a sound is heard, not what makes it, and a
  neighbour's modifiers transfer poorly in the 1NN variant.
- Number words, which `normalize_caption` makes of digits ("two men") and which count rather than name sources.

Kept: sources ("dog", "engine", "man", "people", "water"), sound events and actions in every inflection ("barks",
"barking", "speaks", "revving", "running", "plays"), materials ("metal", "wood", "plastic") and words that name a
kind of source ("emergency", "electronic", "mechanical", "male", "female", "adult", "young").
"""


def content_words(caption):
    """The caption's normalised words that are neither stop words nor single letters, in order (with repeats)."""
    return [w for w in tokenize(caption) if len(w) > 1 and w.isalpha() and w not in STOP_WORDS]


def build_keyword_vocabulary(captions, size=DEFAULT_KEYWORDS):
    """The `size` most frequent content words of `captions` (train captions), most frequent first.

    Ties are broken alphabetically, so the result does not depend on caption order. `size=None` keeps them all.
    """
    counts = collections.Counter(w for caption in captions for w in content_words(caption))
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return ranked if size is None else ranked[:size]


def caption_keywords(captions, keyword_vocabulary, max_words=None):
    """The clip's keywords: content words of any of its captions that are in `keyword_vocabulary`.

    Each keyword appears once, ordered by how often it occurs in the clip's captions (most first), ties by first
    appearance (caption order, then word order). `max_words` keeps only the first that many.
    """
    vocabulary = keyword_vocabulary if isinstance(keyword_vocabulary, (set, frozenset, dict)) else set(keyword_vocabulary)
    if isinstance(captions, str):
        captions = [captions]
    counts = collections.Counter()
    for caption in captions:
        counts.update(w for w in content_words(caption) if w in vocabulary)
    # Counter keeps first-insertion order, and sorted() is stable: equal counts stay in order of first appearance.
    keywords = sorted(counts, key=lambda w: -counts[w])
    return keywords if max_words is None else keywords[:max_words]


def clip_attributes(clip, keyword_vocabulary, max_words=None):
    """The clip's attribute words: `list(clip.labels)` when it has labels, else its caption keywords.

    Labels are kept whole ("car horn" is one attribute) and in their CSV order; `max_words` caps either list.
    """
    attributes = list(clip.labels) if clip.labels else caption_keywords(clip.captions, keyword_vocabulary)
    return attributes if max_words is None else attributes[:max_words]


def nearest_neighbour_attributes(query_features, train_features, train_attributes, exclude_self=False,
                                 block_size=DEFAULT_BLOCK_SIZE):
    """The 1NN variant: each query gets (a copy of) the attribute list of its nearest training clip."""
    train = mean_pool(train_features)
    train_attributes = list(train_attributes)
    if len(train_attributes) != len(train):
        raise ValueError(f"{len(train_attributes)} attribute lists for {len(train)} train clips")
    indices = nearest_training_clips(query_features, train, exclude_self=exclude_self, block_size=block_size)
    return [list(train_attributes[i]) for i in indices]
