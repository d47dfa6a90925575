"""Caption metrics through pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr (CIDEr-D), SPICE and SPIDEr.

    scores = score_captions({clip: caption}, {clip: [reference, ...]})       # {"BLEU_1": 65.4, ..., "SPICE": None}
    scores, per_clip = score_captions(predictions, references, per_clip=True)  # per_clip: {clip: {metric: value}}
    bound = human_upper_bound({clip: [reference, ...]})                        # the paper's "Human" row

Every score is x100. Captions are tokenized and lower-cased by pycocoevalcap's PTB tokenizer (Stanford CoreNLP 3.4.1,
punctuation dropped) before any metric sees them, as in COCO caption evaluation. BLEU, ROUGE-L and CIDEr are
pycocoevalcap's Python scorers (CIDEr is its `Cider`, i.e. CIDEr-D: clipped counts, Gaussian length penalty, sigma 6);
METEOR is its bundled meteor-1.5.jar. Corpus BLEU is the corpus-level score ("closest" reference length); the per-clip
BLEU of `per_clip=True` is pycocoevalcap's sentence-level BLEU. CIDEr's document frequencies come from the references
being scored, so CIDEr of a single clip is always 0: score a whole split.

Java: the tokenizer, METEOR and SPICE are Java programs. This module starts them itself (not through pycocoevalcap's
wrappers) so that each runs with an English locale (`-Duser.language=en -Duser.country=US`, which METEOR's number
output needs), UTF-8 I/O, a timeout (`AUDIOCAPS_METRICS_TIMEOUT` seconds per Java call; default 600, SPICE 3600), and
no writes into the installed package. `java` must be on PATH (Java 8 or newer), else `JavaNotFoundError`.

SPICE needs Stanford CoreNLP 3.6.0 (`stanford-corenlp-3.6.0.jar` and `stanford-corenlp-3.6.0-models.jar`, from
http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip, about 390 MB), which pycocoevalcap does not ship
and this module never downloads (pycocoevalcap's `Spice()` would, and hangs or fails offline). The jars are looked for
in, first found wins: `spice_dir` (or `--spice-dir`), the directory named by `AUDIOCAPS_SPICE_DIR`, then pycocoevalcap's
own `spice/lib`. They are used where they are (on the Java class path; nothing is copied or linked). With
`spice=None` (the default) a missing CoreNLP makes SPICE and SPIDEr None and warns once per process how to enable them;
`spice=True` makes it an error (`SpiceUnavailableError`); `spice=False` skips SPICE silently.
SPICE 1.0 pretty-prints its JSON output through the Nashorn JavaScript engine, which Java 15 removed (the usual
"SPICE needs Java 8-13" failure), and its parse cache uses LMDB/fst, which break on newer Javas. So on Java 11+ this
module runs SPICE through a small launcher (`_SPICE_LAUNCHER`, compiled by `java` itself) that calls SPICE's own
scorer and writes its per-clip JSON directly, without the cache; on Java 8-10 it runs SPICE's command line as
pycocoevalcap does (minus the cache). That SPICE then parses correctly on Java 17 could not be checked where this was
written (no CoreNLP jars offline); if it fails, the error shows SPICE's output: pass `spice=False` / `--no-spice`.
SPICE averages each clip's tuple F-score over clips; a clip whose F-score is undefined (e.g. an empty caption, which
is not sent to SPICE) counts as 0. SPIDEr = (CIDEr + SPICE) / 2.

Speed: all captions go through one tokenizer run; METEOR and SPICE run in threads while BLEU/ROUGE-L/CIDEr are
computed in Python. METEOR spends about 10 s loading its paraphrase table, so its process is started once and kept for
later calls (about 1 GB; `close_java()` stops it). 975 clips x 5 references take well under a minute.

    java.py      finding and running Java; the PTB tokenizer
    meteor.py    the METEOR process kept between calls
    spice.py     SPICE with Stanford CoreNLP 3.6.0, found where the user put it
    scoring.py   score_captions, human_upper_bound, format_table
"""

from audiocaps_tf.metrics.java import (
    JAVA_INSTALL_HINT,
    TIMEOUT_ENV,
    JavaNotFoundError,
    MetricsError,
    find_java,
    java_major_version,
    tokenize,
)
from audiocaps_tf.metrics.meteor import close_java
from audiocaps_tf.metrics.scoring import (
    METRICS,
    PAPER_NAMES,
    PAPER_ORDER,
    format_table,
    human_upper_bound,
    score_captions,
)
from audiocaps_tf.metrics.spice import (
    CORENLP_JARS,
    CORENLP_URL,
    SPICE_DIR_ENV,
    SpiceUnavailableError,
    SpiceUnavailableWarning,
    find_spice_dir,
    spice_warnings_as_messages,
)

__all__ = [
    "METRICS",
    "PAPER_ORDER",
    "PAPER_NAMES",
    "SPICE_DIR_ENV",
    "TIMEOUT_ENV",
    "CORENLP_JARS",
    "CORENLP_URL",
    "JAVA_INSTALL_HINT",
    "MetricsError",
    "JavaNotFoundError",
    "SpiceUnavailableError",
    "SpiceUnavailableWarning",
    "score_captions",
    "human_upper_bound",
    "format_table",
    "tokenize",
    "find_java",
    "java_major_version",
    "find_spice_dir",
    "close_java",
    "spice_warnings_as_messages",
]
