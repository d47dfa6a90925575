import re
import time

import pytest

from audiocaps_tf.tokens.captions import normalize_caption, tokenize
from audiocaps_tf.data.layout import read_split
from conftest import SHARED

TRAIN_CSV = SHARED / "audiocaps" / "train.csv"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("A Dog BARKS", "a dog barks"),
        ("A dog barks.", "a dog barks"),
        ("A dog barks...", "a dog barks"),
        ("Rain falls, thunder roars; wind (strong) blows!", "rain falls thunder roars wind strong blows"),
        ('A man says "hello" / goodbye?', "a man says hello goodbye"),
        ("A dog barks,then a cat meows", "a dog barks then a cat meows"),
        ("  a   dog\tbarks \n ", "a dog barks"),
        ("", ""),
        ("   ", ""),
        (".,;!?", ""),
    ],
)
def test_case_punctuation_and_whitespace(raw, expected):
    assert normalize_caption(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("A high-pitched beep", "a high pitched beep"),
        ("clip-clop of hooves", "clip clop of hooves"),
        ("a - b -- c", "a b c"),
    ],
)
def test_hyphens_split_words(raw, expected):
    assert normalize_caption(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("A man's voice", "a mans voice"),
        ("It's loud", "its loud"),
        ("It\u2019s a dog\u2019s bark", "its a dogs bark"),
        ("the vehicles' engines", "the vehicles engines"),
        ("they're 'quoted'", "theyre quoted"),
    ],
)
def test_apostrophes_are_deleted_joining_the_word(raw, expected):
    assert normalize_caption(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2 dogs bark", "two dogs bark"),
        ("it beeps 10 times", "it beeps ten times"),
        ("0", "zero"),
        ("21 birds", "twenty one birds"),
        ("105", "one hundred and five"),
        ("1,200 people", "one thousand two hundred people"),
        ("1st", "first"),
        ("the 22nd bell", "the twenty second bell"),
        ("music from the 30s", "music from the thirties"),
        ("two 6s", "two sixes"),
        ("3.5 seconds", "three point five seconds"),
        ("0.25", "zero point two five"),
        ("a 3.", "a three"),
        ("an mp3 file", "an mp three file"),
        ("30sec", "thirty sec"),
        ("counts 1,2,3", "counts one two three"),
        ("-5 degrees", "five degrees"),
        ("1234567890123456", "one two three four five six seven eight nine zero one two three four five six"),
    ],
)
def test_numbers_become_words(raw, expected):
    assert normalize_caption(raw) == expected


def test_accents_are_folded():
    assert normalize_caption("Caf\u00e9 na\u00efve") == "cafe naive"


def test_tokenize_splits_the_normalised_caption():
    assert tokenize("A dog barks, then 2 cats meow.") == ["a", "dog", "barks", "then", "two", "cats", "meow"]
    assert tokenize("") == []
    assert tokenize("...") == []


def test_real_captions_normalise_to_plain_words_quickly_and_idempotently():
    captions = [c for clip in read_split(TRAIN_CSV) for c in clip.captions]
    assert len(captions) == 49838
    start = time.perf_counter()
    normalised = [normalize_caption(c) for c in captions]
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"normalising the train captions took {elapsed:.1f} s"
    plain = re.compile(r"[a-z]+( [a-z]+)*")
    assert [n for n in normalised if not plain.fullmatch(n)] == []
    assert [n for n in normalised if normalize_caption(n) != n] == []
