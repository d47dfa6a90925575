"""Input pipelines: `tf.data` datasets for training (one element per clip-caption pair) and evaluation (per clip).

Two sources give the same elements, so training code does not care where the data came from:

    TFRecordSource(out_dir, split)     shards `out_dir/{split}-*.tfrecord` written by `prepare` (any feature)
    DataDirSource(data_dir, split, vocabulary[, keyword_vocabulary])
                                       an AudioCaps data dir (split CSV + audio/), decoded on the fly with
                                       `load_audio`: the "waveform" field only, for small sets
    open_source(path, split, ...)      whichever of the two `path` holds

Datasets:

    training_dataset(source, fields, batch_size, ...) -> (inputs, targets) batches for `keras.Model.fit`
        inputs["<field>"]     float32 [B, T, C] (time padded with 0 per batch); "waveform" [B, samples]
        inputs["attributes"]  string [B, M], padded with b""
        inputs["caption_in"]  int32 [B, L]: <bos> followed by the caption ids without their last id (<eos>)
        targets               int32 [B, L]: the caption ids, ending with <eos>; both padded with PAD_ID (0)
        mixup=p               a pair is two clips one after the other, captioned "A then B", with probability p
                              (`data.mixup`)
    evaluation_dataset(source, fields, batch_size) -> dict batches, one row per clip, in the source's order
        key, youtube_id [B] string, start_time [B] int64, the fields, attributes [B, M],
        captions [B, N] string: every reference caption of the clip, padded with b""

`fields` names record fields ("waveform", "mfcc", "log_mel", "vggish_fc2", "vggish_conv4", "vggish_conv3") or the
`prepare --features` names that expand to them ("vggish" -> the three vggish fields); None takes every field the
source holds. A loss should ignore the padding, e.g. `SparseCategoricalCrossentropy(ignore_class=PAD_ID)`.

`clip_count(source)` and `caption_count(source)` (= training pairs) size progress bars and `steps_per_epoch`.
"""

import functools
import importlib
import math
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from audiocaps_tf.audio.loading import AudioError, load_audio
from audiocaps_tf.data import records
from audiocaps_tf.data.mixup import CONNECTIVE, connective_ids, mix_pairs
from audiocaps_tf.data.layout import AudioIndex, read_split, split_path
from audiocaps_tf.tokens.vocabulary import BOS_ID, PAD_ID, Vocabulary, load_vocabulary

__all__ = [
    "MANIFEST_FILE",
    "TOKENIZER_DIR",
    "SkippedClipWarning",
    "MixupWarning",
    "TFRecordSource",
    "DataDirSource",
    "open_source",
    "training_dataset",
    "evaluation_dataset",
    "clip_count",
    "caption_count",
    "steps_per_epoch",
]

MANIFEST_FILE = "manifest.json"
TOKENIZER_DIR = "tokenizer"
RECORD_FIELDS = ("waveform",) + records.TENSOR_FIELDS
# Shards read at once when shuffling; fixed (not AUTOTUNE) so a seeded order does not depend on the CPU count.
MAX_INTERLEAVED_SHARDS = 8
# Pairs held by the shuffle buffer by default: feature rows are a few kB to ~20 kB, a 10 s waveform 640 kB (and
# its log-mel frames 245 kB: they get the waveform's buffer).
DEFAULT_SHUFFLE_BUFFER = 4096
DEFAULT_WAVEFORM_SHUFFLE_BUFFER = 256
LARGE_FIELDS = ("waveform", "log_mel")
MIXUP_SEED_OFFSET = 1_000_003  # the seed of mixup's partner order and draws: the pipeline's seed plus this


class SkippedClipWarning(UserWarning):
    """A clip of a data dir left out because its audio is missing or cannot be decoded."""


class MixupWarning(UserWarning):
    """Mixup asked for but off: the caption vocabulary cannot join two captions."""


def _shard_pattern(split):
    return f"{split}-*.tfrecord"


def _resolve_fields(fields, available, where):
    """Record field names for `fields` (field or feature names; None: all available), checked against `available`.

    `available` None means unknown (an empty split): any known field is accepted.
    """
    if fields is None:
        return tuple(available or ())
    if isinstance(fields, str):
        fields = (fields,)
    resolved = []
    for name in fields:
        for field in records.FEATURE_FIELDS.get(name, (name,)):
            if field not in RECORD_FIELDS:
                known = ", ".join(sorted(set(RECORD_FIELDS) | set(records.FEATURE_FIELDS)))
                raise ValueError(f"unknown field {name!r}; known: {known}")
            if available is not None and field not in available:
                held = ", ".join(available) or "no features"
                raise ValueError(f"{where} has no {field!r} field (it holds {held})")
            if field not in resolved:
                resolved.append(field)
    return tuple(resolved)


class TFRecordSource:
    """The clips of one split of a `prepare` output directory: `{split}-*.tfrecord` shards, read in name order.

    The first record tells which feature fields the shards hold and their channel counts (used as static shapes).
    """

    def __init__(self, directory, split):
        self.directory = pathlib.Path(directory)
        self.split = split
        self.files = sorted(str(p) for p in self.directory.glob(_shard_pattern(split)))
        if not self.files:
            raise FileNotFoundError(
                f"{self.directory}: no {_shard_pattern(split)} shards "
                "(write them with `python -m audiocaps_tf.data prepare`)"
            )
        self._available = None
        self._channels = {}
        self._counts = None
        self._probe()

    def __repr__(self):
        return f"TFRecordSource({str(self.directory)!r}, {self.split!r})"

    def _probe(self):
        for serialized in tf.data.TFRecordDataset(self.files).take(1):
            example = tf.train.Example.FromString(serialized.numpy())
            present = example.features.feature
            self._available = tuple(f for f in RECORD_FIELDS if f in present)
            for field in records.TENSOR_FIELDS:
                if field in present:
                    value = tf.io.parse_tensor(present[field].bytes_list.value[0], tf.float32)
                    self._channels[field] = int(value.shape[-1])

    @property
    def available_fields(self):
        """Record fields the shards hold (None when the split holds no clip at all)."""
        return self._available

    @property
    def vocabulary(self):
        """The vocabulary `prepare` encoded the captions with (`directory/tokenizer/`)."""
        return load_vocabulary(self.directory / TOKENIZER_DIR)

    def resolve_fields(self, fields):
        return _resolve_fields(fields, self._available, self)

    def clip_dataset(self, fields, shuffle=False, seed=None):
        """One element per clip: the `records.parse_clip_example` dict with `fields` (record field names).

        Unshuffled: shards in name order, records in file order. Shuffled: shard order reshuffled every pass,
        up to MAX_INTERLEAVED_SHARDS shards read in parallel, deterministic when `seed` is given.
        """
        fields = tuple(fields)
        if shuffle:
            files = tf.data.Dataset.from_tensor_slices(self.files).shuffle(len(self.files), seed=seed)
            serialized = files.interleave(
                tf.data.TFRecordDataset,
                cycle_length=min(len(self.files), MAX_INTERLEAVED_SHARDS),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=seed is not None,
            )
        else:
            serialized = tf.data.TFRecordDataset(self.files)
        return serialized.map(
            functools.partial(self._parse, fields=fields),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=not shuffle or seed is not None,
        )

    def _parse(self, serialized, fields):
        clip = records.parse_clip_example(serialized, fields)
        for field in fields:
            if field in self._channels:
                clip[field] = tf.ensure_shape(clip[field], [None, self._channels[field]])
        return clip

    def counts(self):
        """(clips, captions) of the split; scans the shards once (caption lengths only), then remembered."""
        if self._counts is None:
            spec = {"caption_lengths": tf.io.VarLenFeature(tf.int64)}

            def captions_of(serialized):
                return tf.size(tf.io.parse_single_example(serialized, spec)["caption_lengths"].values, tf.int64)

            lengths = tf.data.TFRecordDataset(self.files).map(captions_of, num_parallel_calls=tf.data.AUTOTUNE)
            initial = (tf.constant(0, tf.int64), tf.constant(0, tf.int64))
            clips, captions = lengths.reduce(initial, lambda total, n: (total[0] + 1, total[1] + n))
            self._counts = (int(clips), int(captions))
        return self._counts


class DataDirSource:
    """The clips of one split of an AudioCaps data dir, their audio decoded with `load_audio` as they are read.

    For small sets (tests, the demo dataset, quick experiments): decoding and resampling run on every pass.
    Only the "waveform" field is available; the model's frontends compute features from it.

    Args:
        data_dir: holds `{split}.csv` and `audio/` (see `layout`).
        split: "train", "val" or "test".
        vocabulary: a `Vocabulary`, or the directory it was saved to; encodes the captions (ending with <eos>).
        keyword_vocabulary: when given, attributes are `attributes.clip_attributes(clip, keyword_vocabulary)`;
            otherwise the clip's labels column (empty when the CSV has none).

    Clips without an audio file are skipped with a `SkippedClipWarning` here; clips whose audio cannot be
    decoded (`AudioError`) are skipped with one when first read, and leave the counts from then on.
    """

    available_fields = ("waveform",)

    def __init__(self, data_dir, split, vocabulary, keyword_vocabulary=None):
        self.data_dir = pathlib.Path(data_dir)
        self.split = split
        if not isinstance(vocabulary, Vocabulary):
            vocabulary = load_vocabulary(vocabulary)
        self.vocabulary = vocabulary
        csv_path = split_path(data_dir, split)
        clips = read_split(csv_path)
        index = AudioIndex(data_dir)
        self._clips, missing = [], []
        for clip in clips:
            path = index.find(clip)
            if path is None:
                missing.append(clip.key)
            else:
                self._clips.append((clip, path))
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            warnings.warn(
                f"{csv_path}: skipping {len(missing)} of {len(clips)} clips with no audio file under "
                f"{index.root}: {shown}",
                SkippedClipWarning,
                stacklevel=2,
            )
        if keyword_vocabulary is not None:
            attributes_module = importlib.import_module("audiocaps_tf.data.attributes")
            self._attributes = [
                [str(w) for w in attributes_module.clip_attributes(clip, keyword_vocabulary)] for clip, _ in self._clips
            ]
        else:
            self._attributes = [list(clip.labels) for clip, _ in self._clips]
        self._caption_ids = [[vocabulary.encode(c) for c in clip.captions] for clip, _ in self._clips]
        self._unreadable = set()  # keys of clips whose audio failed to decode

    def __repr__(self):
        return f"DataDirSource({str(self.data_dir)!r}, {self.split!r})"

    def resolve_fields(self, fields):
        return _resolve_fields(fields, self.available_fields, self)

    def counts(self):
        """(clips, captions) of the clips with audio (minus those found undecodable so far)."""
        kept = [ids for (clip, _), ids in zip(self._clips, self._caption_ids) if clip.key not in self._unreadable]
        return len(kept), sum(len(ids) for ids in kept)

    def _table(self):
        """Every clip's metadata as tensors, one row per clip."""

        def ragged(rows, dtype):
            flat = [value for row in rows for value in row]
            values = tf.constant(flat, dtype) if flat else tf.zeros([0], dtype)
            return tf.RaggedTensor.from_row_lengths(values, tf.constant([len(r) for r in rows], tf.int64))

        clips = [clip for clip, _ in self._clips]
        caption_ids = tf.RaggedTensor.from_row_lengths(
            ragged([ids for clip_ids in self._caption_ids for ids in clip_ids], tf.int64),
            tf.constant([len(ids) for ids in self._caption_ids], tf.int64),
        )
        return {
            "key": tf.constant([c.key for c in clips], tf.string, shape=[len(clips)]),
            "youtube_id": tf.constant([c.youtube_id for c in clips], tf.string, shape=[len(clips)]),
            "start_time": tf.constant([c.start_time for c in clips], tf.int64, shape=[len(clips)]),
            "captions": ragged([list(c.captions) for c in clips], tf.string),
            "caption_ids": caption_ids,
            "attributes": ragged(self._attributes, tf.string),
            "path": tf.constant([str(p) for _, p in self._clips], tf.string, shape=[len(clips)]),
        }

    def _load(self, key, path):
        """(waveform, ok) for tf.numpy_function; warns (once per clip) and returns ok=False on AudioError."""
        try:
            return load_audio(path.decode()), np.bool_(True)
        except AudioError as err:
            key = key.decode()
            if key not in self._unreadable:
                self._unreadable.add(key)
                warnings.warn(f"skipping clip {key}: {err}", SkippedClipWarning, stacklevel=1)
            return np.zeros([0], np.float32), np.bool_(False)

    def clip_dataset(self, fields, shuffle=False, seed=None):
        """One element per clip, like `TFRecordSource.clip_dataset`; CSV order, or reshuffled on every pass."""
        fields = tuple(fields)
        clips = tf.data.Dataset.from_tensor_slices(self._table())
        if shuffle and self._clips:
            clips = clips.shuffle(len(self._clips), seed=seed)
        deterministic = not shuffle or seed is not None

        def load(clip):
            waveform, ok = tf.numpy_function(self._load, [clip["key"], clip["path"]], [tf.float32, tf.bool])
            clip = dict(clip, waveform=tf.ensure_shape(waveform, [None]))
            return clip, tf.ensure_shape(ok, [])

        if "waveform" in fields:
            clips = clips.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
            clips = clips.filter(_decoded_ok).map(_drop_flag)

        def tidy(clip):
            result = {name: clip[name] for name in ("key", "youtube_id", "start_time")}
            result["captions"] = tf.ensure_shape(tf.convert_to_tensor(clip["captions"]), [None])
            result["caption_ids"] = clip["caption_ids"]
            result["attributes"] = tf.ensure_shape(tf.convert_to_tensor(clip["attributes"]), [None])
            result.update({field: clip[field] for field in fields})
            return result

        return clips.map(tidy)


def _decoded_ok(clip, ok):
    return ok


def _drop_flag(clip, ok):
    return clip


def open_source(path, split, vocabulary=None, keyword_vocabulary=None):
    """A `TFRecordSource` when `path` holds a prepared directory (manifest.json or shards of `split`), else a
    `DataDirSource` over the AudioCaps data dir `path` (which then needs `vocabulary`)."""
    path = pathlib.Path(path)
    if (path / MANIFEST_FILE).is_file() or any(path.glob(_shard_pattern(split))):
        return TFRecordSource(path, split)
    if split_path(path, split).is_file():
        if vocabulary is None:
            raise ValueError(f"{path} is an AudioCaps data dir: reading it needs a vocabulary to encode the captions")
        return DataDirSource(path, split, vocabulary, keyword_vocabulary=keyword_vocabulary)
    raise FileNotFoundError(
        f"{path}: neither a prepared directory ({MANIFEST_FILE}, {_shard_pattern(split)}) "
        f"nor an AudioCaps data dir ({split}.csv)"
    )


def clip_count(source):
    """Clips of the source: evaluation rows per pass."""
    return source.counts()[0]


def caption_count(source):
    """Captions of the source: training pairs per epoch."""
    return source.counts()[1]


def steps_per_epoch(source, batch_size, drop_remainder=False):
    """Training batches per epoch of `training_dataset(source, batch_size=...)`."""
    pairs = caption_count(source)
    return pairs // batch_size if drop_remainder else math.ceil(pairs / batch_size)


def _teacher_forcing(caption_ids, max_caption_length):
    """(caption_in, targets) int32: targets the ids (at most `max_caption_length`, last id kept), caption_in
    <bos> followed by the targets but their last."""
    ids = tf.cast(caption_ids, tf.int32)
    if max_caption_length is not None:
        ids = tf.concat([ids[:-1][: max_caption_length - 1], ids[-1:]], axis=0)
    caption_in = tf.concat([tf.constant([BOS_ID], tf.int32), ids[:-1]], axis=0)
    return caption_in, ids


def _clip_pairs(clip, fields, max_caption_length):
    """One (inputs, targets) element per caption of the clip, sharing the clip's features."""
    shared = {field: clip[field] for field in fields}
    shared["attributes"] = clip["attributes"]
    clip_inputs = tf.data.Dataset.from_tensors(shared).repeat(clip["caption_ids"].nrows())
    captions = tf.data.Dataset.from_tensor_slices(clip["caption_ids"])

    def pair(inputs, ids):
        caption_in, targets = _teacher_forcing(ids, max_caption_length)
        return dict(inputs, caption_in=caption_in), targets

    return tf.data.Dataset.zip(clip_inputs, captions).map(pair)


def _padding_values(element_spec):
    """b"" for strings, PAD_ID (0) for integers, 0.0 for floats, matching the element's structure."""

    def pad(spec):
        if spec.dtype == tf.string:
            return tf.constant(b"", tf.string)
        if spec.dtype.is_integer:
            return tf.constant(PAD_ID, spec.dtype)
        return tf.constant(0, spec.dtype)

    return tf.nest.map_structure(pad, element_spec)


def _padded_batch(dataset, batch_size, drop_remainder=False):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return dataset.padded_batch(
        batch_size, padding_values=_padding_values(dataset.element_spec), drop_remainder=drop_remainder
    )


def training_dataset(
    source,
    fields=None,
    batch_size=32,
    shuffle=True,
    seed=None,
    max_caption_length=None,
    repeat=False,
    shuffle_buffer=None,
    drop_remainder=False,
    mixup=0.0,
    vocabulary=None,
):
    """(inputs, targets) batches, one row per (clip, caption) pair, for `keras.Model.fit` (see the module doc).

    Args:
        source: a `TFRecordSource` or `DataDirSource` (see `open_source`).
        fields: features to load (record field or feature names); None: all the source holds.
        batch_size: pairs per batch; the last batch of an epoch may be smaller unless `drop_remainder`.
        shuffle: shuffle shard order (TFRecords) or clip order (data dir), then pairs in a buffer, anew every
            epoch; with a `seed` the whole sequence of epochs is reproducible.
        max_caption_length: cut longer captions to this many ids, keeping <eos> last.
        repeat: repeat epochs forever (before batching: every batch is full; pass `steps_per_epoch` to fit).
        shuffle_buffer: pairs in the shuffle buffer; default DEFAULT_SHUFFLE_BUFFER, or
            DEFAULT_WAVEFORM_SHUFFLE_BUFFER when waveforms or log-mel frames are loaded.
        mixup: the probability that a pair is replaced by its clip and another one, one after the other, with
            their captions joined "A then B" (`data.mixup`; 0: never). Needs "then" in the caption vocabulary
            (`vocabulary`, default the source's), else mixup is off with a `MixupWarning`.
    """
    if max_caption_length is not None and max_caption_length < 1:
        raise ValueError(f"max_caption_length must be >= 1, got {max_caption_length}")
    if not 0.0 <= float(mixup) <= 1.0:
        raise ValueError(f"mixup must be a probability in [0, 1], got {mixup}")
    fields = source.resolve_fields(fields)
    if shuffle_buffer is None:
        large = any(field in LARGE_FIELDS for field in fields)
        shuffle_buffer = DEFAULT_WAVEFORM_SHUFFLE_BUFFER if large else DEFAULT_SHUFFLE_BUFFER
    pairs = _pairs(source, fields, shuffle, seed, max_caption_length, shuffle_buffer)
    if mixup:
        pairs = _with_mixup(pairs, source, fields, float(mixup), vocabulary or source.vocabulary, seed,
                            max_caption_length, shuffle_buffer)
    if repeat:
        pairs = pairs.repeat()
    return _padded_batch(pairs, batch_size, drop_remainder).prefetch(tf.data.AUTOTUNE)


def _pairs(source, fields, shuffle, seed, max_caption_length, shuffle_buffer):
    """The (inputs, targets) pairs of every clip, unbatched; shuffled anew every pass when `shuffle`."""
    clips = source.clip_dataset(fields, shuffle=shuffle, seed=seed)
    pairs = clips.flat_map(functools.partial(_clip_pairs, fields=fields, max_caption_length=max_caption_length))
    if shuffle:
        pairs = pairs.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return pairs


def _with_mixup(pairs, source, fields, probability, vocabulary, seed, max_caption_length, shuffle_buffer):
    """`pairs` mixed with the pairs of an independently shuffled pass over the source (`mixup.mix_pairs`)."""
    connective = connective_ids(vocabulary)
    if connective is None:
        warnings.warn(f"mixup is off: the caption vocabulary has no {CONNECTIVE!r} to join two captions with",
                      MixupWarning, stacklevel=3)
        return pairs
    # Another order than the pairs' own (seed + e is epoch e's), the same for the same seed.
    partner_seed = int(np.random.default_rng().integers(2**31)) if seed is None else int(seed) + MIXUP_SEED_OFFSET
    partners = _pairs(source, fields, True, partner_seed, max_caption_length, shuffle_buffer).repeat()
    return mix_pairs(pairs, partners, probability, connective, max_caption_length, seed=partner_seed)


def evaluation_dataset(source, fields=None, batch_size=32):
    """Dict batches, one row per clip with all its reference captions, in the source's order (module doc)."""
    fields = source.resolve_fields(fields)

    def select(clip):
        element = {name: clip[name] for name in ("key", "youtube_id", "start_time")}
        element.update({field: clip[field] for field in fields})
        element["attributes"] = clip["attributes"]
        element["captions"] = clip["captions"]
        return element

    clips = source.clip_dataset(fields, shuffle=False).map(select, num_parallel_calls=tf.data.AUTOTUNE)
    return _padded_batch(clips, batch_size).prefetch(tf.data.AUTOTUNE)
