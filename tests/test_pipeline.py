"""The input pipelines over tiny hand-written TFRecord shards and a tiny AudioCaps data dir."""

import sys
import types
import warnings

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from audiocaps_tf.audio.loading import load_audio
from audiocaps_tf.data import pipeline, records
from audiocaps_tf.data.layout import Clip
from audiocaps_tf.tokens.vocabulary import BOS_ID, EOS_ID, PAD_ID, WordVocabulary

MFCC_CHANNELS = 20


def _caption_ids(clip_index, caption_index, split_offset):
    """Distinct increasing word ids (so every pair is identifiable) and varied lengths, ending with <eos>."""
    length = 2 + (clip_index + 2 * caption_index) % 4
    first = 4 + split_offset + 20 * clip_index + 5 * caption_index
    return [first + k for k in range(length)] + [EOS_ID]


def _make_split(split, num_clips, num_captions, split_offset, rng):
    clips = []
    for i in range(num_clips):
        clip = Clip(
            youtube_id=f"{split}{i}",
            start_time=10 * i,
            captions=tuple(f"{split} clip {i} caption {j}" for j in range(num_captions)),
            audiocap_ids=tuple(str(100 * i + j) for j in range(num_captions)),
        )
        clips.append(
            {
                "clip": clip,
                "caption_ids": [_caption_ids(i, j, split_offset) for j in range(num_captions)],
                "attributes": [f"word{k}" for k in range(i)],
                # Away from 0 so that padding zeros are told apart from data.
                "mfcc": rng.uniform(0.5, 1.5, size=(4 + 2 * i + split_offset // 100, MFCC_CHANNELS)).astype(np.float32),
                "waveform": rng.uniform(0.1, 0.9, size=40 + i).astype(np.float32),
            }
        )
    return clips


def _write_shard(path, clips):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for c in clips:
            features = {"mfcc": c["mfcc"], "waveform": c["waveform"]}
            writer.write(records.clip_example(c["clip"], c["caption_ids"], c["attributes"], features))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A prepared directory: train 3 clips x 1 caption in 2 shards, val 2 clips x 3 captions in 1 shard."""
    out = tmp_path_factory.mktemp("prepared")
    rng = np.random.default_rng(0)
    data = {"train": _make_split("train", 3, 1, 0, rng), "val": _make_split("val", 2, 3, 100, rng)}
    _write_shard(out / "train-00000-of-00002.tfrecord", data["train"][:2])
    _write_shard(out / "train-00001-of-00002.tfrecord", data["train"][2:])
    _write_shard(out / "val-00000-of-00001.tfrecord", data["val"])
    (out / "train-notes.txt").write_text("not a shard")
    (out / "manifest.json").write_text("{}")
    return out, data


def _pairs_of(data):
    """{target ids tuple: clip record} of every (clip, caption) pair."""
    return {tuple(ids): c for c in data for ids in c["caption_ids"]}


def _unpadded_targets(dataset):
    """Target id tuples of every row, in order, padding removed."""
    rows = []
    for _, targets in dataset.as_numpy_iterator():
        rows.extend(tuple(int(i) for i in row if i != PAD_ID) for row in targets)
    return rows


@pytest.mark.parametrize("split", ["train", "val"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_training_has_every_clip_caption_pair_once(prepared, split, shuffle):
    out, data = prepared
    source = pipeline.TFRecordSource(out, split)
    dataset = pipeline.training_dataset(source, fields="mfcc", batch_size=2, shuffle=shuffle, seed=7)
    rows = _unpadded_targets(dataset)
    expected = sorted(_pairs_of(data[split]))
    assert sorted(rows) == expected
    assert len(rows) == pipeline.caption_count(source) == {"train": 3, "val": 6}[split]


def test_repeat_keeps_each_epoch_whole_and_reshuffles(prepared):
    out, data = prepared
    source = pipeline.TFRecordSource(out, "val")
    # Batches in shuffled order: grouped by length, a group of batches would hold pairs of several epochs.
    dataset = pipeline.training_dataset(source, fields="mfcc", batch_size=4, seed=3, repeat=True, group_batches=1)
    batches = list(dataset.take(3).as_numpy_iterator())
    assert [len(targets) for _, targets in batches] == [4, 4, 4]  # batches run across epochs: all full
    grouped = pipeline.training_dataset(source, fields="mfcc", batch_size=4, seed=3, repeat=True)
    assert [len(targets) for _, targets in grouped.take(9).as_numpy_iterator()] == [4] * 9
    rows = _unpadded_targets(dataset.take(3))
    expected = sorted(_pairs_of(data["val"]))
    assert sorted(rows[:6]) == expected
    assert sorted(rows[6:]) == expected
    assert rows[:6] != rows[6:]


def test_caption_in_is_bos_then_targets_and_features_belong_to_the_caption(prepared):
    out, data = prepared
    pairs = _pairs_of(data["val"])
    dataset = pipeline.training_dataset(pipeline.TFRecordSource(out, "val"), fields=None, batch_size=6, shuffle=False)
    inputs, targets = next(iter(dataset.as_numpy_iterator()))
    assert targets.dtype == np.int32 and inputs["caption_in"].dtype == np.int32
    assert inputs["caption_in"].shape == targets.shape == (6, max(len(ids) for ids in pairs))
    for caption_in, target, mfcc, waveform, attributes in zip(
        inputs["caption_in"], targets, inputs["mfcc"], inputs["waveform"], inputs["attributes"]
    ):
        n = int(np.count_nonzero(target))
        assert n >= 2
        assert target[n - 1] == EOS_ID
        assert (target[n:] == PAD_ID).all() and (caption_in[n:] == PAD_ID).all()
        assert caption_in[0] == BOS_ID
        np.testing.assert_array_equal(caption_in[1:n], target[: n - 1])
        clip = pairs[tuple(int(i) for i in target[:n])]
        steps = len(clip["mfcc"])
        np.testing.assert_array_equal(mfcc[:steps], clip["mfcc"])
        assert (mfcc[steps:] == 0).all()
        expected_waveform = np.round(clip["waveform"] * records.WAVEFORM_SCALE) / records.WAVEFORM_SCALE
        np.testing.assert_allclose(waveform[: len(clip["waveform"])], expected_waveform, atol=1e-6)
        assert (waveform[len(clip["waveform"]) :] == 0).all()
        m = len(clip["attributes"])
        assert [a.decode() for a in attributes[:m]] == clip["attributes"]
        assert (attributes[m:] == b"").all()


def test_features_are_padded_along_time_per_batch(prepared):
    out, data = prepared
    dataset = pipeline.training_dataset(pipeline.TFRecordSource(out, "train"), fields=None, batch_size=3, shuffle=False)
    (inputs, _), *rest = list(dataset.as_numpy_iterator())
    assert not rest
    assert inputs["mfcc"].shape == (3, max(len(c["mfcc"]) for c in data["train"]), MFCC_CHANNELS)
    assert inputs["waveform"].shape == (3, max(len(c["waveform"]) for c in data["train"]))
    assert inputs["attributes"].shape == (3, 2)
    assert dataset.element_spec[0]["mfcc"].shape.as_list() == [None, None, MFCC_CHANNELS]


@pytest.mark.parametrize("max_length", [1, 3])
def test_truncation_keeps_eos_last(prepared, max_length):
    out, data = prepared
    dataset = pipeline.training_dataset(
        pipeline.TFRecordSource(out, "val"), fields="mfcc", batch_size=6, shuffle=False, max_caption_length=max_length
    )
    inputs, targets = next(iter(dataset.as_numpy_iterator()))
    assert targets.shape[1] == max_length
    originals = [ids for c in data["val"] for ids in c["caption_ids"]]
    expected = sorted(tuple(ids[: max_length - 1]) + (EOS_ID,) for ids in originals)
    assert sorted(tuple(t) for t in targets.tolist()) == expected
    np.testing.assert_array_equal(inputs["caption_in"][:, 0], BOS_ID)
    np.testing.assert_array_equal(inputs["caption_in"][:, 1:], targets[:, :-1])


def test_seeded_shuffle_is_reproducible_and_changes_the_order(prepared):
    out, _ = prepared
    sources = {split: pipeline.TFRecordSource(out, split) for split in ("train", "val")}

    def order(split, **kwargs):
        return _unpadded_targets(pipeline.training_dataset(sources[split], fields="mfcc", batch_size=2, **kwargs))

    unshuffled = order("val", shuffle=False)
    shuffled = [order("val", seed=seed) for seed in range(3)]
    assert shuffled == [order("val", seed=seed) for seed in range(3)]
    assert any(o != unshuffled for o in shuffled)
    assert len(set(map(tuple, shuffled))) > 1  # the seed matters
    assert order("train", seed=5) == order("train", seed=5)  # two shards interleaved, still reproducible


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    """A prepared train split of 26 clips, one caption each, of 3 to 60 MFCC frames in random order."""
    out = tmp_path_factory.mktemp("varied")
    rng = np.random.default_rng(1)
    clips = _make_split("train", 26, 1, 0, rng)
    for c in clips:
        c["mfcc"] = rng.uniform(0.5, 1.5, size=(int(rng.integers(3, 61)), MFCC_CHANNELS)).astype(np.float32)
    _write_shard(out / "train-00000-of-00001.tfrecord", clips)
    return out, clips


@pytest.mark.parametrize("drop_remainder", [False, True])
def test_shuffled_batches_group_clips_of_similar_lengths(varied, drop_remainder):
    """Every pair once per epoch, each row its own clip's frames then zeros, as many batches as `steps_per_epoch`
    says, and less padding than batches in shuffled order."""
    out, clips = varied
    source = pipeline.TFRecordSource(out, "train")
    by_targets = _pairs_of(clips)

    def batches(group_batches, seed=4):
        return list(pipeline.training_dataset(source, fields="mfcc", batch_size=4, seed=seed,
                                              group_batches=group_batches, drop_remainder=drop_remainder)
                    .as_numpy_iterator())

    grouped, plain = batches(7), batches(1)  # 7 batches: one group holds the epoch
    assert len(grouped) == len(plain) == pipeline.steps_per_epoch(source, 4, drop_remainder) == (6 if drop_remainder
                                                                                                else 7)
    rows = 0
    for inputs, targets in grouped:
        for mfcc, row in zip(inputs["mfcc"], targets):
            clip = by_targets[tuple(int(i) for i in row if i != PAD_ID)]
            np.testing.assert_array_equal(mfcc[: len(clip["mfcc"])], clip["mfcc"])
            assert not mfcc[len(clip["mfcc"]):].any()
            rows += 1
    assert rows == (24 if drop_remainder else 26)
    if not drop_remainder:
        assert sorted(tuple(int(i) for i in row if i != PAD_ID) for _, t in grouped for row in t) == sorted(by_targets)

    def padded_steps(found):
        return sum(inputs["mfcc"].shape[0] * inputs["mfcc"].shape[1] for inputs, _ in found)

    assert padded_steps(grouped) < 0.8 * padded_steps(plain)
    assert [t.tolist() for _, t in grouped] == [t.tolist() for _, t in batches(7)]  # seeded: reproducible
    assert [t.tolist() for _, t in grouped] != [t.tolist() for _, t in batches(7, seed=5)]


def test_drop_remainder_drops_the_pairs_that_came_last_not_the_longest():
    from audiocaps_tf.data.length_groups import padded_batches_by_length

    lengths = [9, 8, 7, 6, 5, 1, 2, 3, 4, 10]  # in the (already shuffled) order the pairs arrive
    pairs = tf.data.Dataset.from_generator(
        lambda: (({"x": np.ones((n, 1), np.float32)}, np.int32(n)) for n in lengths),
        output_signature=({"x": tf.TensorSpec([None, 1], tf.float32)}, tf.TensorSpec([], tf.int32)))
    batches = padded_batches_by_length(pairs, "x", batch_size=4, group_batches=3, padding_values=None, seed=0,
                                       drop_remainder=True)
    kept = sorted(int(n) for _, targets in batches.as_numpy_iterator() for n in targets)
    assert kept == sorted(lengths[:8])  # 4 and 10 dropped, not the longest two (9 and 10)


def test_evaluation_has_one_row_per_clip_with_every_reference(prepared):
    out, data = prepared
    batches = list(pipeline.evaluation_dataset(pipeline.TFRecordSource(out, "val"), fields="mfcc").as_numpy_iterator())
    assert len(batches) == 1
    (batch,) = batches
    assert set(batch) == {"key", "youtube_id", "start_time", "mfcc", "attributes", "captions"}
    clips = data["val"]
    assert [k.decode() for k in batch["key"]] == [c["clip"].key for c in clips]
    assert [y.decode() for y in batch["youtube_id"]] == [c["clip"].youtube_id for c in clips]
    assert batch["start_time"].tolist() == [c["clip"].start_time for c in clips]
    assert batch["captions"].shape == (2, 3)
    assert [[s.decode() for s in row] for row in batch["captions"]] == [list(c["clip"].captions) for c in clips]
    np.testing.assert_array_equal(batch["mfcc"][0, : len(clips[0]["mfcc"])], clips[0]["mfcc"])

    train = pipeline.evaluation_dataset(pipeline.TFRecordSource(out, "train"), fields=(), batch_size=2)
    batches = list(train.as_numpy_iterator())
    assert [len(b["key"]) for b in batches] == [2, 1]
    assert [k.decode() for b in batches for k in b["key"]] == [c["clip"].key for c in data["train"]]
    assert all(b["captions"].shape[1] == 1 for b in batches)


def test_fields_are_checked_against_the_records(prepared):
    out, _ = prepared
    source = pipeline.TFRecordSource(out, "train")
    assert source.available_fields == ("waveform", "mfcc")
    assert source.resolve_fields(None) == ("waveform", "mfcc")
    assert source.resolve_fields("mfcc") == ("mfcc",)
    with pytest.raises(ValueError, match="no 'vggish_fc2' field"):
        pipeline.training_dataset(source, fields=("vggish",))
    with pytest.raises(ValueError, match="unknown field 'spectrogram'"):
        pipeline.evaluation_dataset(source, fields=("spectrogram",))


def test_counts(prepared):
    out, _ = prepared
    train, val = pipeline.TFRecordSource(out, "train"), pipeline.TFRecordSource(out, "val")
    assert (pipeline.clip_count(train), pipeline.caption_count(train)) == (3, 3)
    assert (pipeline.clip_count(val), pipeline.caption_count(val)) == (2, 6)
    assert pipeline.steps_per_epoch(val, 4) == 2
    assert pipeline.steps_per_epoch(val, 4, drop_remainder=True) == 1


# --- a raw AudioCaps data dir ----------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path):
    """train.csv with 4 clips: two with audio (22.05 kHz WAV), one without, one whose file is not audio."""
    rows = [
        ("1", "aaa", 0, "A dog barks", "dog;animal"),
        ("2", "bbb", 30, "Rain falls on a roof", "rain"),
        ("3", "ccc", 0, "A car passes by", "car"),
        ("4", "ddd", 10, "Birds chirp", "bird"),
    ]
    lines = ["audiocap_id,youtube_id,start_time,caption,labels"] + [",".join(map(str, r)) for r in rows]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(1)
    soundfile.write(audio / "aaa_0.wav", rng.uniform(-0.5, 0.5, 4410), 22050, subtype="PCM_16")
    soundfile.write(audio / "Ybbb.wav", rng.uniform(-0.5, 0.5, 2205), 22050, subtype="PCM_16")
    (audio / "ddd_10.wav").write_bytes(b"this is not a wav file at all")
    vocabulary = WordVocabulary.build([r[3] for r in rows])
    return tmp_path, vocabulary


def _spec_summary(spec):
    return tf.nest.map_structure(lambda s: (s.dtype, s.shape.rank), spec)


def test_data_dir_source_yields_the_same_structure_and_skips_bad_clips(data_dir, prepared):
    path, vocabulary = data_dir
    with pytest.warns(pipeline.SkippedClipWarning, match="1 of 4 clips.*ccc_0"):
        source = pipeline.DataDirSource(path, "train", vocabulary)
    assert source.available_fields == ("waveform",)
    dataset = pipeline.training_dataset(source, batch_size=4, seed=0)
    with pytest.warns(pipeline.SkippedClipWarning, match="ddd_10"):
        (inputs, targets), *rest = list(dataset.as_numpy_iterator())
    assert not rest
    assert inputs["waveform"].shape == (2, 3200)  # whole clips (0.2 and 0.1 s), padded to the longer one
    by_caption = {vocabulary.decode(t): i for i, t in enumerate(targets)}
    assert set(by_caption) == {"a dog barks", "rain falls on a roof"}
    dog = by_caption["a dog barks"]
    np.testing.assert_array_equal(inputs["waveform"][dog], load_audio(path / "audio" / "aaa_0.wav", duration=None))
    assert inputs["attributes"][dog].tolist() == [b"dog", b"animal"]
    assert inputs["caption_in"][dog, 0] == BOS_ID
    assert (pipeline.clip_count(source), pipeline.caption_count(source)) == (2, 2)

    records_source = pipeline.TFRecordSource(prepared[0], "train")
    same_fields = pipeline.training_dataset(records_source, fields="waveform")
    assert _spec_summary(dataset.element_spec) == _spec_summary(same_fields.element_spec)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluation = pipeline.evaluation_dataset(source, batch_size=8)
        (batch,) = list(evaluation.as_numpy_iterator())
    assert not [w for w in caught if issubclass(w.category, pipeline.SkippedClipWarning)]  # warned once per clip
    assert [k.decode() for k in batch["key"]] == ["aaa_0", "bbb_30"]
    assert batch["captions"].tolist() == [[b"A dog barks"], [b"Rain falls on a roof"]]
    records_evaluation = pipeline.evaluation_dataset(records_source, fields="waveform")
    assert _spec_summary(evaluation.element_spec) == _spec_summary(records_evaluation.element_spec)
    with pytest.raises(ValueError, match="no 'mfcc' field"):
        pipeline.training_dataset(source, fields="mfcc")


def test_data_dir_clips_longer_than_max_seconds_are_cut_with_a_warning(data_dir):
    path, vocabulary = data_dir
    with pytest.warns(pipeline.SkippedClipWarning):
        source = pipeline.DataDirSource(path, "train", vocabulary, max_seconds=0.15)
    with pytest.warns(pipeline.CutClipWarning, match=r"aaa_0 .*aaa_0.wav\) is 0.2 s long: cut to its first 0.15 s"):
        batch = next(pipeline.evaluation_dataset(source, batch_size=8).as_numpy_iterator())
    assert batch["waveform"].shape == (2, 2400)  # aaa_0 cut to 0.15 s; bbb_30 (0.1 s) whole, padded


def test_keyword_vocabulary_gives_the_attributes(data_dir, monkeypatch):
    path, vocabulary = data_dir
    fake = types.ModuleType("audiocaps_tf.data.attributes")
    fake.clip_attributes = lambda clip, keywords: [w for w in clip.captions[0].lower().split() if w in keywords]
    monkeypatch.setitem(sys.modules, "audiocaps_tf.data.attributes", fake)
    with pytest.warns(pipeline.SkippedClipWarning):
        source = pipeline.DataDirSource(path, "train", vocabulary, keyword_vocabulary={"dog", "rain", "roof"})
    (batch,) = list(pipeline.evaluation_dataset(source, fields=()).as_numpy_iterator())
    assert [k.decode() for k in batch["key"]] == ["aaa_0", "bbb_30", "ddd_10"]  # no audio decoded, none found bad
    assert batch["attributes"].tolist() == [[b"dog", b""], [b"rain", b"roof"], [b"", b""]]


def test_open_source_picks_records_or_data_dir(prepared, data_dir, tmp_path):
    out, _ = prepared
    path, vocabulary = data_dir
    assert isinstance(pipeline.open_source(out, "val"), pipeline.TFRecordSource)
    with pytest.warns(pipeline.SkippedClipWarning):
        assert isinstance(pipeline.open_source(path, "train", vocabulary), pipeline.DataDirSource)
    with pytest.raises(ValueError, match="needs a vocabulary"):
        pipeline.open_source(path, "train")
    with pytest.raises(FileNotFoundError, match="test-\\*.tfrecord"):
        pipeline.open_source(out, "test")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="neither"):
        pipeline.open_source(empty, "train")


def test_keras_fit_accepts_the_training_dataset(prepared):
    import keras

    out, _ = prepared
    dataset = pipeline.training_dataset(
        pipeline.TFRecordSource(out, "val"), fields="mfcc", batch_size=2, seed=0, repeat=True
    )
    vocabulary_size = 256
    mfcc = keras.Input((None, MFCC_CHANNELS), name="mfcc")
    caption_in = keras.Input((None,), dtype="int32", name="caption_in")
    context = keras.layers.Dense(8)(keras.layers.GlobalAveragePooling1D()(mfcc))
    words = keras.layers.Embedding(vocabulary_size, 8)(caption_in)
    hidden = keras.layers.Add()([words, keras.layers.Reshape((1, 8))(context)])
    model = keras.Model([mfcc, caption_in], keras.layers.Dense(vocabulary_size)(hidden))
    model.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)
    )
    history = model.fit(dataset, steps_per_epoch=2, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
