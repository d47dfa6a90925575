"""The captioning loss: label-smoothed cross-entropy over the caption tokens, <pad> ignored.

    loss = sum over non-<pad> tokens of -sum_v q_v log p_v  /  number of non-<pad> tokens in the (global) batch
    q = (1 - eps) * one_hot(y) + eps / V                      (eps = 0.02 in the authors' code)

Keras' `SparseCategoricalCrossentropy` has `ignore_class` but no label smoothing, and its mean is over the
tokens of one replica. Under a `tf.distribute` strategy with R replicas Keras expects each replica's loss to be
its share of the global loss (it sums the replicas' gradients and multiplies the reported loss by R). So each
replica returns its token-loss *sum* divided by the token count of the *global* batch (an all-reduce of the
counts): the summed gradient is exactly that of the global token mean, whatever the split of tokens between
replicas, and a MirroredStrategy run reproduces a one-device run on the same global batches up to float rounding.
"""

import keras
import tensorflow as tf
from keras import ops

from audiocaps_tf.tokens.vocabulary import PAD_ID

__all__ = ["DEFAULT_LABEL_SMOOTHING", "MaskedSmoothedCrossEntropy", "smoothed_token_losses"]

DEFAULT_LABEL_SMOOTHING = 0.02


def smoothed_token_losses(targets, logits, label_smoothing=DEFAULT_LABEL_SMOOTHING):
    """Per-token label-smoothed cross-entropy [B, L] (float32) of int `targets` [B, L] under `logits` [B, L, V]."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    targets = ops.cast(targets, "int32")
    target_log_prob = ops.squeeze(ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), axis=-1), -1)
    if not label_smoothing:
        return -target_log_prob
    return -(1.0 - label_smoothing) * target_log_prob - label_smoothing * ops.mean(log_probs, axis=-1)


def _global_count(local_count):
    """(count summed over the replicas, number of replicas) in a replica context; the local count otherwise."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    context = tf.distribute.get_replica_context()
    if replicas > 1 and context is not None:
        return context.all_reduce(tf.distribute.ReduceOp.SUM, local_count), replicas
    return local_count, 1


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class MaskedSmoothedCrossEntropy(keras.losses.Loss):
    """Label-smoothed sparse cross-entropy averaged over the tokens that are not `ignore_class` (<pad>).

    `y_true`: int ids [B, L] (padded with <pad>); `y_pred`: logits [B, L, V]. `call` gives the per-token losses
    [B, L] with 0 at padding; calling the loss gives the scalar token mean described in the module docstring
    (sample weights and Keras masks carried by `y_pred` are not used: padding is read from `y_true`).
    """

    def __init__(self, label_smoothing=DEFAULT_LABEL_SMOOTHING, ignore_class=PAD_ID,
                 name="masked_smoothed_cross_entropy", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.ignore_class = int(ignore_class)

    def _mask(self, y_true):
        return ops.cast(ops.not_equal(ops.cast(y_true, "int32"), self.ignore_class), "float32")

    def call(self, y_true, y_pred):
        return smoothed_token_losses(y_true, y_pred, self.label_smoothing) * self._mask(y_true)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with tf.name_scope(self.name):
            mask = self._mask(y_true)
            local_sum = ops.sum(smoothed_token_losses(y_true, y_pred, self.label_smoothing) * mask)
            count, _ = _global_count(tf.stop_gradient(ops.sum(mask)))
            return local_sum / ops.maximum(count, 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "ignore_class": self.ignore_class}
