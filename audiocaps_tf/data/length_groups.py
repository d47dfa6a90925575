"""Batches of clips of similar lengths, so a batch of a 3 s clip and a 30 s clip pads little of either.

    padded_batches_by_length(pairs, length_field, batch_size, group_batches, padding_values, seed, drop_remainder)

takes the (already shuffled) pairs `group_batches * batch_size` at a time, orders each such group by the length of
its clips (stable: clips of one length keep their order), cuts it into batches of `batch_size`, each zero-padded
to its own longest clip, and shuffles those batches within the group. Every group but the last gives exactly
`group_batches` full batches, so an epoch has as many batches as plain `padded_batch` would give it (one partial
batch at most, in the last group, dropped with `drop_remainder`: the pairs that came last, not the longest ones),
and `steps_per_epoch` holds. A group is held padded to its longest clip while it is cut: `group_batches` trades
memory for less padding.

The length of a pair is the time steps of its `length_field` (a feature field, or waveform samples). Padding is zero for
floats, PAD_ID for ids and b"" for strings, as `pipeline` pads; models mask it (`layers.masking`).
"""

import tensorflow as tf

__all__ = ["padded_batches_by_length"]

_LENGTHS = "__lengths__"


def _leading_sizes(structure):
    """The leading size of every tensor of rank >= 1 of `structure` (0 for scalars), in `tf.nest` order."""
    return tf.stack([tf.shape(t, tf.int32)[0] if t.shape.rank else tf.constant(0, tf.int32)
                     for t in tf.nest.flatten(structure)])


def padded_batches_by_length(pairs, length_field, batch_size, group_batches, padding_values, seed=None,
                             drop_remainder=False):
    """Batches of `pairs`, (inputs dict, targets) elements, grouped by the length of `inputs[length_field]`
    (module docstring); `padding_values` as `padded_batch` takes them. The batches of group g are shuffled with
    the seed pair (seed, g) (None: unseeded)."""
    if group_batches < 1:
        raise ValueError(f"group_batches must be >= 1, got {group_batches}")
    key_index = sorted(pairs.element_spec[0]).index(length_field)  # `tf.nest` flattens a dict in key order

    def with_lengths(inputs, targets):
        pair = (inputs, targets)
        return {"pair": pair, _LENGTHS: _leading_sizes(pair)}

    element_padding = {"pair": padding_values, _LENGTHS: tf.constant(0, tf.int32)}
    groups = pairs.map(with_lengths).padded_batch(group_batches * batch_size, padding_values=element_padding)

    def batches_of(index, group):
        size = tf.shape(group[_LENGTHS])[0]
        count = size // batch_size if drop_remainder else (size + batch_size - 1) // batch_size
        if drop_remainder:  # drop the pairs the shuffle put last, before sorting (else always the longest ones)
            size = count * batch_size
            group = tf.nest.map_structure(lambda t: t[:size], group)
        order = tf.argsort(group[_LENGTHS][:, key_index], stable=True)
        ordered = tf.nest.map_structure(lambda t: tf.gather(t, order), group)
        if seed is None:
            starts = tf.random.shuffle(tf.range(count)) * batch_size
        else:
            pair_seed = tf.stack([tf.constant(seed, tf.int64), index])
            starts = tf.random.experimental.stateless_shuffle(tf.range(count), seed=pair_seed) * batch_size
        flat = tf.nest.flatten(ordered["pair"])

        def batch(start):
            end = tf.minimum(start + batch_size, size)
            widths = tf.reduce_max(ordered[_LENGTHS][start:end], axis=0)  # the batch's own longest, per tensor
            cut = [t[start:end, : widths[i]] if t.shape.rank > 1 else t[start:end] for i, t in enumerate(flat)]
            return tf.nest.pack_sequence_as(ordered["pair"], cut)

        return tf.data.Dataset.from_tensor_slices(starts).map(batch)

    return groups.enumerate().flat_map(batches_of)
