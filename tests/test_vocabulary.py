import collections
import json

import numpy as np
import pytest

from audiocaps_tf.tokens.captions import normalize_caption, tokenize
from audiocaps_tf.data.layout import read_split
from audiocaps_tf.tokens.vocabulary import (
    BOS_ID,
    CONFIG_FILE,
    EOS_ID,
    MODEL_FILE,
    PAD_ID,
    RESERVED_TOKENS,
    UNK_ID,
    SentencePieceVocabulary,
    Vocabulary,
    WordVocabulary,
    build_vocabulary,
    load_vocabulary,
    vocabulary_from_config,
)
from conftest import SHARED

TRAIN_CSV = SHARED / "audiocaps" / "train.csv"
VAL_CSV = SHARED / "audiocaps" / "val.csv"

# word counts: dog 3, a 3, barks 2, the 1, cat 1, meows 1 (first seen in an order that is not alphabetical)
TINY = ["The dog barks.", "a dog barks", "A cat meows", "a dog"]
TINY_WORDS = ["a", "dog", "barks", "cat", "meows", "the"]


def _captions(csv_path):
    return [c for clip in read_split(csv_path) for c in clip.captions]


@pytest.fixture(scope="module")
def train_captions():
    return _captions(TRAIN_CSV)


@pytest.fixture(scope="module")
def tiny():
    return WordVocabulary.build(TINY)


@pytest.fixture(scope="module")
def pieces(train_captions):
    return build_vocabulary(train_captions[:2000], tokenizer="sentencepiece", vocab_size=500)


def test_reserved_ids():
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    assert RESERVED_TOKENS == ("<pad>", "<bos>", "<eos>", "<unk>")


def test_words_ordered_by_frequency_then_alphabetically(tiny):
    assert tiny.id_to_token == list(RESERVED_TOKENS) + TINY_WORDS
    assert tiny.size == len(tiny) == 10
    assert tiny.token_to_id("dog") == 5
    assert tiny.token_to_id("zebra") == UNK_ID


def test_min_count_and_max_size():
    assert WordVocabulary.build(TINY, min_count=2).id_to_token == list(RESERVED_TOKENS) + ["a", "dog", "barks"]
    assert WordVocabulary.build(TINY, min_count=4).id_to_token == list(RESERVED_TOKENS)
    assert WordVocabulary.build(TINY, max_size=6).id_to_token == list(RESERVED_TOKENS) + ["a", "dog"]
    with pytest.raises(ValueError):
        WordVocabulary.build(TINY, min_count=0)


def test_word_vocabulary_rejects_bad_token_lists():
    with pytest.raises(ValueError, match="start with"):
        WordVocabulary(["a", "dog"])
    with pytest.raises(ValueError, match="duplicate"):
        WordVocabulary(list(RESERVED_TOKENS) + ["a", "a"])


def test_encode_normalises_and_frames(tiny):
    a, dog, barks = 4, 5, 6
    assert tiny.encode("A dog barks.") == [a, dog, barks, EOS_ID]
    assert tiny.encode("a dog barks", add_bos=True) == [BOS_ID, a, dog, barks, EOS_ID]
    assert tiny.encode("a dog barks", add_eos=False) == [a, dog, barks]
    assert tiny.encode("") == [EOS_ID]


def test_unknown_words_become_unk(tiny):
    assert tiny.encode("a zebra barks") == [4, UNK_ID, 6, EOS_ID]
    assert tiny.decode(tiny.encode("a zebra barks")) == "a <unk> barks"


def test_max_length_counts_bos_and_eos_and_keeps_eos(tiny):
    assert tiny.encode("a dog barks", max_length=3) == [4, 5, EOS_ID]
    assert tiny.encode("a dog barks", add_bos=True, max_length=3) == [BOS_ID, 4, EOS_ID]
    assert tiny.encode("a dog barks", add_eos=False, max_length=2) == [4, 5]
    assert tiny.encode("a dog barks", max_length=4) == [4, 5, 6, EOS_ID]
    assert tiny.encode("a dog barks", max_length=50) == [4, 5, 6, EOS_ID]
    assert tiny.encode("a dog barks", max_length=1) == [EOS_ID]
    with pytest.raises(ValueError):
        tiny.encode("a dog barks", add_bos=True, max_length=1)


def test_decode_stops_at_eos_and_drops_pad_and_bos(tiny):
    assert tiny.decode([BOS_ID, 4, 5, EOS_ID, 6, PAD_ID]) == "a dog"
    assert tiny.decode([4, PAD_ID, 5, 6]) == "a dog barks"
    assert tiny.decode(np.array([4, 5, EOS_ID, PAD_ID, PAD_ID], dtype=np.int32)) == "a dog"
    assert tiny.decode([]) == ""
    with pytest.raises(ValueError, match="outside"):
        tiny.decode([4, 10])


def test_word_round_trip(tiny):
    for caption in TINY + ["The cat barks, a dog meows."]:
        assert tiny.decode(tiny.encode(caption)) == normalize_caption(caption)


def test_word_save_load_round_trip(tiny, tmp_path):
    tiny.save(tmp_path / "vocab")
    manifest = json.loads((tmp_path / "vocab" / CONFIG_FILE).read_text())
    assert manifest["kind"] == "word"
    restored = load_vocabulary(tmp_path / "vocab")
    assert isinstance(restored, WordVocabulary)
    assert restored.id_to_token == tiny.id_to_token
    assert restored == tiny
    assert WordVocabulary.load(tmp_path / "vocab") == tiny
    with pytest.raises(ValueError):
        SentencePieceVocabulary.load(tmp_path / "vocab")
    with pytest.raises(FileNotFoundError):
        load_vocabulary(tmp_path / "nothing")


def test_sentencepiece_save_load_round_trip(pieces, tmp_path):
    pieces.save(tmp_path)
    assert (tmp_path / MODEL_FILE).read_bytes() == pieces.model_proto
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["kind"] == "sentencepiece"
    restored = load_vocabulary(tmp_path)
    assert isinstance(restored, SentencePieceVocabulary)
    assert restored.id_to_token == pieces.id_to_token
    caption = "A vehicle engine revs, then a dog barks twice."
    assert restored.encode(caption, add_bos=True) == pieces.encode(caption, add_bos=True)
    with pytest.raises(ValueError):
        WordVocabulary.load(tmp_path)


def test_config_round_trip_through_json(tiny, pieces):
    for vocabulary in (tiny, pieces):
        config = json.loads(json.dumps(vocabulary.get_config()))
        restored = Vocabulary.from_config(config)
        assert type(restored) is type(vocabulary)
        assert restored.id_to_token == vocabulary.id_to_token
        assert restored == vocabulary
        assert vocabulary_from_config(config) == vocabulary
        assert type(vocabulary).from_config(config) == vocabulary
    with pytest.raises(ValueError):
        WordVocabulary.from_config(pieces.get_config())
    with pytest.raises(ValueError, match="unknown"):
        Vocabulary.from_config({"kind": "bpe"})


def test_sentencepiece_reserved_ids_size_and_determinism(pieces, train_captions):
    assert pieces.size == len(pieces) == 500
    assert pieces.id_to_token[:4] == list(RESERVED_TOKENS)
    again = SentencePieceVocabulary.build(train_captions[:2000], vocab_size=500)
    assert again.model_proto == pieces.model_proto


def test_sentencepiece_round_trips_real_captions(pieces):
    held_out = [normalize_caption(c) for c in _captions(VAL_CSV)[:500]]
    for text in held_out:
        ids = pieces.encode(text, add_bos=True)
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID
        assert all(4 <= i < pieces.size for i in ids[1:-1])
        assert pieces.decode(ids) == text
        assert pieces.decode(ids + [PAD_ID] * 3) == text


def test_sentencepiece_unknown_characters_become_unk():
    corpus = ["a dog barks", "a cat meows"] * 20
    vocabulary = SentencePieceVocabulary.build(corpus, vocab_size=20, hard_vocab_limit=False)
    ids = vocabulary.encode("a zebra")
    assert UNK_ID in ids
    assert ids[-1] == EOS_ID


def test_build_vocabulary_dispatches_and_validates():
    assert build_vocabulary(TINY) == WordVocabulary.build(TINY)
    assert build_vocabulary(TINY, min_count=2, vocab_size=6).id_to_token == list(RESERVED_TOKENS) + ["a", "dog"]
    with pytest.raises(ValueError, match="unknown tokenizer"):
        build_vocabulary(TINY, tokenizer="bpe")
    with pytest.raises(ValueError, match="min_count"):
        build_vocabulary(TINY, tokenizer="sentencepiece", min_count=2, vocab_size=20)


def test_word_vocabulary_of_full_train_split(train_captions):
    vocabulary = build_vocabulary(train_captions)
    words = vocabulary.id_to_token[len(RESERVED_TOKENS) :]
    assert 4000 <= len(words) <= 6000, len(words)
    counts = collections.Counter(word for caption in train_captions for word in tokenize(caption))
    assert set(words) == set(counts)
    assert words == sorted(words, key=lambda word: (-counts[word], word))
    assert all(word.isalpha() and word == word.lower() for word in words)
    for caption in train_captions:
        normalised = normalize_caption(caption)
        ids = vocabulary.encode(normalised)
        assert UNK_ID not in ids
        assert vocabulary.decode(ids) == normalised
