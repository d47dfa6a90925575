"""Mixup for captioning: with probability p, a training pair becomes two clips one after the other, "A then B".

For a pair (clip A, caption a) and a partner pair (clip B, caption b) drawn from an independently shuffled
stream of the training pairs:

    every time field  x = concat(x_A[: T_A - T_A // 2], x_B[: T_B // 2]) along time (waveform, MFCC, log-mel,
                      VGGish fc2 / conv4 / conv3): the first half of A, then the first half of B, the length of A
                      when the two are as long
    caption           ids(a) without <eos>, ids("then"), ids(b) with <eos>: "a then b"
    attributes        the words of both clips, each once

Why a concatenation: a sum of the two waveforms would be the physical mix, but the cached features are log
energies (MFCC, log-mel) or network activations (VGGish), whose sum or mean is no feature of any sound;
consecutive halves are what either would be of the clip "A then B", with one rule for every field, waveforms
included, so a model trained on waveforms or on cached features sees the same mixes. The caption is a plain
caption of the vocabulary; a pair whose joined caption would exceed `max_caption_length` ids stays unmixed.
Training only: `pipeline.training_dataset(..., mixup=p)`; evaluation datasets never mix.
"""

import tensorflow as tf

from audiocaps_tf.tokens.vocabulary import BOS_ID, UNK_ID

__all__ = ["CONNECTIVE", "connective_ids", "mix_pairs"]

CONNECTIVE = "then"
DRAW_RESOLUTION = 2**24  # a mixing draw is one of this many equally likely values


def connective_ids(vocabulary, word=CONNECTIVE):
    """The ids of `word` in the caption vocabulary, or None when it has none or an unknown token among them."""
    ids = vocabulary.encode(word, add_eos=False)
    return ids if ids and UNK_ID not in ids else None


def _first_part(x, keep_ceil):
    steps = tf.shape(x)[0]
    return x[: steps - steps // 2] if keep_ceil else x[: steps // 2]


def _mix(a, b, connective):
    """The pair "A then B" of two (inputs, targets) pairs (module docstring)."""
    (inputs_a, targets_a), (inputs_b, targets_b) = a, b
    targets = tf.concat([targets_a[:-1], connective, targets_b], axis=0)
    mixed = {}
    for name, value in inputs_a.items():
        if name == "caption_in":
            mixed[name] = tf.concat([tf.constant([BOS_ID], targets.dtype), targets[:-1]], axis=0)
        elif value.dtype == tf.string:  # attribute words
            mixed[name] = tf.unique(tf.concat([value, inputs_b[name]], axis=0)).y
        else:
            mixed[name] = tf.concat([_first_part(value, True), _first_part(inputs_b[name], False)], axis=0)
    return mixed, targets


def mix_pairs(pairs, partners, probability, connective, max_caption_length=None, seed=0):
    """`pairs` ((inputs, targets) elements, unbatched) with each one mixed with the next element of `partners`
    with probability `probability`, drawn from a `tf.data.Dataset.random(seed)` stream, anew on every pass.

    `partners` must not end before `pairs` (repeat it); `connective` is `connective_ids`' list.
    """
    connective = tf.constant(connective, tf.int32)
    limit = None if max_caption_length is None else int(max_caption_length)
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def choose(a, b, draw):
        mix = tf.cast(draw % DRAW_RESOLUTION, tf.float64) < probability * DRAW_RESOLUTION
        if limit is not None:
            joined = tf.shape(a[1])[0] - 1 + tf.shape(connective)[0] + tf.shape(b[1])[0]
            mix = tf.logical_and(mix, joined <= limit)
        return tf.cond(mix, lambda: _mix(a, b, tf.cast(connective, a[1].dtype)), lambda: a)

    return tf.data.Dataset.zip(pairs, partners, draws).map(choose, num_parallel_calls=tf.data.AUTOTUNE)
