"""Java for the caption metrics: finding `java`, running a Java program (English locale, UTF-8, a timeout), and
pycocoevalcap's PTB tokenizer.

The tokenizer, METEOR and SPICE are Java programs. They are started here (not through pycocoevalcap's wrappers) so
that each runs with an English locale (`-Duser.language=en -Duser.country=US`, which METEOR's number output needs),
UTF-8 I/O, a timeout (`AUDIOCAPS_METRICS_TIMEOUT` seconds per Java call; default 600, SPICE 3600), and no writes
into the installed package. `java` must be on PATH (Java 8 or newer), else `JavaNotFoundError`.
"""

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess

TIMEOUT_ENV = "AUDIOCAPS_METRICS_TIMEOUT"
JAVA_LOCALE = ("-Duser.language=en", "-Duser.country=US", "-Dfile.encoding=UTF-8")
# PTBTokenizer tokens pycocoevalcap drops (the same list as its ptbtokenizer.py).
PUNCTUATION = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                         ".", "?", "!", ",", ":", "-", "--", "...", ";"])
DEFAULT_TIMEOUT = 600.0


class MetricsError(RuntimeError):
    """A metric program could not run or gave unreadable output; the message says which and why."""


class JavaNotFoundError(MetricsError):
    """No `java` on PATH."""


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

JAVA_INSTALL_HINT = (
    "install a Java runtime (8 or newer) and put `java` on PATH, e.g. `sudo apt-get install default-jre` "
    "(Debian/Ubuntu), `conda install -c conda-forge openjdk` or `brew install openjdk`"
)


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


def timeout_seconds(default):
    value = os.environ.get(TIMEOUT_ENV)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise MetricsError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None


def output_tail(text, head=12, tail=5):
    """The start (where Java names the exception) and the end of a program's error output."""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else (text or "")
    lines = text.strip().splitlines()
    if len(lines) > head + tail + 1:
        lines = lines[:head] + ["..."] + lines[-tail:]
    return "\n".join(lines)


def run_java(java, args, name, input_text=None, timeout=DEFAULT_TIMEOUT, cwd=None):
    """Runs `java <locale> args`, returns stdout; MetricsError with stderr's tail on failure or timeout."""
    command = [java, *JAVA_LOCALE, *args]
    timeout = timeout_seconds(timeout)
    try:
        done = subprocess.run(command, input=None if input_text is None else input_text.encode("utf-8"),
                              capture_output=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise MetricsError(f"{name} did not finish within {timeout:.0f} s (set {TIMEOUT_ENV} to wait longer)") from None
    except OSError as err:
        raise MetricsError(f"{name} could not start `{java}`: {err}") from None
    if done.returncode != 0:
        why = output_tail(done.stderr) or output_tail(done.stdout)
        raise MetricsError(f"{name} failed (exit code {done.returncode}):\n{why}")
    return done.stdout.decode("utf-8", "replace")


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
    out = run_java(java, args, "the PTB tokenizer", input_text="\n".join(lines[i] for i in todo) + "\n")
    out_lines = out.split("\n")
    if out_lines and out_lines[-1] == "":
        out_lines.pop()
    if len(out_lines) != len(todo):
        raise MetricsError(f"the PTB tokenizer returned {len(out_lines)} lines for {len(todo)} captions")
    for i, line in zip(todo, out_lines):
        tokenized[i] = " ".join(w for w in line.split() if w not in PUNCTUATION)
    return tokenized

