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
"""

import atexit
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings

import numpy as np

# pycocoevalcap's Python scorers; its Java wrappers (PTBTokenizer, Meteor, Spice) are replaced below.
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

METRICS = ("BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE", "SPIDEr")
# The column order of the paper's Table 2 (B-1..B-4, METEOR, CIDEr, ROUGE-L, SPICE), then SPIDEr.
PAPER_ORDER = ("BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "METEOR", "CIDEr", "ROUGE_L", "SPICE", "SPIDEr")
PAPER_NAMES = {
    "BLEU_1": "B-1", "BLEU_2": "B-2", "BLEU_3": "B-3", "BLEU_4": "B-4", "METEOR": "METEOR",
    "CIDEr": "CIDEr", "ROUGE_L": "ROUGE-L", "SPICE": "SPICE", "SPIDEr": "SPIDEr",
}

SPICE_DIR_ENV = "AUDIOCAPS_SPICE_DIR"
TIMEOUT_ENV = "AUDIOCAPS_METRICS_TIMEOUT"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
CORENLP_URL = "http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip"
JAVA_LOCALE = ("-Duser.language=en", "-Duser.country=US", "-Dfile.encoding=UTF-8")
# PTBTokenizer tokens pycocoevalcap drops (the same list as its ptbtokenizer.py).
PUNCTUATION = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                         ".", "?", "!", ",", ":", "-", "--", "...", ";"])
DEFAULT_TIMEOUT = 600.0
DEFAULT_SPICE_TIMEOUT = 3600.0


class MetricsError(RuntimeError):
    """A metric program could not run or gave unreadable output; the message says which and why."""


class JavaNotFoundError(MetricsError):
    """No `java` on PATH."""


class SpiceUnavailableError(MetricsError):
    """SPICE was asked for but Stanford CoreNLP 3.6.0 is not where it was looked for."""


class SpiceUnavailableWarning(UserWarning):
    """SPICE and SPIDEr were skipped because Stanford CoreNLP 3.6.0 is missing."""


@contextlib.contextmanager
def spice_warnings_as_messages():
    """For the commands: a `SpiceUnavailableWarning` prints as `warning: ...` on stderr, without the source line
    Python would show; other warnings are shown as usual."""
    with warnings.catch_warnings():
        show_other_warnings = warnings.showwarning

        def show_warning(message, category, *rest, **kwargs):
            if issubclass(category, SpiceUnavailableWarning):
                print(f"warning: {message}", file=sys.stderr)
            else:
                show_other_warnings(message, category, *rest, **kwargs)

        warnings.showwarning = show_warning
        yield


def _package_dir():
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise MetricsError("pycocoevalcap is not installed: pip install pycocoevalcap")
    return pathlib.Path(list(spec.submodule_search_locations)[0])


PYCOCOEVALCAP_DIR = _package_dir()
TOKENIZER_JAR = PYCOCOEVALCAP_DIR / "tokenizer" / "stanford-corenlp-3.4.1.jar"
METEOR_JAR = PYCOCOEVALCAP_DIR / "meteor" / "meteor-1.5.jar"
SPICE_JAR = PYCOCOEVALCAP_DIR / "spice" / "spice-1.0.jar"
SPICE_LIB = PYCOCOEVALCAP_DIR / "spice" / "lib"  # the jars SPICE itself needs (bundled)
DEFAULT_CORENLP_DIR = SPICE_LIB  # where pycocoevalcap's own download would have put CoreNLP 3.6.0

JAVA_INSTALL_HINT = (
    "install a Java runtime (8 or newer) and put `java` on PATH, e.g. `sudo apt-get install default-jre` "
    "(Debian/Ubuntu), `conda install -c conda-forge openjdk` or `brew install openjdk`"
)


# ----------------------------------------------------------------------------------------------------------------------
# Java


def find_java():
    """Path of the `java` executable on PATH; JavaNotFoundError naming what to install if there is none."""
    java = shutil.which("java")
    if java is None:
        raise JavaNotFoundError(
            "caption metrics (PTB tokenizer, METEOR, SPICE from pycocoevalcap) run on Java, and no `java` is on "
            f"PATH: {JAVA_INSTALL_HINT}."
        )
    return java


_java_versions = {}


def java_major_version(java):
    """8 for "1.8.0_x", 17 for "17.0.15"; 0 when `java -version` cannot be read."""
    if java not in _java_versions:
        try:
            out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
            match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
        except (OSError, subprocess.TimeoutExpired):
            match = None
        major = 0
        if match:
            major = int(match.group(1))
            if major == 1 and match.group(2):
                major = int(match.group(2))
        _java_versions[java] = major
    return _java_versions[java]


def _timeout(default):
    value = os.environ.get(TIMEOUT_ENV)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise MetricsError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None


def _tail(text, head=12, tail=5):
    """The start (where Java names the exception) and the end of a program's error output."""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else (text or "")
    lines = text.strip().splitlines()
    if len(lines) > head + tail + 1:
        lines = lines[:head] + ["..."] + lines[-tail:]
    return "\n".join(lines)


def _run_java(java, args, name, input_text=None, timeout=DEFAULT_TIMEOUT, cwd=None):
    """Runs `java <locale> args`, returns stdout; MetricsError with stderr's tail on failure or timeout."""
    command = [java, *JAVA_LOCALE, *args]
    timeout = _timeout(timeout)
    try:
        done = subprocess.run(command, input=None if input_text is None else input_text.encode("utf-8"),
                              capture_output=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise MetricsError(f"{name} did not finish within {timeout:.0f} s (set {TIMEOUT_ENV} to wait longer)") from None
    except OSError as err:
        raise MetricsError(f"{name} could not start `{java}`: {err}") from None
    if done.returncode != 0:
        raise MetricsError(f"{name} failed (exit code {done.returncode}):\n{_tail(done.stderr) or _tail(done.stdout)}")
    return done.stdout.decode("utf-8", "replace")


# ----------------------------------------------------------------------------------------------------------------------
# Tokenizer


def _one_line(text):
    # Any Unicode line or paragraph separator would split a caption over two tokenizer lines.
    return " ".join(text.split())


def tokenize(captions, java=None):
    """pycocoevalcap's tokenization of each caption: PTBTokenizer, lower case, punctuation tokens dropped.

    One Java run for the whole list; an empty (or punctuation-only) caption gives "".
    """
    java = java or find_java()
    lines = [_one_line(c) for c in captions]
    todo = [i for i, line in enumerate(lines) if line]
    tokenized = [""] * len(lines)
    if not todo:
        return tokenized
    args = ["-cp", str(TOKENIZER_JAR), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
    out = _run_java(java, args, "the PTB tokenizer", input_text="\n".join(lines[i] for i in todo) + "\n")
    out_lines = out.split("\n")
    if out_lines and out_lines[-1] == "":
        out_lines.pop()
    if len(out_lines) != len(todo):
        raise MetricsError(f"the PTB tokenizer returned {len(out_lines)} lines for {len(todo)} captions")
    for i, line in zip(todo, out_lines):
        tokenized[i] = " ".join(w for w in line.split() if w not in PUNCTUATION)
    return tokenized


# ----------------------------------------------------------------------------------------------------------------------
# METEOR


class _Meteor:
    """One meteor-1.5.jar process (`-stdio -l en -norm`, as pycocoevalcap) scoring any number of corpora."""

    def __init__(self, java):
        self._stderr = tempfile.TemporaryFile()
        command = [java, "-Xmx2G", *JAVA_LOCALE, "-jar", str(METEOR_JAR), "-", "-", "-stdio", "-l", "en", "-norm"]
        try:
            self._process = subprocess.Popen(command, cwd=METEOR_JAR.parent, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=self._stderr)
        except OSError as err:
            self._stderr.close()
            raise MetricsError(f"METEOR could not start `{java}`: {err}") from None
        self._timed_out = False
        self.java = java

    def usable_with(self, java):
        """Still running, and started with this `java`."""
        return self._process.poll() is None and self.java == java

    def _kill(self):
        self._timed_out = True
        self._process.kill()

    def _readline(self):
        line = self._process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            why = f"did not finish within {self._timeout:.0f} s" if self._timed_out else "stopped"
            raise MetricsError(f"METEOR {why}:\n{_tail(self._stderr.read())}")
        return line.decode("utf-8", "replace").strip()

    def _float(self, line):
        try:
            return float(line)
        except ValueError:
            raise MetricsError(f"METEOR printed {line!r} where a score was expected") from None

    def score(self, hypotheses, references):
        """(corpus METEOR, [segment METEOR]) in [0, 1] of tokenized hypotheses against their reference lists."""
        lines = []
        for hypothesis, refs in zip(hypotheses, references):
            fields = [r.replace("|||", "") for r in refs] + [hypothesis.replace("|||", "")]
            lines.append("SCORE ||| " + " ||| ".join(fields) + "\n")
        self._timeout = _timeout(DEFAULT_TIMEOUT)
        watchdog = threading.Timer(self._timeout, self._kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            stdin = self._process.stdin

            def write_all():
                try:
                    stdin.write("".join(lines).encode("utf-8"))
                    stdin.flush()
                except (BrokenPipeError, ValueError, OSError):
                    pass  # the reader reports the failure

            writer = threading.Thread(target=write_all, daemon=True)
            writer.start()
            stats = [self._readline() for _ in lines]
            writer.join()
            try:
                stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
                stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            segments = [self._float(self._readline()) for _ in lines]
            corpus = self._float(self._readline())
        finally:
            watchdog.cancel()
        return corpus, segments

    def close(self):
        try:
            self._process.stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        self._stderr.close()


_meteor_lock = threading.Lock()
_meteor = None


def _meteor_scores(java, corpora):
    """[(corpus METEOR, segment METEOR)] of each corpus, from the METEOR process kept for this Python process.

    METEOR takes about 10 s to load its paraphrase table, so its process (about 1 GB) is started once and reused by
    later calls (e.g. validation every epoch); `close_java()` stops it, as does the end of the Python process.
    """
    global _meteor
    with _meteor_lock:
        if _meteor is not None and not _meteor.usable_with(java):
            _meteor.close()
            _meteor = None
        if _meteor is None:
            _meteor = _Meteor(java)
        try:
            return [_meteor.score(corpus.hypotheses, corpus.references) for corpus in corpora]
        except BaseException:
            _meteor.close()  # a process that failed (or was killed) is not reused
            _meteor = None
            raise


def close_java():
    """Stops the METEOR process kept between calls (a later call starts a new one)."""
    global _meteor
    with _meteor_lock:
        if _meteor is not None:
            _meteor.close()
            _meteor = None


atexit.register(close_java)


# ----------------------------------------------------------------------------------------------------------------------
# SPICE

# Runs SPICE's own scorer (SpiceScorer.scoreBatch, without -out and without a cache) and writes its per-clip results
# (SpiceStats.toJSONString) itself, skipping the Nashorn pretty-printer that Java 15+ lacks.
# Arguments: input.json output.json threads.
_SPICE_LAUNCHER = """\
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

public class AudiocapsSpice {
    public static void main(String[] argv) throws Throwable {
        Class<?> argumentsClass = Class.forName("edu.anu.spice.SpiceArguments");
        Constructor<?> makeArguments = argumentsClass.getDeclaredConstructor(String[].class);
        makeArguments.setAccessible(true);
        Object arguments = makeArguments.newInstance((Object) new String[] {argv[0], "-threads", argv[2], "-silent"});
        Class<?> scorerClass = Class.forName("edu.anu.spice.SpiceScorer");
        Constructor<?> makeScorer = scorerClass.getDeclaredConstructor();
        makeScorer.setAccessible(true);
        Object scorer = makeScorer.newInstance();
        try {
            scorerClass.getMethod("scoreBatch", argumentsClass).invoke(scorer, arguments);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
        Object stats = scorerClass.getField("stats").get(scorer);
        String json = (String) stats.getClass().getMethod("toJSONString").invoke(stats);
        Files.write(Paths.get(argv[1]), json.getBytes(StandardCharsets.UTF_8));
    }
}
"""

_spice_warned = False


def _has_corenlp(directory):
    return all((pathlib.Path(directory) / jar).is_file() for jar in CORENLP_JARS)


def _spice_help(where):
    return (
        f"Stanford CoreNLP 3.6.0 ({' and '.join(CORENLP_JARS)}) was not found in {where}. To enable SPICE and "
        f"SPIDEr, download {CORENLP_URL} (about 390 MB), put those two jars from it in a directory DIR and set "
        f"{SPICE_DIR_ENV}=DIR (or pass --spice-dir DIR / spice_dir=DIR). SPICE also needs up to 8 GB of Java heap."
    )


def find_spice_dir(spice_dir=None):
    """The directory holding both CoreNLP 3.6.0 jars, or None.

    Looks in `spice_dir`, else `$AUDIOCAPS_SPICE_DIR`, then pycocoevalcap's spice/lib. An explicit `spice_dir`
    without the jars raises SpiceUnavailableError.
    """
    if spice_dir is not None:
        if not _has_corenlp(spice_dir):
            raise SpiceUnavailableError(_spice_help(f"spice_dir {spice_dir}"))
        return pathlib.Path(spice_dir)
    candidates = [os.environ[SPICE_DIR_ENV]] if os.environ.get(SPICE_DIR_ENV) else []
    candidates.append(DEFAULT_CORENLP_DIR)
    for directory in candidates:
        if _has_corenlp(directory):
            return pathlib.Path(directory)
    return None


def _resolve_spice(spice, spice_dir):
    """The CoreNLP directory to run SPICE with, or None (after the once-per-process warning when spice is None)."""
    global _spice_warned
    if spice is False:
        return None
    found = find_spice_dir(spice_dir)
    if found is not None:
        return found
    searched = ([f"${SPICE_DIR_ENV} ({os.environ[SPICE_DIR_ENV]})"] if os.environ.get(SPICE_DIR_ENV) else [])
    searched.append(str(DEFAULT_CORENLP_DIR))
    where = " or ".join(searched)
    if spice:
        raise SpiceUnavailableError(_spice_help(where))
    if not _spice_warned:
        _spice_warned = True
        warnings.warn("SPICE and SPIDEr are skipped (None): " + _spice_help(where), SpiceUnavailableWarning,
                      stacklevel=3)
    return None


def _run_spice(java, corenlp_dir, items):
    """{item id: SPICE F-score in [0, 1] (NaN when undefined)} for items [(id, test caption, [references])]."""
    classpath = os.pathsep.join([str(SPICE_JAR), str(SPICE_LIB / "*"),
                                 *(str(pathlib.Path(corenlp_dir) / jar) for jar in CORENLP_JARS)])
    with tempfile.TemporaryDirectory(prefix="audiocaps_spice_") as tmp:
        tmp = pathlib.Path(tmp)
        in_path, out_path = tmp / "input.json", tmp / "output.json"
        data = [{"image_id": item_id, "test": test, "refs": list(refs)} for item_id, test, refs in items]
        in_path.write_text(json.dumps(data, ensure_ascii=True), encoding="ascii")
        if java_major_version(java) >= 11:
            launcher = tmp / "AudiocapsSpice.java"
            launcher.write_text(_SPICE_LAUNCHER, encoding="ascii")
            args = ["-Xmx8G", "-cp", classpath, str(launcher), str(in_path), str(out_path), str(os.cpu_count() or 1)]
        else:
            args = ["-Xmx8G", "-cp", classpath, "edu.anu.spice.SpiceScorer", str(in_path),
                    "-out", str(out_path), "-silent"]
        try:
            _run_java(java, args, "SPICE", timeout=DEFAULT_SPICE_TIMEOUT, cwd=tmp)
        except MetricsError as err:
            raise MetricsError(f"{err}\n(SPICE used CoreNLP from {corenlp_dir}; pass spice=False / --no-spice to "
                               "score without it)") from None
        try:
            results = json.loads(out_path.read_text(encoding="utf-8"))
            return {r["image_id"]: _finite_or_nan(r["scores"]["All"]["f"]) for r in results}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise MetricsError(f"SPICE's output could not be read: {err}") from None


def _finite_or_nan(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


# ----------------------------------------------------------------------------------------------------------------------
# Scoring


@dataclasses.dataclass
class _Corpus:
    """One set of tokenized hypotheses (one per clip) with their tokenized references."""

    hypotheses: list
    references: list


def _score_corpora(corpora, java, corenlp_dir):
    """[(scores x100, {metric: [per-clip x100]})] for each corpus; Java scorers run in threads meanwhile."""
    results = [dict() for _ in corpora]
    per_clip = [dict() for _ in corpora]
    errors = []

    def run_meteor():
        try:
            for i, (score, segments) in enumerate(_meteor_scores(java, corpora)):
                results[i]["METEOR"] = 100 * score
                per_clip[i]["METEOR"] = [100 * s for s in segments]
        except BaseException as err:  # re-raised in the calling thread
            errors.append(err)

    def run_spice():
        try:
            items = [(f"{i}:{j}", hypothesis, refs)
                     for i, corpus in enumerate(corpora)
                     for j, (hypothesis, refs) in enumerate(zip(corpus.hypotheses, corpus.references))
                     if hypothesis]
            f_scores = _run_spice(java, corenlp_dir, items) if items else {}
            for i, corpus in enumerate(corpora):
                clip_scores = [f_scores.get(f"{i}:{j}", math.nan) for j in range(len(corpus.hypotheses))]
                clip_scores = [0.0 if math.isnan(s) else 100 * s for s in clip_scores]
                per_clip[i]["SPICE"] = clip_scores
                results[i]["SPICE"] = float(np.mean(clip_scores))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run_meteor, daemon=True)]
    if corenlp_dir is not None:
        threads.append(threading.Thread(target=run_spice, daemon=True))
    for thread in threads:
        thread.start()
    try:
        for i, corpus in enumerate(corpora):
            gts = {j: list(refs) for j, refs in enumerate(corpus.references)}
            res = {j: [hypothesis] for j, hypothesis in enumerate(corpus.hypotheses)}
            bleu, bleu_clips = Bleu(4).compute_score(gts, res, verbose=0)
            for n in range(4):
                results[i][f"BLEU_{n + 1}"] = 100 * float(bleu[n])
                per_clip[i][f"BLEU_{n + 1}"] = [100 * float(s) for s in bleu_clips[n]]
            rouge, rouge_clips = Rouge().compute_score(gts, res)
            results[i]["ROUGE_L"] = 100 * float(rouge)
            per_clip[i]["ROUGE_L"] = [100 * float(s) for s in rouge_clips]
            cider, cider_clips = Cider().compute_score(gts, res)
            results[i]["CIDEr"] = 100 * float(cider)
            per_clip[i]["CIDEr"] = [100 * float(s) for s in cider_clips]
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    for scores, clips in zip(results, per_clip):
        scores.setdefault("SPICE", None)
        if scores["SPICE"] is None:
            scores["SPIDEr"] = None
            n = len(clips["CIDEr"])
            clips["SPICE"] = clips["SPIDEr"] = [None] * n
        else:
            scores["SPIDEr"] = (scores["CIDEr"] + scores["SPICE"]) / 2
            clips["SPIDEr"] = [(c + s) / 2 for c, s in zip(clips["CIDEr"], clips["SPICE"])]
    return [({m: scores[m] for m in METRICS}, clips) for scores, clips in zip(results, per_clip)]


def _check_inputs(predictions, references):
    if not predictions:
        raise ValueError("no predictions to score")
    missing = [k for k in references if k not in predictions]
    unknown = [k for k in predictions if k not in references]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"{len(missing)} clip(s) of the references have no prediction, e.g. {missing[:5]}")
        if unknown:
            parts.append(f"{len(unknown)} prediction(s) are for clips without references, e.g. {unknown[:5]}")
        raise ValueError("predictions and references must cover the same clips: " + "; ".join(parts))
    for clip, caption in predictions.items():
        if not isinstance(caption, str):
            raise ValueError(f"the prediction for {clip!r} is a {type(caption).__name__}, not a str")
        refs = references[clip]
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"the references of {clip!r} must be a non-empty list of str, got {refs!r}")


def score_captions(predictions, references, spice=None, spice_dir=None, per_clip=False):
    """Scores one predicted caption per clip against that clip's references.

    Args:
      predictions: {clip: caption}; an empty caption is scored (as nothing).
      references: {clip: [caption, ...]} for exactly the clips of `predictions`.
      spice: None = SPICE when Stanford CoreNLP 3.6.0 is found, else None with one warning per process;
        True = SPICE or SpiceUnavailableError; False = no SPICE.
      spice_dir: a directory holding the two CoreNLP 3.6.0 jars (else $AUDIOCAPS_SPICE_DIR, pycocoevalcap's spice/lib).
      per_clip: also return {clip: {metric: value}}.

    Returns:
      {metric: score x100} for every name in METRICS (SPICE and SPIDEr None without SPICE), or
      (that dict, {clip: {metric: score x100}}) with per_clip=True.
    """
    _check_inputs(predictions, references)
    java = find_java()
    corenlp_dir = _resolve_spice(spice, spice_dir)
    clips = list(predictions)
    flat = [predictions[c] for c in clips] + [r for c in clips for r in references[c]]
    tokens = iter(tokenize(flat, java))
    hypotheses = [next(tokens) for _ in clips]
    refs = [[next(tokens) for _ in references[c]] for c in clips]
    [(scores, clip_scores)] = _score_corpora([_Corpus(hypotheses, refs)], java, corenlp_dir)
    if not per_clip:
        return scores
    return scores, {clip: {m: clip_scores[m][j] for m in METRICS} for j, clip in enumerate(clips)}


def human_upper_bound(references, spice=None, spice_dir=None):
    """The paper's "Human" row: each reference in turn scored as the prediction against the clip's other references.

    Turn k (k = 1 .. the largest number of references of a clip) takes the k-th reference of every clip that has
    at least k references as the prediction and that clip's other references as the references, and is scored as
    one corpus (so BLEU and CIDEr see the whole split). The result is the mean of the turns weighted by their
    number of clips, which is the plain mean of the paper when every clip has the same number of references
    (AudioCaps test: 5), and otherwise counts every (clip, held-out reference) pair once. Clips with fewer than two
    references cannot be scored and are skipped.

    Returns {metric: score x100 for METRICS, "num_clips": clips scored, "skipped": clips with < 2 references,
    "turns": number of turns}.
    """
    eligible = [c for c, refs in references.items() if len(refs) >= 2]
    skipped = len(references) - len(eligible)
    if not eligible:
        raise ValueError(f"no clip has two or more references ({skipped} clip(s) with fewer were skipped)")
    for clip in eligible:
        if isinstance(references[clip], str) or not all(isinstance(r, str) for r in references[clip]):
            raise ValueError(f"the references of {clip!r} must be a list of str")
    java = find_java()
    corenlp_dir = _resolve_spice(spice, spice_dir)
    tokens = iter(tokenize([r for c in eligible for r in references[c]], java))
    tokenized = {c: [next(tokens) for _ in references[c]] for c in eligible}
    turns = max(len(refs) for refs in tokenized.values())
    corpora, sizes = [], []
    for k in range(turns):
        clips = [c for c in eligible if len(tokenized[c]) > k]
        corpora.append(_Corpus([tokenized[c][k] for c in clips],
                               [tokenized[c][:k] + tokenized[c][k + 1:] for c in clips]))
        sizes.append(len(clips))
    results = _score_corpora(corpora, java, corenlp_dir)
    weights = np.asarray(sizes, dtype=float) / sum(sizes)
    bound = {}
    for metric in METRICS:
        values = [scores[metric] for scores, _ in results]
        bound[metric] = None if values[0] is None else float(np.dot(weights, values))
    bound.update(num_clips=len(eligible), skipped=skipped, turns=turns)
    return bound


def format_table(scores, metrics=PAPER_ORDER, digits=1):
    """Two aligned lines: the paper's column names and the scores ("-" for None)."""
    names = [PAPER_NAMES.get(m, m) for m in metrics]
    values = ["-" if scores.get(m) is None else f"{scores[m]:.{digits}f}" for m in metrics]
    widths = [max(len(n), len(v)) for n, v in zip(names, values)]
    return "\n".join("  ".join(s.rjust(w) for s, w in zip(row, widths)) for row in (names, values))
