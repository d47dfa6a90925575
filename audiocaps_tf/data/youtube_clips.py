"""One AudioCaps clip from YouTube: the yt-dlp and ffmpeg command lines, which errors are final, the checks on what
they wrote, and `ClipFetcher`, which runs them from worker threads and kills them when interrupted.

`audiocaps_tf.data.download` (the `data download` command) says what one attempt runs and how clips are retried.
"""

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import soundfile
from tqdm import tqdm

from audiocaps_tf.audio.loading import AudioError, load_audio
from audiocaps_tf.data.layout import AUDIO_DIR, AudioIndex
from audiocaps_tf.files import place_without_overwrite
from audiocaps_tf.params import CLIP_SECONDS, SAMPLE_RATE

YOUTUBE_URL = "https://www.youtube.com/watch?v={}"
PARTIAL_DIR = ".partial"  # under DIR/audio: one temporary folder per attempt
INVALID_DIR = ".invalid"  # under DIR/audio: files found at a final name that did not decode
AUDIO_EXTENSION = "flac"
STALE_PARTIAL_SECONDS = 6 * 3600  # leftovers of a killed run older than this are removed

# Lower-case pieces of yt-dlp error messages for videos that will not come back: no retry.
PERMANENT_ERRORS = (
    "video unavailable",
    "video is unavailable",
    "this video is not available",
    "private video",
    "video is private",
    "this video has been removed",
    "no longer available",
    "account associated with this video has been terminated",
    "sign in to confirm your age",
    "inappropriate for some users",
    "available in your country",
    "blocked it in your country",
    "on copyright grounds",
    "copyright claim",
    "members-only",
    "join this channel",
    "is not a valid url",
    "incomplete youtube id",
)
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]+")
_REASON_MAX_CHARS = 500


@dataclasses.dataclass
class Outcome:
    """What became of one clip: 'downloaded', 'skipped' (already there), 'missing' or 'interrupted'."""

    status: str
    reason: str = ""
    calls: int = 0



def clip_file_name(clip):
    return f"{clip.key}.{AUDIO_EXTENSION}"


def format_seconds(value):
    return f"{value:g}"


def yt_dlp_command(yt_dlp, clip, output_template, ffmpeg, extra_args=()):
    """The yt-dlp command line that fetches the clip's 10 s section into `output_template`."""
    end = clip.start_time + CLIP_SECONDS
    return [
        yt_dlp, "--quiet", "--no-warnings", "--no-progress", "--no-playlist",
        "--format", "bestaudio/best",
        "--download-sections", f"*{format_seconds(clip.start_time)}-{format_seconds(end)}",
        "--ffmpeg-location", ffmpeg,
        "--output", output_template,
        *extra_args,
        "--", YOUTUBE_URL.format(clip.youtube_id),
    ]  # fmt: skip


def ffmpeg_command(ffmpeg, source, target):
    """The ffmpeg command line that turns yt-dlp's download into the clip's 10 s 16 kHz mono FLAC."""
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", source,
        "-map", "0:a:0", "-ac", "1", "-ar", str(SAMPLE_RATE), "-sample_fmt", "s16",
        "-t", format_seconds(CLIP_SECONDS), "-c:a", "flac", target,
    ]  # fmt: skip


def is_permanent(message):
    """True when an error message says the video is gone for good, so another attempt cannot help."""
    lowered = message.lower()
    return any(piece in lowered for piece in PERMANENT_ERRORS)


def error_line(stderr, fallback):
    """The line of a tool's stderr that says what went wrong: its last 'ERROR:' line, else its last line."""
    lines = [" ".join(line.split()) for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    line = (errors or lines or [fallback])[-1]
    return line[:_REASON_MAX_CHARS]


def check_audio(path):
    """None when the file decodes to at least one finite sample, else the reason it does not."""
    try:
        native_rate = soundfile.info(os.fspath(path)).samplerate
    except (RuntimeError, OSError):
        native_rate = SAMPLE_RATE  # soundfile cannot open it; load_audio tries ffmpeg
    try:
        load_audio(path, sample_rate=native_rate, duration=None)
    except AudioError as err:
        return str(err)
    return None


def _check_download(path):
    """None when `path` is a FLAC in the format this command writes, else the reason it is not."""
    reason = check_audio(path)
    if reason:
        return reason
    info = soundfile.info(os.fspath(path))
    if info.format != "FLAC" or info.samplerate != SAMPLE_RATE or info.channels != 1:
        return f"{path}: expected 16 kHz mono FLAC, got {info.samplerate} Hz, {info.channels} channel(s) {info.format}"
    return None


def _move_aside(path, invalid_dir):
    """Moves a file that does not decode out of the way (never deletes it); returns where it went."""
    os.makedirs(invalid_dir, exist_ok=True)
    base = os.path.join(invalid_dir, os.path.basename(path) + ".invalid")
    target, number = base, 0
    while os.path.lexists(target):
        number += 1
        target = f"{base}.{number}"
    os.replace(path, target)
    return target


def remove_stale_partials(partial_root):
    if not os.path.isdir(partial_root):
        return
    now = time.time()
    for name in os.listdir(partial_root):
        path = os.path.join(partial_root, name)
        try:
            if now - os.lstat(path).st_mtime > STALE_PARTIAL_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


class _Attempt(Exception):
    """One failed attempt: its reason and whether another attempt may succeed."""

    def __init__(self, reason, permanent):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class ClipFetcher:
    """Fetches clips into DIR/audio from worker threads; kills its child processes when interrupted."""

    def __init__(self, data_dir, yt_dlp, ffmpeg, attempts, retry_delay, timeout, extra_args, known_missing,
                 skip_unavailable, sleep):
        self.audio_dir = os.path.join(data_dir, AUDIO_DIR)
        self.partial_root = os.path.join(self.audio_dir, PARTIAL_DIR)
        self.invalid_dir = os.path.join(self.audio_dir, INVALID_DIR)
        self.index = AudioIndex(data_dir)
        self.yt_dlp, self.ffmpeg = yt_dlp, ffmpeg
        self.attempts, self.retry_delay, self.timeout = attempts, retry_delay, timeout
        self.extra_args = tuple(extra_args)
        self.known_missing = known_missing
        self.skip_unavailable = skip_unavailable
        self.stop = threading.Event()
        self._sleep = sleep or self.stop.wait
        self._processes = set()
        self._lock = threading.Lock()

    # Child processes run in their own session, so yt-dlp's own ffmpeg is killed with it on a timeout.
    def _run(self, command):
        kwargs = {"start_new_session": True} if os.name == "posix" else {}
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, **kwargs)
        except OSError as err:
            raise _Attempt(f"cannot run {command[0]}: {err}", permanent=True) from err
        with self._lock:
            self._processes.add(process)
        try:
            if self.stop.is_set():
                self._kill(process)
            try:
                _, stderr = process.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._kill(process)
                process.communicate()
                raise _Attempt(
                    f"{os.path.basename(command[0])} timed out after {format_seconds(self.timeout)} s", permanent=False
                ) from None
        finally:
            with self._lock:
                self._processes.discard(process)
        return process.returncode, stderr.decode("utf-8", errors="replace")

    @staticmethod
    def _kill(process):
        try:
            if os.name == "posix":
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        except (ProcessLookupError, PermissionError):
            pass

    def interrupt(self):
        self.stop.set()
        with self._lock:
            for process in list(self._processes):
                self._kill(process)

    def fetch(self, clip):
        """Makes sure the clip's audio is under DIR/audio; returns its Outcome."""
        if not _YOUTUBE_ID.fullmatch(clip.youtube_id):
            return Outcome("missing", f"{clip.youtube_id!r} is not a YouTube video id")
        final = os.path.join(self.audio_dir, clip_file_name(clip))
        if os.path.lexists(final):
            reason = check_audio(final)
            if reason is None:
                return Outcome("skipped")
            moved_to = _move_aside(final, self.invalid_dir)
            tqdm.write(f"{final} does not decode ({reason}); moved it to {moved_to} and downloading again",
                       file=sys.stderr)
        else:
            existing = self.index.find(clip)
            if existing is not None and check_audio(existing) is None:
                return Outcome("skipped")
        known_reason = self.known_missing.get(clip.key)
        if self.skip_unavailable and known_reason and is_permanent(known_reason):
            return Outcome("missing", known_reason)

        calls = 0
        for attempt in range(1, self.attempts + 1):
            if self.stop.is_set():
                return Outcome("interrupted", calls=calls)
            calls += 1
            try:
                placed = self._attempt(clip, final)
                return Outcome("downloaded" if placed else "skipped", calls=calls)
            except _Attempt as failure:
                if self.stop.is_set():
                    return Outcome("interrupted", calls=calls)
                if failure.permanent or attempt == self.attempts:
                    return Outcome("missing", failure.reason, calls=calls)
                self._sleep(self.retry_delay * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _attempt(self, clip, final):
        os.makedirs(self.partial_root, exist_ok=True)
        temp_dir = tempfile.mkdtemp(dir=self.partial_root, prefix=f"{clip.key}.")
        try:
            template = os.path.join(temp_dir, "download.%(ext)s")
            command = yt_dlp_command(self.yt_dlp, clip, template, self.ffmpeg, self.extra_args)
            returncode, stderr = self._run(command)
            if returncode != 0:
                reason = error_line(stderr, f"yt-dlp exited with code {returncode}")
                raise _Attempt(reason, permanent=is_permanent(stderr))
            downloads = sorted(
                name for name in os.listdir(temp_dir)
                if name.startswith("download.") and not name.endswith((".part", ".ytdl", ".temp"))
            )  # fmt: skip
            if not downloads:
                raise _Attempt("yt-dlp exited without error but wrote no file", permanent=False)
            converted = os.path.join(temp_dir, f"clip.{AUDIO_EXTENSION}")
            returncode, stderr = self._run(ffmpeg_command(self.ffmpeg, os.path.join(temp_dir, downloads[0]), converted))
            if returncode != 0 or not os.path.exists(converted):
                reason = error_line(stderr, f"exited with code {returncode}")
                raise _Attempt(f"ffmpeg could not convert the download: {reason}", permanent=False)
            reason = _check_download(converted)
            if reason:
                raise _Attempt(f"the converted download is not valid audio: {reason}", permanent=False)
            return place_without_overwrite(converted, final)
        finally:
            shutil.rmtree(temp_dir, ignore_errors=True)
