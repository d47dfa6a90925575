"""`prepare`: sharded TFRecords of a tiny AudioCaps-layout directory (10 clips of 1-11 s written here)."""

import csv
import logging
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

import fake_vggish_hub
from audiocaps_tf.audio.loading import load_audio, load_clip
from audiocaps_tf.data import attributes, decode_workers, prepare, records
from audiocaps_tf.data.__main__ import main
from audiocaps_tf.tokens.captions import normalize_caption
from audiocaps_tf.data.layout import read_splits
from audiocaps_tf.tokens.vocabulary import load_vocabulary
from audiocaps_tf.layers import MFCCFrontend
from audiocaps_tf.layers.mfcc_frontend import num_mfcc_frames
from audiocaps_tf.layers.vggish_weights import VGGishWeightsUnavailableError

KEYWORDS = 5
SHARD_SIZE = 2  # train: 3 shards of 2 CSV clips; val and test: 1 shard each
OPTIONS = dict(keywords=KEYWORDS, shard_size=SHARD_SIZE, progress=False, max_seconds=10.0)

TRAIN_CAPTIONS = [
    "A dog barks while a man speaks.",
    "Cars pass by on a wet road",
    "A dog barks twice and birds chirp",
    "Water runs from a tap; a man speaks",
    "An engine idles, then revs up",
    "Birds chirp and a dog barks in the distance",
]
# train clip 2 has no audio file, train clip 4 a truncated one.
MISSING, CORRUPT = 2, 4


def _tone(seconds, rate, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.4 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.05 * rng.standard_normal(len(t))
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


def make_dataset(root, val_audio=True):
    """train: 6 clips (1 caption each), val: 2 clips (3 and 5 captions), test: 2 clips (2 and 4, with labels)."""
    root = pathlib.Path(root)
    audio = root / "audio"
    (audio / "sub").mkdir(parents=True)
    durations = [1.0, 2.5, 3.0, 10.0, 2.0, 11.0, 1.5, 2.0, 1.2, 3.5]  # clip 5: cut to OPTIONS' 10 s, the rest whole
    rates = [16000, 22050, 44100, 16000, 32000, 16000, 22050, 16000, 44100, 16000]
    rows = {"train": [], "val": [], "test": []}
    number = 0
    for i in range(10):
        split, caption_count = ("train", 1) if i < 6 else ("val", 3 + 2 * (i - 6)) if i < 8 else ("test", 2 * (i - 7))
        youtube_id, start = f"yt{i:02d}abcdefg", 30 * i
        for j in range(caption_count):
            caption = TRAIN_CAPTIONS[i] if split == "train" else f"A man speaks and a dog barks {j + 1} times"
            number += 1
            labels = ["Dog;Speech", "Engine;Vehicle;Car"][i - 8] if split == "test" else None
            rows[split].append([number, youtube_id, start, caption] + ([labels] if labels else []))
        x = _tone(durations[i], rates[i], channels=2 if i % 3 == 1 else 1, seed=i)
        if (split == "val" and not val_audio) or i == MISSING:
            continue
        if i % 2:
            sf.write(audio / "sub" / f"Y{youtube_id}.flac", x, rates[i])
        else:
            sf.write(audio / f"{youtube_id}_{start}.wav", x, rates[i])
    corrupt = audio / f"yt{CORRUPT:02d}abcdefg_{30 * CORRUPT}.wav"
    corrupt.write_bytes(corrupt.read_bytes()[:-5000])  # the header declares more data than follows
    for split, split_rows in rows.items():
        header = ["audiocap_id", "youtube_id", "start_time", "caption"] + (["labels"] if split == "test" else [])
        with open(root / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([header] + split_rows)
    return root


def serialized_records(path):
    return [r.numpy() for r in tf.data.TFRecordDataset(str(path))]


def parse_shard(path, fields):
    return [
        {k: (v.numpy() if not isinstance(v, tf.RaggedTensor) else v.to_list()) for k, v in example.items()}
        for example in tf.data.TFRecordDataset(str(path)).map(lambda s: records.parse_clip_example(s, fields))
    ]


def audio_path(data_dir, clip):
    return next((data_dir / "audio").rglob(f"*{clip.youtube_id}*"))


def snapshot(directory):
    """{relative path: (inode, mtime_ns, size)} of every file under `directory`."""
    return {
        str(p.relative_to(directory)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(pathlib.Path(directory).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("audiocaps"))


@pytest.fixture(scope="module")
def prepared(data_dir, tmp_path_factory):
    """waveform + mfcc of all splits, decoded in this process (workers=0); data_dir's files before and after."""
    before = snapshot(data_dir)
    out = tmp_path_factory.mktemp("prepared") / "out"
    manifest = prepare.prepare_dataset(data_dir, out, workers=0, **OPTIONS)
    return out, manifest, before, snapshot(data_dir)


def test_records_hold_captions_ids_attributes_and_features(data_dir, prepared):
    out, manifest, _, _ = prepared
    vocabulary = load_vocabulary(out / "tokenizer")
    keywords = (out / "keywords.txt").read_text().split()
    assert keywords == attributes.build_keyword_vocabulary(TRAIN_CAPTIONS, size=KEYWORDS)  # all train captions
    mfcc = MFCCFrontend()
    for split, clips in read_splits(data_dir).items():
        examples = [e for path in prepare.shard_files(out, split) for e in parse_shard(path, ["waveform", "mfcc"])]
        expected = [c for i, c in enumerate(clips) if split != "train" or i not in (MISSING, CORRUPT)]
        assert [e["key"].decode() for e in examples] == [c.key for c in expected]
        for example, clip in zip(examples, expected):
            assert example["youtube_id"].decode() == clip.youtube_id and example["start_time"] == clip.start_time
            assert [c.decode() for c in example["captions"]] == list(clip.captions)
            assert example["caption_ids"] == [vocabulary.encode(c) for c in clip.captions]
            if split == "train":  # every train word is in the vocabulary: the ids decode back
                assert [vocabulary.decode(ids) for ids in example["caption_ids"]] == [
                    normalize_caption(c) for c in clip.captions
                ]
            attribute_words = [a.decode() for a in example["attributes"]]
            assert attribute_words == attributes.clip_attributes(clip, keywords)
            if clip.captions[0] == TRAIN_CAPTIONS[0]:
                expected_words = {"dog", "barks", "man", "speaks"} & set(keywords)
                assert expected_words and set(attribute_words) == expected_words
            audio = load_audio(audio_path(data_dir, clip), duration=None)[:160000]
            np.testing.assert_allclose(example["waveform"], audio, rtol=0, atol=0.5 / 32767 + 1e-7)
            assert example["num_samples"] == audio.size
            assert example["mfcc"].shape == (num_mfcc_frames(audio.size), 20)
            np.testing.assert_allclose(example["mfcc"], mfcc(example["waveform"][None])[0], rtol=1e-5, atol=1e-3)
            if split == "test":  # test.csv has a labels column: they are the attributes
                assert attribute_words == list(clip.labels) and attribute_words in (["Dog", "Speech"],
                                                                                    ["Engine", "Vehicle", "Car"])


def test_manifest(data_dir, prepared):
    out, manifest, data_before, data_after = prepared
    assert manifest == prepare.read_manifest(out)
    assert manifest["complete"] and manifest["version"]
    assert manifest["options"]["features"] == ["waveform", "mfcc"] and manifest["options"]["keywords"] == KEYWORDS
    assert manifest["feature_shapes"] == {"waveform": [None], "mfcc": [None, 20]}
    assert manifest["options"]["max_seconds"] == 10.0
    assert manifest["vocabulary"] == {"path": "tokenizer", "kind": "word",
                                      "size": load_vocabulary(out / "tokenizer").size}
    splits = manifest["splits"]
    assert {s: (e["clips_in_csv"], e["clips"], e["captions"]) for s, e in splits.items()} == {
        "train": (6, 4, 4), "val": (2, 2, 8), "test": (2, 2, 6)
    }
    assert [(s["file"], s["clips"]) for s in splits["train"]["shards"]] == [
        ("train-00000-of-00003.tfrecord", 2), ("train-00001-of-00003.tfrecord", 1),
        ("train-00002-of-00003.tfrecord", 1),
    ]
    skipped = splits["train"]["skipped"]
    assert [(s["key"], s["shard"]) for s in skipped] == [("yt02abcdefg_60", 1), ("yt04abcdefg_120", 2)]
    assert skipped[0]["path"] is None and "no audio file" in skipped[0]["reason"]
    assert skipped[1]["path"].endswith("yt04abcdefg_120.wav") and "truncated" in skipped[1]["reason"]
    assert splits["val"]["skipped"] == splits["test"]["skipped"] == []
    assert splits["train"]["cut"] == [{"key": "yt05abcdefg_150", "seconds": 11.0}]  # clip 5, the only one over 10 s
    assert splits["val"]["cut"] == splits["test"]["cut"] == []
    for split, entry in splits.items():
        for shard in entry["shards"]:
            assert len(serialized_records(out / shard["file"])) == shard["clips"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", "tokenizer", "keywords.txt"] + [s["file"] for e in splits.values() for s in e["shards"]]
    )
    assert data_after == data_before  # nothing written outside OUT


def test_skipped_clips_are_warned_about(data_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger=prepare.__name__):
        prepare.prepare_dataset(data_dir, tmp_path / "out", features="waveform", splits="train", workers=0, **OPTIONS)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "yt02abcdefg_60" in warnings[0] and "no audio file" in warnings[0]
    assert "yt04abcdefg_120" in warnings[1] and "yt04abcdefg_120.wav" in warnings[1] and "truncated" in warnings[1]
    assert "yt05abcdefg_150" in warnings[2] and "11.0 s long: cut to its first 10 s (--max-seconds)" in warnings[2]


class Interrupted(Exception):
    pass


def _stop_after(count):
    written = []

    def hook(split, shard):
        written.append(shard["file"])
        if len(written) == count:
            raise Interrupted(shard["file"])

    return hook


def _count_decodes(monkeypatch):
    decoded = []

    def counting(path, **kwargs):
        decoded.append(pathlib.Path(path).name)
        return load_clip(path, **kwargs)

    monkeypatch.setattr(decode_workers, "load_clip", counting)
    return decoded


def test_an_interrupted_run_resumes_without_redoing_complete_shards(data_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    options = dict(features="waveform", splits=("train",), workers=0, **OPTIONS)
    with pytest.raises(Interrupted):
        prepare.prepare_dataset(data_dir, out, on_shard_complete=_stop_after(1), **options)
    manifest = prepare.read_manifest(out)
    assert not manifest["complete"] and not manifest["splits"]["train"]["complete"]
    assert [s["file"] for s in manifest["splits"]["train"]["shards"]] == ["train-00000-of-00003.tfrecord"]
    assert not (out / "train-00001-of-00003.tfrecord").exists()
    (out / "train-00001-of-00003.tfrecord.partial").write_bytes(b"half a shard")  # as a kill mid-shard leaves
    first = snapshot(out)["train-00000-of-00003.tfrecord"]

    decoded = _count_decodes(monkeypatch)
    manifest = prepare.prepare_dataset(data_dir, out, **options)
    assert snapshot(out)["train-00000-of-00003.tfrecord"] == first  # not rewritten
    assert sorted(decoded) == ["Yyt03abcdefg.flac", "Yyt05abcdefg.flac", "yt04abcdefg_120.wav"]  # shards 1, 2
    assert manifest["complete"] and manifest["splits"]["train"]["clips"] == 4
    assert [s["key"] for s in manifest["splits"]["train"]["skipped"]] == ["yt02abcdefg_60", "yt04abcdefg_120"]
    assert not list(out.glob("*.partial"))

    # A shard deleted from a complete OUT is written again, byte for byte; nothing else is decoded.
    shard = out / "train-00001-of-00003.tfrecord"
    content = shard.read_bytes()
    shard.unlink()
    others = {k: v for k, v in snapshot(out).items() if k.endswith(".tfrecord")}
    decoded.clear()
    prepare.prepare_dataset(data_dir, out, **options)
    assert decoded == ["Yyt03abcdefg.flac"]
    assert shard.read_bytes() == content
    assert {k: v for k, v in snapshot(out).items() if k.endswith(".tfrecord") and k != shard.name} == others

    # Complete: a rerun decodes nothing and touches no shard.
    decoded.clear()
    prepare.prepare_dataset(data_dir, out, **options)
    assert decoded == []


def test_other_options_into_the_same_out_are_refused(data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    prepare.prepare_dataset(data_dir, out, features="waveform", splits="val", workers=0, **OPTIONS)
    before = snapshot(out)
    with pytest.raises(prepare.OptionsMismatchError) as error:
        prepare.prepare_dataset(data_dir, out, features="waveform,mfcc", splits="val", workers=0,
                                **{**OPTIONS, "keywords": 7})
    assert "features" in str(error.value) and "keywords" in str(error.value)
    assert "shard_size" not in str(error.value)
    argv = ["prepare", "--data-dir", str(data_dir), "--out", str(out), "--features", "waveform", "--splits", "val",
            "--keywords", str(KEYWORDS), "--shard-size", "3", "--workers", "0", "--no-progress"]
    assert main(argv) == 1
    assert "shard_size: 2 in OUT, 3 now" in capsys.readouterr().err
    assert snapshot(out) == before


def test_a_directory_not_written_by_prepare_is_refused(data_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "keywords.txt").write_text("mine too")
    with pytest.raises(prepare.DataError, match="keywords.txt"):
        prepare.prepare_dataset(data_dir, out, features="waveform", splits="val", workers=0, **OPTIONS)
    (out / "keywords.txt").unlink()
    prepare.prepare_dataset(data_dir, out, features="waveform", splits="val", workers=0, **OPTIONS)
    assert (out / "notes.txt").read_text() == "mine"  # unrelated files are left alone


def test_an_empty_split_exits_non_zero(tmp_path, capsys):
    data_dir = make_dataset(tmp_path / "data", val_audio=False)
    out = tmp_path / "out"
    argv = ["prepare", "--data-dir", str(data_dir), "--out", str(out), "--features", "waveform",
            "--splits", "train,val", "--keywords", str(KEYWORDS), "--workers", "0", "--no-progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "val" in captured.err and "no clip was written" in captured.err
    manifest = prepare.read_manifest(out)
    assert manifest["splits"]["val"]["clips"] == 0 and len(manifest["splits"]["val"]["skipped"]) == 2
    assert manifest["splits"]["train"]["clips"] == 4  # the other split is written all the same
    argv[argv.index("train,val")] = "train"
    assert main(argv) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_processes_write_the_same_bytes_as_decoding_in_process(data_dir, prepared, tmp_path, workers):
    out_1 = prepared[0]
    out_2 = tmp_path / "out"
    manifest = prepare.prepare_dataset(data_dir, out_2, workers=workers, **OPTIONS)
    files = [s["file"] for e in manifest["splits"].values() for s in e["shards"]]
    assert len(files) == 5
    for name in files + ["keywords.txt", "tokenizer/tokenizer.json"]:
        assert (out_2 / name).read_bytes() == (out_1 / name).read_bytes(), name


def test_a_script_without_a_main_guard_is_told_what_to_do_and_a_guarded_rerun_resumes(data_dir, tmp_path):
    """Spawned decode workers import the main script again: without `if __name__ == "__main__":` they die."""
    out = tmp_path / "out"
    call = (f"prepare_dataset({str(data_dir)!r}, {str(out)!r}, features='waveform', splits='val', workers=1, "
            f"**{OPTIONS!r})")
    script = tmp_path / "prepare_script.py"
    script.write_text(f"from audiocaps_tf.data.prepare import prepare_dataset\n{call}\n")
    unguarded = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert unguarded.returncode != 0
    assert "DecodeWorkerError: an audio-decoding worker process died" in unguarded.stderr
    assert 'call prepare_dataset under `if __name__ == "__main__":`' in unguarded.stderr

    script.write_text(f"from audiocaps_tf.data.prepare import prepare_dataset\nif __name__ == '__main__':\n    {call}\n")
    guarded = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert guarded.returncode == 0, guarded.stderr
    assert prepare.read_manifest(out)["complete"]


def test_records_are_serialized_deterministically(prepared):
    """Feature maps in key order: protobuf's own map order changes between processes (so would the bytes)."""
    out, manifest, _, _ = prepared
    for entry in manifest["splits"].values():
        for shard in entry["shards"]:
            for record in serialized_records(out / shard["file"]):
                assert record == tf.train.Example.FromString(record).SerializeToString(deterministic=True)


def test_vggish_features_with_a_local_module(data_dir, tmp_path):
    values = fake_vggish_hub.random_values(seed=0)
    module_dir = fake_vggish_hub.write_module(values, tmp_path / "vggish_module")
    out = tmp_path / "out"
    with pytest.raises(VGGishWeightsUnavailableError):
        prepare.prepare_dataset(data_dir, out, features="vggish", splits="val", workers=0,
                                vggish_weights=tmp_path / "nowhere", **OPTIONS)
    assert not out.exists()  # weights are loaded before anything is written: another source is not "other options"
    manifest = prepare.prepare_dataset(data_dir, out, features="vggish", splits="val", workers=0,
                                       vggish_weights=module_dir, **OPTIONS)
    assert manifest["options"]["vggish_weights"] == str(module_dir)
    assert manifest["feature_shapes"] == {"vggish_fc2": [None, 128], "vggish_conv4": [None, 512],
                                          "vggish_conv3": [None, 256]}
    fields = manifest["record_fields"]
    assert fields == ["vggish_fc2", "vggish_conv4", "vggish_conv3"]
    examples = parse_shard(out / "val-00000-of-00001.tfrecord", fields)
    assert len(examples) == 2
    module = tf.saved_model.load(str(module_dir))
    for example, clip in zip(examples, read_splits(data_dir, ["val"])["val"]):
        quantised = np.round(load_audio(audio_path(data_dir, clip), duration=None) * 32767) / 32767
        for field, shape in prepare.feature_shapes(["vggish"], quantised.size).items():
            assert example[field].shape == tuple(shape)
        assert (example["vggish_conv4"] >= 0).all() and (example["vggish_conv3"] >= 0).all()  # sums after ReLU
        expected = module(tf.constant(quantised, tf.float32)).numpy()
        np.testing.assert_allclose(example["vggish_fc2"], expected, rtol=1e-4, atol=1e-4)


def test_a_run_in_progress_is_not_disturbed_and_a_stale_lock_is_taken_over(data_dir, tmp_path):
    out = tmp_path / "out"
    options = dict(features="waveform", splits="val", workers=0, **OPTIONS)
    prepare.prepare_dataset(data_dir, out, **options)
    (out / "val-00000-of-00001.tfrecord").unlink()
    (out / prepare.LOCK_FILE).write_text(f"{os.getppid()}\n")  # a live process holds OUT
    with pytest.raises(prepare.DataError, match="another `prepare`"):
        prepare.prepare_dataset(data_dir, out, **options)
    assert not (out / "val-00000-of-00001.tfrecord").exists()
    finished = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True)
    (out / prepare.LOCK_FILE).write_text(finished.stdout)  # left by a process that is gone
    prepare.prepare_dataset(data_dir, out, **options)
    assert (out / "val-00000-of-00001.tfrecord").exists() and not (out / prepare.LOCK_FILE).exists()
