"""Long files through the server: the `caption_segments` signature, the dev server and `serving.client --format`."""

import numpy as np
import pytest
import soundfile
import srt

from audiocaps_tf import caption, params
from audiocaps_tf.data import demo
from audiocaps_tf.export import export_model
from audiocaps_tf.models import build_captioner
from audiocaps_tf.serving import client as client_cli
from audiocaps_tf.serving.client import GrpcCaptionClient, RestCaptionClient
from audiocaps_tf.serving.dev_server import DevServer
from audiocaps_tf.tokens.vocabulary import build_vocabulary
from test_dev_server import TIMEOUT

RATE = params.SAMPLE_RATE


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny untrained tempatt-mfcc-lstm, saved as .keras and exported to a model base."""
    vocabulary = build_vocabulary([c for spec in demo.clip_specs(20, 0) for c in demo.describe(spec, 1)])
    model = build_captioner("tempatt-mfcc-lstm", vocabulary, units=8, embedding_dim=8, max_caption_length=12)
    directory = tmp_path_factory.mktemp("export")
    model.save(directory / "tiny.keras")
    export_model(model, directory / "models")
    return directory


@pytest.fixture(scope="module")
def server(exported):
    with DevServer(exported / "models", grpc_port=0, rest_port=0, poll_seconds=0.1) as running:
        assert running.wait_until_available(TIMEOUT)
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory, example_paths):
    """A 34-s 16 kHz WAV (clip A twice, B, 4 s of C) and a 25-s 16 kHz FLAC of the same kind."""
    from audiocaps_tf.audio.loading import load_audio

    clips = [load_audio(path) for path in example_paths[:3]]
    directory = tmp_path_factory.mktemp("long")
    paths = [directory / "long.wav", directory / "long.flac"]
    soundfile.write(paths[0], np.concatenate([clips[0], clips[0], clips[1], clips[2][: 4 * RATE]]), RATE,
                    subtype="FLOAT")
    soundfile.write(paths[1], np.concatenate([clips[2], clips[1], clips[0][: 5 * RATE]]), RATE, subtype="PCM_16")
    return [str(path) for path in paths]


def _cues(text):
    return [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt.parse(text)]


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_the_client_s_srt_is_the_caption_command_s(exported, server, files, transport, capsys):
    address = (["--grpc", f"127.0.0.1:{server.grpc_port}"] if transport == "grpc"
               else ["--rest", f"http://127.0.0.1:{server.rest_port}"])
    for path in files:
        assert caption.main([path, "--model", str(exported / "tiny.keras"), "--format", "srt"]) == 0
        in_process = _cues(capsys.readouterr().out)
        assert client_cli.main([path, *address, "--format", "srt"]) == 0
        assert _cues(capsys.readouterr().out) == in_process
        assert len(in_process) >= 2 and in_process[-1][1] in (34.0, 25.0)


@pytest.mark.parametrize("chunk_seconds", [10.0, 60.0])
def test_the_api_answers_segments_with_scores_across_chunks(exported, server, files, monkeypatch, chunk_seconds):
    """Files sent in one chunk or in several: segments that run on over a chunk's end are joined, scores averaged
    over their windows, as in process."""
    monkeypatch.setattr(client_cli, "CHUNK_SECONDS", chunk_seconds)
    model = caption.load_model(exported / "tiny.keras")
    expected = [model.caption_segments(path) for path in files]
    for client in (GrpcCaptionClient(f"127.0.0.1:{server.grpc_port}"),
                   RestCaptionClient(f"http://127.0.0.1:{server.rest_port}")):
        with client:
            answered = dict(client.iter_segment_files(files))
        for path, segments in zip(files, expected):
            assert [(s.start, s.end, s.caption) for s in answered[path]] == [(s.start, s.end, s.caption)
                                                                             for s in segments]
            np.testing.assert_allclose([s.score for s in answered[path]], [s.score for s in segments], rtol=1e-5)


def test_format_options_that_would_be_ignored_are_errors(files, capsys):
    for argv in (["--out", "x.srt"], ["--format", "srt", "--json"], ["--format", "tsv", "--signature", "x"]):
        with pytest.raises(SystemExit):
            client_cli.main([files[0], *argv])
        assert "error:" in capsys.readouterr().err
