import pytest

from audiocaps_tf.data import AudioIndex, DataError, read_split, read_splits
from conftest import SHARED

HEADER = "audiocap_id,youtube_id,start_time,caption\n"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_of_one_clip_are_grouped_with_all_captions(tmp_path):
    csv_path = _write(
        tmp_path / "val.csv",
        HEADER + '1,abc,30,A dog barks\n2,xyz,0,"Rain falls, thunder roars"\n3,abc,30,A dog is barking\n4,abc,40,Wind\n',
    )
    clips = read_split(csv_path)
    assert [c.key for c in clips] == ["abc_30", "xyz_0", "abc_40"]
    assert clips[0].captions == ("A dog barks", "A dog is barking")
    assert clips[0].audiocap_ids == ("1", "3")
    assert clips[1].captions == ("Rain falls, thunder roars",)
    assert clips[0].labels == ()


def test_labels_column_is_split_on_semicolons(tmp_path):
    csv_path = _write(tmp_path / "train.csv", "audiocap_id,youtube_id,start_time,caption,labels\n1,a,0,x, ;dog; car horn;\n")
    (clip,) = read_split(csv_path)
    assert clip.labels == ("dog", "car horn")


@pytest.mark.parametrize(
    "row, message",
    [
        ("5,abc,ten,A dog barks", "start_time 'ten'"),
        ("5,abc,1.5,A dog barks", "whole number"),
        ("5,,30,A dog barks", "empty youtube_id"),
        ("5,abc,30,", "empty caption"),
        ("5,abc,30", "fields"),
        ("5,abc,30,A dog,barks", "fields"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, row, message):
    csv_path = _write(tmp_path / "test.csv", HEADER + "1,ok,0,Fine\n" + row + "\n")
    with pytest.raises(DataError, match=message) as error:
        read_split(csv_path)
    assert f"{csv_path}, line 3" in str(error.value)


def test_missing_column_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="missing column.*caption"):
        read_split(_write(tmp_path / "train.csv", "audiocap_id,youtube_id,start_time\n1,a,0\n"))
    with pytest.raises(DataError, match="no such file"):
        read_split(tmp_path / "absent.csv")


def test_audio_resolver_accepts_every_downloader_naming(tmp_path):
    csv_path = _write(
        tmp_path / "train.csv",
        HEADER + "11,aaa,30,x\n12,bbb,0,x\n13,ccc,10,x\n14,ddd,20,x\n15,eee,0,x\n",
    )
    clips = read_split(csv_path)
    audio = tmp_path / "audio"
    (audio / "nested" / "deeper").mkdir(parents=True)
    (audio / "aaa_30.flac").write_bytes(b"x")
    (audio / "nested" / "Ybbb.wav").write_bytes(b"x")
    (audio / "nested" / "deeper" / "ccc.m4a").write_bytes(b"x")
    (audio / "14.opus").write_bytes(b"x")
    (audio / "eee_0.txt").write_bytes(b"x")  # not audio
    index = AudioIndex(tmp_path)
    found = {clip.key: index.find(clip) for clip in clips}
    assert found["aaa_30"] == audio / "aaa_30.flac"
    assert found["bbb_0"] == audio / "nested" / "Ybbb.wav"
    assert found["ccc_10"] == audio / "nested" / "deeper" / "ccc.m4a"
    assert found["ddd_20"] == audio / "14.opus"
    assert found["eee_0"] is None


def test_resolver_prefers_the_most_specific_name(tmp_path):
    (clip,) = read_split(_write(tmp_path / "train.csv", HEADER + "7,abc,30,x\n"))
    (tmp_path / "audio").mkdir()
    for name in ["abc.wav", "Yabc.wav", "abc_30.wav", "7.wav"]:
        (tmp_path / "audio" / name).write_bytes(b"x")
    assert AudioIndex(tmp_path).find(clip).name == "abc_30.wav"


def test_official_csvs():
    splits = read_splits(SHARED / "audiocaps")
    counts = {split: (len(clips), sum(len(c.captions) for c in clips)) for split, clips in splits.items()}
    assert counts == {"train": (49838, 49838), "val": (495, 2475), "test": (975, 4875)}
    assert all(len(clip.captions) == 5 for clip in splits["test"])
