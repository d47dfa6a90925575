"""Caption tokenizers: a word vocabulary (the paper's) and a SentencePiece model, behind one interface.

Both share the reserved ids <pad>=0, <bos>=1, <eos>=2, <unk>=3, normalise captions with `normalize_caption`
before encoding, and serialise to JSON-friendly configs (so a Keras model can carry its tokenizer) and to a
directory (`tokenizer.json`, plus `tokenizer.model` for SentencePiece) that `load_vocabulary` restores.

`encode(..., max_length=n)` returns at most n ids counting <bos> and <eos>; when it truncates, the last id stays
<eos> so a decoder still learns to stop (the original code's 51-token limit includes EOS).
"""

import base64
import collections
import io
import json
import pathlib

from audiocaps_tf.tokens.captions import normalize_caption

__all__ = [
    "PAD_ID",
    "BOS_ID",
    "EOS_ID",
    "UNK_ID",
    "RESERVED_TOKENS",
    "CONFIG_FILE",
    "MODEL_FILE",
    "TOKENIZERS",
    "Vocabulary",
    "WordVocabulary",
    "SentencePieceVocabulary",
    "build_vocabulary",
    "load_vocabulary",
    "vocabulary_from_config",
]

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
RESERVED_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
CONFIG_FILE = "tokenizer.json"
MODEL_FILE = "tokenizer.model"
DEFAULT_SENTENCEPIECE_VOCAB_SIZE = 1000


class Vocabulary:
    """The common interface: ids <-> captions, size, and (de)serialisation. Subclasses set `kind`."""

    kind = None
    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    # --- implemented by subclasses -------------------------------------------------------------------------
    @property
    def id_to_token(self):
        """Token string of every id, in id order (a lookup table for TF graphs)."""
        raise NotImplementedError

    def _encode_normalized(self, text):
        raise NotImplementedError

    def _decode_ids(self, ids):
        raise NotImplementedError

    def get_config(self):
        """A JSON-serialisable dict from which `from_config` rebuilds this vocabulary."""
        raise NotImplementedError

    def _save_files(self, directory):
        return {}

    @classmethod
    def _from_saved(cls, directory, config):
        raise NotImplementedError

    # --- shared behaviour ----------------------------------------------------------------------------------
    @property
    def size(self):
        return len(self.id_to_token)

    def __len__(self):
        return self.size

    def token_to_id(self, token):
        """The id of `token`, or <unk>'s id when it is not in the vocabulary."""
        raise NotImplementedError

    def encode(self, caption, add_bos=False, add_eos=True, max_length=None):
        """Ids of the normalised caption, optionally framed by <bos>/<eos>, at most `max_length` ids in all."""
        ids = self._encode_normalized(normalize_caption(caption))
        if max_length is not None:
            room = max_length - int(add_bos) - int(add_eos)
            if room < 0:
                raise ValueError(f"max_length={max_length} leaves no room for the requested <bos>/<eos>")
            ids = ids[:room]
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def decode(self, ids):
        """The caption of `ids`: stops at the first <eos>, drops <pad> and <bos>."""
        kept = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            if not 0 <= i < self.size:
                raise ValueError(f"id {i} is outside the vocabulary of {self.size} tokens")
            kept.append(i)
        return self._decode_ids(kept)

    def save(self, directory):
        """Writes `tokenizer.json` (and any model file) into `directory`, creating it; returns its path."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {"kind": self.kind, "size": self.size, **self._save_files(directory)}
        (directory / CONFIG_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory):
        """The vocabulary saved in `directory`; on a subclass, fails if it holds another kind."""
        vocabulary = load_vocabulary(directory)
        if not isinstance(vocabulary, cls):
            raise ValueError(f"{directory} holds a {vocabulary.kind!r} tokenizer, not a {cls.kind!r} one")
        return vocabulary

    @classmethod
    def from_config(cls, config):
        """Rebuilds a vocabulary from `get_config()`; on the base class, of whichever kind the config names."""
        kind = config.get("kind")
        target = TOKENIZERS.get(kind)
        if target is None:
            raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {sorted(TOKENIZERS)}")
        if cls is not Vocabulary and target is not cls:
            raise ValueError(f"config is for a {kind!r} tokenizer, not a {cls.kind!r} one")
        return target._from_config(config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = None

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size})"


class WordVocabulary(Vocabulary):
    """One id per normalised word, as in the paper (every unique training word by default)."""

    kind = "word"

    def __init__(self, id_to_token):
        tokens = [str(t) for t in id_to_token]
        if tuple(tokens[: len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
            raise ValueError(f"a word vocabulary must start with {RESERVED_TOKENS}, got {tokens[:4]}")
        self._tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}
        if len(self._index) != len(tokens):
            duplicates = [t for t, n in collections.Counter(tokens).items() if n > 1]
            raise ValueError(f"duplicate tokens in the vocabulary: {duplicates[:10]}")

    @classmethod
    def build(cls, captions, min_count=1, max_size=None):
        """Words of `captions` seen at least `min_count` times, most frequent first, ties alphabetical.

        `max_size` (optional) caps the total size, reserved tokens included.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts = collections.Counter()
        for caption in captions:
            counts.update(normalize_caption(caption).split())
        for token in RESERVED_TOKENS:
            counts.pop(token, None)
        words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            if max_size < len(RESERVED_TOKENS):
                raise ValueError(f"max_size must be >= {len(RESERVED_TOKENS)}, got {max_size}")
            words = words[: max_size - len(RESERVED_TOKENS)]
        return cls(list(RESERVED_TOKENS) + words)

    @property
    def id_to_token(self):
        return list(self._tokens)

    def token_to_id(self, token):
        return self._index.get(token, UNK_ID)

    def _encode_normalized(self, text):
        index = self._index
        return [index.get(word, UNK_ID) for word in text.split()]

    def _decode_ids(self, ids):
        return " ".join(self._tokens[i] for i in ids)

    def get_config(self):
        return {"kind": self.kind, "tokens": list(self._tokens)}

    @classmethod
    def _from_config(cls, config):
        return cls(config["tokens"])

    def _save_files(self, directory):
        return {"tokens": list(self._tokens)}

    @classmethod
    def _from_saved(cls, directory, manifest):
        return cls(manifest["tokens"])


class SentencePieceVocabulary(Vocabulary):
    """A SentencePiece subword model trained on normalised captions, with the shared reserved ids."""

    kind = "sentencepiece"

    def __init__(self, model_proto):
        import sentencepiece

        self._proto = bytes(model_proto)
        self._processor = sentencepiece.SentencePieceProcessor(model_proto=self._proto)
        processor = self._processor
        ids = (processor.pad_id(), processor.bos_id(), processor.eos_id(), processor.unk_id())
        if ids != (PAD_ID, BOS_ID, EOS_ID, UNK_ID):
            raise ValueError(f"the SentencePiece model's pad/bos/eos/unk ids are {ids}, expected (0, 1, 2, 3)")
        self._pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]

    @classmethod
    def build(
        cls,
        captions,
        vocab_size=DEFAULT_SENTENCEPIECE_VOCAB_SIZE,
        model_type="unigram",
        input_sentence_size=None,
        num_threads=1,
        **trainer_options,
    ):
        """Trains a model in memory on the normalised, non-empty captions.

        Deterministic: `input_sentence_size` subsamples evenly spaced captions here rather than letting
        SentencePiece shuffle; one thread by default. `trainer_options` go to `SentencePieceTrainer.train`.
        """
        import sentencepiece

        sentences = [s for s in (normalize_caption(c) for c in captions) if s]
        if not sentences:
            raise ValueError("no non-empty captions to train a SentencePiece model on")
        if input_sentence_size and len(sentences) > input_sentence_size:
            step = len(sentences) / input_sentence_size
            sentences = [sentences[int(i * step)] for i in range(input_sentence_size)]
        options = dict(
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            normalization_rule_name="identity",  # captions are already normalised
            pad_id=PAD_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            unk_id=UNK_ID,
            pad_piece=RESERVED_TOKENS[PAD_ID],
            bos_piece=RESERVED_TOKENS[BOS_ID],
            eos_piece=RESERVED_TOKENS[EOS_ID],
            unk_piece=RESERVED_TOKENS[UNK_ID],
            shuffle_input_sentence=False,
            num_threads=num_threads,
            minloglevel=2,
        )
        options.update(trainer_options)
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, **options)
        return cls(model.getvalue())

    @property
    def model_proto(self):
        """The serialized SentencePiece model."""
        return self._proto

    @property
    def id_to_token(self):
        return list(self._pieces)

    def token_to_id(self, token):
        return self._processor.piece_to_id(token)

    def _encode_normalized(self, text):
        return list(self._processor.encode(text, out_type=int))

    def _decode_ids(self, ids):
        return self._processor.decode(ids)

    def get_config(self):
        return {"kind": self.kind, "model_proto": base64.b64encode(self._proto).decode("ascii")}

    @classmethod
    def _from_config(cls, config):
        return cls(base64.b64decode(config["model_proto"]))

    def _save_files(self, directory):
        (directory / MODEL_FILE).write_bytes(self._proto)
        return {"model_file": MODEL_FILE}

    @classmethod
    def _from_saved(cls, directory, manifest):
        return cls((directory / manifest.get("model_file", MODEL_FILE)).read_bytes())


TOKENIZERS = {WordVocabulary.kind: WordVocabulary, SentencePieceVocabulary.kind: SentencePieceVocabulary}


def build_vocabulary(captions, tokenizer="word", min_count=1, vocab_size=None, **options):
    """Builds a `tokenizer` ("word" or "sentencepiece") vocabulary from (training) captions.

    For words, `vocab_size` optionally caps the size (reserved tokens included); for SentencePiece it is the
    model's size (default 1000) and `min_count` must stay 1.
    """
    if tokenizer == WordVocabulary.kind:
        return WordVocabulary.build(captions, min_count=min_count, max_size=vocab_size, **options)
    if tokenizer == SentencePieceVocabulary.kind:
        if min_count != 1:
            raise ValueError("min_count applies to the word tokenizer only")
        size = DEFAULT_SENTENCEPIECE_VOCAB_SIZE if vocab_size is None else vocab_size
        return SentencePieceVocabulary.build(captions, vocab_size=size, **options)
    raise ValueError(f"unknown tokenizer {tokenizer!r}; expected one of {sorted(TOKENIZERS)}")


def load_vocabulary(directory):
    """The vocabulary `save` wrote into `directory`, of either kind."""
    directory = pathlib.Path(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tokenizer saved here")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    target = TOKENIZERS.get(manifest.get("kind"))
    if target is None:
        raise ValueError(f"{path}: unknown tokenizer kind {manifest.get('kind')!r}")
    return target._from_saved(directory, manifest)


def vocabulary_from_config(config):
    """Same as `Vocabulary.from_config`: restores either kind from its `get_config()` dict."""
    return Vocabulary.from_config(config)
