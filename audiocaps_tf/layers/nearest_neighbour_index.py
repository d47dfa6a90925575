"""`NearestNeighbourIndex`: training clips' pooled features and one int32 row each, searched by L2 in the graph.

The 1NN baselines keep caption ids in one (`models.NearestNeighbourCaptioner`); the semantic encoders keep attribute
ids (`models.encoders.SemanticTopDownEncoder`).
"""

import numpy as np
import tensorflow as tf

import keras
from keras import ops

from audiocaps_tf.tokens.vocabulary import PAD_ID

__all__ = ["NearestNeighbourIndex", "EXACT_MATCH_TOLERANCE"]

# Distances below EXACT_MATCH_TOLERANCE * (|q|^2 + |k|^2) count as the query itself (float32 rounding of the
# expanded |q|^2 - 2 q.k + |k|^2 is ~1e-7 of that sum).
EXACT_MATCH_TOLERANCE = 1e-6
_FAR = float(np.finfo(np.float32).max)  # distance of the sentinel row that an empty index returns


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class NearestNeighbourIndex(keras.layers.Layer):
    """Training clips' pooled features keys [N, C] (float32) and one int32 row each, values [N, W].

    `nearest(queries [B, C])` -> int32 [B]: the index of the nearest key by L2 distance (argmin of squared
    distances |q|^2 - 2 q.k + |k|^2, in float32; ties go to the lowest index). With `exclude_exact=True` a key at
    (numerically) zero distance is skipped: a training clip querying an index of the training set does not find
    itself. `lookup(queries)` -> values [B, W] of the nearest keys. An empty index (or one whose only candidates are
    excluded) answers index N, whose values row is all `PAD_ID`.

    The keys and values live in two non-trainable `tf.Variable`s of dynamic size ([None, C] and [None, None]), so
    `assign(keys, values)` can resize them at any time without rebuilding the model or retracing functions.
    They are not Keras weights (Keras variables have a fixed shape): `save_own_variables` / `load_own_variables`
    store them under "keys" and "values" in `.keras` / `.weights.h5` files, and TF tracking puts them in a SavedModel.
    """

    def __init__(self, feature_dim, **kwargs):
        kwargs.pop("dtype", None)  # always float32 / int32
        super().__init__(dtype="float32", **kwargs)
        self.feature_dim = int(feature_dim)
        self.index_keys = tf.Variable(
            tf.zeros((0, self.feature_dim), tf.float32),
            shape=tf.TensorShape([None, self.feature_dim]),
            trainable=False,
            name="index_keys",
        )
        self.index_values = tf.Variable(
            tf.zeros((0, 1), tf.int32), shape=tf.TensorShape([None, None]), trainable=False, name="index_values"
        )
        object.__setattr__(self, "_size", 0)  # kept by assign(), so it is known while tracing too
        self.built = True

    @property
    def size(self):
        """Number of indexed clips (a Python int, also while tracing a function)."""
        return self._size

    def assign(self, keys, values):
        """Replaces the index: keys [N, C] float, values [N, W] int (W >= 1 is enforced by padding)."""
        keys = np.asarray(keys, np.float32)
        values = np.asarray(values, np.int32)
        if keys.ndim != 2 or keys.shape[1] != self.feature_dim:
            raise ValueError(f"keys must be [N, {self.feature_dim}]; got shape {keys.shape}")
        if values.ndim != 2 or len(values) != len(keys):
            raise ValueError(f"values must be [N={len(keys)}, W]; got shape {values.shape}")
        if values.shape[1] == 0:
            values = np.zeros((len(keys), 1), np.int32)
        self.index_keys.assign(keys)
        self.index_values.assign(values)
        object.__setattr__(self, "_size", len(keys))

    def nearest(self, queries, exclude_exact=False):
        keys = ops.convert_to_tensor(self.index_keys)
        queries = ops.cast(queries, "float32")
        query_norms = ops.sum(queries * queries, axis=-1, keepdims=True)  # [B, 1]
        key_norms = ops.expand_dims(ops.sum(keys * keys, axis=-1), 0)  # [1, N]
        distances = query_norms - 2.0 * ops.matmul(queries, ops.transpose(keys)) + key_norms  # [B, N]
        if exclude_exact:
            exact = distances <= EXACT_MATCH_TOLERANCE * (query_norms + key_norms)
            distances = ops.where(exact, float("inf"), distances)
        sentinel = ops.full((ops.shape(queries)[0], 1), _FAR, dtype="float32")
        return ops.cast(ops.argmin(ops.concatenate([distances, sentinel], axis=-1), axis=-1), "int32")

    def lookup(self, queries, exclude_exact=False):
        values = ops.convert_to_tensor(self.index_values)
        padded = ops.concatenate([values, ops.zeros((1, ops.shape(values)[1]), dtype="int32") + PAD_ID], axis=0)
        return ops.take(padded, self.nearest(queries, exclude_exact), axis=0)

    def call(self, queries, exclude_exact=False):
        return self.lookup(queries, exclude_exact)

    def save_own_variables(self, store):
        store["keys"] = self.index_keys.numpy()
        store["values"] = self.index_values.numpy()

    def load_own_variables(self, store):
        self.assign(np.asarray(store["keys"]), np.asarray(store["values"]))

    def get_config(self):
        config = super().get_config()
        config.update(feature_dim=self.feature_dim)
        return config
