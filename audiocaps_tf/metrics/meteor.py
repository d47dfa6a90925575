"""METEOR 1.5 (pycocoevalcap's bundled jar) in one Java process kept for the whole Python process.

METEOR spends about 10 s loading its paraphrase table, so its process (about 1 GB) is started once and reused by
later calls (e.g. validation every epoch); `close_java()` stops it, as does the end of the Python process.
"""

import atexit
import subprocess
import tempfile
import threading

from audiocaps_tf.metrics.java import (
    DEFAULT_TIMEOUT,
    JAVA_LOCALE,
    METEOR_JAR,
    MetricsError,
    output_tail,
    timeout_seconds,
)


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
            raise MetricsError(f"METEOR {why}:\n{output_tail(self._stderr.read())}")
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
        self._timeout = timeout_seconds(DEFAULT_TIMEOUT)
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


def meteor_scores(java, corpora):
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
