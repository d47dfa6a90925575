import json

import pytest

from audiocaps_tf.data.__main__ import main
from audiocaps_tf.data.stats import dataset_statistics
from conftest import SHARED


def test_hand_counted_statistics(tmp_path):
    (tmp_path / "train.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption,labels\n"
        "1,a,0,A dog barks.,dog\n"
        "2,b,0,Two cars pass by,car;engine;road\n"
    )
    (tmp_path / "test.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption\n1,c,0,Rain\n2,c,0,Heavy rain falls\n3,d,5,Wind blows hard now\n"
    )
    stats = dataset_statistics(tmp_path)
    # "a dog barks" = 3 words, "two cars pass by" = 4; the vocabulary is their 7 distinct words.
    assert stats["train"] == {
        "clips": 2,
        "captions": 2,
        "words_per_caption_mean": 3.5,
        "words_per_caption_median": 3.5,
        "labels_per_clip_mean": 2.0,
    }
    assert stats["test"]["clips"] == 2 and stats["test"]["captions"] == 3
    assert stats["test"]["words_per_caption_mean"] == pytest.approx((1 + 3 + 4) / 3)
    assert stats["test"]["labels_per_clip_mean"] is None
    assert "val" not in stats
    assert stats["vocab_size"] == 7


def test_cli_on_the_official_csvs(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["stats", "--data-dir", str(SHARED / "audiocaps"), "--json", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert (stats["test"]["clips"], stats["test"]["captions"]) == (975, 4875)
    assert (stats["val"]["clips"], stats["val"]["captions"]) == (495, 2475)
    assert (stats["train"]["clips"], stats["train"]["captions"]) == (49838, 49838)
    assert 4000 <= stats["vocab_size"] <= 6000
    assert 7 < stats["train"]["words_per_caption_mean"] < 12
    assert "# words/caption" in capsys.readouterr().out


def test_cli_never_overwrites_json(tmp_path):
    (tmp_path / "test.csv").write_text("audiocap_id,youtube_id,start_time,caption\n1,c,0,Rain\n")
    out = tmp_path / "s.json"
    out.write_text("mine")
    with pytest.raises(SystemExit, match="exists"):
        main(["stats", "--data-dir", str(tmp_path), "--json", str(out)])
    assert out.read_text() == "mine"
    assert main(["stats", "--data-dir", str(tmp_path), "--json", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["test"]["clips"] == 1
