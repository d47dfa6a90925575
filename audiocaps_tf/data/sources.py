"""Where clips come from: the two sources the input pipelines (`pipeline`) read, one element per clip.

    TFRecordSource(out_dir, split)     shards `out_dir/{split}-*.tfrecord` written by `prepare` (any feature)
    DataDirSource(data_dir, split, vocabulary[, keyword_vocabulary, max_seconds])
                                       an AudioCaps data dir (split CSV + audio/), decoded on the fly with
                                       `load_clip`: the "waveform" field only, for small sets
    open_source(path, split, ...)      whichever of the two `path` holds

Both give `clip_dataset(fields, shuffle, seed)` (dicts of key, youtube_id, start_time, captions, caption_ids,
attributes and the fields), `resolve_fields` and `counts`. `clip_count`, `caption_count` and `steps_per_epoch`
size progress bars and epochs.
"""

import functools
import importlib
import math
import os
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.audio.loading import AudioError, load_clip
from audiocaps_tf.data import records
from audiocaps_tf.data.layout import AudioIndex, read_split, split_path
from audiocaps_tf.tokens.vocabulary import Vocabulary, load_vocabulary

__all__ = [
    "MANIFEST_FILE",
    "TOKENIZER_DIR",
    "RECORD_FIELDS",
    "SkippedClipWarning",
    "CutClipWarning",
    "TFRecordSource",
    "DataDirSource",
    "open_source",
    "clip_count",
    "caption_count",
    "steps_per_epoch",
]

MANIFEST_FILE = "manifest.json"
TOKENIZER_DIR = "tokenizer"
RECORD_FIELDS = ("waveform",) + records.TENSOR_FIELDS
# Shards read at once when shuffling; fixed (not AUTOTUNE) so a seeded order does not depend on the CPU count.
MAX_INTERLEAVED_SHARDS = 8


class SkippedClipWarning(UserWarning):
    """A clip of a data dir left out because its audio is missing or cannot be decoded."""


class CutClipWarning(UserWarning):
    """A clip of a data dir longer than `max_seconds`, cut to it."""


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

    `directory` may also be a list of prepared directories that share one vocabulary (`prepare`'s
    `vocabulary_dirs`): their shards are read as one split, directory after directory (shuffled: all shards
    together), as `fit` trains on several datasets. The first record tells which feature fields the shards hold
    and their channel counts (used as static shapes).
    """

    def __init__(self, directory, split):
        directories = [directory] if isinstance(directory, (str, os.PathLike)) else list(directory)
        self.directories = [pathlib.Path(d) for d in directories]
        self.directory = self.directories[0]
        self.split = split
        self.files = []
        for folder in self.directories:
            shards = sorted(str(p) for p in folder.glob(_shard_pattern(split)))
            if not shards:
                raise FileNotFoundError(
                    f"{folder}: no {_shard_pattern(split)} shards "
                    "(write them with `python -m audiocaps_tf.data prepare`)"
                )
            self.files.extend(shards)
        if len(self.directories) > 1:
            configs = [load_vocabulary(folder / TOKENIZER_DIR).get_config() for folder in self.directories]
            if any(config != configs[0] for config in configs[1:]):
                raise ValueError(f"{', '.join(map(str, self.directories))}: the prepared directories have different "
                                 "vocabularies; prepare them with the same vocabulary_dirs")
        self._available = None
        self._channels = {}
        self._counts = None
        self._probe()

    def __repr__(self):
        where = str(self.directory) if len(self.directories) == 1 else [str(d) for d in self.directories]
        return f"TFRecordSource({where!r}, {self.split!r})"

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
    Only the "waveform" field is available; the model's frontends compute features from it. Clips are read
    whole, whatever their length, up to `max_seconds` (None: no limit): longer ones are cut to it, with a
    `CutClipWarning` the first time.

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

    def __init__(self, data_dir, split, vocabulary, keyword_vocabulary=None, max_seconds=params.MAX_CLIP_SECONDS):
        self.data_dir = pathlib.Path(data_dir)
        self.max_seconds = max_seconds
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
        self._cut = set()  # keys of clips cut to max_seconds

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
        key = key.decode()
        try:
            waveform, seconds = load_clip(path.decode(), max_seconds=self.max_seconds)
        except AudioError as err:
            if key not in self._unreadable:
                self._unreadable.add(key)
                warnings.warn(f"skipping clip {key}: {err}", SkippedClipWarning, stacklevel=1)
            return np.zeros([0], np.float32), np.bool_(False)
        if waveform.size < round(seconds * params.SAMPLE_RATE) and key not in self._cut:
            self._cut.add(key)
            warnings.warn(f"clip {key} ({path.decode()}) is {seconds:.1f} s long: cut to its first "
                          f"{self.max_seconds:g} s (max_seconds)", CutClipWarning, stacklevel=1)
        return waveform, np.bool_(True)

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
