"""Downloads AudioCaps: the split CSVs from the authors' repository, then each clip's 10 s of audio from YouTube.

    python -m audiocaps_tf.data download --out DIR [--version 1|2] [--splits train,val,test] [--no-audio]
                                         [--workers N]
    python -m audiocaps_tf.data download --dataset clotho --out DIR     Clotho v2.1 from Zenodo (data/clotho.py)

Versions: 1 (the default: the paper's numbers are on it) is the authors' `dataset/` (train 49,838 captions); 2 is
their `dataset2.0/` of February 2025 (train 91,256 captions). Version 2's val and test CSVs hold the same clips
and audiocap_ids as version 1's (495 and 975 clips, 5 captions each, each id on the same clip); its captions are
lower-cased and some are corrected (spelling: "ticktocks" -> "tick-tocks", "hitter" -> "chitter"): after the
captions' normalisation 91 of the 2,475 val and 109 of the 4,875 test references differ in their words, so scores
on the two versions' references are close but not identical (compared on the published CSVs, 2026-12).

Writes:
    DIR/{split}.csv     the official CSVs (github.com/cdjkim/audiocaps, dataset/), checked with read_split before
                        they are put in place. An existing DIR/{split}.csv is kept as it is, never overwritten.
    DIR/audio/{youtube_id}_{start_time}.flac
                        seconds start_time .. start_time + 10 of the video's audio, 16 kHz mono 16-bit FLAC.
    DIR/missing.csv     youtube_id,start_time,split,reason: the clips that could not be downloaded, with yt-dlp's
                        (or ffmpeg's) error line as the reason. Rewritten at the end of every run: clips downloaded
                        since drop out, rows of splits this run did not look at are kept.

One attempt at one clip (TMP is a new folder under DIR/audio/.partial/):
    yt-dlp --quiet --no-warnings --no-progress --no-playlist --format bestaudio/best
           --download-sections "*START-END" --ffmpeg-location FFMPEG --output TMP/download.%(ext)s
           [--yt-dlp-args ...] -- https://www.youtube.com/watch?v=YOUTUBE_ID
    ffmpeg -nostdin -hide_banner -loglevel error -y -i TMP/download.EXT -map 0:a:0 -ac 1 -ar 16000
           -sample_fmt s16 -t 10 -c:a flac TMP/clip.flac
yt-dlp fetches only the section (through ffmpeg); the second step makes every clip the same format whatever
YouTube served, and cuts it to 10 s. The FLAC must decode (16 kHz, mono, more than 0 samples) before it gets its
final name, so a run that is killed never leaves a partial file there.

Resuming: rerun the same command. A clip whose FLAC is there and decodes is skipped without any network call and
never rewritten; so is a clip whose audio is already under DIR/audio/ under another name an AudioCaps downloader
uses (see AudioIndex). A file at the final name that does not decode is not deleted: it is moved to
DIR/audio/.invalid/{name}.invalid (.invalid.1, ... if taken) and the clip is downloaded again.

Failures: an attempt that fails for a reason that may pass (network errors, HTTP 429/5xx, "confirm you're not a
bot", timeouts) is retried up to --attempts times, waiting --retry-delay seconds, doubled at each retry. A video
that is gone for good ("Video unavailable", "Private video", "This video has been removed", "Sign in to confirm
your age", account terminated, blocked in your country, ...) is not retried. Missing clips do not make the command
fail: it prints how many clips were downloaded, skipped and missing per split and exits 0. It exits 1 when a CSV
cannot be downloaded or read, or yt-dlp or ffmpeg cannot be found.

Needs yt-dlp on PATH (`pip install -U yt-dlp`; update it when YouTube downloads start failing) and ffmpeg
(`apt-get install ffmpeg`, `conda install ffmpeg` or `pip install imageio-ffmpeg`, or set AUDIOCAPS_FFMPEG).
"""

import argparse
import collections
import concurrent.futures
import csv
import dataclasses
import os
import pathlib
import queue
import shlex
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request

from tqdm import tqdm

from audiocaps_tf.arguments import non_negative_float, positive_float, positive_int
from audiocaps_tf.audio.loading import FFMPEG_ENV_VAR, find_ffmpeg
from audiocaps_tf.data.layout import AUDIO_DIR, SPLITS, DataError, read_split, split_path
from audiocaps_tf.data.youtube_clips import (  # one clip's download; error_line and is_permanent re-exported
    ClipFetcher,
    error_line,
    format_seconds,
    is_permanent,
    remove_stale_partials,
)
from audiocaps_tf.files import atomic_path, place_without_overwrite

__all__ = [
    "DownloadError",
    "AudioReport",
    "fetch_split_csv",
    "download_audio",
    "read_missing",
    "csv_url",
    "error_line",
    "is_permanent",
]

HELP = "download the AudioCaps CSVs and each clip's 10 s of audio from YouTube (yt-dlp + ffmpeg)"

CSV_BASE_URLS = {
    "1": "https://raw.githubusercontent.com/cdjkim/audiocaps/master/dataset",
    "2": "https://raw.githubusercontent.com/cdjkim/audiocaps/master/dataset2.0",
}
CSV_BASE_URL = CSV_BASE_URLS["1"]
DATASETS = ("audiocaps", "clotho")
VERSIONS = {"audiocaps": ("1", "2"), "clotho": ("2.1",)}
# Options of the AudioCaps (YouTube) download that mean nothing for Clotho: refused, never silently ignored.
YOUTUBE_OPTIONS = ("workers", "csv_url", "attempts", "retry_delay", "timeout", "skip_unavailable", "yt_dlp_args")
CSV_URL_ENV_VAR = "AUDIOCAPS_CSV_URL"
YT_DLP = "yt-dlp"
MISSING_CSV = "missing.csv"
MISSING_COLUMNS = ("youtube_id", "start_time", "split", "reason")

DEFAULT_WORKERS = 4
DEFAULT_ATTEMPTS = 3
DEFAULT_RETRY_DELAY = 5.0  # seconds before the 2nd attempt; doubled before each further one
DEFAULT_TIMEOUT = 300.0  # seconds for one yt-dlp (or ffmpeg) run
CSV_TIMEOUT = 60.0

YT_DLP_INSTALL_HINT = "install it with `pip install -U yt-dlp` (and keep it up to date: YouTube changes often)"
FFMPEG_HINT = (
    "install ffmpeg (`apt-get install ffmpeg`, `conda install ffmpeg` or `pip install imageio-ffmpeg`) "
    f"or set {FFMPEG_ENV_VAR} to the path of an ffmpeg binary"
)



class DownloadError(RuntimeError):
    """A download that cannot go on (a CSV that cannot be had, a missing tool); the message says why."""


@dataclasses.dataclass
class AudioReport:
    """Per-split counts {split: {'downloaded': n, 'skipped': n, 'missing': n}} and the rows of missing.csv."""

    counts: dict
    missing_rows: list
    interrupted: bool = False


# --------------------------------------------------------------------------------------------------- CSVs


def csv_url(base, split):
    """URL of one split's CSV under `base`: an http(s):// or file:// URL, or a local folder."""
    if "://" in base:
        return f"{base.rstrip('/')}/{split}.csv"
    return (pathlib.Path(base).expanduser().resolve() / f"{split}.csv").as_uri()


def _is_permanent_url_error(err):
    if isinstance(err, urllib.error.HTTPError):
        return err.code in (400, 401, 403, 404, 410)
    if isinstance(err, urllib.error.URLError):
        return isinstance(err.reason, (FileNotFoundError, IsADirectoryError, PermissionError)) or (
            isinstance(err.reason, str) and "unknown url type" in err.reason
        )
    return isinstance(err, ValueError)  # a malformed URL


def fetch_split_csv(data_dir, split, base_url=None, attempts=DEFAULT_ATTEMPTS, retry_delay=DEFAULT_RETRY_DELAY,
                    sleep=time.sleep, timeout=CSV_TIMEOUT, version="1"):
    """Makes sure DIR/{split}.csv exists and reads it; returns ('kept' or 'downloaded', clips).

    Downloads into a temporary file next to the target, checks it with read_split, and only then gives it its
    name. Raises DownloadError when the CSV cannot be downloaded or does not read as an AudioCaps split.
    """
    target = split_path(data_dir, split)
    if os.path.lexists(target):
        try:
            return "kept", read_split(target)
        except (DataError, UnicodeDecodeError) as err:
            raise DownloadError(f"{err}; this existing file is never overwritten: fix or remove it") from err

    url = csv_url(base_url or os.environ.get(CSV_URL_ENV_VAR) or CSV_BASE_URLS[version], split)
    data = None
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
            break
        except (urllib.error.URLError, OSError, ValueError) as err:
            if _is_permanent_url_error(err) or attempt == attempts:
                raise DownloadError(f"cannot download {url}: {err}") from err
            sleep(retry_delay * 2 ** (attempt - 1))

    os.makedirs(data_dir, exist_ok=True)
    fd, temp_path = tempfile.mkstemp(dir=data_dir, prefix=f".{split}.csv.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            clips = read_split(temp_path)
        except (DataError, UnicodeDecodeError) as err:
            raise DownloadError(f"{url} is not an AudioCaps split CSV: {err}") from err
        if not clips:
            raise DownloadError(f"{url} is not an AudioCaps split CSV: it has no rows")
        if not place_without_overwrite(temp_path, target):  # appeared meanwhile: keep that one
            return "kept", read_split(target)
        return "downloaded", clips
    finally:
        if os.path.exists(temp_path):
            os.unlink(temp_path)


# -------------------------------------------------------------------------------------------------- audio


def _next_finished(finished):
    """The next finished future; waits in short steps so Ctrl-C is handled at once on every platform."""
    while True:
        try:
            return finished.get(timeout=0.5)
        except queue.Empty:
            pass


def read_missing(data_dir):
    """Rows of DIR/missing.csv as dicts; [] when there is none or it cannot be read."""
    path = os.path.join(data_dir, MISSING_CSV)
    if not os.path.exists(path):
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if any(column not in (reader.fieldnames or []) for column in MISSING_COLUMNS):
                raise ValueError(f"expected the columns {', '.join(MISSING_COLUMNS)}")
            return [{column: row[column] or "" for column in MISSING_COLUMNS} for row in reader]
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
        print(f"warning: ignoring {path} ({err}); it is rewritten at the end of this run", file=sys.stderr)
        return []


def _write_missing(data_dir, rows):
    with atomic_path(os.path.join(data_dir, MISSING_CSV)) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=MISSING_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)


def download_audio(data_dir, clips_by_split, workers=DEFAULT_WORKERS, attempts=DEFAULT_ATTEMPTS,
                   retry_delay=DEFAULT_RETRY_DELAY, timeout=DEFAULT_TIMEOUT, yt_dlp_args=(), skip_unavailable=False,
                   yt_dlp=None, ffmpeg=None, sleep=None, progress=True):
    """Downloads every clip of {split: [Clip]} into DIR/audio and rewrites DIR/missing.csv; returns an AudioReport.

    `sleep(seconds)` waits between attempts (default: an interruptible wait). On KeyboardInterrupt the running
    downloads are killed, missing.csv is still rewritten for the clips that were decided, and the interrupt is
    raised again.
    """
    if workers < 1 or attempts < 1:
        raise ValueError("workers and attempts must be at least 1")
    yt_dlp = yt_dlp or shutil.which(YT_DLP)
    if not yt_dlp:
        raise DownloadError(f"{YT_DLP} was not found on PATH; {YT_DLP_INSTALL_HINT}")
    ffmpeg = ffmpeg or find_ffmpeg()
    if not ffmpeg:
        raise DownloadError(f"ffmpeg was not found; {FFMPEG_HINT}")

    old_rows = read_missing(data_dir)
    known_missing = {f"{row['youtube_id']}_{row['start_time']}": row["reason"] for row in old_rows}
    os.makedirs(os.path.join(data_dir, AUDIO_DIR), exist_ok=True)
    downloader = ClipFetcher(data_dir, yt_dlp, ffmpeg, attempts, retry_delay, timeout, yt_dlp_args, known_missing,
                             skip_unavailable, sleep)
    remove_stale_partials(downloader.partial_root)

    unique = {}
    for clips in clips_by_split.values():
        for clip in clips:
            unique.setdefault(clip.key, clip)
    outcomes, futures = {}, {}
    totals = collections.Counter()
    interrupted = False
    finished = queue.Queue()
    bar = tqdm(total=len(unique), unit="clip", desc="audio", disable=not progress, dynamic_ncols=True)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audiocaps-download")
    try:
        for key, clip in unique.items():
            future = pool.submit(downloader.fetch, clip)
            futures[future] = key
            future.add_done_callback(finished.put)
        for _ in range(len(futures)):
            future = _next_finished(finished)
            outcome = future.result()
            outcomes[futures[future]] = outcome
            totals[outcome.status] += 1
            bar.update(1)
            bar.set_postfix(ok=totals["downloaded"], skipped=totals["skipped"], missing=totals["missing"],
                            refresh=False)
    except KeyboardInterrupt:
        interrupted = True
        downloader.interrupt()
        pool.shutdown(wait=True, cancel_futures=True)
        for future, key in futures.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                outcomes.setdefault(key, future.result())
    finally:
        pool.shutdown(wait=True)
        bar.close()
        try:
            os.rmdir(downloader.partial_root)
        except OSError:
            pass

    counts, rows = {}, []
    processed = set(clips_by_split)
    decided = {key for key, outcome in outcomes.items() if outcome.status != "interrupted"}
    old_by_split = collections.defaultdict(list)
    for row in old_rows:
        old_by_split[row["split"]].append(row)
    for split in [*SPLITS, *sorted(set(old_by_split) - set(SPLITS))]:
        if split not in processed:
            rows.extend(old_by_split.get(split, []))
            continue
        counts[split] = collections.Counter({"downloaded": 0, "skipped": 0, "missing": 0})
        old_reasons = {f"{row['youtube_id']}_{row['start_time']}": row for row in old_by_split.get(split, [])}
        for clip in clips_by_split[split]:
            if clip.key not in decided:  # interrupted before this clip: keep what was known about it
                if clip.key in old_reasons:
                    rows.append(old_reasons[clip.key])
                continue
            outcome = outcomes[clip.key]
            counts[split][outcome.status] += 1
            if outcome.status == "missing":
                rows.append({"youtube_id": clip.youtube_id, "start_time": str(clip.start_time), "split": split,
                             "reason": outcome.reason})
    _write_missing(data_dir, rows)
    report = AudioReport({split: dict(c) for split, c in counts.items()}, rows, interrupted)
    if interrupted:
        raise KeyboardInterrupt
    return report


# ---------------------------------------------------------------------------------------------------- CLI


def _splits(value):
    splits = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in splits if s not in SPLITS]
    if not splits or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(SPLITS)}, got {value!r}")
    return list(dict.fromkeys(splits))


def add_arguments(parser):
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder (created if needed)")
    parser.add_argument("--dataset", choices=DATASETS, default="audiocaps",
                        help="audiocaps (YouTube, the default) or clotho (Zenodo, see data/clotho.py)")
    parser.add_argument("--version", metavar="V",
                        help="AudioCaps 1 (default, the paper's) or 2 (dataset2.0, Feb 2025); Clotho 2.1")
    parser.add_argument("--splits", type=_splits, default=list(SPLITS), metavar="LIST",
                        help="comma-separated splits to download (default: train,val,test; Clotho's "
                             "development, validation and evaluation sets)")
    parser.add_argument("--no-audio", action="store_true", help="download the CSVs only")
    parser.add_argument("--keep-archives", action="store_true",
                        help="Clotho: keep the 7z archives after extracting them (default: removed)")
    parser.add_argument("--url", metavar="URL",
                        help="Clotho: where the record's files are (default: $AUDIOCAPS_TF_CLOTHO_URL, else Zenodo)")
    youtube = parser.add_argument_group("AudioCaps (YouTube) options")
    youtube.add_argument("--workers", type=positive_int, metavar="N",
                         help=f"clips downloaded at the same time (default: {DEFAULT_WORKERS})")
    youtube.add_argument("--csv-url", metavar="URL_OR_DIR",
                         help=f"where {{split}}.csv are read from: an http(s):// or file:// URL or a folder "
                              f"(default: ${CSV_URL_ENV_VAR}, else the authors' dataset/ or dataset2.0/ folder: "
                              f"{CSV_BASE_URL})")
    youtube.add_argument("--attempts", type=positive_int, metavar="N",
                         help=f"attempts per clip for errors that may pass (default: {DEFAULT_ATTEMPTS})")
    youtube.add_argument("--retry-delay", type=non_negative_float, metavar="SECONDS",
                         help=f"wait before the 2nd attempt, doubled before each further one "
                              f"(default: {format_seconds(DEFAULT_RETRY_DELAY)})")
    youtube.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                         help=f"limit for one yt-dlp or ffmpeg run (default: {format_seconds(DEFAULT_TIMEOUT)})")
    youtube.add_argument("--skip-unavailable", action="store_true", default=None,
                         help="do not try again clips that missing.csv lists as gone for good (Video unavailable, ...)")
    youtube.add_argument("--yt-dlp-args", metavar="ARGS",
                         help='extra yt-dlp options, e.g. --yt-dlp-args="--cookies cookies.txt"')


def _run_clotho(args):
    from audiocaps_tf.data.clotho import ClothoError, download_clotho

    given = ["--" + name.replace("_", "-") for name in YOUTUBE_OPTIONS if getattr(args, name) is not None]
    if given:
        print(f"error: {', '.join(given)}: AudioCaps (YouTube) options; Clotho is fetched from Zenodo",
              file=sys.stderr)
        return 2
    try:
        counts = download_clotho(args.out, splits=args.splits, base_url=args.url, keep_archives=args.keep_archives,
                                 audio=not args.no_audio)
    except (ClothoError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume (partial files are kept as .part)",
              file=sys.stderr)
        return 130
    print("clotho: " + ", ".join(f"{split} {count} clips" for split, count in counts.items()) + f" in {args.out}")
    return 0


def run(args):
    version = args.version or VERSIONS[args.dataset][0]
    if version not in VERSIONS[args.dataset]:
        print(f"error: --version {version}: {args.dataset} has version(s) {', '.join(VERSIONS[args.dataset])}",
              file=sys.stderr)
        return 2
    if args.dataset == "clotho":
        return _run_clotho(args)
    for option in ("keep_archives", "url"):
        if getattr(args, option):
            print(f"error: --{option.replace('_', '-')} is a Clotho option", file=sys.stderr)
            return 2
    defaults = dict(workers=DEFAULT_WORKERS, attempts=DEFAULT_ATTEMPTS, retry_delay=DEFAULT_RETRY_DELAY,
                    timeout=DEFAULT_TIMEOUT, skip_unavailable=False, yt_dlp_args="")
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    data_dir = args.out
    try:
        extra_args = shlex.split(args.yt_dlp_args)
    except ValueError as err:
        print(f"error: --yt-dlp-args: {err}", file=sys.stderr)
        return 2
    if not args.no_audio:  # fail before writing anything when a tool is missing
        if not shutil.which(YT_DLP):
            print(f"error: {YT_DLP} was not found on PATH; {YT_DLP_INSTALL_HINT}", file=sys.stderr)
            return 1
        if not find_ffmpeg():
            print(f"error: ffmpeg was not found; {FFMPEG_HINT}", file=sys.stderr)
            return 1

    os.makedirs(data_dir, exist_ok=True)
    clips_by_split, failed = {}, False
    for split in args.splits:
        try:
            status, clips = fetch_split_csv(data_dir, split, args.csv_url, attempts=args.attempts,
                                            retry_delay=args.retry_delay, version=version)
        except DownloadError as err:
            print(f"error: {split}: {err}", file=sys.stderr)
            failed = True
            continue
        clips_by_split[split] = clips
        what = "kept the existing file" if status == "kept" else "downloaded"
        print(f"{split_path(data_dir, split)}: {what} ({len(clips)} clips)")
    if failed:
        print("error: the CSVs above could not be had" + ("" if args.no_audio else "; no audio was downloaded"),
              file=sys.stderr)
        return 1
    if args.no_audio:
        return 0

    try:
        report = download_audio(data_dir, clips_by_split, workers=args.workers, attempts=args.attempts,
                                retry_delay=args.retry_delay, timeout=args.timeout, yt_dlp_args=extra_args,
                                skip_unavailable=args.skip_unavailable)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; {os.path.join(data_dir, MISSING_CSV)} is up to date for the clips done so far. "
              "Run the same command again to resume.", file=sys.stderr)
        return 130

    total = collections.Counter()
    for split, counts in report.counts.items():
        total.update(counts)
        print(f"{split}: {counts['downloaded']} downloaded, {counts['skipped']} already there, "
              f"{counts['missing']} missing")
    print(f"audio: {os.path.join(data_dir, AUDIO_DIR)}; {total['missing']} clip(s) missing, listed in "
          f"{os.path.join(data_dir, MISSING_CSV)} ({len(report.missing_rows)} row(s) in all)")
    return 0
