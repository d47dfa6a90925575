"""The `caption_segments` serving signature: WAV bytes of any length, captioned window by window in the graph.

    caption_segments  audio          tf.string [batch]  WAV bytes, any rate and channel count, at most
                                                        `max_seconds` long (set at export)
                  ->  start, end     float32 [batch, S] seconds from the start of the file
                      caption        tf.string [batch, S]
                      score          float32 [batch, S] mean of the windows' length-normalised log-probabilities
                      segment_count  int32 [batch]      rows are padded past it ("" captions, zeros)

What `Captioner.caption_segments(path)` and `python -m audiocaps_tf.caption` give by default: 10-s windows one
after another (hop = window), the last one holding the rest of the file zero-padded, and neighbouring windows with
the same caption merged. Every window of the batch is decoded at once. Dense tensors and a count are what TF Serving
can return; the ops are core TensorFlow only.
"""

import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.audio.graph import wav_to_waveform

SEGMENTS_SIGNATURE = "caption_segments"
SEGMENT_OUTPUT_NAMES = ("start", "end", "caption", "score", "segment_count")
DEFAULT_MAX_SECONDS = 600.0
WINDOW_SAMPLES = int(round(params.CLIP_SECONDS * params.SAMPLE_RATE))


def wav_waveforms(audio, max_seconds):
    """tf.string [B] of WAV bytes -> 16 kHz waveforms as a RaggedTensor [B, None]; an InvalidArgumentError
    ("audio: ...") for a file longer than `max_seconds` or without samples."""
    waveforms = tf.map_fn(lambda contents: wav_to_waveform(contents, duration=None), audio,
                          fn_output_signature=tf.RaggedTensorSpec([None], tf.float32))
    lengths = tf.cast(waveforms.row_lengths(), tf.int32)
    max_samples = int(round(max_seconds * params.SAMPLE_RATE))
    checks = [
        tf.debugging.Assert(tf.size(audio) > 0, ["audio: the request holds no clips"]),
        tf.debugging.Assert(tf.reduce_all(lengths > 0), ["audio: a file holds no samples"]),
        tf.debugging.Assert(tf.reduce_all(lengths <= max_samples),
                            [f"audio: a file is longer than the maximum of {max_seconds:g} s set at export"]),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(waveforms.flat_values), lengths


def windows_of(samples, lengths):
    """Flat samples and the length of each file -> (windows float32 [W, WINDOW_SAMPLES], file of each window [W],
    start and end sample of each window [W])."""
    counts = (lengths + WINDOW_SAMPLES - 1) // WINDOW_SAMPLES  # >= 1: every file has a sample
    ragged = tf.RaggedTensor.from_row_lengths(samples, lengths)
    dense = ragged.to_tensor()
    padded = tf.pad(dense, [[0, 0], [0, tf.reduce_max(counts) * WINDOW_SAMPLES - tf.shape(dense)[1]]])
    grid = tf.reshape(padded, [tf.shape(padded)[0], -1, WINDOW_SAMPLES])
    present = tf.sequence_mask(counts, tf.shape(grid)[1])
    file_of = tf.cast(tf.where(present)[:, 0], tf.int32)
    index = tf.cast(tf.where(present)[:, 1], tf.int32)
    starts = index * WINDOW_SAMPLES
    ends = tf.minimum(starts + WINDOW_SAMPLES, tf.gather(lengths, file_of))
    return tf.boolean_mask(grid, present), file_of, starts, ends


def merge_windows(file_of, starts, ends, captions, scores, num_files):
    """Runs of one file's consecutive windows with the same caption -> dense segment tensors (module doc)."""
    same = tf.concat([[False], tf.equal(captions[1:], captions[:-1]) & tf.equal(file_of[1:], file_of[:-1])], 0)
    first = tf.logical_not(same)
    segment_id = tf.cumsum(tf.cast(first, tf.int32)) - 1
    count = tf.reduce_max(segment_id) + 1
    def seconds(samples):  # in float64 first: float32 division is compiled into an inexact multiplication
        return tf.cast(tf.cast(samples, tf.float64) / params.SAMPLE_RATE, tf.float32)

    values = {
        "start": seconds(tf.math.unsorted_segment_min(starts, segment_id, count)),
        "end": seconds(tf.math.unsorted_segment_max(ends, segment_id, count)),
        "caption": tf.boolean_mask(captions, first),
        "score": tf.math.unsorted_segment_mean(scores, segment_id, count),
    }
    segment_file = tf.boolean_mask(file_of, first)
    outputs = {name: tf.RaggedTensor.from_value_rowids(value, segment_file, nrows=num_files).to_tensor()
               for name, value in values.items()}
    outputs["segment_count"] = tf.math.bincount(segment_file, minlength=num_files, maxlength=num_files,
                                                dtype=tf.int32)
    return outputs


def caption_segments(caption, audio, max_seconds=DEFAULT_MAX_SECONDS):
    """The signature's body: `caption` maps float32 [W, WINDOW_SAMPLES] to {"caption", "score", ...}."""
    samples, lengths = wav_waveforms(audio, max_seconds)
    windows, file_of, starts, ends = windows_of(samples, lengths)
    captioned = caption(windows)
    return merge_windows(file_of, starts, ends, captioned["caption"], captioned["score"], tf.shape(audio)[0])
