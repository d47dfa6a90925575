"""Captions from a running server (TensorFlow Serving or the development server), over gRPC or REST.

    python -m audiocaps_tf.serving.client dog.wav street.flac                 # gRPC on 127.0.0.1:8500
    python -m audiocaps_tf.serving.client *.wav --rest http://127.0.0.1:8501 --json

    client = GrpcCaptionClient("127.0.0.1:8500")       # or RestCaptionClient("http://127.0.0.1:8501")
    client.caption_wav([open("dog.wav", "rb").read()])  # [{"caption": ..., "score": ..., "tokens": [...]}]

WAV files go as they are to the `serving_default` signature, which decodes them in the graph; other formats
(FLAC, MP3, OGG, ...), WAV encodings the graph does not decode (mu-law, A-law, ADPCM) and WAV files over
MAX_WAV_BYTES are decoded here, their first 10 s read as `python -m audiocaps_tf.caption --no-segments` reads
them (mono, 16 kHz, the rest of a long file never read), and go as waveforms to `caption_waveform`. `--signature
caption_waveform` decodes every file here; `--signature serving_default` (or any other signature name) sends every
file's bytes.

The output is that of `python -m audiocaps_tf.caption --no-segments`: one line per file in the order given,
`path<TAB>caption`, or with --json a JSON object per line ({"path", "caption", "score"}), and a warning on stderr
for a file longer than 10 s, of which only the first 10 s were captioned. With --format
tsv|json|srt|vtt (and --out FILE|DIR) files of any length and format are read here as a stream, sent to the
`caption_segments` signature in 60-s pieces of 16 kHz WAV, and their segments written as `python -m
audiocaps_tf.caption` writes them (the same segments). A file that cannot be read, or that the
server rejects, is reported on stderr (`error: PATH: cause`) and the others are still captioned; the exit status
is then 1. A server that cannot be reached, or that does not serve the model, is one error, exit 1.
"""

import argparse
import base64
import collections
import concurrent.futures
import http.client
import json
import math
import os
import pathlib
import sys
import urllib.error
import urllib.parse
import urllib.request

import grpc
import numpy as np
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from audiocaps_tf.arguments import positive_float, positive_int
from audiocaps_tf.caption_formats import FORMATS, CaptionOutput, render
from audiocaps_tf.params import CLIP_SECONDS
from audiocaps_tf.serving.tensors import (
    STATUS_CODES,
    ServingError,
    array_to_tensor_proto,
    code_of_http_status,
    metadata_to_json,
    proto_to_json,
)

DEFAULT_GRPC_TARGET = "127.0.0.1:8500"
BYTES_SIGNATURE = "serving_default"  # input "audio": WAV file bytes
WAVEFORM_SIGNATURE = "caption_waveform"  # inputs "waveform" (float32, zero-padded) and "sample_rate"
SEGMENTS_SIGNATURE = "caption_segments"  # input "audio": WAV file bytes of any length (up to the export's maximum)
DEFAULT_BATCH_SIZE = 8
# Seconds of audio per caption_segments row: a whole number of 10-s windows, 3.8 MB as a float WAV, so a request
# of DEFAULT_BATCH_SIZE rows stays far below the servers' usual 64 MiB cap.
CHUNK_SECONDS = 60.0
CLIENT_SAMPLE_RATE = 16000  # what load_audio returns
# WAV files larger than this go as their first clip's waveform (decoded here) instead of their bytes: the graph
# captions only the first CLIP_SECONDS anyway, and DEFAULT_BATCH_SIZE such files, base64 in JSON (x 4/3), stay
# within the servers' usual 64 MiB request cap. A 10-s WAV is at most 3.7 MiB up to 48 kHz stereo 32-bit.
MAX_WAV_BYTES = 4 << 20
# caption_segments: chunks per request, and requests sent ahead (the server parses one, JSON and base64, while its
# graph runs another). Measured on a 1-hour file over REST on 2 cores: 4 chunks and 3 requests took 2.9 s, 8 and 2
# 3.0-3.1 s, 16 and 2 3.5 s, 8 and 1 3.6 s (benchmarks/long_audio.py).
SEGMENT_CHUNKS_PER_REQUEST = 4
REQUESTS_IN_FLIGHT = 3
# Errors about the server or the model, not a file: captioning stops at the first one.
FATAL_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "NOT_FOUND", "UNIMPLEMENTED", "UNAUTHENTICATED",
                         "PERMISSION_DENIED"})


def is_wav(data):
    """Whether `data` starts with the RIFF/WAVE magic of a WAV file."""
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"


# The WAV encodings the exported graph decodes (audio/graph.py: PCM 8/16/24/32-bit, IEEE float 32/64-bit).
GRAPH_WAV_SUBTYPES = frozenset({"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})


def graph_decodes(data):
    """Whether the SavedModel decodes the file `data` itself: a WAV in one of GRAPH_WAV_SUBTYPES (mu-law, A-law or
    ADPCM WAVs, which `caption` reads, are decoded by the client instead)."""
    if not is_wav(data):
        return False
    import io

    import soundfile

    try:
        return soundfile.info(io.BytesIO(data)).subtype in GRAPH_WAV_SUBTYPES
    except (RuntimeError, soundfile.LibsndfileError):
        return True  # a damaged WAV: the server's decoder says what is wrong with it


def first_clip(path):
    """The file's first CLIP_SECONDS as a 16 kHz mono float32 waveform, zero-padded: `load_audio(path)`, read as a
    stream (as `caption --no-segments` reads it), so the rest of a long file is never read."""
    from audiocaps_tf.audio.stream import open_audio_stream

    size = round(CLIP_SECONDS * CLIENT_SAMPLE_RATE)
    clip, filled = np.zeros(size, np.float32), 0
    with open_audio_stream(path, CLIENT_SAMPLE_RATE) as stream:
        for block in stream.blocks():
            taken = block[: size - filled]
            clip[filled:filled + len(taken)] = taken
            filled += len(taken)
            if filled == size:
                break
    return clip


def pad_waveforms(waveforms):
    """1-D waveforms as one float32 [batch, longest] array, each zero-padded at the end."""
    arrays = [np.asarray(waveform, dtype=np.float32) for waveform in waveforms]
    if any(array.ndim != 1 for array in arrays):
        raise ValueError("each waveform must be a 1-D array of samples")
    batch = np.zeros((len(arrays), max((len(array) for array in arrays), default=0)), np.float32)
    for row, array in zip(batch, arrays):
        row[:len(array)] = array
    return batch


def _text(value):
    """A string output as text, whether it came as bytes (gRPC), a plain string or {"b64": ...} (REST)."""
    if isinstance(value, dict):
        value = base64.b64decode(value["b64"])
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _segments(row):
    """One `caption_segments` answer row as a list of `Segment(start, end, caption, score)`."""
    from audiocaps_tf.models.segments import Segment

    names = ("start", "end", "caption", "score", "segment_count")
    if not isinstance(row, dict) or not set(names) <= set(row):
        found = ", ".join(row) if isinstance(row, dict) else "a single unnamed output"
        raise ServingError("INTERNAL", f"signature {SEGMENTS_SIGNATURE} answered {found}, not {', '.join(names)}")
    count = int(np.ravel(row["segment_count"])[0])
    columns = [list(np.ravel(np.asarray(row[name], dtype=object)))[:count] for name in names[:4]]
    return [Segment(float(np.float32(start)), float(np.float32(end)), _text(caption), float(np.float32(score)))
            for start, end, caption, score in zip(*columns)]


def _caption(row, signature):
    """One answer row as {"caption": str, "score": float, "tokens": [int]}."""
    if not isinstance(row, dict) or not {"caption", "score", "tokens"} <= set(row):
        names = ", ".join(row) if isinstance(row, dict) else "a single unnamed output"
        raise ServingError("INTERNAL", f"signature {signature} answered {names}, not caption, score and tokens")
    caption = _text(row["caption"])
    # The float32 score, whether it came exact (gRPC) or as REST's short decimal: both transports agree.
    score = float(np.float32(row["score"]))
    return {"caption": caption, "score": score, "tokens": [int(t) for t in np.ravel(row["tokens"])]}


class _CaptionClient:
    """The caption requests both transports share, on their `_predict_rows(signature, inputs, version)`."""

    model_name = None
    timeout = None

    def caption_wav(self, wavs, signature=BYTES_SIGNATURE, version=None):
        """Captions of WAV files given as bytes: a list of {"caption", "score", "tokens"}, one per file."""
        wavs = [bytes(wav) for wav in wavs]
        if not wavs:
            return []
        rows = self._predict_rows(signature, {"audio": np.array(wavs, dtype=object)}, version)
        return [_caption(row, signature) for row in rows]

    def caption_waveforms(self, waveforms, sample_rates, signature=WAVEFORM_SIGNATURE, version=None):
        """Captions of 1-D float32 waveforms (zero-padded to the longest) at `sample_rates` (a list, or one rate)."""
        batch = pad_waveforms(waveforms)
        if not len(batch):
            return []
        rates = np.asarray(sample_rates, dtype=np.int32)
        rates = np.full(len(batch), rates, np.int32) if rates.ndim == 0 else rates
        if rates.shape != (len(batch),):
            raise ValueError(f"{len(batch)} waveforms but {rates.size} sample rates")
        rows = self._predict_rows(signature, {"waveform": batch, "sample_rate": rates}, version)
        return [_caption(row, signature) for row in rows]

    def iter_caption_files(self, paths, signature=None, version=None, batch_size=DEFAULT_BATCH_SIZE):
        """Yields (path, outcome) for each audio file in order, a batch at a time.

        The outcome is the caption dict, or the exception for that file: OSError or AudioError (it could not be
        read or decoded) or ServingError (the server rejected it). Errors about the server or the model
        (unreachable, no such model...; see FATAL_CODES) are raised.
        """
        from audiocaps_tf.audio.loading import AudioError

        decode_all = signature == WAVEFORM_SIGNATURE
        bytes_signature = BYTES_SIGNATURE if signature in (None, WAVEFORM_SIGNATURE) else signature
        for start in range(0, len(paths), batch_size):
            chunk = [str(path) for path in paths[start:start + batch_size]]
            outcomes = [None] * len(chunk)
            wav_jobs, waveform_jobs = [], []  # (position in chunk, payload)
            for position, path in enumerate(chunk):
                try:
                    decode_here = decode_all or signature is None and os.path.getsize(path) > MAX_WAV_BYTES
                    data = None if decode_here else pathlib.Path(path).read_bytes()
                    if decode_here or signature is None and not graph_decodes(data):
                        waveform_jobs.append((position, first_clip(path)))
                    else:
                        wav_jobs.append((position, data))
                except (OSError, AudioError) as error:
                    outcomes[position] = error
            self._run_jobs(wav_jobs, outcomes, lambda wavs: self.caption_wav(wavs, bytes_signature, version))
            self._run_jobs(waveform_jobs, outcomes, lambda waveforms: self.caption_waveforms(
                waveforms, CLIENT_SAMPLE_RATE, WAVEFORM_SIGNATURE, version))
            yield from zip(chunk, outcomes)

    def caption_segments(self, wavs, version=None):
        """Segments of WAV files of any length given as bytes: a list of `Segment` lists, one per file."""
        wavs = [bytes(wav) for wav in wavs]
        if not wavs:
            return []
        return [_segments(row) for row in self._predict_rows(SEGMENTS_SIGNATURE,
                                                             {"audio": np.array(wavs, dtype=object)}, version)]

    def iter_segment_files(self, paths, version=None, batch_size=SEGMENT_CHUNKS_PER_REQUEST):
        """Yields (path, [Segment] or the exception that stopped the file) for each audio file in order, through
        the `caption_segments` signature.

        Each file is read here as a stream (`open_audio_stream`: any format `caption` reads, resampled as it
        resamples) and sent as 16 kHz WAV chunks of CHUNK_SECONDS, `batch_size` chunks per request, up to
        REQUESTS_IN_FLIGHT requests at once and the next one read meanwhile; the answers are shifted to the chunk's
        start and joined, in order, where a segment runs on into the next chunk. An exception carries the segments
        before it as `.segments`.
        """
        from audiocaps_tf.audio.loading import AudioError

        def request(batch):
            return self.caption_segments([data for _, data in batch], version)

        for path in (str(path) for path in paths):
            segments = []
            try:
                batches = _prefetched(_chunk_batches(path, batch_size))
                for batch, answers in _answered(batches, request, REQUESTS_IN_FLIGHT):
                    segments = _joined_chunks(segments, batch, answers)
            except (OSError, AudioError, ServingError) as error:
                if isinstance(error, ServingError) and error.code in FATAL_CODES:
                    raise
                error.segments = segments
                yield path, error
                continue
            yield path, segments

    def caption_files(self, paths, signature=None, version=None, batch_size=DEFAULT_BATCH_SIZE):
        """[(path, caption dict or exception)] for audio files: see `iter_caption_files`."""
        return list(self.iter_caption_files(paths, signature, version, batch_size))

    def _run_jobs(self, jobs, outcomes, caption):
        """Captions the jobs' payloads in one request; when the server rejects it, each file alone."""
        if not jobs:
            return
        try:
            results = caption([payload for _, payload in jobs])
        except ServingError as error:
            if error.code in FATAL_CODES:
                raise
            if len(jobs) == 1:
                outcomes[jobs[0][0]] = error
            else:  # find the files the server rejects
                for job in jobs:
                    self._run_jobs([job], outcomes, caption)
            return
        for (position, _), result in zip(jobs, results):
            outcomes[position] = result

    def close(self):
        """Releases the connection (nothing to release for REST)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class GrpcCaptionClient(_CaptionClient):
    """Captions through TF Serving's gRPC PredictionService at `target` (HOST:PORT)."""

    def __init__(self, target, model_name="audiocaps", timeout=30.0):
        self.target = target
        self.model_name = model_name
        self.timeout = timeout
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self._channel = grpc.insecure_channel(target, options=options)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self):
        self._channel.close()

    def predict(self, inputs, signature=BYTES_SIGNATURE, version=None, output_filter=()):
        """Any signature: {input name: array} in, {output name: NumPy array} out."""
        import tensorflow as tf

        request = predict_pb2.PredictRequest(output_filter=list(output_filter))
        self._fill_spec(request.model_spec, version, signature)
        for name, array in inputs.items():
            request.inputs[name].CopyFrom(array_to_tensor_proto(array))
        response = self._call(self._predictions.Predict, request)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def metadata(self, version=None):
        """The model's signature defs, as the REST metadata answer: {"model_spec", "metadata": {"signature_def"}}."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(request.model_spec, version)
        return metadata_to_json(self._call(self._predictions.GetModelMetadata, request))

    def status(self, version=None):
        """The model's version status, as the REST status answer: {"model_version_status": [...]}."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec, version)
        return proto_to_json(self._call(self._models.GetModelStatus, request))

    def _predict_rows(self, signature, inputs, version):
        outputs = self.predict(inputs, signature, version)
        batch_size = len(next(iter(inputs.values())))
        return [{name: array[row] for name, array in outputs.items()} for row in range(batch_size)]

    def _fill_spec(self, model_spec, version, signature=None):
        model_spec.name = self.model_name
        if version is not None:
            model_spec.version.value = int(version)
        if signature:
            model_spec.signature_name = signature

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code, details = error.code().name, error.details() or ""
            if code == "UNAVAILABLE":
                message = f"cannot reach the gRPC server at {self.target}: {details}"
            elif code == "DEADLINE_EXCEEDED":
                message = f"no answer from the gRPC server at {self.target} within {self.timeout} s"
            else:
                message = details or code
            raise ServingError(code if code in STATUS_CODES else "UNKNOWN", message) from None


class RestCaptionClient(_CaptionClient):
    """Captions through TF Serving's REST API at `url` (http://HOST:PORT), with JSON `instances` and b64 audio."""

    def __init__(self, url, model_name="audiocaps", timeout=30.0):
        self.url = (url if "://" in url else f"http://{url}").rstrip("/")
        self.model_name = model_name
        self.timeout = timeout

    def metadata(self, version=None):
        """The model's signature defs: {"model_spec", "metadata": {"signature_def"}}."""
        return self._request(self._model_url(version) + "/metadata")

    def status(self, version=None):
        """The model's version status: {"model_version_status": [...]}."""
        return self._request(self._model_url(version))

    def predict_json(self, body, version=None):
        """Any :predict request body (a dict) in, the JSON answer out."""
        return self._request(self._model_url(version) + ":predict", body)

    def _predict_rows(self, signature, inputs, version):
        batch_size = len(next(iter(inputs.values())))
        instances = [{name: _to_json(array[row]) for name, array in inputs.items()} for row in range(batch_size)]
        answer = self.predict_json({"signature_name": signature, "instances": instances}, version)
        predictions = answer.get("predictions") if isinstance(answer, dict) else None
        if not isinstance(predictions, list) or len(predictions) != batch_size:
            raise ServingError("INTERNAL", f"{self.url} answered no 'predictions' list of {batch_size} rows")
        return predictions

    def _model_url(self, version):
        url = f"{self.url}/v1/models/{urllib.parse.quote(self.model_name, safe='')}"
        return url if version is None else f"{url}/versions/{int(version)}"

    def _request(self, url, body=None):
        data = None if body is None else _json_body(body)
        headers = {} if data is None else {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, headers=headers, method="GET" if data is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:
            raise ServingError(code_of_http_status(error.code), _error_message(error)) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise self._timeout() from None
            raise ServingError("UNAVAILABLE", f"cannot reach the REST server at {self.url}: {error.reason}") from None
        except TimeoutError:
            raise self._timeout() from None
        except (ConnectionError, http.client.HTTPException) as error:
            message = f"the connection to the REST server at {self.url} failed: {error}"
            raise ServingError("UNAVAILABLE", message) from None
        try:
            return json.loads(answer)
        except ValueError:
            raise ServingError("INTERNAL", f"{url} answered something that is not JSON: {answer[:200]!r}") from None

    def _timeout(self):
        message = f"no answer from the REST server at {self.url} within {self.timeout} s"
        return ServingError("DEADLINE_EXCEEDED", message)


def _error_message(error):
    """The server's {"error": ...} message of an HTTP error answer, or its body, or its status line."""
    body = error.read()
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", errors="replace").strip()[:500] or f"HTTP {error.code} {error.reason}"


def _chunks(path):
    """(offset seconds, 16 kHz float32 WAV bytes) of consecutive CHUNK_SECONDS pieces of the file, streamed."""
    from audiocaps_tf.audio.stream import open_audio_stream
    from audiocaps_tf.audio.windows import windows

    size = int(CHUNK_SECONDS * CLIENT_SAMPLE_RATE)
    with open_audio_stream(path, CLIENT_SAMPLE_RATE) as stream:
        for chunk in windows(stream.blocks(), size, size):
            yield chunk.start / CLIENT_SAMPLE_RATE, _wav_bytes(chunk.samples[: chunk.end - chunk.start])


def _chunk_batches(path, batch_size):
    """Lists of `batch_size` `_chunks`; when reading fails, the chunks before the damage come first."""
    batch = []
    try:
        for chunk in _chunks(path):
            batch.append(chunk)
            if len(batch) == batch_size:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _prefetched(iterator):
    """The items of `iterator`, each one computed in a thread while the caller uses the one before."""
    end = object()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(next, iterator, end)
        while True:
            item = upcoming.result()  # raises what the iterator raised
            if item is end:
                return
            upcoming = pool.submit(next, iterator, end)
            yield item


def _answered(batches, request, depth):
    """(batch, request(batch)) for each batch in order, with up to `depth` requests running at once. An error
    reading `batches` is raised after the answers of the batches read before it."""
    pending, failure, batches = collections.deque(), None, iter(batches)
    with concurrent.futures.ThreadPoolExecutor(max_workers=depth) as pool:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception as error:  # noqa: BLE001  (raised again once the answers before it are out)
                failure = error
                break
            pending.append((batch, pool.submit(request, batch)))
            if len(pending) == depth:
                batch, future = pending.popleft()
                yield batch, future.result()
        while pending:
            batch, future = pending.popleft()
            yield batch, future.result()
        if failure is not None:
            raise failure


def _joined_chunks(segments, chunks, answers):
    """`segments` followed by the `answers` of `chunks` [(offset seconds, WAV bytes)], joined across chunk edges."""
    for (offset, _), answer in zip(chunks, answers):
        for segment in answer:
            segments = _join(segments, segment._replace(start=segment.start + offset, end=segment.end + offset))
    return segments


def _join(segments, segment):
    """`segments` + [segment], merged into the last one when it goes on with the same caption; the score is the
    mean over the windows of both (each segment spans ceil(length / window) windows)."""
    if segments and segments[-1].caption == segment.caption and segment.start <= segments[-1].end:
        last = segments[-1]
        before, after = (max(1, math.ceil((s.end - s.start) / CLIP_SECONDS - 1e-6)) for s in (last, segment))
        score = (last.score * before + segment.score * after) / (before + after)
        return segments[:-1] + [last._replace(end=segment.end, score=score)]
    return segments + [segment]


def _wav_bytes(waveform):
    """A 16 kHz mono WAV file of `waveform`, in memory: 16-bit PCM when that holds every sample exactly (audio that
    was 16-bit at 16 kHz), else float32, so the server decodes the very samples `caption` reads. (The 16-bit file
    is written with the standard library's `wave`: 9x faster than soundfile here, which counts for long files.)"""
    import io
    import wave

    import soundfile

    scaled = waveform * 32768.0
    exact = bool(np.all(scaled == np.round(scaled))
                 and -32768 <= scaled.min(initial=0) <= scaled.max(initial=0) <= 32767)
    buffer = io.BytesIO()
    if exact:
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(CLIENT_SAMPLE_RATE)
            out.writeframes(scaled.astype("<i2").tobytes())
    else:
        soundfile.write(buffer, waveform, CLIENT_SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _to_json(value):
    """One input row for `_json_body`: bytes stay bytes (sent as {"b64": ...}), arrays become nested lists."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_to_json(item) for item in value]
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value


def _json_body(value):
    """The JSON text (UTF-8 bytes) of `value`, where bytes are {"b64": ...}. Base64 needs no escaping, so it is
    joined in as it is: json.dumps would take ~3 ns per byte, 0.06 s for a request of eight 60-s chunks."""
    if isinstance(value, bytes):
        return b'{"b64": "' + base64.b64encode(value) + b'"}'
    if isinstance(value, dict):
        return b"{" + b", ".join(json.dumps(str(key)).encode() + b": " + _json_body(item)
                                 for key, item in value.items()) + b"}"
    if isinstance(value, (list, tuple)):
        return b"[" + b", ".join(_json_body(item) for item in value) + b"]"
    return json.dumps(value).encode("utf-8")


def _describe(path, error):
    """`PATH: cause` for a file's error (AudioError messages already start with the path)."""
    if isinstance(error, ServingError):
        return f"{path}: {error.message}"
    if isinstance(error, OSError) and error.strerror:
        return f"{path}: {error.strerror}"
    message = str(error)
    return message if message.startswith(path) else f"{path}: {message}"


def _declared_seconds(path):
    """The file's length in seconds as its header declares it, or None when libsndfile cannot read it."""
    import soundfile

    try:
        return soundfile.info(path).duration
    except (RuntimeError, soundfile.LibsndfileError):
        return None


def _print(path, result, as_json):
    if as_json:
        line = json.dumps({"path": path, "caption": result["caption"], "score": result["score"]}, ensure_ascii=False)
        print(line, flush=True)
    else:
        print(f"{path}\t{result['caption']}", flush=True)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m audiocaps_tf.serving.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files to caption")
    server = parser.add_mutually_exclusive_group()
    server.add_argument("--grpc", metavar="HOST:PORT", help=f"gRPC server (default {DEFAULT_GRPC_TARGET})")
    server.add_argument("--rest", metavar="URL", help="REST server instead, e.g. http://127.0.0.1:8501")
    parser.add_argument("--model-name", default="audiocaps", help="model name (default audiocaps)")
    parser.add_argument("--signature", metavar="NAME",
                        help=f"{WAVEFORM_SIGNATURE}: decode every file here; any other name: send every file's "
                             f"bytes (default: WAV bytes to {BYTES_SIGNATURE}, other formats decoded here)")
    parser.add_argument("--version", type=int, metavar="N", help="model version (default: the newest served)")
    parser.add_argument("--timeout", type=positive_float, default=30.0, metavar="S",
                        help="seconds to wait for each answer (default 30)")
    parser.add_argument("--batch-size", type=positive_int, metavar="N",
                        help=f"files per request (default {DEFAULT_BATCH_SIZE}); with --format, {CHUNK_SECONDS:g}-s "
                             f"chunks per request (default {SEGMENT_CHUNKS_PER_REQUEST})")
    parser.add_argument("--json", action="store_true", help='print JSON lines {"path", "caption", "score"}')
    parser.add_argument("--format", choices=FORMATS,
                        help=f"caption files of any length window by window through {SEGMENTS_SIGNATURE} and print "
                             "their segments as `python -m audiocaps_tf.caption --format` does")
    parser.add_argument("--out", type=pathlib.Path, metavar="FILE|DIR",
                        help="with --format: write to FILE, or one file per input into DIR (default: stdout)")
    parser.add_argument("--overwrite", action="store_true", help="with --out: replace output files that exist")
    return parser


def _check_options(parser, args):
    if args.format is None:
        for name, given in (("--out", args.out is not None), ("--overwrite", args.overwrite)):
            if given:
                parser.error(f"{name} needs --format (segments are written only with it)")
    elif args.json or args.signature:
        parser.error(f"--format writes {SEGMENTS_SIGNATURE} segments; it cannot be combined with "
                     f"{'--json' if args.json else '--signature'}")


def _write_segments(client, args):
    """`--format`: every file's segments into the output; returns the number of files that failed."""
    output = CaptionOutput(args.out, args.format, [str(path) for path in args.files], args.overwrite)
    failures = 0
    try:
        for path, outcome in client.iter_segment_files(args.files, args.version,
                                                       args.batch_size or SEGMENT_CHUNKS_PER_REQUEST):
            segments = getattr(outcome, "segments", None) if isinstance(outcome, Exception) else outcome
            if segments:
                single_window = len(segments) == 1 and segments[0].end <= CLIP_SECONDS
                output.add(path, render(args.format, path, segments, single_window))
            if isinstance(outcome, Exception):
                failures += 1
                print(f"error: {_describe(path, outcome)}", file=sys.stderr, flush=True)
    finally:
        output.close()
    return failures


def main(argv=None):
    """The command line; returns the exit status (1 when the server or any file failed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_options(parser, args)

    if args.rest:
        client = RestCaptionClient(args.rest, args.model_name, args.timeout)
    else:
        client = GrpcCaptionClient(args.grpc or DEFAULT_GRPC_TARGET, args.model_name, args.timeout)
    failures = 0
    try:
        with client:
            if args.format:
                failures = _write_segments(client, args)
            outcomes = () if args.format else client.iter_caption_files(args.files, args.signature, args.version,
                                                                        args.batch_size or DEFAULT_BATCH_SIZE)
            for path, outcome in outcomes:
                if isinstance(outcome, Exception):
                    failures += 1
                    print(f"error: {_describe(path, outcome)}", file=sys.stderr, flush=True)
                else:
                    _print(path, outcome, args.json)
                    seconds = _declared_seconds(path)
                    if seconds is not None and seconds > CLIP_SECONDS:
                        print(f"warning: {path} is {seconds:.1f} s long; only its first {CLIP_SECONDS:g} s were "
                              "captioned (--format captions it window by window)", file=sys.stderr, flush=True)
    except ServingError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    except ValueError as error:  # an output file that exists, several srt files to stdout, ...
        print(f"error: {error}", file=sys.stderr)
        return 1
    if failures:
        print(f"error: {failures} of {len(args.files)} file(s) could not be captioned", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
