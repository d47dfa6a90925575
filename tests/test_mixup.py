"""Mixup for captioning (`data.mixup`): training pairs made of two clips "A then B", never evaluation rows."""

import json
import warnings

import numpy as np
import pytest
import tensorflow as tf

from audiocaps_tf import fit
from audiocaps_tf.data import pipeline, records
from audiocaps_tf.data.layout import Clip
from audiocaps_tf.training.config import FitConfig
from audiocaps_tf.training.data import demo_paths
from audiocaps_tf.training.trainer import longest_caption
from audiocaps_tf.tokens.vocabulary import BOS_ID, EOS_ID, PAD_ID, WordVocabulary

CLIPS, CAPTIONS = 6, 2
VOCABULARY = WordVocabulary.build(["a dog barks then birds sing"])
THEN = VOCABULARY.token_to_id("then")


def _caption_ids(clip, caption):
    """Ids no caption shares with another, none of them "then"'s, 2-4 words and <eos>."""
    return [100 + 10 * clip + 5 * caption + k for k in range(2 + (clip + caption) % 3)] + [EOS_ID]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A train split of 6 clips x 2 captions: mfcc[t] = 100 * clip + t + 1 over 6 + clip steps, a waveform."""
    out = tmp_path_factory.mktemp("prepared")
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(str(out / "train-00000-of-00001.tfrecord")) as writer:
        for i in range(CLIPS):
            clip = Clip(f"clip{i}", 0, tuple(f"caption {j}" for j in range(CAPTIONS)), ("1", "2"))
            steps = 6 + i
            mfcc = np.repeat((100 * i + 1 + np.arange(steps, dtype="float32"))[:, None], 2, axis=1)
            features = {"mfcc": mfcc, "waveform": rng.uniform(0.1, 0.9, size=20 + i)}
            writer.write(records.clip_example(clip, [_caption_ids(i, j) for j in range(CAPTIONS)],
                                              [f"word{i}", "shared"], features))
    assert THEN not in {k for i in range(CLIPS) for j in range(CAPTIONS) for k in _caption_ids(i, j)}
    return pipeline.TFRecordSource(out, "train")


def _clips(source):
    """Each clip's fields as NumPy arrays, by clip index."""
    return [{key: np.asarray(value) for key, value in clip.items()}
            for clip in source.clip_dataset(["mfcc", "waveform"]).as_numpy_iterator()]


def _rows(source, seed, epochs=1, **options):
    """Every (inputs, targets) row of `epochs` training epochs, padding removed (batches of one)."""
    dataset = pipeline.training_dataset(source, ["mfcc", "waveform"], batch_size=1, seed=seed,
                                        vocabulary=VOCABULARY, repeat=True, **options)
    rows = []
    for inputs, targets in dataset.take(epochs * CLIPS * CAPTIONS).as_numpy_iterator():
        inputs = {key: value[0] for key, value in inputs.items()}
        inputs["attributes"] = [w.decode() for w in inputs["attributes"] if w]
        rows.append((inputs, [int(i) for i in targets[0] if i != PAD_ID]))
    return rows


def _check_row(inputs, targets, clips):
    """Whether the row is a mix; asserts it is either a clip's own pair or exactly "A then B"."""
    np.testing.assert_array_equal(inputs["caption_in"][: len(targets)], [BOS_ID] + targets[:-1])
    a = int(inputs["mfcc"][0, 0]) // 100
    if THEN not in targets:
        assert targets in [list(ids) for ids in _own_captions(a)]
        np.testing.assert_array_equal(inputs["mfcc"], clips[a]["mfcc"])
        return False
    cut = targets.index(THEN)
    half_a = len(clips[a]["mfcc"]) - len(clips[a]["mfcc"]) // 2
    b = int(inputs["mfcc"][half_a, 0]) // 100
    assert targets[:cut] + [EOS_ID] in _own_captions(a) and targets[cut + 1:] in _own_captions(b)
    for field in ("mfcc", "waveform"):
        x_a, x_b = clips[a][field], clips[b][field]
        expected = np.concatenate([x_a[: len(x_a) - len(x_a) // 2], x_b[: len(x_b) // 2]])
        np.testing.assert_array_equal(inputs[field], expected)
    assert inputs["attributes"] == list(dict.fromkeys([f"word{a}", "shared", f"word{b}", "shared"]))
    return True


def _own_captions(clip):
    return [_caption_ids(clip, j) for j in range(CAPTIONS)]


def test_mixup_joins_two_clips_and_their_captions_at_rate_p(source):
    clips = _clips(source)
    rows = _rows(source, 0, epochs=20, mixup=0.5)
    mixed = np.array([_check_row(inputs, targets, clips) for inputs, targets in rows]).reshape(20, -1)
    assert 0.4 <= np.mean(mixed) <= 0.6
    assert len({tuple(epoch) for epoch in mixed}) >= 15  # other pairs mixed in other epochs
    assert not any(_check_row(inputs, targets, clips) for inputs, targets in _rows(source, 0, mixup=0.0))


def test_the_same_seed_mixes_the_same_pairs(source):
    def mixes(seed):
        return [targets for _, targets in _rows(source, seed, mixup=0.5)]

    assert mixes(3) == mixes(3) and mixes(3) != mixes(4)
    assert [t for _, t in _rows(source, 3)] == [t for _, t in _rows(source, 3, mixup=0.0)]  # off: as before


def test_joined_captions_stay_within_max_caption_length(source):
    rows = _rows(source, 0, mixup=1.0, max_caption_length=7)
    assert all(len(targets) <= 7 and targets[-1] == EOS_ID for _, targets in rows)
    assert any(THEN in targets for _, targets in rows) and not all(THEN in targets for _, targets in rows)


def test_mixup_is_off_with_a_warning_when_the_vocabulary_cannot_join_captions(source):
    with pytest.warns(pipeline.MixupWarning, match="'then'"):
        dataset = pipeline.training_dataset(source, ["mfcc"], batch_size=4, seed=0, mixup=1.0,
                                            vocabulary=WordVocabulary.build(["a dog barks"]))
    assert not any(THEN in row for _, targets in dataset.as_numpy_iterator() for row in targets)
    with pytest.raises(ValueError, match="mixup"):
        pipeline.training_dataset(source, ["mfcc"], mixup=1.5, vocabulary=VOCABULARY)


def test_evaluation_rows_are_never_mixed(source):
    clips = _clips(source)
    rows = list(pipeline.evaluation_dataset(source, ["mfcc"], batch_size=CLIPS).unbatch().as_numpy_iterator())
    assert len(rows) == CLIPS
    for row, clip in zip(rows, clips):
        np.testing.assert_array_equal(row["mfcc"][: len(clip["mfcc"])], clip["mfcc"])


def test_the_mixup_option(tmp_path):
    assert FitConfig().mixup == 0.0
    options = FitConfig().to_json()
    options.pop("mixup")  # a run written before the option existed
    assert FitConfig.from_json(options).mixup == 0.0
    assert FitConfig.from_json({**options, "mixup": 0.25}).mixup == 0.25
    for bad in (1.5, -0.1):
        with pytest.raises(fit.FitError, match="--mixup must be a probability"):
            FitConfig(mixup=bad)
    with pytest.raises(fit.FitError, match="--mixup does not apply"):
        FitConfig(model="1nn-mfcc", mixup=0.5)


def test_a_tiny_run_with_mixup_finishes(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCAPS_TF_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    argv = ["--demo-clips", "10", "--batch-size", "8", "--workers", "1", "--epochs", "1", "--mixup", "0.5",
            "--model-overrides", json.dumps({"units": 8, "embedding_dim": 8}), "--out", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", pipeline.MixupWarning)  # the demo vocabulary has "then": mixup is on
        assert fit.main(argv) == 0
    assert json.loads((out / "config.json").read_text())["mixup"] == 0.5
    state = json.loads((out / "state.json").read_text())
    longest = longest_caption(pipeline.TFRecordSource(demo_paths(10, 0, ["mfcc"])[1], "train"))
    assert state["status"] == "complete" and state["caption_width"] == min(51, 2 * longest)
