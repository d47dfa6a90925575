"""Audio of any length: streamed reading, windows, `caption_segments`, and `caption`'s segments and formats."""

import io
import json
import tracemalloc

import numpy as np
import pytest
import soundfile
import srt
import webvtt

from model_test_case import save_tiny_demo_captioner
from audiocaps_tf import caption, params
from audiocaps_tf.audio.loading import AudioError, load_audio
from audiocaps_tf.audio.stream import open_audio_stream
from audiocaps_tf.audio.windows import windows

RATE = params.SAMPLE_RATE
CLIP = int(params.CLIP_SECONDS * RATE)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained tiny tempatt-mfcc-lstm, saved; its captions and scores differ from clip to clip."""
    return save_tiny_demo_captioner(tmp_path_factory.mktemp("model") / "tiny.keras", seed=2, max_caption_length=12)


@pytest.fixture(scope="module")
def model(model_file):
    return caption.load_model(model_file)


@pytest.fixture(scope="module")
def clips(example_paths):
    """Five real example clips at 16 kHz, each exactly 10 s (`load_audio`)."""
    return [load_audio(path) for path in example_paths[:5]]


@pytest.fixture(scope="module")
def long_file(tmp_path_factory, clips):
    """65 s at 16 kHz: the clips A, A, B, C, D, E (A twice, so two windows merge), then 5 s of silence."""
    audio = np.concatenate([clips[0], *clips, np.zeros(5 * RATE, np.float32)])
    path = tmp_path_factory.mktemp("long") / "long walk.wav"  # a space in the name
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    return str(path)


def _one_by_one(model, waveforms):
    """(caption, score) of every waveform captioned on its own (zero-padded to 10 s, as `generate` pads)."""
    results = []
    for waveform in waveforms:
        padded = np.pad(waveform, (0, CLIP - len(waveform)))[None]
        outputs = {k: np.asarray(v) for k, v in model.decode_function()({"waveform": padded}).items()}
        results.append((model.captions_of(outputs)[0], float(outputs["scores"][0])))
    return results


def _merged(times, results):
    """The oracle of merging: runs of equal captions in consecutive, touching windows joined."""
    merged = []
    for (start, end), (text, score) in zip(times, results):
        if merged and merged[-1][2] == text and start <= merged[-1][1]:
            merged[-1][1] = end
            merged[-1][3].append(score)
        else:
            merged.append([start, end, text, [score]])
    return [(start, end, text, np.mean(scores)) for start, end, text, scores in merged]


@pytest.mark.parametrize("window, hop, block", [(10, 10, 7), (10, 4, 3), (10, 15, 7), (200, 10, 50), (5, 5, 95)])
def test_windows_cover_the_audio_in_order(window, hop, block):
    audio = np.arange(1, 96, dtype=np.float32)
    found = list(windows((audio[i : i + block] for i in range(0, len(audio), block)), window, hop))
    starts = [w.start for w in found]
    assert starts == list(range(0, starts[-1] + 1, hop)) and starts[0] == 0
    for item in found:
        expected = np.zeros(window, np.float32)
        part = audio[item.start : item.start + window]
        expected[: len(part)] = part
        np.testing.assert_array_equal(item.samples, expected)
        assert item.end == min(item.start + window, len(audio))
    assert found[-1].end == len(audio)  # the last window reaches the end of the audio ...
    assert len(found) == 1 or found[-2].end < len(audio)  # ... and is there only when something was left


@pytest.mark.parametrize("rate, channels", [(8000, 1), (48000, 2)])
def test_a_stream_gives_the_samples_of_load_audio(tmp_path, rate, channels):
    seconds = 23.3
    noise = np.random.default_rng(rate).uniform(-0.5, 0.5, (int(seconds * rate), channels))
    path = tmp_path / "long.flac"
    soundfile.write(path, noise, rate, subtype="PCM_16")
    with open_audio_stream(path) as stream:
        assert (stream.native_rate, stream.channels) == (rate, channels)
        assert stream.seconds == pytest.approx(seconds, abs=1 / rate)
        streamed = np.concatenate(list(stream.blocks(block_seconds=3.7)))
    np.testing.assert_array_equal(streamed, load_audio(path, duration=None))


def test_windows_of_concatenated_clips_are_the_clips_captioned_one_by_one(model, clips, long_file):
    expected = _one_by_one(model, [clips[0], *clips, np.zeros(5 * RATE, np.float32)])
    found = model.caption_segments(long_file, merge=False)
    assert [(s.start, s.end) for s in found] == [(10.0 * i, 10.0 * i + 10) for i in range(6)] + [(60.0, 65.0)]
    assert [s.caption for s in found] == [text for text, _ in expected]
    np.testing.assert_allclose([s.score for s in found], [score for _, score in expected], rtol=1e-5, atol=1e-5)
    assert len({text for text, _ in expected[1:6]}) > 1  # the clips are told apart, so misaligned windows would show


def test_neighbouring_windows_with_one_caption_merge(model, clips, long_file):
    unmerged = model.caption_segments(long_file, merge=False)
    merged = model.caption_segments(long_file)
    oracle = _merged([(s.start, s.end) for s in unmerged], [(s.caption, s.score) for s in unmerged])
    assert [(s.start, s.end, s.caption) for s in merged] == [(start, end, text) for start, end, text, _ in oracle]
    np.testing.assert_allclose([s.score for s in merged], [score for *_, score in oracle], rtol=1e-6)
    assert (merged[0].start, merged[0].end) == (0.0, 20.0)  # clip A twice: one segment


def test_overlapping_windows_and_a_waveform_input(model, clips):
    audio = np.concatenate(clips[:3])  # 30 s
    found = model.caption_segments(audio, window=10, hop=5, sample_rate=RATE, merge=False)
    assert [(s.start, s.end) for s in found] == [(5.0 * i, 5.0 * i + 10) for i in range(5)]
    assert [s.caption for s in found] == [text for text, _ in _one_by_one(model, [audio[i * 5 * RATE:][:CLIP]
                                                                                 for i in range(5)])]
    with pytest.raises(ValueError, match="sample_rate"):
        model.caption_segments(audio)
    with pytest.raises(ValueError, match="window must be at least"):
        model.caption_segments(audio, window=0.5, sample_rate=RATE)


def _run(argv, capsys):
    status = caption.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_every_output_format_parses_back_to_the_segments(model, model_file, long_file, tmp_path, capsys):
    expected = model.caption_segments(long_file)
    times = [(s.start, s.end) for s in expected]
    texts = [s.caption for s in expected]

    status, out, _ = _run([long_file, long_file, "--model", str(model_file)], capsys)  # a file given twice: twice
    rows = [line.split("\t") for line in out.splitlines()]
    assert status == 0 and all(row[0] == long_file for row in rows)
    assert [(float(row[1]), float(row[2])) for row in rows] == times * 2 and [row[3] for row in rows] == texts * 2

    status, out, _ = _run([long_file, "--model", str(model_file), "--format", "json"], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["start"], r["end"], r["caption"]) for r in records] == [(*t, c) for t, c in zip(times, texts)]
    np.testing.assert_allclose([r["score"] for r in records], [s.score for s in expected], atol=1e-4)

    status, out, _ = _run([long_file, "--model", str(model_file), "--format", "srt"], capsys)
    cues = list(srt.parse(out))
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues] == times
    assert [c.content for c in cues] == texts and [c.index for c in cues] == list(range(1, len(cues) + 1))

    target = tmp_path / "walk.vtt"
    status, out, _ = _run([long_file, "--model", str(model_file), "--format", "vtt", "--out", str(target)], capsys)
    assert status == 0 and out == ""
    cues = webvtt.read(str(target)).captions
    assert [(c.start_in_seconds + c.start_time.milliseconds / 1000, c.end_in_seconds + c.end_time.milliseconds
             / 1000) for c in cues] == times
    assert [c.text for c in cues] == texts


def test_a_file_shorter_than_a_window_keeps_the_two_column_line(model, model_file, clips, tmp_path, capsys):
    path = tmp_path / "short.wav"
    soundfile.write(path, clips[1][: 4 * RATE], RATE, subtype="FLOAT")
    status, out, _ = _run([str(path), "--model", str(model_file)], capsys)
    assert status == 0 and out == f"{path}\t{_one_by_one(model, [clips[1][:4 * RATE]])[0][0]}\n"
    (segment,) = model.caption_segments(str(path))
    assert (segment.start, segment.end) == (0.0, 4.0)


@pytest.mark.parametrize("rate, channels", [(8000, 1), (48000, 2)])
def test_long_files_at_other_rates_are_captioned_as_their_16k_waveforms(model, model_file, clips, tmp_path, capsys,
                                                                        rate, channels):
    audio = np.concatenate(clips[:3])[: 27 * RATE]
    resampled = np.interp(np.arange(0, len(audio), RATE / rate), np.arange(len(audio)), audio)
    path = tmp_path / f"long-{rate}.wav"
    soundfile.write(path, np.repeat(resampled[:, None], channels, axis=1), rate, subtype="PCM_24")
    status, out, _ = _run([str(path), "--model", str(model_file), "--format", "json"], capsys)
    expected = model.caption_segments(load_audio(path, duration=None), sample_rate=RATE)
    assert status == 0 and [json.loads(line)["caption"] for line in out.splitlines()] == [s.caption for s in expected]
    assert json.loads(out.splitlines()[-1])["end"] == pytest.approx(27.0, abs=1e-3)


def test_a_truncated_long_file_keeps_the_segments_before_the_damage(model, model_file, clips, long_file, tmp_path,
                                                                   capsys):
    data = open(long_file, "rb").read()
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) - 40 * RATE * 4])  # float32 samples: the last 40 s are gone
    status, out, err = _run([str(path), "--model", str(model_file), "--format", "json"], capsys)
    assert status == 1
    records = [json.loads(line) for line in out.splitlines()]
    kept = _merged([(0.0, 10.0), (10.0, 20.0)], _one_by_one(model, [clips[0], clips[0]]))
    assert [(r["start"], r["end"], r["caption"]) for r in records] == [(a, b, c) for a, b, c, _ in kept]
    assert f"error: {path}: truncated file" in err and "stops at 25.00 s" in err
    with pytest.raises(AudioError, match="stops at 25.00 s"):
        model.caption_segments(str(path))


def _streaming_peak(path):
    """Peak bytes Python allocates while reading `path`'s windows, and the number of windows."""
    tracemalloc.start()
    try:
        with open_audio_stream(path) as stream:
            count = sum(1 for _ in windows(stream.blocks(), CLIP, CLIP))
        return tracemalloc.get_traced_memory()[1], count
    finally:
        tracemalloc.stop()


def test_a_long_file_is_never_read_whole(tmp_path):
    """Memory does not grow with the length: streaming 4 minutes of 48 kHz stereo peaks as streaming 1 minute does,
    far below the decoded file that reading it whole would hold (the benchmark's measure, test-sized)."""
    rate, peaks = 48000, {}
    for minutes in (1, 4):
        path = tmp_path / f"{minutes}-minutes.wav"
        with soundfile.SoundFile(path, "w", rate, 2, subtype="PCM_16") as f:
            for _ in range(6 * minutes):
                f.write(np.random.default_rng(0).uniform(-0.3, 0.3, (10 * rate, 2)))
        peaks[minutes], count = _streaming_peak(path)
        assert count == 6 * minutes
    decoded_whole = 240 * rate * 2 * 4  # float32 frames of the 4-minute file
    assert peaks[4] < 1.1 * peaks[1], f"peaks {peaks}: memory grows with the length"
    assert peaks[4] < decoded_whole / 5, f"peak {peaks[4] / 1e6:.1f} MB"  # a few 10 s blocks, not the file


def test_no_segments_captions_the_first_window_and_says_so(model, model_file, clips, long_file, capsys):
    status, out, err = _run([long_file, "--model", str(model_file), "--no-segments"], capsys)
    assert status == 0 and out == f"{long_file}\t{_one_by_one(model, [clips[0]])[0][0]}\n"
    assert "65.0 s long; only its first 10 s were captioned" in err


def test_outputs_are_never_overwritten_and_contradictions_are_errors(model_file, long_file, tmp_path, capsys):
    target = tmp_path / "kept.tsv"
    target.write_text("mine\n")
    status, _, err = _run([long_file, "--model", str(model_file), "--out", str(target)], capsys)
    assert status == 1 and "exists; pass --overwrite" in err and target.read_text() == "mine\n"
    assert _run([long_file, "--model", str(model_file), "--out", str(target), "--overwrite"], capsys)[0] == 0
    assert target.read_text().startswith(long_file)
    status, _, err = _run([long_file, long_file + "x", "--model", str(model_file), "--format", "srt"], capsys)
    assert status == 1 and "needs --out DIR" in err
    for argv in (["--json", "--format", "srt"], ["--no-segments", "--hop", "5"]):
        with pytest.raises(SystemExit):
            caption.main([long_file, "--model", str(model_file), *argv])
        assert "error:" in capsys.readouterr().err


def test_a_directory_gets_one_subtitle_file_per_input(model, model_file, clips, long_file, tmp_path, capsys):
    other = tmp_path / "other.flac"
    soundfile.write(other, np.concatenate(clips[2:4]), RATE, subtype="PCM_16")
    out_dir = tmp_path / "subtitles"
    status, out, _ = _run([long_file, str(other), "--model", str(model_file), "--format", "srt", "--out",
                           str(out_dir)], capsys)
    assert status == 0 and out == ""
    assert sorted(p.name for p in out_dir.iterdir()) == ["long walk.srt", "other.srt"]
    cues = list(srt.parse((out_dir / "other.srt").read_text()))
    assert [c.content for c in cues] == [s.caption for s in model.caption_segments(str(other))]
    assert cues[-1].end.total_seconds() == 20.0


def test_bytes_and_file_objects_stream_too(model, long_file):
    data = open(long_file, "rb").read()
    from_path = model.caption_segments(long_file)
    assert model.caption_segments(data) == from_path
    assert model.caption_segments(io.BytesIO(data)) == from_path


def test_a_long_file_shows_its_progress_on_stderr(model_file, long_file, monkeypatch, capsys):
    monkeypatch.setattr(caption, "PROGRESS_SECONDS", 30.0)  # the 65-s file counts as long
    status, out, err = _run([long_file, "--model", str(model_file)], capsys)
    assert status == 0 and "long walk.wav:" in err and "/65.0 [" in err  # a tqdm bar over the file's 65 s
    monkeypatch.setattr(caption, "PROGRESS_SECONDS", 100.0)
    assert "/65.0 [" not in _run([long_file, "--model", str(model_file)], capsys)[2]
