"""The serving client (Python API and `python -m audiocaps_tf.serving.client`) against the development server."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from audiocaps_tf.audio import AudioError, load_audio
from audiocaps_tf.serving import client as client_cli
from audiocaps_tf.serving.client import GrpcCaptionClient, RestCaptionClient
from audiocaps_tf.serving.dev_server import DevServer
from audiocaps_tf.serving.tensors import ServingError
from test_dev_server import SIGNATURES, TIMEOUT, fake_wav, model_base  # noqa: F401  (model_base: a fixture)


@pytest.fixture(scope="module")
def reference(model_base):
    """The tiny model called in process, as the client's dicts."""
    loaded = tf.saved_model.load(str(model_base / "1"))

    def run(signature, **inputs):
        outputs = loaded.signatures[signature](**inputs)
        return [{"caption": caption.decode(), "score": float(score), "tokens": tokens.tolist()}
                for caption, score, tokens in zip(*(outputs[name].numpy() for name in ("caption", "score", "tokens")))]

    return run


@pytest.fixture(scope="module")
def server(model_base):
    with DevServer(model_base, grpc_port=0, rest_port=0, poll_seconds=0.1) as running:
        assert running.wait_until_available(TIMEOUT)
        yield running


def _grpc_target(server):
    return f"127.0.0.1:{server.grpc_port}"


def _rest_url(server):
    return f"http://127.0.0.1:{server.rest_port}"


@pytest.fixture(params=["grpc", "rest"])
def client(request, server):
    made = GrpcCaptionClient(_grpc_target(server)) if request.param == "grpc" else RestCaptionClient(_rest_url(server))
    with made:
        yield made


@pytest.fixture(scope="module")
def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """A 16 kHz mono WAV, a 22.05 kHz stereo WAV, a FLAC and a file that is no audio at all."""
    directory = tmp_path_factory.mktemp("audio")
    tone = 0.3 * np.sin(np.arange(8000) * 2 * np.pi * 440 / 16000)
    paths = {"mono": directory / "mono.wav", "stereo": directory / "stereo.wav", "flac": directory / "tone.flac",
             "garbage": directory / "garbage.mp3", "ulaw": directory / "telephone.wav"}
    soundfile.write(paths["mono"], tone, 16000, subtype="PCM_16")
    soundfile.write(paths["stereo"], np.stack([tone, -tone], axis=1)[:7000], 22050, subtype="PCM_16")
    soundfile.write(paths["flac"], tone[::-1], 16000, subtype="PCM_16")
    soundfile.write(paths["ulaw"], tone[:6000], 8000, subtype="ULAW")  # a WAV the graph does not decode
    paths["garbage"].write_bytes(b"this is no audio file " * 20)
    return {name: str(path) for name, path in paths.items()}


def _bytes_caption(path):
    return f"a sound of {os.path.getsize(path)} bytes \u266a"


def _decoded(reference, path):
    """What the server answers for a file decoded by the client and sent to caption_waveform."""
    return reference("caption_waveform", waveform=load_audio(path)[None], sample_rate=tf.constant([16000]))[0]


# --- the Python API ------------------------------------------------------------------------------------------


def test_caption_wav_answers_what_the_saved_model_computes(client, reference, audio_files):
    wavs = [fake_wav(b"abc"), open(audio_files["mono"], "rb").read(), fake_wav()]
    assert client.caption_wav(wavs) == reference("serving_default", audio=tf.constant(wavs))
    assert client.caption_wav(wavs[:1], version=1) == reference("serving_default", audio=tf.constant(wavs[:1]))
    assert client.caption_wav([]) == []


def test_caption_waveforms_zero_pads_to_the_longest(client, reference):
    waveforms = [np.linspace(-1, 1, 100, dtype=np.float32), np.full(40, 0.25, np.float32)]
    padded = np.zeros((2, 100), np.float32)
    padded[0], padded[1, :40] = waveforms[0], waveforms[1]
    expected = reference("caption_waveform", waveform=padded, sample_rate=tf.constant([16000, 8000]))
    assert client.caption_waveforms(waveforms, [16000, 8000]) == expected
    assert [result["tokens"][1] for result in expected] == [100, 100]  # the padded width reached the model
    assert client.caption_waveforms(waveforms[1:], 16000)[0]["caption"] == "a waveform of energy 10.00 at 16000 Hz"


def test_both_transports_give_the_same_metadata_and_status(server):
    with GrpcCaptionClient(_grpc_target(server)) as over_grpc:
        metadata, status = over_grpc.metadata(), over_grpc.status()
    over_rest = RestCaptionClient(_rest_url(server))
    assert metadata == over_rest.metadata()
    assert status == over_rest.status() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(SIGNATURES) <= set(signatures)
    assert set(signatures["caption_waveform"]["inputs"]) == {"waveform", "sample_rate"}


def test_server_errors_are_serving_errors_with_the_servers_code_and_message(client, server):
    with pytest.raises(ServingError) as raised:
        client.caption_wav([b"RIFF"])
    assert (raised.value.code, raised.value.message) == ("INVALID_ARGUMENT", "audio: truncated WAV header")
    with pytest.raises(ServingError) as raised:
        client.caption_wav([fake_wav()], version=9)
    assert (raised.value.code, raised.value.message) == (
        "NOT_FOUND", "Servable not found for request: Specific(audiocaps, 9)")
    with pytest.raises(ServingError) as raised:
        client.caption_wav([fake_wav()], signature="nope")
    assert raised.value.code == "INVALID_ARGUMENT" and '"nope" not found' in raised.value.message


@pytest.mark.parametrize("kind", ["grpc", "rest"])
def test_an_unreachable_server_is_unavailable_naming_the_target(kind, unused_port):
    target = f"127.0.0.1:{unused_port}"
    made = GrpcCaptionClient(target, timeout=5) if kind == "grpc" else RestCaptionClient(f"http://{target}", timeout=5)
    with made, pytest.raises(ServingError) as raised:
        made.status()
    assert raised.value.code == "UNAVAILABLE"
    expected = f"cannot reach the gRPC server at {target}" if kind == "grpc" else \
        f"cannot reach the REST server at http://{target}"
    assert expected in raised.value.message


def test_caption_files_sends_wav_bytes_and_decodes_other_formats(client, reference, audio_files):
    paths = [audio_files["mono"], audio_files["flac"], audio_files["stereo"]]
    results = client.caption_files(paths)
    assert [path for path, _ in results] == paths
    assert [outcome["caption"] for _, outcome in results] == [
        _bytes_caption(paths[0]), _decoded(reference, paths[1])["caption"], _bytes_caption(paths[2])]
    # A mu-law WAV (which `caption` reads) is decoded here and sent as a waveform, not refused.
    ((_, telephone),) = client.caption_files([audio_files["ulaw"]])
    assert telephone == _decoded(reference, audio_files["ulaw"])

    decoded = client.caption_files(paths, signature="caption_waveform")
    assert [outcome for _, outcome in decoded] == [_decoded(reference, path) for path in paths]

    as_bytes = client.caption_files(paths, signature="serving_default", batch_size=3)
    assert as_bytes[0][1]["caption"] == _bytes_caption(paths[0])
    assert as_bytes[2][1]["caption"] == _bytes_caption(paths[2])
    assert isinstance(as_bytes[1][1], ServingError) and as_bytes[1][1].message == "audio: not a RIFF/WAVE file"

    broken = client.caption_files([audio_files["garbage"], audio_files["mono"] + ".missing"])
    assert isinstance(broken[0][1], AudioError) and isinstance(broken[1][1], OSError)


def _write_long_wav(path, minutes):
    """A 16 kHz 16-bit mono WAV of `minutes`: a rising chirp for the first 10 s, then a louder tone; its samples."""
    head = np.int16(8000 * np.sin(np.cumsum(np.linspace(0.01, 0.5, 160000))))
    tail = np.int16(20000 * np.sin(np.arange(16000) * 2 * np.pi * 300 / 16000))
    samples = np.concatenate([head, np.tile(tail, int(minutes * 60) - 10)])
    soundfile.write(path, samples, 16000, subtype="PCM_16")
    return samples


def test_a_wav_over_the_servers_request_cap_is_captioned_from_its_first_clip(client, reference, tmp_path):
    # 36 min of 16-bit WAV is 69 MB, over the server's 64 MiB request cap: the client decodes its first 10 s (the
    # rest is never read) and sends them as a waveform, as `caption --no-segments` captions it.
    path = tmp_path / "long.wav"
    samples = _write_long_wav(path, 36)
    assert os.path.getsize(path) > 64 << 20
    first_clip = (samples[:160000] / 32768.0).astype(np.float32)[None]
    ((_, outcome),) = client.caption_files([str(path)])
    assert outcome == reference("caption_waveform", waveform=first_clip, sample_rate=tf.constant([16000]))[0]
    np.testing.assert_array_equal(client_cli.first_clip(str(path)), first_clip[0])


# --- the command line ----------------------------------------------------------------------------------------


def _lines(text):
    return [line for line in text.splitlines() if line]


def test_cli_prints_a_tab_separated_line_per_file_in_order(server, reference, audio_files, capsys):
    paths = [audio_files["flac"], audio_files["mono"], audio_files["stereo"]]
    assert client_cli.main([*paths, "--grpc", _grpc_target(server), "--batch-size", "2"]) == 0
    captured = capsys.readouterr()
    assert _lines(captured.out) == [f"{paths[0]}\t{_decoded(reference, paths[0])['caption']}",
                                    f"{paths[1]}\t{_bytes_caption(paths[1])}",
                                    f"{paths[2]}\t{_bytes_caption(paths[2])}"]
    assert captured.err == ""


def test_cli_json_lines_over_rest(server, reference, audio_files, capsys):
    paths = [audio_files["mono"], audio_files["flac"]]
    assert client_cli.main([*paths, "--rest", _rest_url(server), "--json", "--version", "1"]) == 0
    expected = [{"path": paths[0], **reference("serving_default", audio=tf.constant([open(paths[0], "rb").read()]))[0]},
                {"path": paths[1], **_decoded(reference, paths[1])}]
    for line in expected:
        del line["tokens"]
    assert [json.loads(line) for line in _lines(capsys.readouterr().out)] == expected


def test_cli_reports_bad_files_and_still_captions_the_others(server, audio_files, capsys):
    missing = audio_files["mono"] + ".missing"
    paths = [audio_files["mono"], missing, audio_files["garbage"], audio_files["flac"], audio_files["stereo"]]
    argv = [*paths, "--grpc", _grpc_target(server), "--signature", "serving_default"]
    assert client_cli.main(argv) == 1
    captured = capsys.readouterr()
    assert _lines(captured.out) == [f"{audio_files['mono']}\t{_bytes_caption(audio_files['mono'])}",
                                    f"{audio_files['stereo']}\t{_bytes_caption(audio_files['stereo'])}"]
    assert _lines(captured.err) == [
        f"error: {missing}: No such file or directory",
        f"error: {audio_files['garbage']}: audio: not a RIFF/WAVE file",
        f"error: {audio_files['flac']}: audio: not a RIFF/WAVE file",
        "error: 3 of 5 file(s) could not be captioned",
    ]


def test_cli_warns_that_only_the_first_clip_of_a_long_file_was_captioned(server, audio_files, tmp_path, capsys):
    path = tmp_path / "two-minutes.wav"
    _write_long_wav(path, 2)  # small enough to go as bytes
    argv = [str(path), audio_files["mono"], "--rest", _rest_url(server)]
    assert client_cli.main(argv) == 0
    captured = capsys.readouterr()
    assert _lines(captured.out) == [f"{path}\t{_bytes_caption(path)}",
                                    f"{audio_files['mono']}\t{_bytes_caption(audio_files['mono'])}"]
    assert captured.err == (f"warning: {path} is 120.0 s long; only its first 10 s were captioned "
                            "(--format captions it window by window)\n")


def test_cli_reports_a_file_it_cannot_decode(server, audio_files, capsys):
    assert client_cli.main([audio_files["garbage"], audio_files["mono"], "--rest", _rest_url(server)]) == 1
    captured = capsys.readouterr()
    assert _lines(captured.out) == [f"{audio_files['mono']}\t{_bytes_caption(audio_files['mono'])}"]
    assert _lines(captured.err)[0].startswith(f"error: {audio_files['garbage']}: ")


@pytest.mark.parametrize("kind", ["--grpc", "--rest"])
def test_cli_reports_an_unreachable_server_once(audio_files, unused_port, kind, capsys):
    target = f"127.0.0.1:{unused_port}"
    assert client_cli.main([audio_files["mono"], audio_files["stereo"], kind, target, "--timeout", "5"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = _lines(captured.err)
    assert line.startswith("error: cannot reach the") and target in line


def test_cli_reports_a_model_version_that_is_not_served_once(server, audio_files, capsys):
    assert client_cli.main([audio_files["mono"], audio_files["stereo"], "--grpc", _grpc_target(server),
                            "--version", "9"]) == 1
    assert _lines(capsys.readouterr().err) == ["error: Servable not found for request: Specific(audiocaps, 9)"]


def test_cli_as_a_subprocess(server, reference, audio_files):
    paths = [audio_files["mono"], audio_files["mono"] + ".missing", audio_files["flac"]]
    command = [sys.executable, "-m", "audiocaps_tf.serving.client", *paths, "--rest", _rest_url(server)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert finished.returncode == 1, finished.stderr
    assert _lines(finished.stdout) == [f"{paths[0]}\t{_bytes_caption(paths[0])}",
                                       f"{paths[2]}\t{_decoded(reference, paths[2])['caption']}"]
    assert f"error: {paths[1]}: No such file or directory" in finished.stderr


def test_answered_keeps_two_requests_in_flight_and_the_order():
    import threading

    second_started = threading.Event()

    def request(batch):
        if batch == 0:  # answers only once the request of batch 1 is running beside it
            assert second_started.wait(60), "the second request was not sent while the first was in flight"
        if batch == 1:
            second_started.set()
        return f"answer {batch}"

    answers = list(client_cli._answered(iter(range(5)), request, depth=2))
    assert answers == [(batch, f"answer {batch}") for batch in range(5)]


def test_answered_gives_the_answers_before_a_read_error_then_raises_it():
    def batches():
        yield "first"
        yield "second"
        raise AudioError("damaged at 120 s")

    answered = client_cli._answered(batches(), str.upper, depth=2)
    assert [next(answered), next(answered)] == [("first", "FIRST"), ("second", "SECOND")]
    with pytest.raises(AudioError, match="damaged at 120 s"):
        next(answered)


def test_answered_raises_a_failed_request_without_answering_the_batches_after_it():
    def request(batch):
        if batch == 1:
            raise ServingError("INVALID_ARGUMENT", "batch 1 is bad")
        return batch

    answered = client_cli._answered(iter(range(4)), request, depth=2)
    assert next(answered) == (0, 0)
    with pytest.raises(ServingError, match="batch 1 is bad"):
        next(answered)
