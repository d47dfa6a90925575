"""`python -m audiocaps_tf.export`: the raw-audio-to-caption SavedModel, its signatures, ops, warm-up and versions.

Tiny untrained models: their captions are arbitrary but deterministic, which is all the comparisons need.
"""

import io
import json
import os
import pathlib
import re
import subprocess

import keras
import numpy as np
import pytest
import soundfile
import srt
import tensorflow as tf

from audiocaps_tf import caption, params
from audiocaps_tf.audio import load_audio
from audiocaps_tf.data import demo
from audiocaps_tf.tokens.vocabulary import build_vocabulary
from audiocaps_tf.export import ExportError, export_model
from audiocaps_tf.export import __main__ as export_cli
from audiocaps_tf.export import exporter
from audiocaps_tf.tokens.graph_detokenizer import graph_detokenizer
from audiocaps_tf.export.serving_graph import CaptionSignatures
from audiocaps_tf.export.warmup import WARMUP_FILE, check_warmup, read_warmup
from audiocaps_tf.models import build_captioner
from audiocaps_tf.serving import client as client_cli
from audiocaps_tf.serving.client import GrpcCaptionClient, RestCaptionClient
from audiocaps_tf.serving.dev_server import DevServer
from saved_model_ops import non_core_ops, saved_model_op_types
from test_dev_server import PROCESS_TIMEOUT

TINY = dict(units=8, embedding_dim=8, max_caption_length=12)
RATE = params.SAMPLE_RATE


def _captions(model_or_function, **inputs):
    return [c.decode() for c in model_or_function(**inputs)["caption"].numpy()]


def wav(waveform, rate=RATE, subtype="PCM_16"):
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def captions():
    return [c for spec in demo.clip_specs(30, 0) for c in demo.describe(spec, 2)]


@pytest.fixture(scope="module")
def vocabulary(captions):
    return build_vocabulary(captions)


@pytest.fixture(scope="module")
def clips():
    return [demo.render(spec) for spec in demo.clip_specs(4, seed=3)]


@pytest.fixture(scope="module")
def exported(vocabulary, tmp_path_factory):
    """A tiny tempatt-mfcc-lstm exported by the command line from a run directory: (model base, Keras model)."""
    run = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(1)  # weights that do not depend on which tests ran before in this worker
    model = build_captioner("tempatt-mfcc-lstm", vocabulary, **TINY)
    model.save(run / "best.keras")
    model_base = tmp_path_factory.mktemp("models") / "audiocaps"
    assert export_cli.main(["--model", str(run), "--out", str(model_base)]) == 0
    return model_base, model


@pytest.fixture(scope="module")
def served(exported):
    return tf.saved_model.load(str(exported[0] / "1"))


@pytest.mark.parametrize("tokenizer", ["word", "sentencepiece"])
def test_the_graph_detokenizer_writes_what_vocabulary_decode_writes(tokenizer, captions):
    options = {"vocab_size": 100} if tokenizer == "sentencepiece" else {}
    vocabulary = build_vocabulary(captions, tokenizer=tokenizer, **options)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocabulary.size, (3000, 10)).astype(np.int32)
    ids[:, :4] = rng.integers(0, 6, (3000, 4))  # many <pad>, <bos>, <eos>, <unk> and short pieces
    got = [text.decode() for text in graph_detokenizer(vocabulary)(ids).numpy()]
    assert got == [vocabulary.decode(row) for row in ids]


def test_the_version_holds_a_savedmodel_warmup_requests_and_export_facts(exported):
    model_base, model = exported
    version = model_base / "1"
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    assert (version / "assets.extra" / WARMUP_FILE).is_file()
    info = json.loads((version / "assets.extra" / "audiocaps_tf_export.json").read_text())
    assert info["model_name"] == "tempatt-mfcc-lstm" and info["beam_size"] == 1 and info["version"] == 1
    assert info["tensorflow"] == tf.__version__
    assert sorted(p.name for p in model_base.iterdir()) == ["1", "model-1.keras", "model.keras"]


def test_saved_model_cli_lists_both_signatures_with_their_inputs_and_outputs(exported):
    shown = subprocess.run(["saved_model_cli", "show", "--dir", str(exported[0] / "1"), "--all"],
                           capture_output=True, text=True, check=True).stdout
    signatures = dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)Method name", shown, flags=re.S))
    assert {"serving_default", "caption_waveform", "caption_segments"} <= set(signatures)

    def tensors(text, kind):
        found = re.findall(rf"{kind}\['(\w+)'\] tensor_info:\n\s+dtype: (\w+)\n\s+shape: (\([-\d, ]*\))", text)
        return {name: (dtype, shape) for name, dtype, shape in found}

    outputs = {"caption": ("DT_STRING", "(-1)"), "score": ("DT_FLOAT", "(-1)"), "tokens": ("DT_INT32", "(-1, -1)")}
    default, waveform = signatures["serving_default"], signatures["caption_waveform"]
    assert tensors(default, "inputs") == {"audio": ("DT_STRING", "(-1)")}
    assert tensors(waveform, "inputs") == {"waveform": ("DT_FLOAT", "(-1, -1)"), "sample_rate": ("DT_INT32", "(-1)")}
    assert tensors(default, "outputs") == outputs and tensors(waveform, "outputs") == outputs
    segments = signatures["caption_segments"]
    assert tensors(segments, "inputs") == {"audio": ("DT_STRING", "(-1)")}
    assert tensors(segments, "outputs") == {"start": ("DT_FLOAT", "(-1, -1)"), "end": ("DT_FLOAT", "(-1, -1)"),
                                            "caption": ("DT_STRING", "(-1, -1)"), "score": ("DT_FLOAT", "(-1, -1)"),
                                            "segment_count": ("DT_INT32", "(-1)")}


def test_the_export_facts_and_every_docker_image_name_the_same_tf_serving(exported):
    """The target TF Serving is no older than the TensorFlow that exports (it would not know newer ops), and the
    Compose file, the READMEs and the serving notebook run that release's image."""
    target = exporter.TARGET_TF_SERVING
    info = json.loads((exported[0] / "1" / "assets.extra" / "audiocaps_tf_export.json").read_text())
    assert info["target_tf_serving"] == target
    assert tuple(map(int, tf.__version__.split(".")[:2])) <= tuple(map(int, target.split(".")))
    root = pathlib.Path(__file__).resolve().parents[1]
    for name in ["serving/docker-compose.yml", "serving/README.md", "README.md", "colab/03_serving.ipynb"]:
        images = re.findall(r"tensorflow/serving:([\w.-]+)", (root / name).read_text())
        assert images and set(images) == {f"{target}.0"}, name


def test_the_savedmodel_stores_each_weight_once(exported):
    model_base, model = exported
    reader = tf.train.load_checkpoint(str(model_base / "1" / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    stored = sum(int(np.prod(shape)) for key, shape in shapes.items() if key != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert 0 < stored <= sum(int(np.prod(variable.shape)) for variable in model.variables)


def test_model_keras_restores_the_exported_model(exported, clips):
    model_base, model = exported
    restored = keras.models.load_model(model_base / "model.keras")
    assert os.path.samefile(model_base / "model.keras", model_base / "model-1.keras")
    assert restored.generate(clips) == model.generate(clips)


def test_the_warmup_requests_replay_to_the_keras_models_captions(exported, served):
    logs = read_warmup(exported[0] / "1" / "assets.extra" / WARMUP_FILE)
    signatures = [log.predict_log.request.model_spec.signature_name for log in logs]
    assert sorted(set(signatures)) == ["caption_waveform", "serving_default"] and len(logs) <= 1000
    assert check_warmup(served, logs) == []
    recorded = tf.make_ndarray(logs[0].predict_log.response.outputs["caption"])
    assert len(recorded) == 1 and recorded[0]  # a caption was recorded

    # The check sees a difference.
    logs[1].predict_log.response.outputs["caption"].CopyFrom(tf.make_tensor_proto(np.array([b"x", b"y"])))
    assert len(check_warmup(served, logs)) == 2


def test_the_warmup_requests_run_as_tf_serving_runs_them(exported):
    """TF Serving does not use `tf.saved_model.load`: it restores the variables and runs the init op in a TF1
    session, then feeds and fetches the tensors its SignatureDef names. Replayed that way, the warm-up requests
    answer the Keras model's captions."""
    version = exported[0] / "1"
    logs = read_warmup(version / "assets.extra" / WARMUP_FILE)
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], str(version))
        for log in logs:
            request, response = log.predict_log.request, log.predict_log.response
            signature = meta_graph.signature_def[request.model_spec.signature_name]
            assert signature.method_name == "tensorflow/serving/predict"
            feed = {signature.inputs[name].name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            answer = session.run({name: info.name for name, info in signature.outputs.items()}, feed)
            want = tf.make_ndarray(response.outputs["caption"]).tolist()
            assert answer["caption"].tolist() == want
            assert answer["score"].dtype == np.float32 and answer["score"].shape == (len(want),)
            assert answer["tokens"].dtype == np.int32 and answer["tokens"].shape[0] == len(want)


def test_wav_bytes_of_any_length_are_captioned_as_the_caption_command_does(exported, served, clips):
    model = exported[1]
    short, long = clips[0][: 3 * RATE], np.concatenate([clips[1], clips[2][: 4 * RATE]])
    files = [wav(clips[0]), wav(short), wav(long), wav(np.stack([clips[3], 0.5 * clips[3]], axis=1))]
    expected = model.generate([load_audio(f) for f in files])
    result = served.signatures["serving_default"](audio=tf.constant(files))
    assert [c.decode() for c in result["caption"].numpy()] == expected
    decoded = model.decode({"waveform": tf.constant(np.stack([load_audio(f) for f in files]))})
    np.testing.assert_array_equal(result["tokens"].numpy(), decoded["tokens"].numpy())
    np.testing.assert_allclose(result["score"].numpy(), decoded["scores"].numpy(), rtol=1e-5)
    assert result["score"].dtype == tf.float32 and result["tokens"].dtype == tf.int32

    # The waveform signature: the same clips as float rows (zero-padded to the longest), each with its rate.
    rows = [load_audio(f, duration=None) for f in files]
    batch = np.zeros((len(rows), max(len(r) for r in rows)), np.float32)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    rates = tf.constant([RATE] * len(rows), tf.int32)
    assert _captions(served.signatures["caption_waveform"], waveform=tf.constant(batch), sample_rate=rates) == expected


def test_other_sample_rates_are_resampled_in_the_graph(exported, served, clips):
    """A 44.1 kHz stereo WAV, and the same audio as a waveform at 44.1 kHz, caption alike."""
    import soxr

    audio = soxr.resample(clips[0], RATE, 44100, "HQ").astype(np.float32)
    stereo = wav(np.stack([audio, audio], axis=1), 44100)
    from_bytes = _captions(served.signatures["serving_default"], audio=tf.constant([stereo]))
    from_waveform = _captions(served.signatures["caption_waveform"], waveform=tf.constant(load_audio(
        stereo, sample_rate=44100, duration=None)[np.newaxis]), sample_rate=tf.constant([44100]))
    assert from_bytes == from_waveform and from_bytes[0]


BAD_REQUESTS = {
    "empty bytes": ("serving_default", dict(audio=[b""]), "audio: "),
    "not a WAV file": ("serving_default", dict(audio=[b"ID3\x04 an mp3 file"]), "not a RIFF/WAVE file"),
    "no clips": ("serving_default", dict(audio=tf.zeros([0], tf.string)), "the request holds no clips"),
    "NaN samples": ("caption_waveform", dict(waveform=[[0.0, np.nan]], sample_rate=[RATE]), "NaN or infinite"),
    "rate too low": ("caption_waveform", dict(waveform=[[0.0] * 100], sample_rate=[4000]), "sample_rate outside"),
    "rates for another batch": (
        "caption_waveform", dict(waveform=[[0.0] * 100], sample_rate=[RATE, RATE]), "different batch sizes"
    ),
    "no samples": ("caption_waveform", dict(waveform=tf.zeros([1, 0]), sample_rate=[RATE]), "are empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_audio_is_an_invalid_argument_error_that_says_why(case, served, clips):
    signature, inputs, message = BAD_REQUESTS[case]
    function = served.signatures[signature]
    specs = function.structured_input_signature[1]
    inputs = {name: tf.constant(value, specs[name].dtype) for name, value in inputs.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        function(**inputs)
    # A good request still works after a bad one.
    assert _captions(served.signatures["serving_default"], audio=tf.constant([wav(clips[0])]))[0]


def test_versions_are_never_overwritten(exported, vocabulary, tmp_path, capsys):
    model_base, model = exported
    before = (model_base / "1" / "saved_model.pb").stat().st_mtime_ns
    assert export_cli.main(["--model", str(model_base / "model.keras"), "--out", str(model_base),
                            "--version", "1"]) == 1
    assert "never overwritten" in capsys.readouterr().err
    assert (model_base / "1" / "saved_model.pb").stat().st_mtime_ns == before

    # Another version goes next to it, and model.keras follows the newest one.
    other = build_captioner("tempatt-mfcc-lstm", vocabulary, **TINY)
    result = export_model(other, model_base)
    assert result.version == 2 and (model_base / "2" / "saved_model.pb").is_file()
    assert os.path.samefile(model_base / "model.keras", model_base / "model-2.keras")
    assert (model_base / "model-1.keras").is_file() and not list(model_base.glob(".*"))

    # A model.keras the exporter did not write stops the export before anything is written.
    foreign = tmp_path / "base"
    foreign.mkdir()
    (foreign / "model.keras").write_bytes(b"mine")
    assert export_cli.main(["--model", str(model_base / "model-1.keras"), "--out", str(foreign)]) == 1
    assert "not written by the exporter" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["model.keras"]
    assert (foreign / "model.keras").read_bytes() == b"mine"


def test_an_export_that_does_not_caption_as_the_keras_model_leaves_nothing(vocabulary, tmp_path, monkeypatch):
    monkeypatch.setattr(exporter, "check_warmup", lambda saved_model, logs: ["clip 1: SavedModel 'a', Keras 'b'"])
    model = build_captioner("tempatt-mfcc-lstm", vocabulary, **TINY)
    with pytest.raises(ExportError, match="does not caption as the Keras model"):
        export_model(model, tmp_path / "base")
    assert list((tmp_path / "base").iterdir()) == []


def test_beam_search_no_repeat_and_sentencepiece_models_export(captions, tmp_path, clips):
    vocabulary = build_vocabulary(captions, tokenizer="sentencepiece", vocab_size=100)
    model = build_captioner("tempatt-mfcc-lstm", vocabulary, **{**TINY, "beam_size": 3})
    # The model's own beam (3) and a given no-repeat size, checked against generate(no_repeat_ngram_size=2), which
    # takes the same beam, on the warm-up clips.
    result = export_model(model, tmp_path / "base", no_repeat_ngram_size=2)
    info = json.loads((result.path / "assets.extra" / "audiocaps_tf_export.json").read_text())
    assert info["beam_size"] == 3 and info["no_repeat_ngram_size"] == 2
    assert non_core_ops(saved_model_op_types(result.path)) == []
    served = tf.saved_model.load(str(result.path))
    files = [wav(c) for c in clips[:2]]
    # The same 16-bit samples the served graph decodes: float clips could tip a near-tie of the random model.
    expected = model.generate([load_audio(f) for f in files], no_repeat_ngram_size=2)
    assert expected == model.generate([load_audio(f) for f in files], beam_size=3, no_repeat_ngram_size=2)
    assert _captions(served.signatures["serving_default"], audio=tf.constant(files)) == expected
    tokens = served.signatures["serving_default"](audio=tf.constant(files))["tokens"].numpy()
    for row in tokens:
        words = [t for t in row if t > 2]
        bigrams = list(zip(words, words[1:]))
        assert len(set(bigrams)) == len(bigrams), row


def test_a_retrieval_model_answers_the_retrieved_captions_text(vocabulary, tmp_path, clips):
    model = build_captioner("1nn-mfcc", vocabulary)
    texts = ["a dog barks twice", "rain falls on a zinc roof", "an engine idles", "birds sing"]
    model.index(model.pooled_features({"waveform": tf.constant(np.stack(clips))}), texts)
    result = export_model(model, tmp_path / "base")
    served = tf.saved_model.load(str(result.path))
    assert _captions(served.signatures["serving_default"], audio=tf.constant([wav(c) for c in clips])) == texts
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):  # a stored caption cannot be unrepeated
        export_model(model, tmp_path / "other", no_repeat_ngram_size=3)
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        model.generate(clips, no_repeat_ngram_size=3)
    assert [p.name for p in (tmp_path / "other").iterdir()] == []


def test_models_without_their_index_are_refused(vocabulary, tmp_path):
    with pytest.raises(ExportError, match="empty caption index"):
        export_model(build_captioner("1nn-mfcc", vocabulary), tmp_path / "a")
    semantic = build_captioner("topdown-semtempatt", vocabulary, attribute_vocabulary=["dog", "rain"], **TINY)
    with pytest.raises(ExportError, match="empty attribute index"):
        export_model(semantic, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_every_function_of_the_export_uses_core_ops_only(exported):
    op_types = saved_model_op_types(exported[0] / "1")
    assert {"Substr", "DecodeRaw", "RFFT", "While", "ReduceJoin", "GatherV2"} <= op_types  # the walk saw it all
    assert non_core_ops(op_types) == []


@pytest.mark.parametrize("name", ["topdown-alignedatt", "1nn-vggish"])
def test_vggish_models_export_with_core_ops_only(name, vocabulary, tmp_path, clips):
    """The VGGish models (untrained VGGish: only the graph matters here), written without the warm-up check."""
    rng = np.random.default_rng(0)
    if name == "1nn-vggish":
        model = build_captioner(name, vocabulary)
        model.index(rng.normal(size=(3, 128)).astype(np.float32), ["a", "b", "c"])
    else:
        model = build_captioner(name, vocabulary, attribute_vocabulary=["dog", "rain"], **TINY)
        model.set_attribute_index(rng.normal(size=(3, 128)).astype(np.float32), [["dog"], ["rain"], []])
    CaptionSignatures(model, beam_size=2).archive().write_out(str(tmp_path), verbose=False)
    op_types = saved_model_op_types(tmp_path)
    assert {"Conv2D", "MaxPool", "DecodeRaw", "RFFT"} <= op_types
    assert non_core_ops(op_types) == []
    served = tf.saved_model.load(str(tmp_path))
    assert len(_captions(served.signatures["serving_default"], audio=tf.constant([wav(clips[0])]))) == 1


@pytest.mark.parametrize("option", ["--beam-size", "--version"])
def test_export_options_below_one_are_usage_errors(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_cli.main(["--model", "run", "--out", str(tmp_path / "base"), option, "0"])
    assert exit_info.value.code == 2
    assert f"{option}: must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "base").exists()


def test_caption_segments_answers_each_file_s_segments_as_the_model_does(exported, served, clips):
    """Long and short WAV files in one request: the segments of `caption_segments`, rows padded past the count."""
    model = exported[1]
    files = [wav(np.concatenate([clips[0], clips[0], clips[1], clips[2][: 4 * RATE]])), wav(clips[3][: 3 * RATE]),
             wav(np.stack([clips[1], clips[2]], axis=1))]
    result = {k: v.numpy() for k, v in served.signatures["caption_segments"](audio=tf.constant(files)).items()}
    for row, data in enumerate(files):
        expected = model.caption_segments(data)
        count = result["segment_count"][row]
        assert count == len(expected)
        assert [c.decode() for c in result["caption"][row, :count]] == [s.caption for s in expected]
        np.testing.assert_allclose(result["start"][row, :count], [s.start for s in expected], atol=1e-6)
        np.testing.assert_allclose(result["end"][row, :count], [s.end for s in expected], atol=1e-6)
        np.testing.assert_allclose(result["score"][row, :count], [s.score for s in expected], rtol=1e-5)
        assert all(c == b"" for c in result["caption"][row, count:]) and not result["end"][row, count:].any()
    assert result["end"][0, result["segment_count"][0] - 1] == pytest.approx(34.0)
    assert (result["start"][0, 0], result["end"][0, 0]) == (0.0, 20.0)  # the clip twice: merged


def test_caption_segments_refuses_files_over_the_export_s_maximum(exported, clips):
    segments = tf.function(CaptionSignatures(exported[1], max_seconds=15).caption_segments)
    assert segments(tf.constant([wav(clips[0])]))["segment_count"].numpy().tolist() == [1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="longer than the maximum of 15 s set at export"):
        segments(tf.constant([wav(np.concatenate(clips[:2]))]))


# --- long files through the development server: `serving.client --format` against `caption` ------------------


@pytest.fixture(scope="module")
def dev_server(exported, tmp_path_factory):
    """The development server on a copy of version 1 alone (other tests add versions to the exported base)."""
    import shutil

    base = tmp_path_factory.mktemp("served")
    shutil.copytree(exported[0] / "1", base / "1")
    with DevServer(base, grpc_port=0, rest_port=0, poll_seconds=0.1) as running:
        assert running.wait_until_available(PROCESS_TIMEOUT)  # an event; the bound only stops a hang
        yield running


@pytest.fixture(scope="module")
def long_files(tmp_path_factory, example_paths):
    """A 34-s 16 kHz WAV (clip A twice, B, 4 s of C) and a 25-s 16 kHz FLAC of the same kind, from real clips."""
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
def test_the_client_s_srt_is_the_caption_command_s(exported, dev_server, long_files, transport, capsys):
    address = (["--grpc", f"127.0.0.1:{dev_server.grpc_port}"] if transport == "grpc"
               else ["--rest", f"http://127.0.0.1:{dev_server.rest_port}"])
    for path in long_files:
        assert caption.main([path, "--model", str(exported[0] / "model-1.keras"), "--format", "srt"]) == 0
        in_process = _cues(capsys.readouterr().out)
        assert client_cli.main([path, *address, "--format", "srt"]) == 0
        assert _cues(capsys.readouterr().out) == in_process
        assert len(in_process) >= 2 and in_process[-1][1] in (34.0, 25.0)


@pytest.mark.parametrize("chunk_seconds", [10.0, 60.0])
def test_the_api_answers_segments_with_scores_across_chunks(exported, dev_server, long_files, monkeypatch,
                                                            chunk_seconds):
    """Files sent in one chunk or in several: segments that run on over a chunk's end are joined, scores averaged
    over their windows, as in process."""
    monkeypatch.setattr(client_cli, "CHUNK_SECONDS", chunk_seconds)
    model = exported[1]
    expected = [model.caption_segments(path) for path in long_files]
    for client in (GrpcCaptionClient(f"127.0.0.1:{dev_server.grpc_port}"),
                   RestCaptionClient(f"http://127.0.0.1:{dev_server.rest_port}")):
        with client:
            answered = dict(client.iter_segment_files(long_files))
        for path, segments in zip(long_files, expected):
            assert [(s.start, s.end, s.caption) for s in answered[path]] == [(s.start, s.end, s.caption)
                                                                             for s in segments]
            np.testing.assert_allclose([s.score for s in answered[path]], [s.score for s in segments], rtol=1e-5)


def test_client_format_options_that_would_be_ignored_are_errors(long_files, capsys):
    for argv in (["--out", "x.srt"], ["--format", "srt", "--json"], ["--format", "tsv", "--signature", "x"]):
        with pytest.raises(SystemExit):
            client_cli.main([long_files[0], *argv])
        assert "error:" in capsys.readouterr().err
