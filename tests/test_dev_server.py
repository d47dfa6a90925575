"""The development server: TF Serving's gRPC and REST APIs over real sockets, against a tiny SavedModel.

The tiny model mimics the exporter's contract with a few string ops: `serving_default(audio)` checks each WAV
(non-empty, a 12-byte header, RIFF/WAVE magic) with Asserts whose messages start with "audio:", and captions
it with its byte count; `caption_waveform(waveform, sample_rate)` captions the energy and the rate.
"""

import base64
import concurrent.futures
import contextlib
import http.client
import json
import os
import pathlib
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from audiocaps_tf.serving import dev_server, tensors
from audiocaps_tf.serving.dev_server import DevServer
from audiocaps_tf.serving.tensors import ServingError

MAX_REQUEST_BYTES = 256 * 1024
SIGNATURES = ("serving_default", "caption_waveform")
TIMEOUT = 30  # seconds any single wait may take before the test fails
# A process's start or exit (TensorFlow's import and teardown) on a loaded machine: generous, so that only a hang
# fails (measured: more than 30 s to exit after SIGTERM with 5 busy processes on 2 cores).
PROCESS_TIMEOUT = 600

# --- the tiny SavedModel -----------------------------------------------------------------------------------


def fake_wav(body=b""):
    """Bytes with a RIFF/WAVE header, which the tiny model accepts."""
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body


class TinyCaptioner(tf.Module):
    """Two signatures with the exporter's inputs and outputs; captions say what came in."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(7.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="audio")])
    def serving_default(self, audio):
        length = tf.strings.length(audio)
        padded = tf.strings.join([audio, b"\0" * 12])  # substr past the end would raise
        is_wav = tf.logical_and(tf.strings.substr(padded, 0, 4) == b"RIFF", tf.strings.substr(padded, 8, 4) == b"WAVE")
        checks = []
        for holds, message in [(length > 0, "audio: empty input"), (length >= 12, "audio: truncated WAV header"),
                               (is_wav, "audio: not a RIFF/WAVE file")]:
            with tf.control_dependencies(checks):
                checks = [tf.debugging.Assert(tf.reduce_all(holds), [message])]
        with tf.control_dependencies(checks):
            length = tf.identity(length)
        caption = tf.strings.join(["a sound of ", tf.strings.as_string(length), " bytes \u266a"])
        score = -tf.cast(length, tf.float32) / self.scale
        tokens = tf.stack([length % 7, length % 5, length % 3], axis=1)
        return {"caption": caption, "score": score, "tokens": tokens}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform"),
                                  tf.TensorSpec([None], tf.int32, name="sample_rate")])
    def caption_waveform(self, waveform, sample_rate):
        energy = tf.reduce_sum(tf.abs(waveform), axis=1)
        caption = tf.strings.join(["a waveform of energy ", tf.strings.as_string(energy, precision=2), " at ",
                                   tf.strings.as_string(sample_rate), " Hz"])
        score = energy / tf.cast(sample_rate, tf.float32)
        tokens = tf.stack([sample_rate % 11, tf.fill(tf.shape(sample_rate), tf.shape(waveform)[1])], axis=1)
        return {"caption": caption, "score": score, "tokens": tokens}


def save_tiny_captioner(version_dir):
    """Saves the tiny model as a serving version, with a warm-up request as the exporter writes one."""
    version_dir = pathlib.Path(version_dir)
    module = TinyCaptioner()
    tf.saved_model.save(module, str(version_dir), signatures={name: getattr(module, name) for name in SIGNATURES})
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.model_spec.name = "audiocaps"
    log.predict_log.request.inputs["audio"].CopyFrom(tf.make_tensor_proto([fake_wav(b"warm-up")]))
    (version_dir / "assets.extra").mkdir()
    with tf.io.TFRecordWriter(str(version_dir / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())
    return version_dir


def wait_for(condition, what, timeout=PROCESS_TIMEOUT):
    """Polls `condition` until it is true; fails the test after `timeout` seconds (a guard against a hang, not a
    speed limit: generous enough for a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def model_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    save_tiny_captioner(base / "1")
    return base


@pytest.fixture(scope="module")
def reference(model_base):
    """The SavedModel called in process: what every answer must equal."""
    loaded = tf.saved_model.load(str(model_base / "1"))

    def run(signature, **inputs):
        return {name: value.numpy() for name, value in loaded.signatures[signature](**inputs).items()}

    return run


@pytest.fixture(scope="module")
def server(model_base):
    with DevServer(model_base, grpc_port=0, rest_port=0, max_request_bytes=MAX_REQUEST_BYTES,
                   poll_seconds=0.1) as running:
        assert running.wait_until_available(TIMEOUT)
        yield running


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as opened:
        yield opened


@pytest.fixture(scope="module")
def stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


# --- request helpers -----------------------------------------------------------------------------------------


def predict_request(inputs, signature=None, version=None, name="audiocaps", output_filter=()):
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.name = name
    if signature:
        request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, value in inputs.items():
        proto = value if isinstance(value, tensor_pb2.TensorProto) else tf.make_tensor_proto(value)
        request.inputs[key].CopyFrom(proto)
    return request


def outputs_of(response):
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def rest(server, path, body=None, method=None):
    """(HTTP status, JSON answer) of a REST request; `body` is a dict (sent as JSON) or raw bytes."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def b64(data):
    return {"b64": base64.b64encode(data).decode()}


def assert_grpc_error(call, code, message):
    with pytest.raises(grpc.RpcError) as raised:
        call()
    assert raised.value.code() == code, raised.value.details()
    assert message in raised.value.details()


def assert_still_serving(server, stub):
    """A good request over each transport is answered after whatever came before."""
    response = stub.Predict(predict_request({"audio": [fake_wav(b"ok")]}), timeout=TIMEOUT)
    assert outputs_of(response)["caption"].tolist() == [b"a sound of 14 bytes \xe2\x99\xaa"]
    status, answer = rest(server, "/v1/models/audiocaps:predict", {"instances": [b64(fake_wav(b"ok"))]})
    assert (status, answer["predictions"][0]["caption"]) == (200, "a sound of 14 bytes \u266a")


WAVS = np.array([fake_wav(b"abc"), fake_wav(), fake_wav(bytes(range(200)))], dtype=object)
WAVEFORMS = np.random.default_rng(0).uniform(-1, 1, (2, 300)).astype(np.float32)
RATES = np.array([16000, 22050], np.int32)


# --- gRPC ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signature, inputs", [
    (None, {"audio": WAVS}),
    ("serving_default", {"audio": WAVS}),
    ("caption_waveform", {"waveform": WAVEFORMS, "sample_rate": RATES}),
])
def test_grpc_predict_answers_what_the_saved_model_computes(stub, reference, signature, inputs):
    response = stub.Predict(predict_request(inputs, signature), timeout=TIMEOUT)
    expected = reference(signature or "serving_default", **inputs)
    outputs = outputs_of(response)
    assert sorted(outputs) == ["caption", "score", "tokens"]
    for name, value in expected.items():
        np.testing.assert_array_equal(outputs[name], value, err_msg=name)
    assert response.model_spec.name == "audiocaps"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == (signature or "serving_default")


def test_grpc_output_filter_keeps_the_outputs_asked_for(stub, reference):
    response = stub.Predict(predict_request({"audio": WAVS}, version=1, output_filter=["score"]), timeout=TIMEOUT)
    assert list(response.outputs) == ["score"]
    np.testing.assert_array_equal(outputs_of(response)["score"], reference("serving_default", audio=WAVS)["score"])
    assert_grpc_error(lambda: stub.Predict(predict_request({"audio": WAVS}, output_filter=["nope"])),
                      grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found in signature: nope")


def test_grpc_metadata_lists_both_signatures_with_their_inputs(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "audiocaps"
    response = stub.GetModelMetadata(request, timeout=TIMEOUT)
    assert response.model_spec.version.value == 1
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_defs)
    signatures = signature_defs.signature_def
    assert set(SIGNATURES) <= set(signatures)
    assert set(signatures["serving_default"].inputs) == {"audio"}
    assert signatures["serving_default"].inputs["audio"].dtype == tf.string.as_datatype_enum
    assert set(signatures["caption_waveform"].inputs) == {"waveform", "sample_rate"}
    assert set(signatures["caption_waveform"].outputs) == {"caption", "score", "tokens"}
    request.metadata_field[:] = ["other"]
    assert_grpc_error(lambda: stub.GetModelMetadata(request), grpc.StatusCode.INVALID_ARGUMENT,
                      "Metadata field other is not supported")


def test_grpc_model_status(channel):
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "audiocaps"
    (status,) = models.GetModelStatus(request, timeout=TIMEOUT).model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0 and status.status.error_message == ""
    request.model_spec.version.value = 1
    assert len(models.GetModelStatus(request, timeout=TIMEOUT).model_version_status) == 1
    request.model_spec.version.value = 7
    assert_grpc_error(lambda: models.GetModelStatus(request), grpc.StatusCode.NOT_FOUND, "version 7")


def _proto_with_wrong_content():
    proto = tf.make_tensor_proto(np.zeros(2, np.float32))
    proto.tensor_content = b"abc"
    return proto


@pytest.mark.parametrize("inputs, signature, spec, code, message", [
    ({"audio": [b"hello, world"]}, None, {}, "INVALID_ARGUMENT", "audio: not a RIFF/WAVE file"),
    ({"audio": [fake_wav(b"x"), b""]}, None, {}, "INVALID_ARGUMENT", "audio: empty input"),
    ({"audio": [b"RIFF\x04\x00"]}, None, {}, "INVALID_ARGUMENT", "audio: truncated WAV header"),
    ({"audio": np.zeros(2, np.float32)}, None, {}, "INVALID_ARGUMENT", 'input "audio": expects dtype string'),
    ({"audio": [[fake_wav()]]}, None, {}, "INVALID_ARGUMENT", 'input "audio": expects shape [?] (rank 1)'),
    ({"audio": fake_wav()}, None, {}, "INVALID_ARGUMENT", 'input "audio": expects shape [?] (rank 1)'),
    ({"audio": [fake_wav()], "extra": [1]}, None, {}, "INVALID_ARGUMENT", "Sent extra: {extra}"),
    ({"waveform": WAVEFORMS}, "caption_waveform", {}, "INVALID_ARGUMENT", "Missing but required: {sample_rate}"),
    ({"waveform": WAVEFORMS, "sample_rate": RATES.astype(np.int64)}, "caption_waveform", {}, "INVALID_ARGUMENT",
     'input "sample_rate": expects dtype int32 but int64'),
    ({"waveform": WAVEFORMS, "sample_rate": np.array([1, 2, 3], np.int32)}, "caption_waveform", {},
     "INVALID_ARGUMENT", "same batch size"),
    ({"audio": _proto_with_wrong_content()}, None, {}, "INVALID_ARGUMENT",
     'input "audio": the shape [2] needs 8 bytes of tensor_content, 3 were sent'),
    ({"audio": [fake_wav()]}, None, {"name": "nope"}, "NOT_FOUND", "Servable not found for request: Latest(nope)"),
    ({"audio": [fake_wav()]}, None, {"version": 7}, "NOT_FOUND",
     "Servable not found for request: Specific(audiocaps, 7)"),
    ({"audio": [fake_wav()]}, "nope", {}, "INVALID_ARGUMENT", 'Serving signature name: "nope" not found'),
    ({"audio": [b"x" * MAX_REQUEST_BYTES]}, None, {}, "RESOURCE_EXHAUSTED", ""),
], ids=["not-wav", "empty", "truncated", "dtype", "rank-2", "rank-0", "extra-input", "missing-input",
        "int64-rate", "batch-sizes", "bad-proto", "unknown-model", "unknown-version", "unknown-signature",
        "over-the-cap"])
def test_grpc_bad_requests_get_their_code_and_the_server_keeps_serving(server, stub, inputs, signature, spec, code,
                                                                       message):
    request = predict_request(inputs, signature, **spec)
    assert_grpc_error(lambda: stub.Predict(request, timeout=TIMEOUT), grpc.StatusCode[code], message)
    assert_still_serving(server, stub)


def test_other_rpcs_are_unimplemented(stub):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "audiocaps"
    assert_grpc_error(lambda: stub.Classify(request, timeout=TIMEOUT), grpc.StatusCode.UNIMPLEMENTED, "Classify")


def test_an_unexpected_failure_is_internal_and_the_server_keeps_serving(server, stub, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("surprise")

    with monkeypatch.context() as patch:
        patch.setattr(server.manager, "get", broken)
        assert_grpc_error(lambda: stub.Predict(predict_request({"audio": WAVS}), timeout=TIMEOUT),
                          grpc.StatusCode.INTERNAL, "surprise")
        assert rest(server, "/v1/models/audiocaps:predict", {"instances": [b64(fake_wav())]}) == (
            500, {"error": "internal error: RuntimeError: surprise"})
    assert_still_serving(server, stub)


# --- REST ----------------------------------------------------------------------------------------------------


def test_rest_row_format_answers_what_the_saved_model_computes(server, reference):
    expected = reference("serving_default", audio=WAVS)
    for path, instances in [
        ("/v1/models/audiocaps:predict", [b64(wav) for wav in WAVS]),
        ("/v1/models/audiocaps/versions/1:predict", [{"audio": b64(wav)} for wav in WAVS]),
    ]:
        status, answer = rest(server, path, {"instances": instances})
        assert status == 200 and all(sorted(row) == ["caption", "score", "tokens"] for row in answer["predictions"])
        assert [row["caption"] for row in answer["predictions"]] == [c.decode() for c in expected["caption"]]
        np.testing.assert_array_equal(np.float32([row["score"] for row in answer["predictions"]]), expected["score"])
        assert [row["tokens"] for row in answer["predictions"]] == expected["tokens"].tolist()

    expected = reference("caption_waveform", waveform=WAVEFORMS, sample_rate=RATES)
    instances = [{"waveform": waveform.tolist(), "sample_rate": int(rate)} for waveform, rate in zip(WAVEFORMS, RATES)]
    status, answer = rest(server, "/v1/models/audiocaps:predict",
                          {"signature_name": "caption_waveform", "instances": instances})
    assert status == 200
    assert [row["caption"] for row in answer["predictions"]] == [c.decode() for c in expected["caption"]]
    np.testing.assert_array_equal(np.float32([row["score"] for row in answer["predictions"]]), expected["score"])
    assert [row["tokens"] for row in answer["predictions"]] == expected["tokens"].tolist()


def test_rest_columnar_format_answers_what_the_saved_model_computes(server, reference):
    expected = reference("serving_default", audio=WAVS)
    status, answer = rest(server, "/v1/models/audiocaps:predict", {"inputs": {"audio": [b64(wav) for wav in WAVS]}})
    assert status == 200
    assert answer["outputs"]["caption"] == [c.decode() for c in expected["caption"]]
    np.testing.assert_array_equal(np.float32(answer["outputs"]["score"]), expected["score"])
    assert answer["outputs"]["tokens"] == expected["tokens"].tolist()

    expected = reference("caption_waveform", waveform=WAVEFORMS, sample_rate=RATES)
    body = {"signature_name": "caption_waveform",
            "inputs": {"waveform": WAVEFORMS.tolist(), "sample_rate": [16000, 22050]}}
    status, answer = rest(server, "/v1/models/audiocaps:predict", body)
    assert status == 200
    np.testing.assert_array_equal(np.float32(answer["outputs"]["score"]), expected["score"])


def test_rest_metadata_lists_both_signatures_with_their_inputs(server):
    status, answer = rest(server, "/v1/models/audiocaps/metadata")
    assert status == 200
    assert answer["model_spec"] == {"name": "audiocaps", "version": "1", "signature_name": ""}
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    assert set(SIGNATURES) <= set(signatures)
    assert signatures["serving_default"]["inputs"]["audio"]["dtype"] == "DT_STRING"
    assert set(signatures["caption_waveform"]["inputs"]) == {"waveform", "sample_rate"}
    assert signatures["caption_waveform"]["inputs"]["waveform"]["dtype"] == "DT_FLOAT"
    assert rest(server, "/v1/models/audiocaps/versions/1/metadata") == (status, answer)


def test_rest_model_status(server):
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert rest(server, "/v1/models/audiocaps") == (200, expected)
    assert rest(server, "/v1/models/audiocaps/versions/1") == (200, expected)
    assert rest(server, "/v1/models/audiocaps/versions/2")[0] == 404
    assert rest(server, "/v1/models/other")[0] == 404


WAVEFORM_ROW = {"waveform": [0.5, -0.5], "sample_rate": 16000}


@pytest.mark.parametrize("path, body, method, status, message", [
    (":predict", {"instances": [b64(b"hello, world")]}, None, 400, "audio: not a RIFF/WAVE file"),
    (":predict", {"instances": [b64(b"")]}, None, 400, "audio: empty input"),
    (":predict", {"inputs": {"audio": [b64(b"RIFF")]}}, None, 400, "audio: truncated WAV header"),
    (":predict", {"instances": [1.5]}, None, 400, 'input "audio": expects strings'),
    (":predict", {"signature_name": "caption_waveform", "instances": [{"waveform": ["a", "b"], "sample_rate": 1}]},
     None, 400, 'input "waveform": expects float32 values'),
    (":predict", {"instances": [[b64(fake_wav())]]}, None, 400, 'input "audio": expects shape [?] (rank 1)'),
    (":predict", {"signature_name": "caption_waveform", "inputs": {"waveform": [0.5], "sample_rate": [1]}}, None,
     400, 'input "waveform": expects shape [?, ?] (rank 2)'),
    (":predict", {"signature_name": "caption_waveform", "instances": [{"waveform": [0.5]}]}, None, 400,
     "Missing but required: {sample_rate}"),
    (":predict", {"signature_name": "caption_waveform", "inputs": {"waveform": [[0.5]], "sample_rate": [1, 2]}},
     None, 400, "same batch size"),
    (":predict",
     {"signature_name": "caption_waveform", "instances": [WAVEFORM_ROW, {**WAVEFORM_ROW, "waveform": [1.0]}]},
     None, 400, 'input "waveform": the nested lists are ragged'),
    (":predict", {"signature_name": "nope", "instances": [b64(fake_wav())]}, None, 400,
     'Serving signature name: "nope" not found'),
    (":predict", {"instances": [b64(fake_wav())], "inputs": [b64(fake_wav())]}, None, 400, "Not both"),
    (":predict", {"instance": [b64(fake_wav())]}, None, 400, "Missing 'inputs' or 'instances' key"),
    (":predict", b'{"instances": [', None, 400, "JSON Parse error"),
    (":predict", {"instances": [{"b64": "not base64!"}]}, None, 400, 'input "audio": invalid base64'),
    ("/versions/7:predict", {"instances": [b64(fake_wav())]}, None, 404,
     "Servable not found for request: Specific(audiocaps, 7)"),
    (":regress", {"instances": [b64(fake_wav())]}, None, 501, "regress is not supported"),
    (":predict", None, "GET", 405, "GET is not allowed"),
    ("", {"instances": []}, None, 405, "POST is not allowed"),
    ("/versions/x", None, None, 404, "Malformed request: GET /v1/models/audiocaps/versions/x"),
], ids=["not-wav", "empty", "truncated", "wrong-type", "waveform-dtype", "rank-2", "rank-1", "missing-input",
        "batch-sizes", "ragged", "unknown-signature", "instances-and-inputs", "neither", "malformed-json",
        "bad-b64", "unknown-version", "regress", "get-predict", "post-status", "unknown-path"])
def test_rest_bad_requests_get_their_status_and_the_server_keeps_serving(server, stub, path, body, method, status,
                                                                         message):
    answer = rest(server, "/v1/models/audiocaps" + path, body, method)
    assert answer[0] == status
    assert set(answer[1]) == {"error"}
    assert message in answer[1]["error"]
    assert_still_serving(server, stub)


def test_rest_unknown_model_is_not_found(server, stub):
    assert rest(server, "/v1/models/nope:predict", {"instances": [b64(fake_wav())]}) == (
        404, {"error": "Servable not found for request: Latest(nope)"})
    assert rest(server, "/v1/models/nope/metadata")[0] == 404


def test_rest_body_over_the_cap_is_refused_from_its_content_length(server, stub):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=TIMEOUT)
    try:  # headers only: the answer must come before any body is sent
        connection.putrequest("POST", "/v1/models/audiocaps:predict")
        connection.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert "over the limit" in json.loads(response.read())["error"]
    finally:
        connection.close()
    # Sent whole before reading the answer, as urllib does: far more than socket buffers hold, so the server
    # must read it away for the client to see the 413 rather than a reset connection.
    big = b'{"instances": ["' + b"x" * (16 << 20) + b'"]}'
    status, answer = rest(server, "/v1/models/audiocaps:predict", big)
    assert status == 413 and "over the limit" in answer["error"]
    assert_still_serving(server, stub)


def test_concurrent_requests_are_all_answered_correctly(server, stub):
    def one_client(worker):
        answers = []
        for request in range(25):
            body = bytes([worker]) * (request + 5 * worker)
            if worker % 2:
                outputs = outputs_of(stub.Predict(predict_request({"audio": [fake_wav(body)]}), timeout=TIMEOUT))
                answers.append(outputs["caption"][0].decode())
            else:
                status, answer = rest(server, "/v1/models/audiocaps:predict", {"instances": [b64(fake_wav(body))]})
                answers.append(answer["predictions"][0]["caption"] if status == 200 else answer)
        return answers

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one_client, range(8)))
    for worker, answers in enumerate(results):
        assert answers == [f"a sound of {12 + request + 5 * worker} bytes \u266a" for request in range(25)]


# --- versions ------------------------------------------------------------------------------------------------


def _served_version(stub):
    return stub.Predict(predict_request({"audio": [fake_wav()]}), timeout=TIMEOUT).model_spec.version.value


@contextlib.contextmanager
def serving_a_copy(model_base, tmp_path):
    """A fast-polling DevServer on a model base of its own, holding a copy of version 1: (base, server, stub)."""
    base = tmp_path / "models"
    shutil.copytree(model_base / "1", base / "1")
    with DevServer(base, grpc_port=0, rest_port=0, poll_seconds=0.05) as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        assert server.wait_until_available(TIMEOUT, version=1)
        yield base, server, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def test_new_versions_are_picked_up_and_directories_being_written_are_ignored(model_base, tmp_path):
    with serving_a_copy(model_base, tmp_path) as (base, server, stub):
        failures, stop = [], threading.Event()

        def keep_asking():  # requests keep being answered while versions are swapped
            while not stop.is_set():
                try:
                    _served_version(stub)
                except grpc.RpcError as error:
                    failures.append(error)

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            shutil.copytree(model_base / "1" / "variables", base / "4" / "variables")  # no saved_model.pb yet
            shutil.copytree(model_base / "1", base / ".tmp-5")  # an exporter's temporary directory
            (base / "model.keras").write_bytes(b"not a version")
            (base / "6.bak").mkdir()
            shutil.copytree(model_base / "1", base / "2")
            assert server.wait_until_available(TIMEOUT, version=2)
            assert _served_version(stub) == 2
            states = [(s.version, s.state, s.error_code) for s in server.manager.version_states()]
            assert states == [(2, "AVAILABLE", "OK"), (1, "END", "OK")]  # unloaded, and listed as TF Serving does

            (base / ".tmp-5").rename(base / "5")  # the exporter's final, atomic step
            assert server.wait_until_available(TIMEOUT, version=5)
            assert _served_version(stub) == 5
        finally:
            stop.set()
            asker.join()
        assert not failures


def test_a_broken_version_keeps_the_previous_and_a_deleted_one_falls_back(model_base, tmp_path, caplog):
    with serving_a_copy(model_base, tmp_path) as (base, server, stub):
        (base / "3").mkdir()
        (base / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")

        def state_of_3():
            return next((s for s in server.manager.version_states() if s.version == 3), None)

        wait_for(lambda: state_of_3() is not None and state_of_3().state == "END", "version 3 to fail")
        assert state_of_3().error_code != "OK" and state_of_3().error_message
        assert _served_version(stub) == 1
        server.manager.poll_once()  # unchanged: not tried again
        server.manager.poll_once()
        failures = [record for record in caplog.records
                    if record.levelname == "ERROR" and "version 3 failed to load" in record.getMessage()]
        assert len(failures) == 1
        status, answer = rest(server, "/v1/models/audiocaps")
        assert [(entry["version"], entry["state"]) for entry in answer["model_version_status"]] == [
            ("3", "END"), ("1", "AVAILABLE")]

        shutil.rmtree(base / "3")  # rewritten: tried again
        shutil.copytree(model_base / "1", base / "3")
        assert server.wait_until_available(TIMEOUT, version=3)
        assert _served_version(stub) == 3

        shutil.rmtree(base / "3")
        assert server.wait_until_available(TIMEOUT, version=1)
        assert _served_version(stub) == 1
        assert [(s.version, s.state, s.error_code) for s in server.manager.version_states()] == [
            (3, "END", "OK"), (1, "AVAILABLE", "OK")]  # the new 3 loaded fine: its earlier failure is gone
        assert_grpc_error(lambda: stub.Predict(predict_request({"audio": [fake_wav()]}, version=3), timeout=TIMEOUT),
                          grpc.StatusCode.NOT_FOUND, "Specific(audiocaps, 3)")

        shutil.rmtree(base / "1")  # no version left: nothing is served
        wait_for(lambda: server.manager.served_version is None, "version 1 to be unloaded")
        assert_grpc_error(lambda: _served_version(stub), grpc.StatusCode.NOT_FOUND, "Latest(audiocaps)")
        status, answer = rest(server, "/v1/models/audiocaps/versions/1")  # the history stays, as in TF Serving
        assert status == 200 and [(e["version"], e["state"]) for e in answer["model_version_status"]] == [("1", "END")]


def test_a_failing_warmup_request_fails_the_version(model_base, tmp_path):
    base = tmp_path / "models"
    shutil.copytree(model_base / "1", base / "1")
    shutil.copytree(model_base / "1", base / "2")
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.inputs["audio"].CopyFrom(tf.make_tensor_proto([b"not a WAV file, longer than a header"]))
    with tf.io.TFRecordWriter(str(base / "2" / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())
    with DevServer(base, grpc_port=0, rest_port=0, poll_seconds=0.05) as server:
        assert server.wait_until_available(TIMEOUT, version=1)
        failed = [s for s in server.manager.version_states() if s.version == 2]
        assert failed and failed[0].state == "END" and failed[0].error_code == "INVALID_ARGUMENT"
        assert "warm-up request 0" in failed[0].error_message
        assert "audio: not a RIFF/WAVE file" in failed[0].error_message


# --- the command line ----------------------------------------------------------------------------------------


def test_dev_server_command_prints_its_ports_serves_and_stops_on_sigterm(model_base, tmp_path):
    command = [sys.executable, "-m", "audiocaps_tf.serving.dev_server", "--model-base", str(model_base),
               "--grpc-port", "0", "--rest-port", "0", "--poll-seconds", "0.1"]
    stderr = open(tmp_path / "stderr.log", "w+")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in process.stdout], daemon=True).start()
    try:
        printed = []
        while not printed or printed[-1] != "serving audiocaps version 1":
            try:
                printed.append(lines.get(timeout=PROCESS_TIMEOUT))
            except queue.Empty:
                log = (tmp_path / "stderr.log").read_text()
                pytest.fail(f"the server printed {printed} and then nothing; stderr: {log}")
        grpc_line, rest_line = printed[:2]
        assert re.fullmatch(r"gRPC: 127\.0\.0\.1:\d+", grpc_line)
        assert re.fullmatch(r"REST: http://127\.0\.0\.1:\d+", rest_line)
        rest_url = rest_line.split(" ", 1)[1]
        with urllib.request.urlopen(rest_url + "/v1/models/audiocaps", timeout=TIMEOUT) as response:
            assert json.loads(response.read())["model_version_status"][0]["state"] == "AVAILABLE"
        with grpc.insecure_channel(grpc_line.split(" ", 1)[1]) as channel:
            assert _served_version(prediction_service_pb2_grpc.PredictionServiceStub(channel)) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=PROCESS_TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        stderr.close()


def test_dev_server_command_refuses_a_missing_model_base(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as exited:
        dev_server.main(["--model-base", str(missing)])
    assert exited.value.code == 2
    assert f"--model-base {missing}: no such directory" in capsys.readouterr().err


# --- shared helpers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("message, clean", [
    ("Graph execution error:\n\nDetected at node Assert/Assert defined at (most recent call last):\n"
     "<stack traces unavailable>\nassertion failed: [audio: not a RIFF/WAVE file]\n\t [[{{node Assert/Assert}}]] "
     "[Op:__inference_signature_wrapper_1805]", "audio: not a RIFF/WAVE file"),
    ("Graph execution error:\n\nDetected at node map/while/Assert defined at (most recent call last):\n"
     '  File "x.py", line 7, in <module>\n\n  File "x.py", line 4, in f\n\n'
     "assertion failed: [audio: bad] [1 2]\n\t [[{{node map/while/Assert}}]] [Op:__inference_f_8]", "audio: bad 1 2"),
    ("Specified a list with shape [] from a tensor with shape [1]\n\t [[{{function_node __inference_f_1}}"
     "{{node map/TensorListFromTensor}}]]", "Specified a list with shape [] from a tensor with shape [1]"),
    ("Input to reshape is a tensor with 2 values [Op:Reshape]", "Input to reshape is a tensor with 2 values"),
])
def test_runtime_error_messages_keep_the_human_part(message, clean):
    assert tensors.clean_op_message(message) == clean


def test_a_graph_error_becomes_invalid_argument_and_other_codes_pass_through(reference):
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        reference("serving_default", audio=tf.constant([b""]))
    error = tensors.from_op_error(raised.value)
    assert (error.code, error.message) == ("INVALID_ARGUMENT", "audio: empty input")
    exhausted = tf.errors.ResourceExhaustedError(None, None, "out of memory")
    assert tensors.from_op_error(exhausted).code == "RESOURCE_EXHAUSTED"
    with pytest.raises(ValueError):
        ServingError("NOT_A_CODE", "x")


def test_string_outputs_are_text_or_b64_as_tf_serving_answers():
    outputs = {"caption": np.array([b"caf\xc3\xa9", b"\xff\xfe"], object),
               "caption_bytes": np.array([b"ab", b"cd"], object)}
    assert tensors.outputs_to_columns(outputs) == {
        "caption": ["caf\u00e9", {"b64": "//4="}], "caption_bytes": [{"b64": "YWI="}, {"b64": "Y2Q="}]}
    assert tensors.outputs_to_rows({"score": np.float32([0.5, 1.5])}) == [0.5, 1.5]


def test_float32_outputs_are_written_as_tf_serving_writes_them():
    scores = np.float32([0.1, -1.4925085306167603, 3.0, 1e-20, 0.66907406])
    written = tensors.outputs_to_columns({"score": scores})
    assert written == [0.1, -1.49250853, 3.0, 1e-20, 0.669074059]  # 6 significant digits, or 9 when needed
    np.testing.assert_array_equal(np.float32(written), scores)  # the same float32 values
    assert tensors.outputs_to_columns({"x": np.float64([0.1, 1 / 3])}) == [0.1, 1 / 3]  # float64 in full
