"""Serving latency and throughput of an exported model on 10 s clips: in process, and through the dev server's gRPC.

    python benchmarks/serving_latency.py [--model RUN_DIR|MODEL.keras] [--model-name topdown-alignedatt]
                                         [--beam-size 1] [--requests 20]

The model: --model (a trained one), else a randomly initialised paper-size --model-name (VGGish included: the
slow path). A random model rarely emits <eos>, so its captions run to the maximum length (51 tokens): the worst
case of decoding; the mean caption length is printed. It is exported with `python -m audiocaps_tf.export` into
a temporary model base.

Clips: the 13 real AudioCaps clips of ../shared/audiocaps/examples (10 s, 22.05 kHz WAV: decoding and resampling
are part of every request), or 10 s demo clips as 16 kHz WAV when that folder is missing.

Figures, each after warm-up requests: per-request latency p50 / p95 and clips/s for
  - the SavedModel in process (`serving_default`), batches of 1 and of 16 clips, one request at a time;
  - the dev server (`python -m audiocaps_tf.serving.dev_server`, its own process) over gRPC with
    `GrpcCaptionClient`, one clip per request, from 1 client and from 8 concurrent clients.
"""

import argparse
import concurrent.futures
import io
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import tensorflow as tf  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "shared" / "audiocaps" / "examples"


def clips_as_wav():
    """WAV bytes of 10 s clips: the real examples when present, else demo clips."""
    examples = sorted(EXAMPLES.glob("*.wav"))
    if examples:
        return [path.read_bytes() for path in examples], f"{len(examples)} AudioCaps example clips"
    from audiocaps_tf.data import demo

    clips = []
    for spec in demo.clip_specs(13, seed=11):
        buffer = io.BytesIO()
        soundfile.write(buffer, demo.render(spec), 16000, format="WAV", subtype="PCM_16")
        clips.append(buffer.getvalue())
    return clips, "13 demo clips (16 kHz WAV)"


def export(args, model_base):
    """Exports the benchmarked model into model_base with the export command; returns the version directory."""
    model_path = args.model
    if model_path is None:
        from audiocaps_tf.data import demo
        from audiocaps_tf.tokens.vocabulary import build_vocabulary
        from audiocaps_tf.models import build_captioner, get_spec

        vocabulary = build_vocabulary([c for spec in demo.clip_specs(200, 0) for c in demo.describe(spec, 5)])
        options = {}
        if get_spec(args.model_name).uses_attributes:
            options["attribute_vocabulary"] = ["dog", "engine", "rain", "speech", "siren"]
        model = build_captioner(args.model_name, vocabulary, **options)
        if get_spec(args.model_name).is_retrieval:
            rng = np.random.default_rng(0)
            dim = 128 if "vggish" in args.model_name else 20
            model.index(rng.normal(size=(1000, dim)).astype(np.float32), ["a dog barks"] * 1000)
        elif model.uses_attributes:
            rng = np.random.default_rng(0)
            model.set_attribute_index(rng.normal(size=(1000, 128)).astype(np.float32), [["dog", "rain"]] * 1000)
        model_path = pathlib.Path(model_base).parent / "benchmark.keras"
        model.save(model_path)
    command = [sys.executable, "-m", "audiocaps_tf.export", "--model", str(model_path), "--out", str(model_base),
               "--beam-size", str(args.beam_size)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return pathlib.Path(model_base) / "1"


def summary(latencies, clips_per_request, wall=None):
    """p50 and p95 in ms, and clips/s (from the wall time of all requests when given, else their sum)."""
    latencies = np.asarray(latencies)
    total = wall if wall is not None else latencies.sum()
    return np.percentile(latencies, 50) * 1e3, np.percentile(latencies, 95) * 1e3, len(latencies) * clips_per_request / total


def timed(function, requests, warmup=2):
    for request in requests[:warmup]:
        function(request)
    latencies = []
    for request in requests:
        started = time.perf_counter()
        function(request)
        latencies.append(time.perf_counter() - started)
    return latencies


def in_process(version_dir, wavs, batch_size, num_requests):
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    requests = [[wavs[(r * batch_size + i) % len(wavs)] for i in range(batch_size)] for r in range(num_requests)]
    lengths = []

    def call(batch):
        tokens = serve(audio=tf.constant(batch))["tokens"].numpy()
        lengths.extend((tokens != 0).sum(axis=1))

    return summary(timed(call, requests), batch_size), float(np.mean(lengths))


def start_dev_server(model_base):
    process = subprocess.Popen(
        [sys.executable, "-m", "audiocaps_tf.serving.dev_server", "--model-base", str(model_base),
         "--grpc-port", "0", "--rest-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    grpc_target = None
    for line in process.stdout:
        match = re.match(r"gRPC: (\S+)", line)
        if match:
            grpc_target = match.group(1)
        if line.startswith("serving "):
            return process, grpc_target
    raise RuntimeError("the dev server stopped before serving")


def through_grpc(grpc_target, wavs, clients, num_requests):
    from audiocaps_tf.serving.client import GrpcCaptionClient

    client = GrpcCaptionClient(grpc_target, timeout=120)
    one = lambda wav: client.caption_wav([wav])  # noqa: E731
    timed(one, wavs[:2], warmup=0)
    requests = [wavs[i % len(wavs)] for i in range(num_requests * clients)]

    def run(wav):
        started = time.perf_counter()
        one(wav)
        return time.perf_counter() - started

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(run, requests))
    return summary(latencies, 1, wall=time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=pathlib.Path, help="a run directory or .keras model (default: random)")
    parser.add_argument("--model-name", default="topdown-alignedatt", help="the random model's registry name")
    parser.add_argument("--beam-size", type=int, default=1, help="beam width of the export (default 1: greedy)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per figure (per client)")
    args = parser.parse_args()

    wavs, described = clips_as_wav()
    with tempfile.TemporaryDirectory() as tmp:
        model_base = pathlib.Path(tmp) / "audiocaps"
        started = time.perf_counter()
        version_dir = export(args, model_base)
        model = args.model or f"random {args.model_name}"
        print(f"model: {model}, beam size {args.beam_size}; clips: {described}; "
              f"export took {time.perf_counter() - started:.1f} s")
        print(f"{'setting':<34} {'p50 ms':>8} {'p95 ms':>8} {'clips/s':>8}")
        for batch_size in (1, 16):
            requests = args.requests if batch_size == 1 else max(3, args.requests // 4)
            (p50, p95, rate), length = in_process(version_dir, wavs, batch_size, requests)
            print(f"{f'in process, batch {batch_size}':<34} {p50:8.1f} {p95:8.1f} {rate:8.2f}"
                  f"   (mean caption {length:.1f} tokens)")
        process, target = start_dev_server(model_base)
        try:
            for clients in (1, 8):
                p50, p95, rate = through_grpc(target, wavs, clients, args.requests if clients == 1 else 5)
                print(f"{f'dev server gRPC, {clients} client(s)':<34} {p50:8.1f} {p95:8.1f} {rate:8.2f}")
        finally:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
