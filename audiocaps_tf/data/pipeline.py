"""Input pipelines: `tf.data` datasets for training (one element per clip-caption pair) and evaluation (per clip).

Two sources give the same elements, so training code does not care where the data came from (`sources`,
re-exported here): `TFRecordSource` (prepared shards), `DataDirSource` (an AudioCaps data dir decoded on the fly)
and `open_source(path, split, ...)`, whichever of the two `path` holds.

Datasets:

    training_dataset(source, fields, batch_size, ...) -> (inputs, targets) batches for `keras.Model.fit`
        inputs["<field>"]     float32 [B, T, C] (time padded with 0 per batch); "waveform" [B, samples]
        inputs["attributes"]  string [B, M], padded with b""
        inputs["caption_in"]  int32 [B, L]: <bos> followed by the caption ids without their last id (<eos>)
        (shuffled batches hold clips of similar lengths: `length_groups`)
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
import warnings

import numpy as np
import tensorflow as tf

from audiocaps_tf.data.length_groups import padded_batches_by_length
from audiocaps_tf.data.mixup import CONNECTIVE, connective_ids, mix_pairs
from audiocaps_tf.data.sources import (  # re-exported: the pipelines' sources
    MANIFEST_FILE,
    TOKENIZER_DIR,
    CutClipWarning,
    DataDirSource,
    SkippedClipWarning,
    TFRecordSource,
    caption_count,
    clip_count,
    open_source,
    steps_per_epoch,
)
from audiocaps_tf.tokens.vocabulary import BOS_ID, PAD_ID

__all__ = [
    "MANIFEST_FILE",
    "TOKENIZER_DIR",
    "SkippedClipWarning",
    "CutClipWarning",
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

# Pairs held by the shuffle buffer by default: feature rows are a few kB to ~20 kB, a 10 s waveform 640 kB (and
# its log-mel frames 245 kB: they get the waveform's buffer).
DEFAULT_SHUFFLE_BUFFER = 4096
DEFAULT_WAVEFORM_SHUFFLE_BUFFER = 256
LARGE_FIELDS = ("waveform", "log_mel")
MIXUP_SEED_OFFSET = 1_000_003  # the seed of mixup's partner order and draws: the pipeline's seed plus this
# Shuffled training batches are cut from groups of this many batches sorted by clip length (`length_groups`);
# a group of waveforms or log-mel frames is held padded to its longest clip, so fewer of them.
LENGTH_GROUP_BATCHES = 8
LARGE_LENGTH_GROUP_BATCHES = 2


class MixupWarning(UserWarning):
    """Mixup asked for but off: the caption vocabulary cannot join two captions."""


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
    group_batches=None,
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
        group_batches: shuffled batches are cut from groups of this many batches sorted by clip length
            (`length_groups`: less padding); default LENGTH_GROUP_BATCHES, or LARGE_LENGTH_GROUP_BATCHES for
            waveforms and log-mel frames; 1: batches in shuffled order as they come. With `repeat`, a group may
            hold pairs of two epochs.
    """
    if max_caption_length is not None and max_caption_length < 1:
        raise ValueError(f"max_caption_length must be >= 1, got {max_caption_length}")
    if not 0.0 <= float(mixup) <= 1.0:
        raise ValueError(f"mixup must be a probability in [0, 1], got {mixup}")
    fields = source.resolve_fields(fields)
    large = any(field in LARGE_FIELDS for field in fields)
    if shuffle_buffer is None:
        shuffle_buffer = DEFAULT_WAVEFORM_SHUFFLE_BUFFER if large else DEFAULT_SHUFFLE_BUFFER
    if group_batches is None:
        group_batches = LARGE_LENGTH_GROUP_BATCHES if large else LENGTH_GROUP_BATCHES
    pairs = _pairs(source, fields, shuffle, seed, max_caption_length, shuffle_buffer)
    if mixup:
        pairs = _with_mixup(pairs, source, fields, float(mixup), vocabulary or source.vocabulary, seed,
                            max_caption_length, shuffle_buffer)
    if repeat:
        pairs = pairs.repeat()
    if shuffle and group_batches > 1 and fields:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        batches = padded_batches_by_length(pairs, fields[0], batch_size, group_batches,
                                           _padding_values(pairs.element_spec), seed, drop_remainder)
    else:
        batches = _padded_batch(pairs, batch_size, drop_remainder)
    return batches.prefetch(tf.data.AUTOTUNE)


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
