"""Captioning a long recording in process: real-time factor and peak memory against captioning one 10-s clip.

    python -m audiocaps_tf.fit --out runs/demo          # the demo model (quick start), once
    python benchmarks/long_audio.py --model runs/demo [--hours 1] [--work DIR]

Writes a 16 kHz mono WAV of `--hours` hours (the 13 real AudioCaps example clips of ../shared, repeated), then runs
two fresh processes on the same model: one captions one 10-s clip with `caption_segments`, the other captions the
long file (after a 170-s warm-up file, so tracing is not timed). Prints the long file's seconds of audio per second of
wall time (target >= 100 x real time on 2 cores) and both processes' peak resident memory (ru_maxrss; target: the
long file within 300 MB of the single clip). Then exports the model, serves it with the development server in a
third process, and captions the long file through REST with `RestCaptionClient.iter_segment_files` (what
`python -m audiocaps_tf.serving.client --rest URL --format ...` runs): its speed over the in-process speed (target
>= 0.8), and whether both gave the same segments.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import soundfile  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "shared" / "audiocaps" / "examples"

_CHILD = r"""
import json, resource, sys, time
from audiocaps_tf.caption import load_model
model = load_model(sys.argv[1])
warm_up, target = sys.argv[2], sys.argv[3]
model.caption_segments(warm_up)
start = time.perf_counter()
segments = model.caption_segments(target)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "segments": len(segments), "audio_seconds": segments[-1].end,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_SERVER = r"""
import sys
from audiocaps_tf.serving.dev_server import DevServer
with DevServer(sys.argv[1], grpc_port=0, rest_port=0) as server:
    server.wait_until_available()
    print(server.rest_port, flush=True)
    sys.stdin.read()  # serves until the benchmark closes this pipe
"""


def write_long_file(path, hours):
    """A 16 kHz PCM_16 WAV of `hours` hours made of the example clips in turn, written block by block."""
    import numpy as np

    from audiocaps_tf.audio.loading import load_audio

    clips = [load_audio(p) for p in sorted(EXAMPLES.glob("*.wav"))]
    if not clips:
        raise SystemExit(f"no example clips in {EXAMPLES}")
    total, written = round(hours * 3600 * 16000), 0
    with soundfile.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        while written < total:
            clip = clips[(written // 160000) % len(clips)][: total - written]
            f.write(np.asarray(clip))
            written += len(clip)


def run_child(model, warm_up, target):
    finished = subprocess.run([sys.executable, "-c", _CHILD, str(model), str(warm_up), str(target)],
                              capture_output=True, text=True, check=False)
    if finished.returncode:
        raise SystemExit(f"the measuring process failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def through_rest(model_path, work, warm_up, target):
    """(seconds, segments) of captioning `target` through a development server of the exported model, over REST."""
    import time

    from audiocaps_tf.caption import load_model
    from audiocaps_tf.export import export_model
    from audiocaps_tf.serving.client import RestCaptionClient

    model_base = work / "models"
    if not model_base.exists():
        export_model(load_model(model_path), model_base)
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(model_base)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        with RestCaptionClient(f"http://127.0.0.1:{port}", timeout=3600) as client:
            list(client.iter_segment_files([warm_up]))
            start = time.perf_counter()
            ((_, segments),) = client.iter_segment_files([target])
            elapsed = time.perf_counter() - start
    finally:
        server.stdin.close()
        server.wait()
    if isinstance(segments, Exception):
        raise SystemExit(f"the server failed: {segments}")
    return elapsed, segments


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=pathlib.Path, help="a fit run directory or a .keras file")
    parser.add_argument("--hours", type=float, default=1.0, help="length of the long recording (default 1)")
    parser.add_argument("--work", type=pathlib.Path, help="directory for the long WAV (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="long_audio_") as temporary:
        work = args.work or pathlib.Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        long_file = work / f"long-{args.hours:g}h.wav"
        if not long_file.exists():
            print(f"writing {long_file} ...", flush=True)
            write_long_file(long_file, args.hours)
        clip = sorted(EXAMPLES.glob("*.wav"))[1]
        warm_up = work / "warm-up.wav"  # 170 s: full batches of 16 windows and a short last one get traced
        soundfile.write(warm_up, soundfile.read(long_file, frames=170 * 16000, dtype="float32")[0], 16000)
        one = run_child(args.model, clip, clip)
        long = run_child(args.model, warm_up, long_file)
        rest_seconds, rest_segments = through_rest(args.model, work, warm_up, long_file)
    speed = long["audio_seconds"] / long["seconds"]
    print(f"one 10-s clip:     {one['seconds'] * 1000:8.1f} ms, peak RSS {one['max_rss_mb']:7.1f} MB")
    print(f"{long['audio_seconds'] / 3600:g} h recording: {long['seconds']:8.1f} s  = {speed:.0f} x real time, "
          f"{long['segments']} segments, peak RSS {long['max_rss_mb']:7.1f} MB "
          f"(+{long['max_rss_mb'] - one['max_rss_mb']:.1f} MB over one clip)")
    rest_speed = long["audio_seconds"] / rest_seconds
    print(f"through REST:      {rest_seconds:8.1f} s  = {rest_speed:.0f} x real time, {rest_speed / speed:.2f} of the "
          f"in-process speed, {len(rest_segments)} segments (in process: {long['segments']})")


if __name__ == "__main__":
    main()
