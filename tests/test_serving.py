"""Export -> development server -> client, end to end over real sockets on 127.0.0.1, with a small trained model.

The model is the default demo model trained briefly on a tiny demo set (`fit`, as in test_fit.py), exported with
the command line; captions of the 13 real AudioCaps example clips (22.05 kHz WAV, resampled in the graph) are
compared with the `caption` command's (soundfile + soxr on the client side of the same model).
"""

import concurrent.futures
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from audiocaps_tf import caption, fit
from audiocaps_tf.audio import load_audio
from audiocaps_tf.data import demo
from audiocaps_tf.tokens.vocabulary import build_vocabulary
from audiocaps_tf.export import __main__ as export_cli
from audiocaps_tf.export import export_model
from audiocaps_tf.models import build_captioner
from audiocaps_tf.serving.client import GrpcCaptionClient, RestCaptionClient
from audiocaps_tf.serving.dev_server import DevServer
from audiocaps_tf.serving.tensors import ServingError
from conftest import EXAMPLES_DIR

TINY = ["--demo-clips", "40", "--batch-size", "8", "--workers", "1", "--epochs", "2",
        "--model-overrides", json.dumps({"units": 8, "embedding_dim": 8})]
ACCEPTANCE_CLIP = EXAMPLES_DIR / "bygBWUkpaC8_270.wav"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUDIOCAPS_TF_CACHE", str(tmp_path_factory.mktemp("cache")))
        out = tmp_path_factory.mktemp("runs") / "run"
        assert fit.main([*TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def model_base(trained_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / "audiocaps"
    assert export_cli.main(["--model", str(trained_run), "--out", str(base)]) == 0
    return base


@pytest.fixture(scope="module")
def expected(trained_run, example_paths):
    """{path: caption} of the caption command (the Keras model on soundfile + soxr waveforms)."""
    model = caption.load_model(trained_run)
    captions = model.generate([load_audio(path) for path in example_paths])
    return dict(zip(map(str, example_paths), captions))


@pytest.fixture(scope="module")
def server(model_base):
    with DevServer(model_base, grpc_port=0, rest_port=0, poll_seconds=0.2) as running:
        assert running.wait_until_available(timeout=60)
        yield running


@pytest.fixture(scope="module")
def grpc_client(server):
    with GrpcCaptionClient(f"127.0.0.1:{server.grpc_port}", timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def rest_client(server):
    return RestCaptionClient(f"http://127.0.0.1:{server.rest_port}", timeout=60)


def test_the_command_line_flow_prints_the_caption_commands_caption(model_base, trained_run, capsys):
    """The issue's acceptance: export, dev_server in the background, client over gRPC and REST."""
    assert caption.main([str(ACCEPTANCE_CLIP), "--model", str(trained_run)]) == 0
    in_process = capsys.readouterr().out
    assert in_process.startswith(f"{ACCEPTANCE_CLIP}\t") and in_process.strip().split("\t")[1]

    process = subprocess.Popen(
        [sys.executable, "-m", "audiocaps_tf.serving.dev_server", "--model-base", str(model_base),
         "--grpc-port", "0", "--rest-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        printed = {}
        for line in process.stdout:
            match = re.match(r"(gRPC|REST): (\S+)", line)
            if match:
                printed[match.group(1)] = match.group(2)
            if line.startswith("serving audiocaps version 1"):
                break
        for transport in (["--grpc", printed["gRPC"]], ["--rest", printed["REST"]]):
            client = subprocess.run([sys.executable, "-m", "audiocaps_tf.serving.client", str(ACCEPTANCE_CLIP),
                                     *transport], capture_output=True, text=True, timeout=120)
            assert client.returncode == 0, client.stderr
            assert client.stdout == in_process
    finally:
        process.terminate()
        assert process.wait(60) == 0


def test_the_example_clips_caption_alike_in_process_over_grpc_and_over_rest(
    model_base, expected, grpc_client, rest_client, example_paths
):
    saved_model = tf.saved_model.load(str(model_base / "1"))
    wavs = [path.read_bytes() for path in example_paths]
    served = [c.decode() for c in saved_model.signatures["serving_default"](audio=tf.constant(wavs))["caption"].numpy()]
    assert served == list(expected.values())
    for client in (grpc_client, rest_client):
        results = dict(client.caption_files(example_paths))
        assert {str(path): result["caption"] for path, result in results.items()} == expected
    # Client-side decoding (the waveform signature) gives the same captions.
    results = grpc_client.caption_files(example_paths[:3], signature="caption_waveform")
    assert [result["caption"] for _, result in results] == list(expected.values())[:3]


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_the_saved_model_scores_the_example_clips_as_keras_does_at_other_rates(model_base, trained_run, example_paths,
                                                                               rate):
    """The SavedModel (WAV bytes in, resampled in the graph) and the Keras model on `load_audio` of the same bytes:
    the same tokens, and scores within 1e-5. Measured on this tiny model: 0 to 4.8e-7 apart; with soxr in
    `load_audio` (before one resampling definition) 3.4e-5 at 8 kHz and 9.0e-4 / 1.1e-3 at 44.1 / 48 kHz."""
    from audiocaps_tf.models.inputs import input_batches
    from test_resampling import wav_at

    wavs = [wav_at(path, rate) for path in example_paths]
    served = tf.saved_model.load(str(model_base / "1")).signatures["serving_default"](audio=tf.constant(wavs))
    model = caption.load_model(trained_run)
    (batch,) = input_batches([load_audio(wav) for wav in wavs], batch_size=len(wavs))
    in_process = model.decode_function()(batch)
    for row, path in enumerate(example_paths):
        length = int(in_process["lengths"][row])
        assert served["tokens"][row, :length].numpy().tolist() == in_process["tokens"][row, :length].numpy().tolist()
    np.testing.assert_allclose(served["score"].numpy(), in_process["scores"].numpy(), rtol=0, atol=1e-5)


BAD_WAV_REQUESTS = {
    "not WAV": lambda: b"fLaC\x00\x00\x00\x22 not a wav file",
    "empty": lambda: b"",
    "truncated": lambda: ACCEPTANCE_CLIP.read_bytes()[:150000],  # a sixth of it: the data chunk declares more
}


@pytest.mark.parametrize("case", sorted(BAD_WAV_REQUESTS))
@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_bad_audio_is_an_invalid_argument_and_the_server_keeps_serving(case, transport, grpc_client, rest_client,
                                                                       expected):
    client = grpc_client if transport == "grpc" else rest_client
    with pytest.raises(ServingError) as raised:
        client.caption_wav([BAD_WAV_REQUESTS[case]()])
    assert raised.value.code == "INVALID_ARGUMENT" and raised.value.message.startswith("audio:")
    assert client.caption_wav([ACCEPTANCE_CLIP.read_bytes()])[0]["caption"] == expected[str(ACCEPTANCE_CLIP)]


def test_bad_requests_are_refused_with_the_right_code(server, grpc_client, rest_client, expected):
    wav = np.array([ACCEPTANCE_CLIP.read_bytes()], dtype=object)
    cases = [
        (lambda: grpc_client.predict({"audio": np.zeros(3, np.float32)}), "INVALID_ARGUMENT"),  # dtype
        (lambda: grpc_client.predict({"audio": wav.reshape(1, 1)}), "INVALID_ARGUMENT"),  # rank
        (lambda: grpc_client.predict({"waveform": np.zeros((1, 10), np.float32)}, "caption_waveform"),
         "INVALID_ARGUMENT"),  # a missing input
        (lambda: grpc_client.predict({"audio": wav}, "no_such_signature"), "INVALID_ARGUMENT"),
        (lambda: grpc_client.predict({"audio": wav}, version=99), "NOT_FOUND"),
        (lambda: GrpcCaptionClient(f"127.0.0.1:{server.grpc_port}", "nope").caption_wav(wav), "NOT_FOUND"),
        (lambda: rest_client.predict_json({"instances": [{"b64": "!!"}]}), "INVALID_ARGUMENT"),
        (lambda: rest_client.predict_json({"instances": [[1.0, 2.0]]}), "INVALID_ARGUMENT"),
        (lambda: RestCaptionClient(f"127.0.0.1:{server.rest_port}", "nope").caption_wav(wav), "NOT_FOUND"),
        (lambda: rest_client.caption_wav(wav, version=99), "NOT_FOUND"),
    ]
    for request, code in cases:
        with pytest.raises(ServingError) as raised:
            request()
        assert raised.value.code == code, raised.value.message
    assert grpc_client.caption_wav(wav)[0]["caption"] == expected[str(ACCEPTANCE_CLIP)]


def test_8_threads_of_25_requests_are_all_answered_correctly(grpc_client, expected):
    jobs = [list(expected)[i % len(expected)] for i in range(8 * 25)]
    wavs = {path: open(path, "rb").read() for path in expected}

    def ask(path):
        return path, grpc_client.caption_wav([wavs[path]])[0]["caption"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, jobs))
    assert len(answers) == 200
    assert [caption_ for _, caption_ in answers] == [expected[path] for path in jobs]


def test_a_new_version_is_served_without_a_restart(server, model_base, grpc_client, rest_client, trained_run,
                                                   example_paths, expected):
    # Runs last in this module: it changes what the server serves.
    other = caption.load_model(trained_run)
    other.decoder.set_weights([w + 0.3 * np.sign(w) for w in other.decoder.get_weights()])
    result = export_model(other, model_base)
    assert result.version == 2
    assert server.wait_until_available(timeout=60, version=2)
    statuses = rest_client.status()["model_version_status"]
    states = {s["version"]: s["state"] for s in statuses}
    assert states["2"] == "AVAILABLE" and states.get("1", "END") == "END"  # TF Serving lists unloaded ones as END
    wavs = [path.read_bytes() for path in example_paths]
    version_2 = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    new_captions = [c.decode() for c in version_2(audio=tf.constant(wavs))["caption"].numpy()]
    assert new_captions != list(expected.values())  # so the answers tell the versions apart
    assert [r["caption"] for _, r in grpc_client.caption_files(example_paths)] == new_captions
    with pytest.raises(ServingError) as raised:
        grpc_client.caption_wav([ACCEPTANCE_CLIP.read_bytes()], version=1)  # only the newest is served
    assert raised.value.code == "NOT_FOUND"


def test_a_served_model_built_from_scratch_answers_its_caption_score_and_tokens(tmp_path):
    """Not only fit's runs: any captioner the registry builds exports and serves (here a fresh, untrained one)."""
    vocabulary = build_vocabulary([c for spec in demo.clip_specs(10, 0) for c in demo.describe(spec, 1)])
    model = build_captioner("tempatt-mfcc-lstm", vocabulary, units=8, embedding_dim=8, max_caption_length=8)
    export_model(model, tmp_path / "base")
    buffer = io.BytesIO()
    soundfile.write(buffer, demo.render(demo.clip_specs(1, seed=9)[0]), 16000, format="WAV", subtype="PCM_16")
    waveform = load_audio(buffer.getvalue())
    decoded = model.decode({"waveform": tf.constant(waveform[np.newaxis])})
    with DevServer(tmp_path / "base", grpc_port=0, rest_port=0) as running:
        assert running.wait_until_available(timeout=60)
        answer = RestCaptionClient(f"127.0.0.1:{running.rest_port}").caption_wav([buffer.getvalue()])[0]
    assert answer["caption"] == model.generate([waveform])[0]
    assert answer["tokens"] == decoded["tokens"].numpy()[0].tolist()
    assert answer["score"] == pytest.approx(float(decoded["scores"][0]), rel=1e-5)
