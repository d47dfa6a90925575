"""audiocaps_tf.metrics against hand-computed scores (pycocoevalcap conventions), and its Java/SPICE handling.

One METEOR process is started for the whole module (about 10 s) and reused; most checks read one `per_clip=True`
run over a set of clips built for them, since per-clip BLEU of a clip equals corpus BLEU of that clip alone.
"""

import math
import sys
import warnings
import zipfile

import pytest

from audiocaps_tf import metrics

# Hand-checked clip: hypothesis "a cat barks loudly" (4 tokens) vs reference "a dog barks loudly at night" (6 tokens).
#   BLEU-1: 3 of 4 unigrams match (a, barks, loudly); brevity penalty exp(1 - 6/4)  -> 75 * exp(-0.5) = 45.49
#   ROUGE-L: LCS "a barks loudly" = 3, P = 3/4, R = 3/6, F = (1 + 1.2^2) P R / (R + 1.2^2 P) = 57.91
PARTIAL_BLEU_1 = 100 * 0.75 * math.exp(1 - 6 / 4)
PARTIAL_ROUGE_L = 100 * (1 + 1.2**2) * 0.75 * 0.5 / (0.5 + 1.2**2 * 0.75)

LONG = "a man is speaking while a car engine idles nearby"
CASES = {
    # clip: (prediction, references)
    "identical": (LONG, [LONG]),
    # Upper case and punctuation vanish in the PTB tokenization, as in COCO evaluation.
    "partial": ("A cat barks loudly.", ["a dog barks loudly at night"]),
    "disjoint": ("birds chirp outside", ["water flows steadily from a tap"]),
    "empty": ("", ["thunder rumbles in the distance"]),
    "punctuation_only": ("...", ["a bell rings twice"]),
}


@pytest.fixture(scope="module", autouse=True)
def stop_meteor_after_module():
    yield
    metrics.close_java()


@pytest.fixture(autouse=True)
def no_spice(monkeypatch, tmp_path_factory):
    """No CoreNLP anywhere (even if this machine has it), and a fresh once-per-process warning."""
    monkeypatch.delenv(metrics.SPICE_DIR_ENV, raising=False)
    monkeypatch.setattr(metrics.spice, "DEFAULT_CORENLP_DIR", tmp_path_factory.mktemp("no_corenlp"))
    monkeypatch.setattr(metrics.spice, "_spice_warned", False)


def test_meteor_runs_with_an_english_locale_even_when_java_defaults_to_german(monkeypatch):
    # With a German default locale METEOR's EVAL step reads "0.5" as a malformed number and dies; the module's
    # -Duser.language=en -Duser.country=US come after JAVA_TOOL_OPTIONS and win. First in the file, so that the
    # METEOR process every later test reuses is this German-default one.
    metrics.close_java()
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Duser.language=de -Duser.country=DE")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.SpiceUnavailableWarning)
        scores = metrics.score_captions({"a": "a man speaks"}, {"a": ["a man speaks loudly", "a woman talks"]})
    assert 0 < scores["METEOR"] < 100


@pytest.fixture(scope="module")
def cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.SpiceUnavailableWarning)
        predictions = {clip: prediction for clip, (prediction, _) in CASES.items()}
        references = {clip: refs for clip, (_, refs) in CASES.items()}
        return metrics.score_captions(predictions, references, per_clip=True, spice=False)


def test_identical_caption_scores_100_on_bleu_rouge_and_meteor(cases):
    _, per_clip = cases
    scores = per_clip["identical"]
    for metric in ("BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "ROUGE_L", "METEOR"):
        assert scores[metric] == pytest.approx(100, abs=1e-6), metric


def test_partial_overlap_matches_the_hand_computation(cases):
    _, per_clip = cases
    assert per_clip["partial"]["BLEU_1"] == pytest.approx(PARTIAL_BLEU_1, abs=1e-6)  # 45.49
    assert per_clip["partial"]["ROUGE_L"] == pytest.approx(PARTIAL_ROUGE_L, abs=1e-6)  # 57.91
    assert 0 < per_clip["partial"]["METEOR"] < 100


def test_disjoint_and_empty_captions_score_zero(cases):
    _, per_clip = cases
    for clip in ("disjoint", "empty", "punctuation_only"):
        for metric in ("BLEU_1", "BLEU_4", "METEOR", "ROUGE_L", "CIDEr"):
            assert per_clip[clip][metric] == pytest.approx(0, abs=1e-6), (clip, metric)


def test_corpus_scores_have_every_key_and_spice_is_none_without_spice(cases):
    scores, per_clip = cases
    assert list(scores) == list(metrics.METRICS)
    assert scores["SPICE"] is None and scores["SPIDEr"] is None
    assert all(clip["SPICE"] is None for clip in per_clip.values())
    # The corpus ROUGE-L and CIDEr are means over clips.
    for metric in ("ROUGE_L", "CIDEr"):
        assert scores[metric] == pytest.approx(sum(c[metric] for c in per_clip.values()) / len(per_clip))


def test_single_clip_corpus_bleu_1_with_brevity_penalty():
    with pytest.warns(metrics.SpiceUnavailableWarning):
        scores = metrics.score_captions({"c": "A cat barks loudly."}, {"c": ["a dog barks loudly at night"]})
    assert scores["BLEU_1"] == pytest.approx(PARTIAL_BLEU_1, abs=1e-6)
    assert scores["ROUGE_L"] == pytest.approx(PARTIAL_ROUGE_L, abs=1e-6)


def test_cider_d_of_identical_captions_is_1000_and_of_disjoint_ones_0():
    # CIDEr-D = 10 x mean cosine similarity of tf-idf n-gram vectors (idf from the references being scored):
    # identical captions have cosine 1 for every n, so 10 x 1 -> 1000 on the x100 scale.
    references = {
        "a": ["a dog barks at a passing car"],
        "b": ["rain falls on a tin roof steadily"],
        "c": ["a woman speaks over loud applause"],
    }
    identical = {clip: refs[0] for clip, refs in references.items()}
    disjoint = {"a": "birds chirp in the morning", "b": "an engine revs up loudly", "c": "water drips into a sink"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.SpiceUnavailableWarning)
        same = metrics.score_captions(identical, references)["CIDEr"]
        other = metrics.score_captions(disjoint, references)["CIDEr"]
    assert same == pytest.approx(1000, abs=1e-6)
    assert other == pytest.approx(0, abs=1e-6)


def test_tokenizer_lowercases_drops_punctuation_and_keeps_one_line_per_caption():
    tokens = metrics.tokenize(["A dog barks, then stops.", "", "line\u2028separator\nand newline", "Don't!"])
    assert tokens == ["a dog barks then stops", "", "line separator and newline", "do n't"]


def test_spice_missing_gives_none_and_exactly_one_warning():
    references = {"a": ["a dog barks"], "b": ["rain falls"]}
    predictions = {"a": "a dog barks", "b": "rain"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = metrics.score_captions(predictions, references)
        second = metrics.score_captions(predictions, references)
    spice_warnings = [w for w in caught if issubclass(w.category, metrics.SpiceUnavailableWarning)]
    assert len(spice_warnings) == 1
    message = str(spice_warnings[0].message)
    assert metrics.SPICE_DIR_ENV in message and "stanford-corenlp-3.6.0-models.jar" in message
    assert first["SPICE"] is None and first["SPIDEr"] is None and second["SPICE"] is None
    # pycocoevalcap's Spice wrapper (whose constructor downloads CoreNLP) is never even imported.
    assert "pycocoevalcap.spice.spice" not in sys.modules
    assert "pycocoevalcap.spice.get_stanford_models" not in sys.modules


def test_spice_false_is_silent_and_spice_true_without_corenlp_is_an_error(tmp_path):
    references, predictions = {"a": ["a dog barks"]}, {"a": "a dog"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.score_captions(predictions, references, spice=False)["SPICE"] is None
    with pytest.raises(metrics.SpiceUnavailableError, match="AUDIOCAPS_SPICE_DIR"):
        metrics.score_captions(predictions, references, spice=True)
    with pytest.raises(metrics.SpiceUnavailableError, match=str(tmp_path)):
        metrics.score_captions(predictions, references, spice_dir=tmp_path)


def test_spice_jars_are_found_in_the_env_dir_and_spice_dir(tmp_path, monkeypatch):
    for jar in metrics.CORENLP_JARS:
        (tmp_path / jar).write_bytes(b"")
    assert metrics.find_spice_dir() is None
    assert metrics.find_spice_dir(tmp_path) == tmp_path
    monkeypatch.setenv(metrics.SPICE_DIR_ENV, str(tmp_path))
    assert metrics.find_spice_dir() == tmp_path


def test_spice_launcher_reaches_spices_scorer(tmp_path):
    # Without the real CoreNLP jars SPICE cannot parse, but the error proves the launcher compiled and called
    # SpiceScorer.scoreBatch (whose parser needs CoreNLP), and that the failure is reported with the way out.
    for jar in metrics.CORENLP_JARS:
        with zipfile.ZipFile(tmp_path / jar, "w") as fake:
            fake.writestr("README", "not CoreNLP")
    with pytest.raises(metrics.MetricsError) as error:
        metrics.spice.run_spice(metrics.find_java(), tmp_path, [("0:0", "a dog barks", ["a dog barks loudly"])])
    message = str(error.value)
    assert "edu/stanford/nlp" in message and "SpiceParser" in message
    assert "--no-spice" in message


def test_spider_is_the_mean_of_cider_and_spice(monkeypatch, tmp_path):
    # SPICE itself cannot run here: replace its Java run by fixed F-scores and check the arithmetic around it.
    monkeypatch.setattr(metrics.spice, "find_spice_dir", lambda spice_dir=None: tmp_path)
    monkeypatch.setattr(metrics.scoring, "run_spice", lambda java, d, items: {item_id: 0.5 for item_id, _, _ in items})
    references = {"a": ["a dog barks at a passing car"], "b": ["rain falls on a tin roof steadily"]}
    predictions = {"a": "a dog barks at a passing car", "b": ""}
    scores, per_clip = metrics.score_captions(predictions, references, per_clip=True)
    assert per_clip["a"]["SPICE"] == 50 and per_clip["b"]["SPICE"] == 0  # an empty caption is not sent: 0
    assert scores["SPICE"] == 25
    assert scores["SPIDEr"] == pytest.approx((scores["CIDEr"] + 25) / 2)
    assert per_clip["a"]["SPIDEr"] == pytest.approx((per_clip["a"]["CIDEr"] + 50) / 2)


def test_no_java_on_path_names_what_to_install(monkeypatch):
    monkeypatch.setattr(metrics.java.shutil, "which", lambda name: None)
    with pytest.raises(metrics.JavaNotFoundError, match="apt-get install default-jre"):
        metrics.score_captions({"a": "a dog"}, {"a": ["a dog barks"]})


def test_inputs_must_cover_the_same_clips():
    with pytest.raises(ValueError, match="1 clip"):
        metrics.score_captions({"a": "x"}, {"a": ["x"], "b": ["y"]})
    with pytest.raises(ValueError, match="without references"):
        metrics.score_captions({"a": "x", "c": "z"}, {"a": ["x"]})
    with pytest.raises(ValueError, match="list of str"):
        metrics.score_captions({"a": "x"}, {"a": "x"})


def test_human_upper_bound_is_the_clip_weighted_mean_of_the_leave_one_out_turns():
    references = {
        "A": ["a dog barks loudly", "a dog is barking", "dogs bark at night"],
        "B": ["rain falls on a roof", "heavy rain on a tin roof", "rain pours down"],
        "C": ["a man speaks", "a man is talking loudly", "a person speaks then stops"],
        "D": ["an engine idles", "a car engine runs idle"],  # only in turns 1 and 2
        "E": ["a single reference"],  # skipped
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.SpiceUnavailableWarning)
        bound = metrics.human_upper_bound(references)
        turns = []
        for k in range(3):
            clips = [c for c in "ABCD" if len(references[c]) > k]
            predictions = {c: references[c][k] for c in clips}
            refs = {c: references[c][:k] + references[c][k + 1:] for c in clips}
            turns.append((len(clips), metrics.score_captions(predictions, refs)))
    assert (bound["num_clips"], bound["skipped"], bound["turns"]) == (4, 1, 3)
    for metric in ("BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "METEOR", "ROUGE_L", "CIDEr"):
        expected = sum(n * scores[metric] for n, scores in turns) / sum(n for n, _ in turns)
        assert bound[metric] == pytest.approx(expected, abs=1e-9), metric
    assert bound["SPICE"] is None and bound["SPIDEr"] is None

    # BLEU-1 of turn 1 by hand (clipped unigram matches against the other references, per clip):
    #   A "a dog barks loudly"   vs "a dog is barking" / "dogs bark at night"        a, dog           2 of 4
    #   B "rain falls on a roof" vs "heavy rain on a tin roof" / "rain pours down"  rain, on, a, roof 4 of 5
    #   C "a man speaks"         vs "a man is talking loudly" / "a person speaks.." a, man, speaks    3 of 3
    #   D "an engine idles"      vs "a car engine runs idle"                        engine           1 of 3
    # 10 of 15. Reference length closest to each hypothesis (ties: the shorter): 4 + 6 + 5 + 5 = 20 > 15, so the
    # brevity penalty is exp(1 - 20/15).
    assert turns[0][1]["BLEU_1"] == pytest.approx(100 * 10 / 15 * math.exp(1 - 20 / 15), abs=1e-6)


def test_human_upper_bound_needs_clips_with_two_references():
    with pytest.raises(ValueError, match="two or more"):
        metrics.human_upper_bound({"a": ["only one"]})


def test_format_table_uses_the_papers_column_order():
    table = metrics.format_table({m: i for i, m in enumerate(metrics.METRICS)} | {"SPICE": None})
    names, values = (line.split() for line in table.splitlines())
    assert names == ["B-1", "B-2", "B-3", "B-4", "METEOR", "CIDEr", "ROUGE-L", "SPICE", "SPIDEr"]
    assert values == ["0.0", "1.0", "2.0", "3.0", "4.0", "6.0", "5.0", "-", "8.0"]


def test_java_programs_are_stopped_after_the_timeout(monkeypatch):
    # Last in the file: it kills the METEOR process the other tests share.
    monkeypatch.setenv(metrics.TIMEOUT_ENV, "0.05")
    with pytest.raises(metrics.MetricsError, match="did not finish within"):
        metrics.tokenize(["a dog barks"])
    metrics.close_java()
    corpus = metrics.scoring._Corpus(["a dog barks"], [["a dog barks loudly"]])
    with pytest.raises(metrics.MetricsError, match="METEOR did not finish within"):
        metrics.meteor.meteor_scores(metrics.find_java(), [corpus])
    assert metrics.meteor._meteor is None  # a killed process is not reused


def test_commands_print_the_spice_warning_as_one_message(capsys):
    """fit and evaluate show a missing CoreNLP as `warning: ...`, not as Python's warning with a source line."""
    with metrics.spice_warnings_as_messages():
        warnings.warn("SPICE and SPIDEr are skipped (None): no CoreNLP", metrics.SpiceUnavailableWarning)
        with pytest.warns(UserWarning, match="another warning"):  # any other warning is shown as usual
            warnings.warn("another warning", UserWarning)
    err = capsys.readouterr().err
    assert err == "warning: SPICE and SPIDEr are skipped (None): no CoreNLP\n"
