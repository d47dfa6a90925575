"""`python -m audiocaps_tf.evaluate {score,human}`: input validation, output files, and the paper's Human row."""

import csv
import json
import pathlib

import pytest

from audiocaps_tf import evaluate, metrics

TEST_CSV = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "audiocaps" / "test.csv"

REFERENCES = [
    # audiocap_id, youtube_id, start_time, caption
    (1, "clipAAAAAAA", 30, "A dog barks at a passing car"),
    (2, "clipAAAAAAA", 30, "A dog is barking loudly"),
    (3, "clipAAAAAAA", 30, "Dogs bark as a car drives by"),
    (4, "clipBBBBBBB", 0, "Rain falls on a tin roof"),
    (5, "clipBBBBBBB", 0, "Heavy rain on a roof"),
    (6, "clipBBBBBBB", 0, "Rain pours down steadily"),
    (7, "clipCCCCCCC", 10, "A man speaks then a woman laughs"),
    (8, "clipCCCCCCC", 10, "A man is talking and a woman laughs"),
    (9, "clipDDDDDDD", 20, "An engine idles"),  # the only reference of clipDDDDDDD
]
PREDICTIONS = [
    ("clipAAAAAAA", 30, "a dog barks"),
    ("clipBBBBBBB", 0, "rain falls on a roof"),
    ("clipCCCCCCC", 10, "a man speaks"),
    ("clipDDDDDDD", 20, "an engine runs"),
]


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(autouse=True)
def no_spice(monkeypatch, tmp_path_factory):
    monkeypatch.delenv(metrics.SPICE_DIR_ENV, raising=False)
    monkeypatch.setattr(metrics.spice, "DEFAULT_CORENLP_DIR", tmp_path_factory.mktemp("no_corenlp"))
    monkeypatch.setattr(metrics.spice, "_spice_warned", False)


@pytest.fixture(scope="module", autouse=True)
def stop_meteor_after_module():
    yield
    metrics.close_java()


@pytest.fixture
def references(tmp_path):
    return write_csv(tmp_path / "refs.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], REFERENCES)


def predictions_csv(tmp_path, rows, header=("youtube_id", "start_time", "caption"), name="preds.csv"):
    return write_csv(tmp_path / name, list(header), rows)


def run(argv, capsys):
    code = evaluate.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_score_prints_the_papers_columns_and_writes_json_and_per_clip_csv(tmp_path, references, capsys):
    predictions = predictions_csv(tmp_path, PREDICTIONS)
    out_json, out_csv = tmp_path / "out" / "scores.json", tmp_path / "out" / "clips.csv"
    code, out, err = run(["score", "--predictions", predictions, "--references", references,
                          "--json", out_json, "--per-clip", out_csv], capsys)
    assert code == 0, err
    header = next(line for line in out.splitlines() if "B-1" in line).split()
    assert header == ["B-1", "B-2", "B-3", "B-4", "METEOR", "CIDEr", "ROUGE-L", "SPICE", "SPIDEr"]
    result = json.loads(out_json.read_text())
    assert set(evaluate.JSON_KEYS) <= set(result)
    assert result["num_clips"] == 4 and result["skipped"] == 0
    assert result["SPICE"] is None and result["SPIDEr"] is None
    expected = metrics.score_captions({f"{y}_{s}": c for y, s, c in PREDICTIONS},
                                      {f"{y}_{s}": [r[3] for r in REFERENCES if (r[1], r[2]) == (y, s)]
                                       for y, s, _ in PREDICTIONS}, spice=False)
    for metric in ("BLEU_1", "BLEU_4", "METEOR", "ROUGE_L", "CIDEr"):
        assert result[metric] == pytest.approx(expected[metric]), metric
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["youtube_id"], r["start_time"], r["caption"]) for r in rows] == [
        (y, str(s), c) for y, s, c in PREDICTIONS]
    assert set(metrics.METRICS) <= set(rows[0])
    assert rows[0]["SPICE"] == ""


def test_missing_predictions_are_an_error_listing_count_and_first_keys(tmp_path, references, capsys):
    predictions = predictions_csv(tmp_path, PREDICTIONS[:2])
    code, _, err = run(["score", "--predictions", predictions, "--references", references], capsys)
    assert code == 1
    assert "no prediction for 2 of the 4 clips" in err
    assert "clipCCCCCCC_10" in err and "clipDDDDDDD_20" in err and "--allow-missing" in err


def test_allow_missing_scores_only_the_predicted_clips_and_says_how_many_were_skipped(tmp_path, references, capsys):
    predictions = predictions_csv(tmp_path, PREDICTIONS[:3])
    out_json = tmp_path / "scores.json"
    code, _, err = run(["score", "--predictions", predictions, "--references", references, "--allow-missing",
                        "--json", out_json], capsys)
    assert code == 0, err
    assert "skipped 1 of the 4 clips" in err
    result = json.loads(out_json.read_text())
    assert (result["num_clips"], result["skipped"]) == (3, 1)


def test_predictions_for_unknown_clips_are_an_error(tmp_path, references, capsys):
    predictions = predictions_csv(tmp_path, PREDICTIONS + [("clipZZZZZZZ", 40, "a bird sings")])
    code, _, err = run(["score", "--predictions", predictions, "--references", references, "--allow-missing"], capsys)
    assert code == 1
    assert "1 prediction(s) for clips not in" in err and "clipZZZZZZZ_40 (line 6)" in err


def test_duplicate_prediction_rows_are_an_error_naming_file_and_lines(tmp_path, references, capsys):
    predictions = predictions_csv(tmp_path, PREDICTIONS + [("clipBBBBBBB", "0.0", "more rain")])
    code, _, err = run(["score", "--predictions", predictions, "--references", references], capsys)
    assert code == 1
    assert f"{predictions}, line 6" in err and "clipBBBBBBB_0" in err and "line 3" in err


def test_malformed_predictions_are_an_error_naming_the_file(tmp_path, references, capsys):
    no_caption = predictions_csv(tmp_path, [r[:2] for r in PREDICTIONS], header=("youtube_id", "start_time"))
    code, _, err = run(["score", "--predictions", no_caption, "--references", references], capsys)
    assert code == 1 and str(no_caption) in err and "missing column(s) caption" in err

    short_row = predictions_csv(tmp_path, PREDICTIONS[:1] + [("clipBBBBBBB", 0)], name="short.csv")
    code, _, err = run(["score", "--predictions", short_row, "--references", references], capsys)
    assert code == 1 and f"{short_row}, line 3" in err

    bad_time = predictions_csv(tmp_path, [("clipAAAAAAA", "thirty", "a dog")], name="time.csv")
    code, _, err = run(["score", "--predictions", bad_time, "--references", references], capsys)
    assert code == 1 and f"{bad_time}, line 2" in err and "start_time" in err

    code, _, err = run(["score", "--predictions", tmp_path / "absent.csv", "--references", references], capsys)
    assert code == 1 and "absent.csv: no such file" in err


def test_empty_captions_are_scored_as_empty(tmp_path, references, capsys):
    rows = [PREDICTIONS[0], ("clipBBBBBBB", 0, ""), *PREDICTIONS[2:]]
    predictions = predictions_csv(tmp_path, rows)
    out_csv = tmp_path / "clips.csv"
    code, _, err = run(["score", "--predictions", predictions, "--references", references, "--per-clip", out_csv],
                       capsys)
    assert code == 0, err
    with open(out_csv, newline="") as f:
        empty = next(r for r in csv.DictReader(f) if r["youtube_id"] == "clipBBBBBBB")
    assert empty["caption"] == ""
    assert all(float(empty[m]) == 0 for m in ("BLEU_1", "METEOR", "ROUGE_L", "CIDEr"))


def test_existing_output_files_are_not_overwritten_without_overwrite(tmp_path, references, capsys):
    predictions = predictions_csv(tmp_path, PREDICTIONS)
    for option in ("--json", "--per-clip"):
        existing = tmp_path / f"existing{option}.txt"
        existing.write_text("keep me")
        code, _, err = run(["score", "--predictions", predictions, "--references", references, option, existing],
                           capsys)
        assert code == 1 and f"{existing} exists" in err and "--overwrite" in err
        assert existing.read_text() == "keep me"
    existing = tmp_path / "existing--json.txt"
    code, _, err = run(["score", "--predictions", predictions, "--references", references, "--json", existing,
                        "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads(existing.read_text())["num_clips"] == 4

    human_json = tmp_path / "human.json"
    human_json.write_text("keep me")
    code, _, err = run(["human", "--references", references, "--json", human_json], capsys)
    assert code == 1 and "exists" in err and human_json.read_text() == "keep me"


def test_no_java_is_an_error_naming_what_to_install(tmp_path, references, capsys, monkeypatch):
    monkeypatch.setattr(metrics.java.shutil, "which", lambda name: None)
    predictions = predictions_csv(tmp_path, PREDICTIONS)
    code, _, err = run(["score", "--predictions", predictions, "--references", references], capsys)
    assert code == 1 and "no `java` is on PATH" in err and "apt-get install default-jre" in err


def test_human_on_a_tiny_csv_skips_single_reference_clips(tmp_path, references, capsys):
    out_json = tmp_path / "human.json"
    code, out, err = run(["human", "--references", references, "--json", out_json], capsys)
    assert code == 0, err
    result = json.loads(out_json.read_text())
    assert (result["num_clips"], result["skipped"]) == (3, 1)
    assert "1 clip(s) with fewer than 2 references skipped" in out
    assert "warning: SPICE and SPIDEr are skipped (None)" in err and metrics.SPICE_DIR_ENV in err
    # Turns 1 and 2 hold the three clips, turn 3 only the two with three references: weights 3, 3, 2.
    refs = {"A": [r[3] for r in REFERENCES[0:3]], "B": [r[3] for r in REFERENCES[3:6]],
            "C": [r[3] for r in REFERENCES[6:8]]}
    turns = []
    for k in range(3):
        clips = [c for c in refs if len(refs[c]) > k]
        turns.append((len(clips), metrics.score_captions({c: refs[c][k] for c in clips},
                                                         {c: refs[c][:k] + refs[c][k + 1:] for c in clips},
                                                         spice=False)))
    assert [n for n, _ in turns] == [3, 3, 2]
    for metric in ("BLEU_1", "BLEU_4", "METEOR", "ROUGE_L", "CIDEr"):
        assert result[metric] == pytest.approx(sum(n * s[metric] for n, s in turns) / 8), metric


@pytest.mark.skipif(not TEST_CSV.is_file(), reason=f"{TEST_CSV} is missing")
def test_human_upper_bound_on_the_audiocaps_test_split_matches_the_paper(tmp_path, capsys):
    # The paper's Table 2 "Human" row, as reproduced with pycocoevalcap on the released test.csv (975 clips x 5).
    paper = {"BLEU_1": 65.4, "BLEU_2": 48.8, "BLEU_3": 37.3, "BLEU_4": 29.0, "METEOR": 28.8, "ROUGE_L": 49.5,
             "CIDEr": 90.8}
    out_json = tmp_path / "human.json"
    code, out, err = run(["human", "--references", TEST_CSV, "--json", out_json], capsys)
    assert code == 0, err
    result = json.loads(out_json.read_text())
    assert (result["num_clips"], result["skipped"], result["turns"]) == (975, 0, 5)
    for metric, value in paper.items():
        assert result[metric] == pytest.approx(value, abs=1.0 if metric == "CIDEr" else 0.5), metric
