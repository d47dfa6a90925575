"""`data download --dataset clotho` and `--version 2` against a local HTTP server holding a tiny release in the
real layout (Zenodo's file names, 7z archives with a folder per set, file names with spaces and accents)."""

import csv
import hashlib
import io

import numpy as np
import py7zr
import pytest
import soundfile

from local_http import FileServer
from audiocaps_tf.data import __main__ as data_main
from audiocaps_tf.data import clotho, download, prepare, stats
from audiocaps_tf.data.http_download import PART_SUFFIX
from audiocaps_tf.data.layout import AudioIndex, read_split
from audiocaps_tf.data.pipeline import TFRecordSource

SETS = {"development": ["Rain on a tin roof.wav", "café crowd_2.wav", "dog, barking.wav"],
        "validation": ["Wind 01.wav", "bird song.wav"],
        "evaluation": ["Night crickets.wav", "tram (bell).wav"]}


def _wav(seed, seconds=0.2):
    buffer = io.BytesIO()
    samples = np.random.default_rng(seed).uniform(-0.3, 0.3, int(44100 * seconds))
    soundfile.write(buffer, samples, 44100, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _archive(folder_name, names, tmp_path):
    """A 7z archive holding `folder_name`/<name> for each name, as the release's archives."""
    root = tmp_path / f"src-{folder_name}"
    (root / folder_name).mkdir(parents=True)
    for seed, name in enumerate(names):
        (root / folder_name / name).write_bytes(_wav(seed + 10 * len(folder_name)))
    path = tmp_path / f"{folder_name}.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writeall(root / folder_name, arcname=folder_name)
    return path.read_bytes()


def _csv(header, rows, encoding="utf-8"):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


@pytest.fixture
def release(tmp_path):
    """{file name: bytes} of a tiny Clotho v2.1 record (metadata in ISO-8859-1, as v2's)."""
    files = {}
    for audio_set, names in SETS.items():
        files[f"clotho_audio_{audio_set}.7z"] = _archive(audio_set, names, tmp_path)
        files[f"clotho_captions_{audio_set}.csv"] = _csv(
            ["file_name"] + [f"caption_{k}" for k in range(1, 6)],
            [[name] + [f"caption {k} of {name.split('.')[0].lower()}" for k in range(1, 6)] for name in names])
        files[f"clotho_metadata_{audio_set}.csv"] = _csv(
            ["file_name", "keywords", "sound_id", "sound_link", "start_end_samples", "manufacturer", "license"],
            [[name, "rain;roof" if i == 0 else "crowd", str(100 + i), "https://freesound.org/s/1", "", "someone",
              "http://creativecommons.org/licenses/by/3.0/"] for i, name in enumerate(names)],
            encoding="iso-8859-1")
    return files


def _md5(files):
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


def _download(server, out, md5, **kwargs):
    return clotho.download_clotho(out, base_url=server.url, md5=md5, log=lambda line: None, **kwargs)


def test_the_release_is_fetched_checked_and_laid_out_for_every_command(release, tmp_path):
    out = tmp_path / "clotho"
    with FileServer(release) as server:
        counts = _download(server, out, _md5(release))
        assert counts == {"train": 3, "val": 2, "test": 2}
        first = len(server.requests)
        assert sorted(server.paths_requested()) == sorted(release)  # every file once
        # A rerun fetches nothing: the CSVs are checked in place, the audio is complete.
        assert _download(server, out, _md5(release)) == counts
        assert len(server.requests) == first
    assert not list((out / "clotho" / "archives").glob("*.7z"))  # removed after extraction
    index = AudioIndex(out)
    for split, audio_set in clotho.CLOTHO_SETS.items():
        clips = read_split(out / f"{split}.csv")
        assert [clip.audio_file for clip in clips] == [f"{audio_set}/{name}" for name in SETS[audio_set]]
        assert all(len(clip.captions) == 5 for clip in clips)
        for clip, name in zip(clips, SETS[audio_set]):
            assert index.find(clip) == out / "audio" / audio_set / name
            assert soundfile.info(index.find(clip)).samplerate == 44100
    assert read_split(out / "train.csv")[0].labels == ("rain", "roof")  # the Freesound keywords
    assert (out / "clotho" / "clotho_metadata_development.csv").read_bytes() == release[
        "clotho_metadata_development.csv"]  # attribution and licences kept as published
    table = stats.dataset_statistics(out)
    assert (table["train"]["clips"], table["train"]["captions"], table["test"]["captions"]) == (3, 15, 10)
    # `prepare` (what fit --data-dir runs) reads every clip through its audio_file, whatever its name.
    manifest = prepare.prepare_dataset(out, tmp_path / "prepared", features="mfcc", workers=0, progress=False)
    assert [manifest["splits"][split]["clips"] for split in ("train", "val", "test")] == [3, 2, 2]
    keys = [clip["key"].numpy().decode() for clip in TFRecordSource(tmp_path / "prepared", "train").clip_dataset([])]
    assert keys == ["Rain on a tin roof_0", "café crowd_2_0", "dog, barking_0"]


def test_an_interrupted_archive_resumes_with_a_range_request(release, tmp_path):
    out = tmp_path / "clotho"
    name = "clotho_audio_development.7z"
    with FileServer(release) as server:
        server.cut_after[name] = len(release[name]) // 2
        with pytest.raises(clotho.ClothoError, match="run again to resume"):
            _download(server, out, _md5(release), splits=["train"])
        part = out / "clotho" / "archives" / (name + PART_SUFFIX)
        assert part.stat().st_size == len(release[name]) // 2
        assert not (out / "train.csv").exists()
        _download(server, out, _md5(release), splits=["train"])
        assert server.requests[-1] == (name, f"bytes={len(release[name]) // 2}-")
    assert not part.exists()
    assert len(read_split(out / "train.csv")) == 3


def test_a_wrong_checksum_is_refused_and_fetched_again(release, tmp_path):
    out = tmp_path / "clotho"
    name = "clotho_captions_validation.csv"
    with FileServer(release) as server:
        server.once[name] = release[name].replace(b"caption 1", b"caption X")  # damaged on the way, once
        _download(server, out, _md5(release), splits=["val"])
        assert server.paths_requested().count(name) == 2
        assert (out / "clotho" / name).read_bytes() == release[name]

        # Wrong twice: an error naming the file, and nothing under its name.
        server.files["clotho_captions_evaluation.csv"] = b"file_name\nnot the release\n"  # damaged every time
        with pytest.raises(clotho.ClothoError, match="clotho_captions_evaluation.csv: a wrong MD5 sum twice"):
            _download(server, out, _md5(release), splits=["test"])
    assert not (out / "clotho" / "clotho_captions_evaluation.csv").exists()
    assert not (out / "test.csv").exists()


def test_a_corrupt_archive_is_a_clear_error_naming_it(release, tmp_path):
    out = tmp_path / "clotho"
    name = "clotho_audio_evaluation.7z"
    release[name] = release[name][:40] + bytes(len(release[name]) - 40)  # the header kept, the rest zeroed
    with FileServer(release) as server:
        with pytest.raises(clotho.ClothoError, match=f"{name}: not a readable 7z archive"):
            _download(server, out, _md5(release), splits=["test"])
    assert not (out / "test.csv").exists()
    assert not list((out / "audio").glob(".extracting-*"))


def test_the_command_line_refuses_youtube_options_and_unknown_versions(capsys, tmp_path):
    assert data_main.main(["download", "--dataset", "clotho", "--out", str(tmp_path), "--workers", "2"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert data_main.main(["download", "--dataset", "clotho", "--out", str(tmp_path), "--version", "2"]) == 2
    assert "clotho has version(s) 2.1" in capsys.readouterr().err
    assert data_main.main(["download", "--out", str(tmp_path), "--keep-archives", "--no-audio"]) == 2
    assert "Clotho option" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_audiocaps_version_2_reads_the_dataset2_0_folder(monkeypatch, tmp_path):
    header = ["audiocap_id", "youtube_id", "start_time", "caption"]
    files = {
        "dataset/val.csv": _csv(header, [["1", "abc", "30", "A dog barks"]]),
        "dataset2.0/val.csv": _csv(header, [["1", "abc", "30", "a dog barks"], ["2", "abc", "30", "a dog barks loudly"]]),
    }
    with FileServer(files) as server:
        monkeypatch.setattr(download, "CSV_BASE_URLS", {"1": f"{server.url}/dataset", "2": f"{server.url}/dataset2.0"})
        monkeypatch.delenv(download.CSV_URL_ENV_VAR, raising=False)
        assert data_main.main(["download", "--out", str(tmp_path / "v2"), "--version", "2", "--splits", "val",
                               "--no-audio"]) == 0
        assert data_main.main(["download", "--out", str(tmp_path / "v1"), "--splits", "val", "--no-audio"]) == 0
    assert read_split(tmp_path / "v2" / "val.csv")[0].captions == ("a dog barks", "a dog barks loudly")
    assert read_split(tmp_path / "v1" / "val.csv")[0].captions == ("A dog barks",)
