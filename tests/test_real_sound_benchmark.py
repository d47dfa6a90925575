"""The real-sound benchmark's builder (benchmarks/real_sounds): archive reading, recording ids, the split by
recording, scene captions that tell the true order, and a whole build from a fake package tree."""

import csv
import gzip
import json
import pathlib
import struct
import sys

import numpy as np
import pytest
import soundfile

BENCHMARK = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "real_sounds"
sys.path.insert(0, str(BENCHMARK))

import build  # noqa: E402
import c4group  # noqa: E402
import catalogue  # noqa: E402
import inventory  # noqa: E402
import scenes  # noqa: E402
import sources  # noqa: E402


def _scramble(header):
    header = bytearray(header)
    for i in range(0, len(header) - 2, 3):
        header[i], header[i + 2] = header[i + 2], header[i]
    return bytes(b ^ 237 for b in header)


def _group(entries):
    """A C4Group (uncompressed) of [(name, bytes or a nested list)] in the layout c4group.py documents."""
    bodies = [_group(body) if isinstance(body, list) else body for _, body in entries]
    header = bytearray(204)
    header[:24] = b"RedWolf Design GrpFolder"
    struct.pack_into("<i", header, 36, len(entries))
    table, offset = b"", 0
    for (name, body), data in zip(entries, bodies):
        entry = bytearray(316)
        entry[:len(name)] = name.encode()
        struct.pack_into("<5i", entry, 260, 0, int(isinstance(body, list)), len(data), 0, offset)
        table += bytes(entry)
        offset += len(data)
    return _scramble(header) + table + b"".join(bodies)


def test_c4group_reads_nested_groups(tmp_path):
    archive = tmp_path / "Sound.ocg"
    data = _group([("Fire.ocg", [("Blast1.wav", b"boom"), ("Deep.ocg", [("Fuse.ogg", b"fizz")])]),
                   ("Ding.ogg", b"ding")])
    compressed = gzip.compress(data)
    archive.write_bytes(b"\x1e\x8c" + compressed[2:])
    assert c4group.read_group(archive) == {"Fire.ocg/Blast1.wav": b"boom", "Fire.ocg/Deep.ocg/Fuse.ogg": b"fizz",
                                           "Ding.ogg": b"ding"}
    written = c4group.extract_group(archive, tmp_path / "out")
    assert (tmp_path / "out" / "Fire.ocg" / "Deep.ocg" / "Fuse.ogg").read_bytes() == b"fizz"
    assert len(written) == 3
    archive.write_bytes(compressed)
    with pytest.raises(ValueError, match="not a C4Group"):
        c4group.read_group(archive)


def test_numbered_cuts_share_a_recording():
    assert catalogue.recording_id("MG:sounds/cow_ack3.wav") == catalogue.recording_id("MG:sounds/cow_ack1.wav")
    assert catalogue.recording_id("WN:wolf-growl-2.ogg") == "WN:wolf-growl"
    assert catalogue.recording_id("MG:sounds/cow_die1.wav") != catalogue.recording_id("MG:sounds/cow_ack1.wav")
    hard, soft = (catalogue.recording_id(f"OC:Clonk.ocg/Movement.ocg/Step{kind}2.ogg") for kind in ("Hard", "Soft"))
    assert hard == soft  # one freesound take (SAME_TAKE)
    for cls in catalogue.CLASSES:
        assert len(cls.clauses) == len(cls.nouns) > 0, cls.name


def test_the_split_deals_recordings_to_one_side_only():
    classes = {"cow": {f"MG:cow{i}": [] for i in "abcdefg"}, "rain": {f"MG:rain{i}": [] for i in "abc"},
               "duck": {"TP:duck": [], "TP:drake": []}}
    splits = inventory.split_recordings(classes, seed=3)
    assert "duck" not in splits  # fewer than MIN_RECORDINGS
    for cls, sides in splits.items():
        assert sorted(sides["train"] + sides["val"] + sides["test"]) == sorted(classes[cls])
        assert all(sides[s] for s in ("train", "val", "test"))
    assert inventory.split_recordings(classes, seed=3) == splits


def _split_recordings(count=2):
    return {c.name: [f"{c.name}-{i}" for i in range(count)] for c in catalogue.CLASSES}


def test_captions_name_events_in_order_of_onset():
    nouns = {c.name: c for c in catalogue.CLASSES}
    for index in range(60):
        scene = scenes.draw_scene("test", index, 0, _split_recordings())
        onsets = [e.onset for e in scene.foreground]
        assert onsets == sorted(onsets)
        assert all(0 <= e.onset and e.onset + e.duration <= scenes.SCENE_SECONDS + 1e-6 for e in scene.events)
        texts = scenes.captions(scene, 5, 0)
        assert len(texts) == len(set(texts)) >= 3
        if scene.kind != "sequence":
            continue
        for text in texts:
            positions = []
            for event in scene.foreground:
                phrases = nouns[event.cls].clauses + nouns[event.cls].nouns
                found = [text.find(p) for p in phrases if p in text]
                assert found, (text, event.cls)
                positions.append(min(found))
            assert positions == sorted(positions), text


def test_check_split_refuses_a_test_scene_with_a_training_recording():
    splits = {"cow": {"train": ["cow-0"], "val": ["cow-1"], "test": ["cow-2"]}}
    event = scenes.Event("cow", "cow-0", 1.0, 2.0, 1, -20.0)
    build.check_split([scenes.Scene("train", 0, "single", (event,))], splits)
    with pytest.raises(AssertionError, match="training recordings"):
        build.check_split([scenes.Scene("test", 0, "single", (event,))], splits)


def _fake_packages(cache):
    """Three recordings of a few classes, as files in the packages' real folders; every package marked unpacked."""
    rng = np.random.default_rng(0)
    files = {
        "MG:techs/megapack/commondata/sounds/cow_ack1.wav": 22050, "MG:techs/megapack/commondata/sounds/cow_ack2.wav":
        22050, "MG:techs/megapack/commondata/sounds/cow_die1.wav": 44100,
        "TP:animals/mammals/bovines/bull.ogg": 44100, "TP:animals/mammals/bovines/cow_desc_en.ogg": 44100,
        "MG:tilesets/autumn/sounds/rain.ogg": 44100, "ST:rain.wav": 44100, "OC:Liquids.ocg/StereoRain.ogg": 48000,
        "WN:bow.ogg": 44100, "WN:crossbow.ogg": 44100, "MG:techs/megapack/commondata/sounds/arrow_hit1.wav": 22050,
    }
    for name, rate in files.items():
        code, relative = name.split(":", 1)
        path = sources.package_root(cache, code) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        seconds = 6.0 if "rain" in relative.lower() else 0.8
        noise = rng.normal(0, 0.1, int(seconds * rate)) * np.hanning(int(seconds * rate))
        soundfile.write(str(path), noise.astype(np.float32), rate)
    for code in sources.PACKAGES:
        marker = cache / "unpacked" / code
        marker.mkdir(parents=True, exist_ok=True)
        (marker / ".complete").write_text("fake\n")
    sources.package_root(cache, "OC").mkdir(parents=True, exist_ok=True)


def test_build_writes_the_audiocaps_layout_split_by_recording(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    _fake_packages(cache)
    monkeypatch.setattr(sources, "_fetch", lambda package, cache: None)
    monkeypatch.setattr(build, "fetch_packages", lambda cache, log: sources.fetch_packages(cache, log=log))
    out = build.build(tmp_path / "bench", cache, seed=1, counts={"train": 6, "val": 2, "test": 2}, log=lambda *a: None)
    with open(out / "recordings.csv", newline="") as f:
        sides = {row["recording"]: row["split"] for row in csv.DictReader(f)}
    assert set(sides.values()) == {"train", "val", "test"}
    assert not any("_desc" in r for r in sides)
    heard = {r for r, split in sides.items() if split == "train"}
    for line in (out / "scenes.jsonl").read_text().splitlines():
        scene = json.loads(line)
        if scene["split"] != "train":
            assert not {e["recording"] for e in scene["events"]} & heard
        info = soundfile.info(str(next((out / "audio").glob(scene["name"] + "_0.*"))))
        assert (info.samplerate, info.channels) == (scene["rate"], scene["channels"])
        assert abs(info.duration - scenes.SCENE_SECONDS) < 0.01
    for split, per_scene in build.CAPTIONS_PER_SCENE.items():
        with open(out / f"{split}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == per_scene * {"train": 6, "val": 2, "test": 2}[split]
    with pytest.raises(SystemExit, match="exists"):
        build.build(out, cache, seed=1, counts={"train": 1, "val": 1, "test": 1}, log=lambda *a: None)
