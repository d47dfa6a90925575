"""The 1NN retrieval baselines: features of each clip, nearest training clip, its caption."""

import json

import numpy as np
import pytest
import soundfile as sf

from audiocaps_tf import evaluate, retrieval
from audiocaps_tf.data.pipeline import DataDirSource
from audiocaps_tf.tokens.vocabulary import WordVocabulary
from audiocaps_tf.layers import MFCCFrontend
from fake_vggish_hub import random_values, write_module

RATE = 16000
HEADER = "audiocap_id,youtube_id,start_time,caption\n"


def _tone(hz, seconds=2.0, seed=0):
    t = np.arange(int(seconds * RATE)) / RATE
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.4 * np.sin(2 * np.pi * hz * t) + noise).astype("float32")


def _noise(seconds=2.0, seed=0):
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).clip(-1, 1).astype("float32")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Three distinct training sounds and two test clips, each nearest to a known training clip."""
    root = tmp_path_factory.mktemp("retrieval")
    (root / "audio").mkdir()
    train = {"low_0": (_tone(200), "a low hum"), "high_0": (_tone(3000), "a high whistle"), "hiss_0": (_noise(), "hiss")}
    test = {"lowish_0": (_tone(220, seed=1), ["a low drone", "a hum"]), "hissy_0": (_noise(seed=2), ["static", "hiss"])}
    rows = []
    for key, (audio, caption) in train.items():
        sf.write(root / "audio" / f"{key}.wav", audio, RATE)
        rows.append(f"{len(rows)},{key[:-2]},0,{caption}")
    (root / "train.csv").write_text(HEADER + "\n".join(rows) + "\n")
    rows = []
    for key, (audio, captions) in test.items():
        sf.write(root / "audio" / f"{key}.wav", audio, RATE)
        rows += [f"{100 + len(rows)},{key[:-2]},0,{caption}" for caption in captions]
    (root / "test.csv").write_text(HEADER + "\n".join(rows) + "\n")
    return root


def _sources(data_dir):
    vocabulary = WordVocabulary.build(["a low hum", "a high whistle", "hiss"])
    return DataDirSource(data_dir, "train", vocabulary), DataDirSource(data_dir, "test", vocabulary)


def test_pooled_mfcc_is_the_time_mean_of_the_frontend(data_dir):
    train, _ = _sources(data_dir)
    keys, pooled = retrieval.pooled_features(train, "mfcc")
    assert keys == ["low_0", "high_0", "hiss_0"]
    expected = MFCCFrontend()(_tone(200)[None]).numpy()[0].mean(axis=0)  # the clip whole, no padding
    np.testing.assert_allclose(pooled[0], expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("feature", ["mfcc", "vggish"])
def test_each_clip_gets_its_nearest_training_caption(data_dir, tmp_path, feature):
    weights = None
    if feature == "vggish":
        weights = str(tmp_path / "vggish")
        write_module(random_values(seed=3), weights)
    train, test = _sources(data_dir)
    captions = retrieval.nearest_neighbour_captions(train, test, feature, weights)
    if feature == "mfcc":  # MFCC separates these sounds for sure; random VGGish weights need not
        assert captions == {"lowish_0": "a low hum", "hissy_0": "hiss"}
    assert set(captions) == {"lowish_0", "hissy_0"}
    assert set(captions.values()) <= {"a low hum", "a high whistle", "hiss"}


def test_cli_scores_and_writes_predictions(data_dir, tmp_path):
    out, predictions = tmp_path / "r.json", tmp_path / "p.csv"
    argv = ["retrieval", "--data-dir", str(data_dir), "--features", "mfcc", "--no-spice",
            "--json", str(out), "--predictions", str(predictions)]  # fmt: skip
    assert evaluate.main(argv) == 0
    scores = json.loads(out.read_text())
    assert scores["num_clips"] == 2
    assert 0 < scores["BLEU_1"] <= 100
    assert predictions.read_text().splitlines() == ["youtube_id,start_time,caption", "lowish,0,a low hum", "hissy,0,hiss"]
    assert evaluate.main(argv) == 1  # outputs exist: never overwritten
