"""The TFRecord schema of prepared data: one `tf.train.Example` per clip.

Every example holds the clip's identity, all its captions (raw text, and token ids of the run's
vocabulary as a ragged list), its attribute words, and the features `prepare` was asked for:

    key            bytes          "{youtube_id}_{start_time}"
    youtube_id     bytes
    start_time     int64
    captions       bytes list     raw captions, as in the CSV
    caption_ids    int64 list     token ids of all captions, concatenated (each ends with <eos>)
    caption_lengths int64 list    ids per caption, to split caption_ids
    attributes     bytes list     attribute words (the labels column, or caption keywords)
    num_samples    int64          the clip's length in samples at 16 kHz, as stored (after `--max-seconds`);
                                  every feature covers it whole (-1 when parsing records written without it)
    waveform       bytes          int16 little-endian PCM, 16 kHz mono (feature "waveform")
    vggish_fc2     bytes          tf.io.serialize_tensor float32 [T, 128]   (feature "vggish")
    vggish_conv4   bytes          float32 [T, 512]                          (feature "vggish")
    vggish_conv3   bytes          float32 [T, 256]                          (feature "vggish")
    mfcc           bytes          float32 [F, 20]                           (feature "mfcc")
    log_mel        bytes          float32 [F, 64]                           (feature "log_mel": 10 ms frames)
"""

import numpy as np
import tensorflow as tf

from audiocaps_tf.features import PREPARE_FEATURES

# `prepare --features` names -> the record fields they write (`audiocaps_tf.features`).
FEATURE_FIELDS = PREPARE_FEATURES
TENSOR_FIELDS = ("vggish_fc2", "vggish_conv4", "vggish_conv3", "mfcc", "log_mel")
WAVEFORM_SCALE = 32767.0  # int16 full scale, symmetric so -1 and 1 both fit


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def encode_waveform(waveform):
    """float waveform in [-1, 1] -> int16 little-endian bytes (what the record stores)."""
    return np.round(np.clip(waveform, -1.0, 1.0) * WAVEFORM_SCALE).astype("<i2").tobytes()


def clip_example(clip, caption_ids, attributes, features, num_samples=None):
    """Serialized `tf.train.Example` of one clip.

    Args:
        clip: a `layout.Clip`.
        caption_ids: one list of token ids per caption of the clip.
        attributes: attribute words (str).
        features: {field: value}: "waveform" a float waveform, the tensor fields float32 arrays.
        num_samples: the clip's length in samples, which the features cover; None: the waveform's, if given.
    """
    fields = {
        "key": _bytes([clip.key.encode()]),
        "youtube_id": _bytes([clip.youtube_id.encode()]),
        "start_time": _ints([clip.start_time]),
        "captions": _bytes([caption.encode() for caption in clip.captions]),
        "caption_ids": _ints([i for ids in caption_ids for i in ids]),
        "caption_lengths": _ints([len(ids) for ids in caption_ids]),
        "attributes": _bytes([word.encode() for word in attributes]),
    }
    if num_samples is None and "waveform" in features:
        num_samples = len(features["waveform"])
    if num_samples is not None:
        fields["num_samples"] = _ints([int(num_samples)])
    for name, value in features.items():
        if name == "waveform":
            fields[name] = _bytes([encode_waveform(value)])
        elif name in TENSOR_FIELDS:
            fields[name] = _bytes([tf.io.serialize_tensor(np.asarray(value, np.float32)).numpy()])
        else:
            raise ValueError(f"unknown record field {name!r}; known: waveform, {', '.join(TENSOR_FIELDS)}")
    # deterministic=True: protobuf's map order otherwise changes from process to process, and a shard written
    # again (on resume, or by another run) must hold the same bytes.
    return tf.train.Example(features=tf.train.Features(feature=fields)).SerializeToString(deterministic=True)


def parse_clip_example(serialized, fields):
    """Parses one serialized example (a graph function, for tf.data) into a dict of tensors.

    Always returns key, youtube_id, start_time, num_samples, captions [N], caption_ids (tf.RaggedTensor [N, None])
    and attributes [M]; plus each of `fields` (record field names): waveform float32 [samples],
    tensor fields float32 [steps, channels].
    """
    spec = {
        "key": tf.io.FixedLenFeature([], tf.string),
        "youtube_id": tf.io.FixedLenFeature([], tf.string),
        "start_time": tf.io.FixedLenFeature([], tf.int64),
        "captions": tf.io.VarLenFeature(tf.string),
        "caption_ids": tf.io.VarLenFeature(tf.int64),
        "caption_lengths": tf.io.VarLenFeature(tf.int64),
        "attributes": tf.io.VarLenFeature(tf.string),
        "num_samples": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }
    for name in fields:
        spec[name] = tf.io.FixedLenFeature([], tf.string)
    parsed = tf.io.parse_single_example(serialized, spec)
    result = {name: parsed[name] for name in ("key", "youtube_id", "start_time", "num_samples")}
    result["captions"] = tf.sparse.to_dense(parsed["captions"])
    result["attributes"] = tf.sparse.to_dense(parsed["attributes"])
    result["caption_ids"] = tf.RaggedTensor.from_row_lengths(
        tf.sparse.to_dense(parsed["caption_ids"]), tf.sparse.to_dense(parsed["caption_lengths"])
    )
    for name in fields:
        if name == "waveform":
            pcm = tf.io.decode_raw(parsed[name], tf.int16, little_endian=True)
            result[name] = tf.cast(pcm, tf.float32) / WAVEFORM_SCALE
        else:
            result[name] = tf.ensure_shape(tf.io.parse_tensor(parsed[name], tf.float32), [None, None])
    return result
