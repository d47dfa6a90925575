"""What `generate` accepts, as batches of model inputs: waveforms zero-padded to a common length, or sliced dicts."""

import numpy as np
import tensorflow as tf

from keras import ops

from audiocaps_tf import params

__all__ = ["input_batches"]


def _waveform_rows(waveforms):
    """A [B, N] array, one 1-D waveform, or a sequence of 1-D waveforms -> list of float32 1-D arrays."""
    if isinstance(waveforms, (np.ndarray, tf.Tensor)) or hasattr(waveforms, "numpy"):
        array = np.asarray(waveforms, dtype=np.float32)
        if array.ndim == 1:
            return [array]
        if array.ndim == 2:
            return list(array)
        raise ValueError(f"waveforms must be [B, N] or [N]; got shape {array.shape}")
    rows = [np.asarray(row, dtype=np.float32) for row in waveforms]
    for row in rows:
        if row.ndim != 1:
            raise ValueError(f"each waveform must be 1-D (16 kHz mono); got shape {row.shape}")
    return rows


def _to_tensor(value):
    if isinstance(value, tf.Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        return tf.constant(array.astype(bytes) if array.dtype.kind == "U" else array, dtype=tf.string)
    return tf.convert_to_tensor(array)


def input_batches(waveforms_or_inputs, batch_size, clip_seconds=params.CLIP_SECONDS):
    """`generate`'s input as batches of model inputs (dicts of tensors), in order.

    Waveforms (16 kHz mono float) are zero-padded at the end to the longest one, and to at least `clip_seconds`
    (the 10 s clips the models are trained on; None: the longest only). An inputs dict is sliced along its first
    axis; string arrays become tf.string tensors.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    if isinstance(waveforms_or_inputs, dict):
        values = dict(waveforms_or_inputs)
        sizes = {int(ops.shape(value)[0]) for value in values.values()}
        if len(sizes) != 1:
            raise ValueError(f"the inputs have different batch sizes: {sorted(sizes)}")
        total = sizes.pop()
        for start in range(0, total, batch_size):
            yield {key: _to_tensor(value[start : start + batch_size]) for key, value in values.items()}
        return
    rows = _waveform_rows(waveforms_or_inputs)
    if not rows:
        return
    length = max(len(row) for row in rows)
    if clip_seconds:
        length = max(length, int(round(clip_seconds * params.SAMPLE_RATE)))
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        batch = np.zeros((len(chunk), length), np.float32)
        for i, row in enumerate(chunk):
            batch[i, : len(row)] = row
        yield {"waveform": tf.constant(batch)}
