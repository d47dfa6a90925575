"""The built-in demo dataset: AudioCaps layout, audio, captions true to the clip, determinism, directory rules."""

import json
import re

import numpy as np
import pytest
import soundfile

from audiocaps_tf.data import demo
from audiocaps_tf.data.__main__ import main as data_main
from audiocaps_tf.data.layout import SPLITS, AudioIndex, read_splits, split_path

NUM_CLIPS = 30
SR = 16000

# Words that put events in order, and words that say they happen together.
SEQUENCE_WORDS = re.compile(r"followed by|\bthen\b|\bbefore\b|after which")
TOGETHER_WORDS = re.compile(r"\bwhile\b|\bas\b|\band\b|along with|at the same time|in the background|\bover\b")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """30 clips made by two worker processes."""
    out = tmp_path_factory.mktemp("demo") / "data"
    return demo.make_demo_dataset(out, NUM_CLIPS, seed=0, workers=2, progress=False)


@pytest.fixture(scope="module")
def many_specs():
    return demo.clip_specs(1500, seed=0)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _mentions(caption, source):
    match = re.search(demo.SOURCES[source].keywords, caption.lower())
    return None if match is None else match.start()


# ----- layout and audio ----------------------------------------------------------------------------------------


def test_layout_is_readable_and_every_clip_has_its_audio(dataset):
    splits = read_splits(dataset)
    index = AudioIndex(dataset)
    clips = [clip for split in SPLITS for clip in splits[split]]
    assert len(clips) == NUM_CLIPS
    assert len({clip.key for clip in clips}) == NUM_CLIPS
    assert len(index) == NUM_CLIPS
    for clip in clips:
        path = index.find(clip)
        assert path is not None and path.name == f"{clip.key}.wav", clip
        assert re.fullmatch(r"demo\d{5}", clip.youtube_id)
    assert not list(dataset.rglob("*.partial"))
    assert json.loads((dataset / "demo.json").read_text())["complete"] is True


def test_audio_is_10_s_16_khz_mono_16_bit_and_neither_silent_nor_clipping(dataset):
    for path in sorted((dataset / "audio").iterdir()):
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.frames, info.subtype, info.format) == (
            SR, 1, 10 * SR, "PCM_16", "WAV"), path
        pcm, _ = soundfile.read(path, dtype="int16")
        rms = np.sqrt(np.mean(pcm.astype(np.float64) ** 2))
        assert rms > 100, f"{path} is nearly silent (rms {rms:.0f} of 32768)"
        assert np.abs(pcm.astype(np.int32)).max() < 0.95 * 32767, f"{path} reaches full scale"


def test_splits_are_about_80_10_10(dataset, many_specs):
    sizes = {split: len(clips) for split, clips in read_splits(dataset).items()}
    assert sizes == {"train": 24, "val": 3, "test": 3}
    shares = {split: sum(s.split == split for s in many_specs) / len(many_specs) for split in SPLITS}
    assert shares == pytest.approx({"train": 0.8, "val": 0.1, "test": 0.1}, abs=0.01)


def test_one_caption_per_train_clip_five_different_per_val_and_test_clip(dataset):
    splits = read_splits(dataset)
    ids = []
    for split, clips in splits.items():
        for clip in clips:
            expected = 1 if split == "train" else 5
            assert len(clip.captions) == expected, clip
            assert len({c.lower() for c in clip.captions}) == expected, clip
            assert all(c[0].isupper() and not c.endswith(".") for c in clip.captions)
            ids += [int(i) for i in clip.audiocap_ids]
    assert len(ids) == len(set(ids)) == 24 + 5 * 6


def test_labels_name_the_sources_of_each_clip(dataset):
    specs = {spec.key: spec for spec in demo.clip_specs(NUM_CLIPS, seed=0)}
    known = {source.label for source in demo.SOURCES.values()}
    for clips in read_splits(dataset).values():
        for clip in clips:
            assert clip.labels and set(clip.labels) <= known, clip
            spec = specs[clip.key]
            assert clip.labels == spec.labels
            assert clip.captions == tuple(demo.describe(spec))


# ----- determinism and the output directory --------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(dataset, tmp_path):
    again = demo.make_demo_dataset(tmp_path / "again", NUM_CLIPS, seed=0, workers=1, progress=False)
    assert _files(again) == _files(dataset)  # also: one process and a pool write the same bytes
    other = demo.make_demo_dataset(tmp_path / "other", NUM_CLIPS, seed=1, workers=1, progress=False)
    other_files = _files(other)
    for split in SPLITS:
        assert other_files[f"{split}.csv"] != _files(dataset)[f"{split}.csv"]
    original_audio = {data for name, data in _files(dataset).items() if name.startswith("audio/")}
    assert not original_audio & {data for name, data in other_files.items() if name.startswith("audio/")}


def test_refuses_a_non_empty_directory_that_is_not_this_demo_dataset(dataset, tmp_path, capsys):
    unrelated = tmp_path / "mine"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("keep me")
    with pytest.raises(demo.DemoError, match="not empty"):
        demo.make_demo_dataset(unrelated, 5, progress=False)
    assert sorted(p.name for p in unrelated.iterdir()) == ["notes.txt"]
    assert (unrelated / "notes.txt").read_text() == "keep me"

    before = _files(dataset)
    with pytest.raises(demo.DemoError, match=r"clips=30 \(asked 31\)"):
        demo.make_demo_dataset(dataset, NUM_CLIPS + 1, progress=False)
    with pytest.raises(demo.DemoError, match=r"seed=0 \(asked 7\)"):
        demo.make_demo_dataset(dataset, NUM_CLIPS, seed=7, progress=False)
    assert _files(dataset) == before

    assert data_main(["demo", "--out", str(unrelated), "--clips", "5"]) == 1
    assert "not empty" in capsys.readouterr().err


def test_rerun_with_the_same_parameters_is_a_no_op(dataset, capsys):
    stamps = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    assert demo.make_demo_dataset(dataset, NUM_CLIPS, seed=0, progress=True) == dataset
    assert "nothing to do" in capsys.readouterr().err
    assert data_main(["demo", "--out", str(dataset), "--clips", str(NUM_CLIPS), "--seed", "0"]) == 0
    captured = capsys.readouterr()
    assert "nothing to do" in captured.err and "train 24 clips" in captured.out
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == stamps


def test_csvs_are_written_only_after_all_audio_and_an_interrupted_run_resumes(tmp_path, monkeypatch):
    out = tmp_path / "data"
    synthesise = demo.writer._synthesise
    calls = []

    def failing(task):
        calls.append(task[0].index)
        if len(calls) == 4:
            raise RuntimeError("disk full")
        return synthesise(task)

    monkeypatch.setattr(demo.writer, "_synthesise", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        demo.make_demo_dataset(out, 10, seed=3, workers=1, progress=False)
    assert not any(split_path(out, split).exists() for split in SPLITS)
    assert len(list((out / "audio").glob("*.wav"))) == 3
    assert json.loads((out / "demo.json").read_text())["complete"] is False

    monkeypatch.setattr(demo.writer, "_synthesise", synthesise)
    demo.make_demo_dataset(out, 10, seed=3, workers=1, progress=False)  # resumes: same parameters
    reference = demo.make_demo_dataset(tmp_path / "reference", 10, seed=3, workers=1, progress=False)
    assert _files(out) == _files(reference)

    (out / "audio" / next(iter(sorted(p.name for p in (out / "audio").iterdir())))).unlink()
    demo.make_demo_dataset(out, 10, seed=3, workers=1, progress=False)  # a missing file is made again
    assert _files(out) == _files(reference)


# ----- sources and captions ------------------------------------------------------------------------------------


def test_at_least_15_distinct_sources_are_reachable(many_specs):
    assert len(demo.SOURCES) >= 15
    assert len({source.label for source in demo.SOURCES.values()}) == len(demo.SOURCES)
    drawn = {event.source for spec in many_specs for event in spec.events}
    assert drawn == set(demo.SOURCES)
    assert {spec.structure for spec in many_specs} == {"single", "sequence", "overlap", "background",
                                                         "background_sequence"}
    assert {len(spec.events) for spec in many_specs} == {1, 2, 3}
    assert any(e.distant for s in many_specs for e in s.events)
    assert {e.level for s in many_specs for e in s.events} == {"loud", "normal", "soft"}


def test_specs_are_consistent_and_independent_of_dataset_size(many_specs):
    for spec in many_specs:
        assert len({e.source for e in spec.events}) == len(spec.events)
        for event in spec.events:
            assert 0 <= event.onset < event.offset <= demo.CLIP_SECONDS + 1e-9, spec
            if event.background:
                assert (event.onset, event.duration) == (0.0, demo.CLIP_SECONDS)
            source = demo.SOURCES[event.source]
            if source.discrete:
                assert source.counts[0] <= event.count <= source.counts[1] and event.period > 0
            else:
                assert event.count == 0
    assert demo.clip_specs(12, seed=0)[7].events == many_specs[7].events


def test_every_caption_names_each_source_of_its_clip_and_no_other(many_specs):
    for spec in many_specs[:600]:
        present = {e.source for e in spec.events}
        for caption in demo.describe(spec, 5):
            for name in demo.SOURCES:
                assert (_mentions(caption, name) is not None) == (name in present), (caption, name, spec)


def test_sequential_events_are_captioned_in_the_order_they_occur(many_specs):
    checked = 0
    for spec in many_specs:
        foreground = sorted((e for e in spec.events if not e.background), key=lambda e: e.onset)
        captions = demo.describe(spec, 5)
        if spec.structure in ("sequence", "background_sequence"):
            for earlier, later in zip(foreground, foreground[1:]):
                assert earlier.offset + 0.3 < later.onset, spec
            for caption in captions:
                positions = [_mentions(caption, e.source) for e in foreground]
                assert positions == sorted(positions), (caption, [(e.source, e.onset) for e in foreground])
                assert SEQUENCE_WORDS.search(caption.lower()), caption
                checked += 1
        elif spec.structure in ("overlap", "background"):
            a, b = sorted(spec.events, key=lambda e: e.onset)
            assert b.onset < a.offset, spec  # they do overlap
            for caption in captions:
                assert not SEQUENCE_WORDS.search(caption.lower()), caption
                assert TOGETHER_WORDS.search(caption.lower()), caption
    assert checked > 1000


def test_counts_distance_and_loudness_words_are_true():
    count_words = {1: "once", 2: "twice|two times", 3: "three times", 4: "four times|several times"}
    seen = set()
    for spec in demo.clip_specs(800, seed=5):
        for caption in demo.describe(spec, 5):
            text = caption.lower()
            distant = any(e.distant for e in spec.events)
            if "distan" in text:
                assert distant, (caption, spec)
                seen.add("distant")
            if re.search(r"\bloud", text):
                assert any(e.level == "loud" for e in spec.events), (caption, spec)
                seen.add("loud")
            if re.search(r"\b(?:soft|quiet|faint)", text):
                assert any(e.level == "soft" for e in spec.events), (caption, spec)
                seen.add("soft")
            for count, words in count_words.items():
                if re.search(rf"\b(?:{words})\b", text):
                    assert any(e.count == count or (count == 4 and e.count >= 4) for e in spec.events), caption
                    seen.add(count)
    assert seen == {"distant", "loud", "soft", 1, 2, 3, 4}


# ----- the sound itself ----------------------------------------------------------------------------------------


def _event(source, variant, seed, count=0):
    spec = demo.SOURCES[source]
    if count:
        event = demo.Event(source, 0.0, (count - 1) * spec.period[1] + spec.unit[0], count, spec.period[1], variant)
    else:
        event = demo.Event(source, 0.0, 6.0, 0, 0.0, variant)
    return demo.render_event(event, np.random.default_rng(seed))


def _centroid(x):
    power = np.abs(np.fft.rfft(x)) ** 2
    return float(np.sum(power * np.fft.rfftfreq(len(x), 1 / SR)) / np.sum(power))


def _periodicity(x, frame=1024):
    """Median over loud frames of the highest normalised autocorrelation at lags of 0.5-16 ms."""
    frames = x[: len(x) // frame * frame].reshape(-1, frame)
    energy = np.mean(frames**2, axis=1)
    values = []
    for f in frames[energy > 0.1 * energy.max()]:
        ac = np.correlate(f - f.mean(), f - f.mean(), "full")[frame - 1:]
        values.append(np.max(ac[8:256]) / ac[0])
    return float(np.median(values))


def _bursts(x, frame=160, gap_seconds=0.06):
    """Number of stretches louder than -20 dB re the loudest 10 ms, merging gaps shorter than `gap_seconds`."""
    level = np.sqrt(np.mean(x[: len(x) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    loud = np.flatnonzero(level > 0.1 * level.max())
    return 1 + int(np.sum(np.diff(loud) * frame / SR > gap_seconds))


@pytest.mark.parametrize("seed", [0, 1])
def test_sources_differ_acoustically(seed):
    siren, rain, dog, engine = (_event("siren", "wail", seed), _event("rain", "steady", seed),
                                _event("dog", "", seed, count=6), _event("engine", "", seed))
    assert _periodicity(siren) > 0.9  # a pure wailing tone
    assert _periodicity(rain) < 0.3  # noise
    assert _periodicity(dog) < 0.7  # rough, breathy barks
    assert _centroid(rain) > 1.5 * _centroid(dog) > 1.5 * _centroid(engine)
    assert _centroid(engine) < 0.5 * _centroid(siren)
    assert 600 < _centroid(siren) < 2500


@pytest.mark.parametrize("source", ["dog", "car_horn", "knocking", "hammer", "cat", "phone"])
def test_discrete_sources_sound_as_many_times_as_the_caption_counts(source):
    low, high = demo.SOURCES[source].counts
    for count in range(low, high + 1):
        assert _bursts(_event(source, demo.SOURCES[source].variants[0], count, count=count)) == count, count


def test_distant_events_are_duller_and_longer():
    near = demo.Event("dog", 0.0, 1.0, 2, 0.6, "", gain_db=-20.0)
    far = demo.Event("dog", 0.0, 1.0, 2, 0.6, "", distant=True, gain_db=-20.0)
    x_near = demo.render_event(near, np.random.default_rng(0))
    x_far = demo.render_event(far, np.random.default_rng(0))
    assert _centroid(x_far) < 0.7 * _centroid(x_near)
    assert len(x_far) > len(x_near) + 0.5 * SR  # the reverberant tail


def test_help_and_defaults():
    parser_help = demo.__doc__
    assert "--clips 600" in parser_help and demo.DEFAULT_CLIPS == 600
    assert demo.HELP and "\n" not in demo.HELP
    with pytest.raises(SystemExit) as exit_info:
        data_main(["demo", "--help"])
    assert exit_info.value.code == 0
