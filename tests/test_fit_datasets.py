"""`fit --data-dir A B`: one model trained on two datasets, each validated and tested on its own splits, one
vocabulary from both training splits, scores kept apart in metrics.json, the predictions and TensorBoard."""

import csv
import json
import pathlib

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from audiocaps_tf import fit, metrics
from audiocaps_tf.data import demo
from audiocaps_tf.data.layout import read_split
from audiocaps_tf.tokens.vocabulary import load_vocabulary
from audiocaps_tf.training.datasets import combined_scores, dataset_scores

TINY = ["--model", "tempatt-mfcc-lstm", "--epochs", "1", "--batch-size", "8", "--workers", "1",
        "--model-overrides", json.dumps({"units": 8, "embedding_dim": 8})]
COUNTS = {"train": 12, "val": 3, "test": 2}


def _data_dir(root, seed, suffix):
    """A tiny AudioCaps-layout dataset of demo clips; every caption of it ends with `suffix`."""
    (root / "audio").mkdir(parents=True)
    index = 0
    for split, count in COUNTS.items():
        rows = []
        for _ in range(count):
            spec = demo.clip_spec(index, seed=seed, split=split)
            soundfile.write(root / "audio" / f"c{seed}x{index}_0.wav", demo.render(spec)[:3 * 16000], 16000)
            for j, caption in enumerate(demo.describe(spec, 1 if split == "train" else 2)):
                rows.append([f"{seed}{index}{j}", f"c{seed}x{index}", 0, f"{caption} {suffix}"])
            index += 1
        with open(root / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([["audiocap_id", "youtube_id", "start_time", "caption"], *rows])
    return root


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    return _data_dir(root / "indoors", 5, "indoors"), _data_dir(root / "outdoors", 6, "outdoors")


def _scalar_tags(directory):
    tags = set()
    for path in pathlib.Path(directory).rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_fit_trains_on_two_data_dirs_and_scores_each_on_its_own_splits(two_datasets, tmp_path):
    first, second = two_datasets
    out = tmp_path / "run"
    assert fit.main([*TINY, "--data-dir", str(first), str(second), "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == {"kind": "data_dirs", "paths": [str(first.resolve()), str(second.resolve())]}

    # One vocabulary from both training splits, in the run and in both prepared directories.
    vocabulary = load_vocabulary(out / "tokenizer")
    assert {"indoors", "outdoors"} <= set(vocabulary.get_config()["tokens"])
    for name in ("indoors", "outdoors"):
        assert load_vocabulary(out / "data" / name / "tokenizer").get_config() == vocabulary.get_config()
    manifests = [json.loads((out / "data" / name / "manifest.json").read_text()) for name in ("indoors", "outdoors")]
    assert [m["splits"]["train"]["clips"] for m in manifests] == [12, 12]

    scores = json.loads((out / "metrics.json").read_text())
    for split, clips in (("val", 3), ("test", 2)):
        for name in ("indoors", "outdoors"):
            own = dataset_scores(scores[split], name)
            assert set(own) == set(metrics.METRICS) | {"num_clips"} and own["num_clips"] == clips
        assert scores[split]["num_clips"] == 2 * clips
        assert scores[split]["CIDEr"] == pytest.approx(
            (scores[split]["indoors/CIDEr"] + scores[split]["outdoors/CIDEr"]) / 2)
    for name, dataset in (("indoors", first), ("outdoors", second)):
        with open(out / f"test_predictions_{name}.csv", newline="") as f:
            keys = [row["youtube_id"] for row in csv.DictReader(f)]
        assert keys == [clip.youtube_id for clip in read_split(dataset / "test.csv")]
    assert not (out / "test_predictions.csv").exists()
    tags = _scalar_tags(out / "logs")
    assert {"epoch_indoors/CIDEr", "epoch_outdoors/CIDEr", "test_indoors/CIDEr", "test_outdoors/CIDEr"} <= tags
    assert not any(tag.endswith("num_clips") for tag in tags)


def test_two_data_dirs_of_one_name_or_the_same_dir_twice_are_refused(two_datasets, tmp_path, capsys):
    first, _ = two_datasets
    other = tmp_path / "elsewhere" / first.name
    other.mkdir(parents=True)
    assert fit.main([*TINY, "--data-dir", str(first), str(other), "--out", str(tmp_path / "a")]) == 1
    assert "several directories named indoors" in capsys.readouterr().err
    assert fit.main([*TINY, "--data-dir", str(first), "--data-dir", str(first), "--out", str(tmp_path / "b")]) == 1
    assert "a directory given twice" in capsys.readouterr().err
    semantic = [arg if arg != "tempatt-mfcc-lstm" else "topdown-alignedatt" for arg in TINY]
    assert fit.main([*semantic, "--data-dir", str(first), str(two_datasets[1]), "--out", str(tmp_path / "c")]) == 1
    assert "trains on one dataset" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abc")


def test_combined_scores_are_the_means_and_keep_each_dataset():
    one = {**{m: 10.0 for m in metrics.METRICS}, "num_clips": 4}
    two = {**{m: 30.0 for m in metrics.METRICS}, "SPICE": None, "num_clips": 6}
    assert combined_scores({None: one}) == one
    combined = combined_scores({"a": one, "b": two})
    assert combined["CIDEr"] == 20.0 and combined["SPICE"] is None and combined["num_clips"] == 10
    assert dataset_scores(combined, "a") == one and dataset_scores(combined, "b") == two
    assert np.isclose(combined["BLEU_4"], 20.0)
