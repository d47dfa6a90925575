"""The development server's limits, as a red team probed them: TensorProtos that declare more than they carry,
too many rows, odd dtypes, deep JSON, long URLs and bursts of REST connections. Each is refused with its code
(never expanded, never a reset connection) and the server keeps serving."""

import concurrent.futures
import http.client
import json
import socket
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from test_dev_server import PROCESS_TIMEOUT, TIMEOUT, assert_grpc_error, assert_still_serving, b64, fake_wav, predict_request, rest
from test_dev_server import save_tiny_captioner, wait_for
from audiocaps_tf.serving.dev_server import DevServer
from tensorflow_serving.apis import prediction_service_pb2_grpc

MAX_BATCH = 4
MAX_CONNECTIONS = 64


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    save_tiny_captioner(base / "1")
    with DevServer(base, grpc_port=0, rest_port=0, poll_seconds=0.1, max_batch=MAX_BATCH,
                   rest_max_connections=MAX_CONNECTIONS) as running:
        assert running.wait_until_available(TIMEOUT)
        yield running


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _declared(dtype, dims, **values):
    proto = tensor_pb2.TensorProto(dtype=dtype, **values)
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in dims]))
    return proto


@pytest.mark.parametrize("signature, name, proto, message", [
    # 89 bytes on the wire that once became an 800 MB array: a shape and no values.
    ("caption_waveform", "waveform", _declared(types_pb2.DT_FLOAT, [1, 200_000_000]),
     "the shape [1, 200000000] holds 200000000 values, 0 were sent"),
    # One WAV declared as 1,024 of them.
    ("serving_default", "audio", _declared(types_pb2.DT_STRING, [1024], string_val=[fake_wav(b"x" * 100)]),
     "the shape [1024] holds 1024 values, 1 were sent"),
    ("caption_waveform", "waveform", _declared(types_pb2.DT_FLOAT, [1, 1000], tensor_content=b"\0" * 8),
     "needs 4000 bytes of tensor_content, 8 were sent"),
    ("serving_default", "audio", _declared(types_pb2.DT_RESOURCE, [1]), "unsupported dtype DT_RESOURCE"),
    ("serving_default", "audio", _declared(types_pb2.DT_VARIANT, [1]), "unsupported dtype DT_VARIANT"),
], ids=["no-values", "one-for-1024", "short-content", "resource", "variant"])
def test_a_tensor_proto_must_carry_what_it_declares(server, stub, signature, name, proto, message):
    request = predict_request({}, signature)
    request.inputs[name].CopyFrom(proto)
    if signature == "caption_waveform":
        request.inputs["sample_rate"].CopyFrom(tf.make_tensor_proto(np.array([16000], np.int32)))
    assert_grpc_error(lambda: stub.Predict(request, timeout=TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT, message)
    assert_still_serving(server, stub)


def test_more_rows_than_max_batch_are_refused_over_both_apis(server, stub):
    wavs = [fake_wav(bytes([i])) for i in range(MAX_BATCH + 1)]
    assert_grpc_error(lambda: stub.Predict(predict_request({"audio": wavs}), timeout=TIMEOUT),
                      grpc.StatusCode.RESOURCE_EXHAUSTED, f"5 rows in one request, over the limit of {MAX_BATCH}")
    status, answer = rest(server, "/v1/models/audiocaps:predict", {"instances": [b64(w) for w in wavs]})
    assert status == 413 and "--max-batch" in answer["error"]
    status, answer = rest(server, "/v1/models/audiocaps:predict", {"instances": [b64(w) for w in wavs[:MAX_BATCH]]})
    assert status == 200 and len(answer["predictions"]) == MAX_BATCH
    assert_still_serving(server, stub)


@pytest.mark.parametrize("depth", [40, 900])
def test_json_nested_too_deep_is_a_bad_request(server, stub, depth):
    body = '{"instances": ' + "[" * depth + '{"b64": "UklGRgQAAABXQVZF"}' + "]" * depth + "}"
    status, answer = rest(server, "/v1/models/audiocaps:predict", body.encode())
    assert status == 400, answer
    assert_still_serving(server, stub)


def test_a_url_over_the_limit_is_answered_414_in_json(server, stub):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=TIMEOUT)
    try:
        connection.putrequest("GET", "/v1/models/" + "a" * 70_000)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 414
        assert response.getheader("Content-Type") == "application/json"
        assert json.loads(response.read())["error"]
    finally:
        connection.close()
    assert_still_serving(server, stub)


def test_a_burst_of_64_rest_requests_is_answered_whole(server):
    """All connect before any is served (a barrier), as a burst does; once every one of 5 rounds got 3 to 37
    "Connection reset by peer" (a listen backlog of 5)."""
    for _ in range(3):
        barrier = threading.Barrier(64)

        def one(worker):
            barrier.wait(PROCESS_TIMEOUT)  # a hang guard only
            return rest(server, "/v1/models/audiocaps:predict", {"instances": [b64(fake_wav(bytes([worker])))]})

        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(one, range(64)))
        assert [status for status, _ in answers] == [200] * 64
        assert [answer["predictions"][0]["caption"] for _, answer in answers] == ["a sound of 13 bytes \u266a"] * 64


def test_a_connection_past_the_limit_gets_503_not_a_reset(tmp_path):
    save_tiny_captioner(tmp_path / "1")
    with DevServer(tmp_path, grpc_port=0, rest_port=0, poll_seconds=0.1, rest_max_connections=1) as running:
        assert running.wait_until_available(TIMEOUT)
        holder = socket.create_connection(("127.0.0.1", running.rest_port), timeout=TIMEOUT)
        try:
            holder.sendall(b"GET /v1/models/audiocaps HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: holds its slot
            assert b" 200 " in holder.recv(65536).split(b"\r\n", 1)[0] + b" "
            status, answer = rest(running, "/v1/models/audiocaps")
            assert status == 503 and "--rest-max-connections" in answer["error"]
        finally:
            holder.close()
        # The slot comes back once the held connection's thread has seen it closed.
        wait_for(lambda: rest(running, "/v1/models/audiocaps")[0] == 200, "the freed slot", PROCESS_TIMEOUT)
