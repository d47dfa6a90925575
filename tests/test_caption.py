"""`python -m audiocaps_tf.caption FILE ... --model RUN_DIR|MODEL.keras`: one caption per file, errors on stderr."""

import json

import numpy as np
import pytest
import soundfile

from audiocaps_tf import caption
from audiocaps_tf.audio.loading import load_audio
from audiocaps_tf.data import demo
from audiocaps_tf.tokens.vocabulary import build_vocabulary
from audiocaps_tf.models import build_captioner


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained tiny tempatt-mfcc-lstm saved as `fit` saves best.keras, in a run directory."""
    run_dir = tmp_path_factory.mktemp("run")
    vocabulary = build_vocabulary([c for spec in demo.clip_specs(20, 0) for c in demo.describe(spec, 1)])
    model = build_captioner("tempatt-mfcc-lstm", vocabulary, units=8, embedding_dim=8, max_caption_length=12)
    model.save(run_dir / "best.keras")
    return run_dir / "best.keras"


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """Two demo clips as a 22.05 kHz stereo WAV and a 16 kHz FLAC, and a 3 s 44.1 kHz WAV."""
    directory = tmp_path_factory.mktemp("audio")
    specs = demo.clip_specs(3, seed=5)
    first, second, third = (demo.render(spec) for spec in specs)
    paths = [directory / "first.wav", directory / "second.flac", directory / "short.wav"]
    stereo = np.interp(np.arange(0, len(first), 16000 / 22050), np.arange(len(first)), first)
    soundfile.write(paths[0], np.stack([stereo, 0.5 * stereo], axis=1), 22050, subtype="PCM_16")
    soundfile.write(paths[1], second, 16000, subtype="PCM_16")
    short = np.interp(np.arange(0, 48000, 16000 / 44100), np.arange(len(third)), third)
    soundfile.write(paths[2], short, 44100, subtype="PCM_24")
    return [str(p) for p in paths]


@pytest.fixture
def corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    return str(path)


def _lines(text):
    return [line for line in text.splitlines() if line]


def test_one_tab_separated_line_per_file_in_order(model_file, audio_files, capsys):
    assert caption.main([*audio_files, "--model", str(model_file.parent)]) == 0
    captured = capsys.readouterr()
    lines = _lines(captured.out)
    assert [line.split("\t")[0] for line in lines] == audio_files
    assert all(len(line.split("\t")) == 2 for line in lines)
    assert "error" not in captured.err


def test_captions_are_the_models_own(model_file, audio_files, capsys):
    """The CLI gives exactly what the saved model generates from the files' waveforms (run dir or .keras file)."""
    model = caption.load_model(model_file)
    expected = model.generate([load_audio(path) for path in audio_files])
    assert caption.main([*audio_files, "--model", str(model_file)]) == 0
    assert [line.split("\t")[1] for line in _lines(capsys.readouterr().out)] == expected


def test_no_repeat_ngram_size_reaches_the_model(model_file, audio_files, capsys):
    model = caption.load_model(model_file)
    expected = model.generate([load_audio(path) for path in audio_files], beam_size=2, no_repeat_ngram_size=1)
    assert all(len(set(c.split())) == len(c.split()) for c in expected)  # no word twice
    assert caption.main([*audio_files, "--model", str(model_file), "--beam-size", "2",
                         "--no-repeat-ngram-size", "1"]) == 0
    assert [line.split("\t")[1] for line in _lines(capsys.readouterr().out)] == expected


def test_a_bad_file_is_reported_and_the_others_are_still_captioned(model_file, audio_files, corrupt_file, capsys):
    missing = str(model_file.parent / "missing.wav")
    files = [audio_files[0], corrupt_file, audio_files[1], missing]
    assert caption.main([*files, "--model", str(model_file)]) == 1
    captured = capsys.readouterr()
    assert [line.split("\t")[0] for line in _lines(captured.out)] == [audio_files[0], audio_files[1]]
    errors = [line for line in _lines(captured.err) if line.startswith("error:")]
    assert any(corrupt_file in line for line in errors) and any(missing in line for line in errors)
    assert "2 of 4 file(s)" in captured.err


def test_json_lines(model_file, audio_files, corrupt_file, capsys):
    assert caption.main([*audio_files, corrupt_file, "--model", str(model_file), "--json", "--beam-size", "2"]) == 1
    records = [json.loads(line) for line in _lines(capsys.readouterr().out)]
    assert [record["path"] for record in records] == audio_files
    assert all(set(record) == {"path", "start", "end", "caption", "score"} and isinstance(record["caption"], str)
               for record in records)
    assert [record["start"] for record in records] == [0.0, 0.0, 0.0]  # each file fits in one window


def test_a_model_that_cannot_be_loaded_is_an_error(tmp_path, audio_files, capsys):
    assert caption.main([audio_files[0], "--model", str(tmp_path)]) == 1
    assert "holds no best.keras" in capsys.readouterr().err
    assert caption.main([audio_files[0], "--model", str(tmp_path / "nothing.keras")]) == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("beam_size", ["0", "-2"])
def test_beam_size_below_one_is_a_usage_error(beam_size, capsys):
    with pytest.raises(SystemExit) as exit_info:
        caption.main(["clip.wav", "--model", "run", "--beam-size", beam_size])
    assert exit_info.value.code == 2
    assert f"--beam-size: must be at least 1, got {beam_size}" in capsys.readouterr().err
