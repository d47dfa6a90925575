"""SPICE 1.0 (pycocoevalcap's jar) with Stanford CoreNLP 3.6.0, which pycocoevalcap does not ship.

The CoreNLP jars (`stanford-corenlp-3.6.0.jar` and `stanford-corenlp-3.6.0-models.jar`, from
http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip, about 390 MB) are never downloaded here
(pycocoevalcap's `Spice()` would, and hangs or fails offline). They are looked for in, first found wins: `spice_dir`
(or `--spice-dir`), the directory named by `AUDIOCAPS_SPICE_DIR`, then pycocoevalcap's own `spice/lib`, and used where
they are (on the Java class path; nothing is copied or linked).

SPICE 1.0 pretty-prints its JSON output through the Nashorn JavaScript engine, which Java 15 removed (the usual
"SPICE needs Java 8-13" failure), and its parse cache uses LMDB/fst, which break on newer Javas. So on Java 11+ SPICE
runs through a small launcher (`_SPICE_LAUNCHER`, compiled by `java` itself) that calls SPICE's own scorer and writes
its per-clip JSON directly, without the cache; on Java 8-10 it runs SPICE's command line as pycocoevalcap does (minus
the cache).
"""

import contextlib
import json
import math
import os
import pathlib
import sys
import tempfile
import warnings

from audiocaps_tf.metrics.java import SPICE_JAR, SPICE_LIB, MetricsError, java_major_version, run_java

SPICE_DIR_ENV = "AUDIOCAPS_SPICE_DIR"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
CORENLP_URL = "http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip"
DEFAULT_SPICE_TIMEOUT = 3600.0
DEFAULT_CORENLP_DIR = SPICE_LIB  # where pycocoevalcap's own download would have put CoreNLP 3.6.0


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


def resolve_spice(spice, spice_dir):
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


def run_spice(java, corenlp_dir, items):
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
            run_java(java, args, "SPICE", timeout=DEFAULT_SPICE_TIMEOUT, cwd=tmp)
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
