"""A bounded soak of the development server: 8 gRPC and 8 REST clients for 2 minutes, 10% malformed requests, and
a new model version exported in the middle.

    python benchmarks/serving_soak.py [--model RUN_DIR|MODEL.keras] [--seconds 120] [--clients 8]
                                      [--bad-share 0.1] [--seed 0]

The model: --model (a trained one), else a randomly initialised model of `fit`'s default recipe. It is exported
with `python -m audiocaps_tf.export` into a temporary model base, served by `python -m
audiocaps_tf.serving.dev_server` (its own process), and exported again as version 2 when half the time is gone;
the server picks the new version up without a restart.

Each client sends one request after another, of one of the 13 real AudioCaps example clips (or demo clips when
../shared is missing): WAV bytes to `serving_default` or a waveform to `caption_waveform`. A good request must
be answered with the caption the exported model gives that clip in process. A share of the requests is malformed
(kinds below) and must be refused with the right code: gRPC INVALID_ARGUMENT / NOT_FOUND / RESOURCE_EXHAUSTED,
REST 400 / 404 / 413. Anything else (an error for a good request, a wrong caption, a malformed request answered
or refused with another code, a reset connection) counts as failed and is listed.

Printed: per transport the counts (good answered, bad refused with the right code, failed), requests per second,
good-request latency p50 / p95, when version 2 was first served, and the server's resident memory at the start
and its peak (VmHWM from /proc) at the end.
"""

import argparse
import base64
import collections
import concurrent.futures
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from serving_latency import clips_as_wav  # noqa: E402

MODEL_NAME = "audiocaps"
MAX_BATCH = 16  # the server's --max-batch here: one request of MAX_BATCH + 1 rows is a malformed kind


def export_version(model_path, model_base):
    command = [sys.executable, "-m", "audiocaps_tf.export", "--model", str(model_path), "--out", str(model_base)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def random_model(path):
    """A randomly initialised model of fit's default recipe, saved to `path`."""
    from audiocaps_tf.data import demo
    from audiocaps_tf.fit import DEFAULT_MODEL
    from audiocaps_tf.models import build_captioner
    from audiocaps_tf.tokens.vocabulary import build_vocabulary

    vocabulary = build_vocabulary([c for spec in demo.clip_specs(200, 0) for c in demo.describe(spec, 5)])
    build_captioner(DEFAULT_MODEL, vocabulary).save(path)
    return path, f"random {DEFAULT_MODEL}"


class Server:
    """The dev server in its own process; its stdout is read in a thread (ports, versions served)."""

    def __init__(self, model_base):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "audiocaps_tf.serving.dev_server", "--model-base", str(model_base),
             "--grpc-port", "0", "--rest-port", "0", "--max-batch", str(MAX_BATCH), "--poll-seconds", "0.5"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addresses, self.versions = {}, {}
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            with self._changed:
                match = re.match(r"(gRPC|REST): (\S+)", line)
                if match:
                    self.addresses[match.group(1)] = match.group(2)
                match = re.match(r"serving \S+ version (\d+)", line)
                if match:
                    self.versions.setdefault(int(match.group(1)), time.perf_counter())
                self._changed.notify_all()
        with self._changed:
            self.versions.setdefault("exited", time.perf_counter())
            self._changed.notify_all()

    def wait_for_version(self, version):
        with self._changed:
            self._changed.wait_for(lambda: version in self.versions or "exited" in self.versions)
        if version not in self.versions:
            raise RuntimeError("the dev server stopped before serving")
        return self.versions[version]

    def memory_mb(self, field):
        """VmRSS (now) or VmHWM (peak) of the server process, in MB."""
        for line in pathlib.Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} in /proc/{self.process.pid}/status")

    def stop(self):
        self.process.terminate()
        self.process.wait(60)


def _shape_only_tensor():
    """A DT_FLOAT TensorProto declaring [1, 200000000] and carrying no values (issue 16's 89-byte request)."""
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1),
                                                   tensor_shape_pb2.TensorShapeProto.Dim(size=200_000_000)])
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape)


def _string_tensor(values, shape=None):
    tensor = tf.make_tensor_proto(np.array(values, dtype=object))
    if shape is not None:
        tensor.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape]))
    return tensor


def grpc_bad_requests(wav):
    """{kind: (signature, {input: TensorProto}, version, the code it must get)}."""
    audio = _string_tensor([wav])
    return {
        "shape declared, no values": ("caption_waveform", {"waveform": _shape_only_tensor(),
                                                           "sample_rate": tf.make_tensor_proto([16000])},
                                      None, "INVALID_ARGUMENT"),
        "one WAV, shape [1024]": ("serving_default", {"audio": _string_tensor([wav], [1024])}, None,
                                  "INVALID_ARGUMENT"),
        "not a WAV": ("serving_default", {"audio": _string_tensor([b"fLaC not a wav file"])}, None,
                      "INVALID_ARGUMENT"),
        "truncated WAV": ("serving_default", {"audio": _string_tensor([wav[:len(wav) // 6]])}, None,
                          "INVALID_ARGUMENT"),
        "float audio": ("serving_default", {"audio": tf.make_tensor_proto(np.zeros(3, np.float32))}, None,
                        "INVALID_ARGUMENT"),
        "DT_RESOURCE": ("serving_default", {"audio": tensor_pb2.TensorProto(dtype=types_pb2.DT_RESOURCE)}, None,
                        "INVALID_ARGUMENT"),
        "no such signature": ("no_such_signature", {"audio": audio}, None, "INVALID_ARGUMENT"),
        "no such version": ("serving_default", {"audio": audio}, 99, "NOT_FOUND"),
        f"{MAX_BATCH + 1} clips": ("serving_default", {"audio": _string_tensor([b"RIFF"] * (MAX_BATCH + 1))}, None,
                                   "RESOURCE_EXHAUSTED"),
    }


def rest_bad_requests(wav):
    """{kind: (URL suffix, body bytes, the HTTP status it must get)}."""
    b64 = base64.b64encode(wav).decode()
    nested = "[" * 40 + "1" + "]" * 40
    return {
        "nesting depth 40": (":predict", f'{{"instances": {nested}}}'.encode(), 400),
        "bad base64": (":predict", b'{"instances": [{"b64": "!!"}]}', 400),
        "not JSON": (":predict", b'{"instances": [', 400),
        "truncated WAV": (":predict", json.dumps({"instances": [{"b64": b64[:len(b64) // 6 // 4 * 4]}]}).encode(),
                          400),
        "no such signature": (":predict", json.dumps({"signature_name": "nope", "instances": [{"b64": b64}]})
                              .encode(), 400),
        "no such version": ("/versions/99:predict", json.dumps({"instances": [{"b64": b64}]}).encode(), 404),
        f"{MAX_BATCH + 1} clips": (":predict", json.dumps({"instances": [{"b64": "UklGRg=="}] * (MAX_BATCH + 1)})
                                   .encode(), 413),
    }


class Tally:
    """Thread-safe counts per transport, good-request latencies and the failures (first few kept)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.latencies = collections.defaultdict(list)
        self.failures = collections.Counter()

    def add(self, transport, outcome, latency=None, failure=None):
        with self.lock:
            self.counts[transport, outcome] += 1
            if latency is not None:
                self.latencies[transport].append(latency)
            if failure is not None:
                self.failures[f"{transport}: {failure}"] += 1


def good_request(client, transport, clips, expected, tally, rng):
    """One clip's WAV bytes to serving_default or its waveform to caption_waveform; the caption must be expected."""
    index = rng.randrange(len(clips))
    wav, waveform = clips[index]
    started = time.perf_counter()
    try:
        if rng.random() < 0.5:
            answer, signature = client.caption_wav([wav])[0], "serving_default"
        else:
            answer, signature = client.caption_waveforms([waveform], 16000)[0], "caption_waveform"
    except Exception as error:  # noqa: BLE001  (counted and listed)
        tally.add(transport, "failed", failure=f"good request: {type(error).__name__}: {error}"[:200])
        return
    right = answer["caption"] == expected[signature][index]
    tally.add(transport, "answered" if right else "failed", time.perf_counter() - started,
              None if right else "good request: a different caption")


def grpc_worker(target, clips, expected, stop, tally, rng, bad_share):
    from audiocaps_tf.serving.client import GrpcCaptionClient

    client = GrpcCaptionClient(target, MODEL_NAME, timeout=120)
    bad = grpc_bad_requests(clips[0][0])
    with client:
        while not stop.is_set():
            if rng.random() < bad_share:
                kind = rng.choice(sorted(bad))
                signature, inputs, version, code = bad[kind]
                request = predict_pb2.PredictRequest()
                request.model_spec.name, request.model_spec.signature_name = MODEL_NAME, signature
                if version is not None:
                    request.model_spec.version.value = version
                for name, proto in inputs.items():
                    request.inputs[name].CopyFrom(proto)
                try:
                    client._predictions.Predict(request, timeout=120)
                    tally.add("gRPC", "failed", failure=f"{kind}: answered")
                except grpc.RpcError as error:
                    got = error.code().name
                    tally.add("gRPC", "refused" if got == code else "failed",
                              failure=None if got == code else f"{kind}: {got}, not {code}")
                continue
            good_request(client, "gRPC", clips, expected, tally, rng)


def _is_json_error(body):
    """Whether an HTTP error body is the JSON {"error": ...} every REST error must carry."""
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and "error" in answer


def rest_worker(url, clips, expected, stop, tally, rng, bad_share):
    from audiocaps_tf.serving.client import RestCaptionClient

    client = RestCaptionClient(url, MODEL_NAME, timeout=120)
    bad = rest_bad_requests(clips[0][0])
    while not stop.is_set():
        if rng.random() < bad_share:
            kind = rng.choice(sorted(bad))
            suffix, body, status = bad[kind]
            request = urllib.request.Request(f"{url}/v1/models/{MODEL_NAME}{suffix}", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    response.read()
                tally.add("REST", "failed", failure=f"{kind}: answered")
            except urllib.error.HTTPError as error:
                is_json = _is_json_error(error.read())
                right = error.code == status and is_json
                tally.add("REST", "refused" if right else "failed",
                          failure=None if right else f"{kind}: HTTP {error.code} (JSON: {is_json}), not {status}")
            except OSError as error:
                tally.add("REST", "failed", failure=f"{kind}: {type(error).__name__}: {error}"[:200])
            continue
        good_request(client, "REST", clips, expected, tally, rng)


def expected_captions(version_dir, clips):
    """{signature: [caption of each clip]} from the SavedModel in this process."""
    loaded = tf.saved_model.load(str(version_dir))
    wavs = tf.constant([wav for wav, _ in clips])
    waveforms = np.stack([waveform for _, waveform in clips])
    as_text = lambda outputs: [caption.decode() for caption in outputs["caption"].numpy()]  # noqa: E731
    return {
        "serving_default": as_text(loaded.signatures["serving_default"](audio=wavs)),
        "caption_waveform": as_text(loaded.signatures["caption_waveform"](
            waveform=tf.constant(waveforms), sample_rate=tf.fill([len(clips)], 16000))),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=pathlib.Path, help="a run directory or .keras model (default: random)")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the soak (default 120)")
    parser.add_argument("--clients", type=int, default=8, help="clients per transport (default 8)")
    parser.add_argument("--bad-share", type=float, default=0.1, help="share of malformed requests (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    args = parser.parse_args()

    from audiocaps_tf.audio import load_audio

    wavs, described = clips_as_wav()
    clips = [(wav, load_audio(wav)) for wav in wavs]
    with tempfile.TemporaryDirectory() as tmp:
        model_base = pathlib.Path(tmp) / "audiocaps"
        model_path, model = (args.model, str(args.model)) if args.model else random_model(
            pathlib.Path(tmp) / "random.keras")
        export_version(model_path, model_base)
        expected = expected_captions(model_base / "1", clips)
        server = Server(model_base)
        try:
            server.wait_for_version(1)
            start_mb = server.memory_mb("VmRSS")
            print(f"model: {model}; clips: {described}; {args.clients} gRPC + {args.clients} REST clients for "
                  f"{args.seconds:g} s, {args.bad_share:.0%} malformed; server RSS at start {start_mb:.0f} MB",
                  flush=True)
            tally, stop = Tally(), threading.Event()
            master = random.Random(args.seed)
            with concurrent.futures.ThreadPoolExecutor(2 * args.clients) as pool:
                started = time.perf_counter()
                workers = [pool.submit(grpc_worker, server.addresses["gRPC"], clips, expected, stop, tally,
                                       random.Random(master.random()), args.bad_share)
                           for _ in range(args.clients)]
                workers += [pool.submit(rest_worker, server.addresses["REST"], clips, expected, stop, tally,
                                        random.Random(master.random()), args.bad_share)
                            for _ in range(args.clients)]
                stop.wait(args.seconds / 2)
                swap_started = time.perf_counter()
                export_version(model_path, model_base)  # the same model as version 2: captions stay the same
                swapped = server.wait_for_version(2)
                stop.wait(max(0.0, args.seconds - (time.perf_counter() - started)))
                stop.set()
                for worker in workers:
                    worker.result()
                wall = time.perf_counter() - started
            peak_mb = server.memory_mb("VmHWM")
        finally:
            server.stop()

    print(f"version 2: exported {swap_started - started:.0f} s in, served {swapped - swap_started:.1f} s later")
    print(f"{'transport':<10} {'answered':>9} {'refused':>9} {'failed':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for transport in ("gRPC", "REST"):
        counts = [tally.counts[transport, outcome] for outcome in ("answered", "refused", "failed")]
        latencies = np.asarray(tally.latencies[transport] or [np.nan]) * 1e3
        print(f"{transport:<10} {counts[0]:>9} {counts[1]:>9} {counts[2]:>7} {sum(counts) / wall:7.1f} "
              f"{np.percentile(latencies, 50):8.0f} {np.percentile(latencies, 95):8.0f}")
    print(f"server memory: {start_mb:.0f} MB at start, peak {peak_mb:.0f} MB")
    for failure, count in tally.failures.most_common(20):
        print(f"  failed x{count}: {failure}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
