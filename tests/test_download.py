"""`python -m audiocaps_tf.data download` against a fake yt-dlp on PATH and CSVs served from a local folder.

The fake logs its argv, then acts by video id: ids with "gone" fail like a removed video, "flaky" fail on the first
call only, "down" always fail with a network error, "hang" sleep past the timeout, "junk" write bytes that are not
audio; the others get an 11 s 44.1 kHz stereo WAV copied where --output says. The real ffmpeg converts it.
"""

import csv
import json
import os
import signal
import pathlib
import stat
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import soundfile

from audiocaps_tf.data import download
from audiocaps_tf.data.__main__ import main
from audiocaps_tf.data.layout import Clip

ROOT = pathlib.Path(__file__).resolve().parents[1]

CSVS = {
    "train": [
        ("1", "okTrain0001", "30", "A dog barks"),
        ("2", "okTrain0001", "30", "A dog barks twice"),  # a second caption of the same clip
        ("3", "goneTrain01", "0", "Wind blows"),
        ("4", "flakyTrain1", "10", "Rain falls"),
    ],
    "val": [("5", "okVal000001", "0", "A man speaks")],
    "test": [
        ("6", "okTest00001", "5", "Birds chirp"),
        ("7", "-dashTest01", "20", "A car passes"),  # YouTube ids may start with a dash
    ],
}

FAKE_YT_DLP = textwrap.dedent(
    """\
    #!{python}
    import json, os, shutil, sys, time

    argv = sys.argv[1:]
    state = os.environ["FAKE_YTDLP_STATE"]
    video_id = argv[-1].split("v=", 1)[1]
    with open(os.path.join(state, "calls.jsonl"), "a") as f:
        f.write(json.dumps(argv) + "\\n")
    counter = os.path.join(state, "count-" + video_id)
    count = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
    with open(counter, "w") as f:
        f.write(str(count))

    if "gone" in video_id:
        sys.stderr.write("ERROR: [youtube] " + video_id + ": Video unavailable. This video has been removed by the uploader\\n")
        sys.exit(1)
    if "down" in video_id or ("flaky" in video_id and count == 1):
        sys.stderr.write("[youtube] " + video_id + ": Downloading webpage\\n")
        sys.stderr.write("ERROR: [youtube] " + video_id + ": Unable to download webpage: <urlopen error [Errno 104] Connection reset by peer>\\n")
        sys.exit(1)
    if "hang" in video_id:  # until it is killed: the pid tells the test that it runs, and which process to check
        with open(os.path.join(state, "hang.pid.partial"), "w") as f:
            f.write(str(os.getpid()))
        os.replace(os.path.join(state, "hang.pid.partial"), os.path.join(state, "hang.pid"))
        while True:
            time.sleep(1)
    output = argv[argv.index("--output") + 1].replace("%(ext)s", "wav")
    if "junk" in video_id:
        with open(output, "wb") as f:
            f.write(b"<html>not audio</html>" * 100)
    else:
        shutil.copyfile(os.environ["FAKE_YTDLP_SOURCE"], output)
    """
)


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
        writer.writerows(rows)


@pytest.fixture(scope="module")
def source_wav(tmp_path_factory):
    """11 s of a 440 Hz tone, 44.1 kHz stereo: longer, faster and wider than the 10 s 16 kHz mono clips."""
    path = tmp_path_factory.mktemp("fixture") / "source.wav"
    t = np.arange(int(11 * 44100)) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    soundfile.write(path, np.stack([tone, tone], axis=1), 44100, subtype="PCM_16")
    return path


@pytest.fixture
def env(tmp_path, monkeypatch, source_wav):
    """A fake yt-dlp first on PATH, the CSVs in a local folder, and an empty dataset folder."""
    bin_dir, state, csv_dir = tmp_path / "bin", tmp_path / "state", tmp_path / "csvs"
    for folder in (bin_dir, state, csv_dir):
        folder.mkdir()
    fake = bin_dir / "yt-dlp"
    fake.write_text(FAKE_YT_DLP.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_YTDLP_STATE", str(state))
    monkeypatch.setenv("FAKE_YTDLP_SOURCE", str(source_wav))
    monkeypatch.delenv(download.CSV_URL_ENV_VAR, raising=False)
    for split, rows in CSVS.items():
        _write_csv(csv_dir / f"{split}.csv", rows)

    class Env:
        out = tmp_path / "data"
        audio = out / "audio"
        csvs = csv_dir

        def run(self, *extra, csv_url=None):
            argv = ["download", "--out", str(self.out), "--csv-url", str(csv_url or csv_dir), "--retry-delay", "0",
                    "--workers", "2", *extra]
            return main(argv)

        def calls(self, video_id=None):
            log = state / "calls.jsonl"
            calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
            return [c for c in calls if video_id is None or c[-1].endswith("v=" + video_id)]

        def hanging_pid(self):
            """The pid of the hanging fake yt-dlp once it runs, else None."""
            path = state / "hang.pid"
            return int(path.read_text()) if path.exists() else None

        def missing(self):
            with open(self.out / "missing.csv", newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))

    return Env()


def _assert_clip_file(path):
    info = soundfile.info(path)
    assert (info.format, info.samplerate, info.channels, info.frames) == ("FLAC", 16000, 1, 160000)
    waveform, _ = soundfile.read(path)
    assert 0.3 < np.sqrt(np.mean(waveform**2)) < 0.4  # the tone's RMS, 0.5 / sqrt(2): not silence
    spectrum = np.abs(np.fft.rfft(waveform))
    assert abs(np.argmax(spectrum) * 16000 / len(waveform) - 440) < 1


def test_downloads_csvs_audio_and_lists_missing_clips(env, capsys):
    assert env.run() == 0

    for split in ("train", "val", "test"):
        assert (env.out / f"{split}.csv").read_bytes() == (env.csvs / f"{split}.csv").read_bytes()
    for key in ("okTrain0001_30", "flakyTrain1_10", "okVal000001_0", "okTest00001_5", "-dashTest01_20"):
        _assert_clip_file(env.audio / f"{key}.flac")
    assert not (env.audio / "goneTrain01_0.flac").exists()
    # Nothing else under audio/: no temporary folder or file is left behind.
    assert sorted(p.name for p in env.audio.iterdir()) == sorted(
        ["okTrain0001_30.flac", "flakyTrain1_10.flac", "okVal000001_0.flac", "okTest00001_5.flac",
         "-dashTest01_20.flac"]
    )
    assert [p.name for p in env.out.iterdir() if p.name.startswith(".")] == []

    assert env.missing() == [{
        "youtube_id": "goneTrain01", "start_time": "0", "split": "train",
        "reason": "ERROR: [youtube] goneTrain01: Video unavailable. This video has been removed by the uploader",
    }]  # fmt: skip
    out = capsys.readouterr().out
    assert "train: 2 downloaded, 0 already there, 1 missing" in out
    assert "val: 1 downloaded, 0 already there, 0 missing" in out
    assert "test: 2 downloaded, 0 already there, 0 missing" in out


def test_yt_dlp_command_line(env):
    assert env.run("--splits", "train,test") == 0
    ffmpeg = download.find_ffmpeg()
    for video_id, section in [("okTrain0001", "*30-40"), ("okTest00001", "*5-15"), ("-dashTest01", "*20-30")]:
        (argv,) = env.calls(video_id)
        template = argv[argv.index("--output") + 1]
        assert argv == [
            "--quiet", "--no-warnings", "--no-progress", "--no-playlist",
            "--format", "bestaudio/best",
            "--download-sections", section,
            "--ffmpeg-location", ffmpeg,
            "--output", template,
            "--", f"https://www.youtube.com/watch?v={video_id}",
        ]  # fmt: skip
        template = pathlib.Path(template)
        assert template.name == "download.%(ext)s"
        assert template.parent.parent == env.audio / ".partial"  # a temporary folder next to the final files
        assert template.parent.name.startswith(f"{video_id}_")


def test_extra_yt_dlp_args_go_before_the_url(env):
    assert env.run("--splits", "val", "--yt-dlp-args", "--cookies 'my cookies.txt'") == 0
    (argv,) = env.calls("okVal000001")
    assert argv[-4:] == ["--cookies", "my cookies.txt", "--", "https://www.youtube.com/watch?v=okVal000001"]


def test_permanent_failure_is_not_retried_and_transient_one_is(env):
    assert env.run("--splits", "train", "--attempts", "3") == 0
    assert len(env.calls("goneTrain01")) == 1
    assert len(env.calls("flakyTrain1")) == 2
    _assert_clip_file(env.audio / "flakyTrain1_10.flac")
    assert [row["youtube_id"] for row in env.missing()] == ["goneTrain01"]


def test_retries_are_bounded_and_back_off(env):
    data_dir = env.out
    data_dir.mkdir()
    clips = {"val": [Clip("downVal0001", 0, ("c",), ("1",))]}
    delays = []
    report = download.download_audio(data_dir, clips, attempts=3, retry_delay=1.5, sleep=delays.append,
                                     progress=False)
    assert len(env.calls("downVal0001")) == 3
    assert delays == [1.5, 3.0]
    assert report.counts == {"val": {"downloaded": 0, "skipped": 0, "missing": 1}}
    assert env.missing() == [{
        "youtube_id": "downVal0001", "start_time": "0", "split": "val",
        "reason": "ERROR: [youtube] downVal0001: Unable to download webpage: "
                  "<urlopen error [Errno 104] Connection reset by peer>",
    }]  # fmt: skip


def test_download_that_is_not_audio_is_never_placed(env):
    data_dir = env.out
    data_dir.mkdir()
    clips = {"val": [Clip("junkVal0001", 0, ("c",), ("1",))]}
    report = download.download_audio(data_dir, clips, attempts=2, sleep=lambda s: None, progress=False)
    assert len(env.calls("junkVal0001")) == 2
    assert report.counts["val"]["missing"] == 1
    assert env.missing()[0]["reason"].startswith("ffmpeg could not convert the download: ")
    assert list(env.audio.iterdir()) == []


def _is_gone(pid):
    """Whether process `pid` has ended and been reaped (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_timeout_kills_the_download(env):
    data_dir = env.out
    data_dir.mkdir()
    clips = {"val": [Clip("hangVal0001", 0, ("c",), ("1",))]}
    download.download_audio(data_dir, clips, attempts=1, timeout=0.5, progress=False)  # it never ends by itself
    assert env.missing()[0]["reason"] == "yt-dlp timed out after 0.5 s"
    assert _is_gone(env.hanging_pid())  # killed and reaped, not left running
    assert list(env.audio.iterdir()) == []


def test_interrupt_kills_downloads_and_keeps_missing_csv_true(env, capsys):
    """A real SIGINT (what Ctrl-C sends) once the good clip is in place and the "hang" download runs; the hang never
    ends by itself, so only the interrupt can end the run (no timing involved: --timeout is a hang guard)."""
    env.out.mkdir()
    _write_csv(env.out / "val.csv", [("1", "okVal000001", "0", "c"), ("2", "hangVal0001", "0", "c")])
    with open(env.out / "missing.csv", "w", newline="") as f:  # what an earlier run knew about the hanging clip
        f.write("youtube_id,start_time,split,reason\nhangVal0001,0,val,ERROR: earlier\n")
    done = threading.Event()

    def press_ctrl_c_once_hanging():
        while not done.is_set():
            if (env.audio / "okVal000001_0.flac").exists() and env.hanging_pid() is not None:
                os.kill(os.getpid(), signal.SIGINT)
                return
            done.wait(0.05)

    presser = threading.Thread(target=press_ctrl_c_once_hanging)
    presser.start()
    try:
        assert env.run("--splits", "val", "--timeout", "600", "--attempts", "1") == 130
    finally:
        done.set()
        presser.join()
    assert _is_gone(env.hanging_pid())  # the hanging yt-dlp was killed, not waited for
    assert "Run the same command again to resume" in capsys.readouterr().err
    _assert_clip_file(env.audio / "okVal000001_0.flac")
    # The interrupted clip is neither reported missing for the interrupt nor forgotten.
    assert env.missing() == [{"youtube_id": "hangVal0001", "start_time": "0", "split": "val",
                              "reason": "ERROR: earlier"}]
    assert sorted(p.name for p in env.audio.iterdir()) == ["okVal000001_0.flac"]


def test_rerun_skips_existing_files_without_calling_yt_dlp_or_touching_them(env, capsys):
    assert env.run() == 0
    files = sorted(env.audio.glob("*.flac"))
    assert len(files) == 5
    past = time.time() - 3600
    for path in files:
        os.utime(path, (past, past))
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in files}
    calls_before = len(env.calls())
    capsys.readouterr()

    assert env.run() == 0
    new_calls = env.calls()[calls_before:]
    assert [argv[-1] for argv in new_calls] == ["https://www.youtube.com/watch?v=goneTrain01"]  # missing: retried
    assert {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in files} == before
    out = capsys.readouterr().out
    assert "train: 0 downloaded, 2 already there, 1 missing" in out
    assert "test: 0 downloaded, 2 already there, 0 missing" in out
    assert [row["youtube_id"] for row in env.missing()] == ["goneTrain01"]


def test_skip_unavailable_does_not_retry_clips_known_gone(env):
    assert env.run("--splits", "train") == 0
    assert len(env.calls("goneTrain01")) == 1
    assert env.run("--splits", "train", "--skip-unavailable") == 0
    assert len(env.calls("goneTrain01")) == 1
    assert [row["youtube_id"] for row in env.missing()] == ["goneTrain01"]


def test_clip_downloaded_on_a_rerun_leaves_missing_csv(env):
    assert env.run("--splits", "train", "--attempts", "1") == 0  # flaky fails its first call
    assert sorted(row["youtube_id"] for row in env.missing()) == ["flakyTrain1", "goneTrain01"]
    assert env.run("--splits", "train", "--attempts", "1") == 0
    _assert_clip_file(env.audio / "flakyTrain1_10.flac")
    assert [row["youtube_id"] for row in env.missing()] == ["goneTrain01"]


def test_missing_rows_of_splits_not_run_are_kept(env):
    assert env.run() == 0
    assert env.run("--splits", "val") == 0
    assert [(row["youtube_id"], row["split"]) for row in env.missing()] == [("goneTrain01", "train")]
    assert len(env.calls("goneTrain01")) == 1  # train was not looked at the second time


def test_invalid_existing_file_is_moved_aside_and_downloaded_again(env, capsys):
    env.audio.mkdir(parents=True)
    broken = env.audio / "okVal000001_0.flac"
    broken.write_bytes(b"fLaC" + b"\0" * 100)  # a FLAC header and nothing that decodes
    assert env.run("--splits", "val") == 0
    assert len(env.calls("okVal000001")) == 1
    _assert_clip_file(broken)
    kept = env.audio / ".invalid" / "okVal000001_0.flac.invalid"
    assert kept.read_bytes() == b"fLaC" + b"\0" * 100
    assert "does not decode" in capsys.readouterr().err

    broken.write_bytes(b"again")  # a second bad file does not replace the first one kept aside
    assert env.run("--splits", "val") == 0
    assert kept.read_bytes() == b"fLaC" + b"\0" * 100
    assert (env.audio / ".invalid" / "okVal000001_0.flac.invalid.1").read_bytes() == b"again"
    _assert_clip_file(broken)


def test_audio_under_another_downloader_name_is_skipped(env, source_wav):
    (env.audio / "val").mkdir(parents=True)
    other = env.audio / "val" / "YokVal000001.wav"
    other.write_bytes(source_wav.read_bytes())
    assert env.run("--splits", "val") == 0
    assert env.calls("okVal000001") == []
    assert not (env.audio / "okVal000001_0.flac").exists()


def test_existing_csv_is_never_overwritten(env):
    env.out.mkdir()
    mine = [("9", "okTrainMine", "40", "My own caption")]
    _write_csv(env.out / "train.csv", mine)
    before = (env.out / "train.csv").read_bytes()
    assert env.run("--splits", "train") == 0
    assert (env.out / "train.csv").read_bytes() == before
    assert [argv[-1] for argv in env.calls()] == ["https://www.youtube.com/watch?v=okTrainMine"]

    (env.out / "val.csv").write_text("not,an,audiocaps\ncsv,file,here\n")
    assert env.run("--splits", "val") == 1
    assert (env.out / "val.csv").read_text() == "not,an,audiocaps\ncsv,file,here\n"


def test_no_audio_downloads_csvs_only_without_yt_dlp(env, monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert env.run("--no-audio") == 0
    assert sorted(p.name for p in env.out.iterdir()) == ["test.csv", "train.csv", "val.csv"]
    assert env.calls() == []


def test_splits_option(env):
    assert env.run("--splits", "val,test") == 0
    assert sorted(p.name for p in env.out.glob("*.csv")) == ["missing.csv", "test.csv", "val.csv"]
    assert sorted(argv[-1].split("v=")[1] for argv in env.calls()) == ["-dashTest01", "okTest00001", "okVal000001"]
    assert env.missing() == []
    with pytest.raises(SystemExit) as exit_info:
        env.run("--splits", "train,dev")
    assert exit_info.value.code == 2


def test_csvs_from_a_file_url_and_the_environment_variable(env, monkeypatch):
    monkeypatch.setenv(download.CSV_URL_ENV_VAR, env.csvs.as_uri())
    assert main(["download", "--out", str(env.out), "--no-audio", "--splits", "val"]) == 0
    assert (env.out / "val.csv").read_bytes() == (env.csvs / "val.csv").read_bytes()


def test_csv_that_cannot_be_had_fails_the_command(env, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "val.csv").write_text("<html>rate limited</html>\n")
    _write_csv(bad / "train.csv", [])  # the header alone
    assert env.run("--splits", "train,val,test", csv_url=bad) == 1
    err = capsys.readouterr().err
    assert f"{(bad / 'train.csv').as_uri()} is not an AudioCaps split CSV: it has no rows" in err
    assert f"{(bad / 'val.csv').as_uri()} is not an AudioCaps split CSV" in err
    assert f"cannot download {(bad / 'test.csv').as_uri()}" in err
    assert list(env.out.iterdir()) == []  # no half-validated CSV, no temporary file
    assert env.calls() == []


def test_missing_yt_dlp_is_reported_before_anything_is_written(env, monkeypatch, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert env.run() == 1
    assert "pip install -U yt-dlp" in capsys.readouterr().err
    assert not env.out.exists()


def test_failure_classification():
    permanent = [
        "ERROR: [youtube] a: Video unavailable",
        "ERROR: [youtube] a: Private video. Sign in if you've been granted access to this video",
        "ERROR: [youtube] a: This video has been removed for violating YouTube's Terms of Service",
        "ERROR: [youtube] a: Sign in to confirm your age. This video may be inappropriate for some users.",
        "ERROR: [youtube] a: Video unavailable. This video is no longer available because the YouTube account "
        "associated with this video has been terminated.",
        "ERROR: [youtube] a: The uploader has not made this video available in your country",
    ]
    transient = [
        "ERROR: [youtube] a: Sign in to confirm you're not a bot. Use --cookies-from-browser",
        "ERROR: unable to download video data: HTTP Error 429: Too Many Requests",
        "ERROR: [youtube] a: Unable to download webpage: <urlopen error timed out>",
        "ERROR: unable to download video data: HTTP Error 503: Service Unavailable",
    ]
    assert [download.is_permanent(m) for m in permanent] == [True] * len(permanent)
    assert [download.is_permanent(m) for m in transient] == [False] * len(transient)
    stderr = "[youtube] a: Downloading webpage\nERROR: [youtube] a: Video unavailable\n"
    assert download.error_line(stderr, "fallback") == "ERROR: [youtube] a: Video unavailable"
    assert download.error_line("", "yt-dlp exited with code 1") == "yt-dlp exited with code 1"


def test_command_line_as_a_subprocess(env):
    finished = subprocess.run(
        [sys.executable, "-m", "audiocaps_tf.data", "download", "--out", str(env.out), "--csv-url", str(env.csvs),
         "--splits", "val", "--retry-delay", "0"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert "val: 1 downloaded, 0 already there, 0 missing" in finished.stdout
    assert "1/1" in finished.stderr  # the progress bar
    _assert_clip_file(env.audio / "okVal000001_0.flac")
