"""The 1NN retrieval baselines as a Keras model, and pieces every captioner shares.

`NearestNeighbourCaptioner` (1NN-MFCC, 1NN-VGGish; paper section 5.2): a query clip gets the caption of its nearest
training clip by L2 distance between time-mean-pooled features (MFCCs, or VGGish fc2 embeddings).
`NearestNeighbourIndex` holds the training clips' pooled features and one int32 row per clip (caption ids here,
attribute ids in `AudioCaptioner`) and finds nearest neighbours in the graph with `keras.ops`.

Shared with `captioner.py`: the feature frontend (`FeatureFrontendMixin`: cached record fields, or the model's own
MFCC / log-mel + VGGish frontend on "waveform"), the time mask of zero-padded features, and `generate`'s input
handling.
"""

import numpy as np
import tensorflow as tf

import keras
from keras import ops

from audiocaps_tf import params
from audiocaps_tf.data.attributes import mean_pool
from audiocaps_tf.data.vocabulary import PAD_ID, Vocabulary, vocabulary_from_config
from audiocaps_tf.decoding import MAX_CAPTION_LENGTH
from audiocaps_tf.layers import LogMelFrontend, MFCCFrontend, VGGish
from audiocaps_tf.models.registry import FEATURE_SIZES, VGGISH_OUTPUTS, get_spec

__all__ = ["NearestNeighbourIndex", "NearestNeighbourCaptioner", "time_mask", "masked_mean"]

# Distances below EXACT_MATCH_TOLERANCE * (|q|^2 + |k|^2) count as the query itself (float32 rounding of the
# expanded |q|^2 - 2 q.k + |k|^2 is ~1e-7 of that sum).
EXACT_MATCH_TOLERANCE = 1e-6
_FAR = float(np.finfo(np.float32).max)  # distance of the sentinel row that an empty index returns


# ---------------------------------------------------------------------------------------------------- helpers


def time_mask(features):
    """[B, T, C] features -> [B, T] bool: True where a step has any non-zero value, step 0 always True.

    The input pipeline pads features with zeros to the longest clip of a batch; a real feature row is never exactly
    zero in every channel. Step 0 stays valid so a clip never has no step at all.
    """
    valid = ops.any(ops.not_equal(features, 0), axis=-1)
    first = ops.expand_dims(ops.equal(ops.arange(ops.shape(features)[1]), 0), 0)
    return ops.logical_or(valid, first)


def masked_mean(features, mask):
    """Mean of [B, T, C] features over the steps where mask [B, T] is True, in float32: [B, C]."""
    features = ops.cast(features, "float32")
    weights = ops.expand_dims(ops.cast(mask, "float32"), -1)
    return ops.sum(features * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


def as_vocabulary(vocabulary):
    """A `Vocabulary` from one or its `get_config()` dict."""
    if isinstance(vocabulary, Vocabulary):
        return vocabulary
    if isinstance(vocabulary, dict):
        return vocabulary_from_config(vocabulary)
    raise TypeError(f"vocabulary must be a Vocabulary or its config dict; got {type(vocabulary).__name__}")


def pooled_array(features):
    """Pooled float32 features [N, C] from anything `data.attributes.mean_pool` accepts (or a tensor)."""
    if hasattr(features, "numpy") and not isinstance(features, np.ndarray):
        features = features.numpy()
    return np.asarray(mean_pool(features), np.float32)


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


def input_batches(waveforms_or_inputs, batch_size, clip_seconds=params.CLIP_SECONDS):
    """`generate`'s input as batches of model inputs (dicts of tensors), in order.

    Waveforms (16 kHz mono float) are zero-padded at the end to the longest one, and to at least `clip_seconds`
    (the 10 s clips the models are trained on; None: the longest only). An inputs dict is sliced along its first
    axis; string arrays become tf.string tensors.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    if isinstance(waveforms_or_inputs, dict):
        values = {key: value for key, value in waveforms_or_inputs.items()}
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


def _to_tensor(value):
    if isinstance(value, tf.Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        return tf.constant(array.astype(bytes) if array.dtype.kind == "U" else array, dtype=tf.string)
    return tf.convert_to_tensor(array)


def cached_decode_function(model, beam_size, max_length):
    """A `tf.function` of `model.decode` for these decoding options, made once per model."""
    key = (int(beam_size), None if max_length is None else int(max_length))
    cache = model.__dict__.setdefault("_audiocaps_decode_functions", {})
    if key not in cache:
        cache[key] = tf.function(
            lambda inputs: model.decode(inputs, beam_size=key[0], max_length=key[1]), reduce_retracing=True
        )
    return cache[key]


class FeatureFrontendMixin:
    """Features of the record fields `self.spec.features`: cached in the inputs, or computed from "waveform".

    Needs `self.spec` set. Creates `self.mfcc_frontend` (MFCC models) or `self.log_mel` + `self.vggish` (VGGish
    models; `self.vggish` is None otherwise) with only the VGGish outputs the model needs.
    """

    def _create_frontend(self, vggish_trainable=False):
        spec = self.spec
        self.mfcc_frontend = None
        self.log_mel = None
        self.vggish = None
        if "mfcc" in spec.features:
            self.mfcc_frontend = MFCCFrontend(name="mfcc_frontend", dtype=self.dtype_policy)
        if spec.uses_vggish:
            self.log_mel = LogMelFrontend(name="log_mel", dtype=self.dtype_policy)
            self.vggish = VGGish(
                outputs=spec.vggish_outputs, trainable=vggish_trainable, name="vggish", dtype=self.dtype_policy
            )

    def _build_frontend(self):
        if self.vggish is not None:
            self.log_mel.build((None, None))
            self.vggish.build((None, None, params.EXAMPLE_FRAMES, params.NUM_MEL_BANDS))
        if self.mfcc_frontend is not None:
            self.mfcc_frontend.build((None, None))

    @property
    def required_fields(self):
        """The cached record fields the model consumes; it accepts "waveform" [B, N] (16 kHz) instead."""
        return tuple(self.spec.features)

    def features(self, inputs):
        """{record field: [B, T, C]}: the cached fields when `inputs` holds all of them, else from "waveform"."""
        fields = self.required_fields
        if all(field in inputs for field in fields):
            return {field: inputs[field] for field in fields}
        if "waveform" not in inputs:
            raise ValueError(
                f"{self.spec.name} needs the fields {list(fields)} or 'waveform'; the inputs hold {sorted(inputs)}"
            )
        waveform = inputs["waveform"]
        if self.mfcc_frontend is not None:
            return {"mfcc": self.mfcc_frontend(waveform)}
        computed = self.vggish(self.log_mel(waveform))
        return {field: computed[VGGISH_OUTPUTS[field]] for field in fields}

    def model_inputs(self, inputs):
        """The part of a pipeline element the model reads, all numeric: the cached feature fields when `inputs`
        holds them all (else "waveform"), "caption_in", and the attribute ids of semantic models.

        Map it over a dataset (`dataset.map(lambda x, y: (captioner.model_inputs(x), y))`) to drop the fields the
        model ignores, and needed under `tf.distribute` strategies: Keras 3 `fit` reduces the first batch across
        replicas to build the model, which fails on tf.string tensors such as "attributes".
        """
        fields = self.required_fields
        keep = list(fields) if all(field in inputs for field in fields) else ["waveform"]
        keep += [key for key in ("caption_in",) if key in inputs]
        return {key: inputs[key] for key in keep if key in inputs}

    def pooled_features(self, inputs, field=None):
        """The time-mean-pooled float32 features [B, C] of `field` (default: the first required field), over the
        non-padded steps: the query of the 1NN searches, and what `set_attribute_index` / `index` expect."""
        field = field or self.required_fields[0]
        features = self.features(inputs)[field]
        return masked_mean(features, time_mask(features))


# ---------------------------------------------------------------------------------------------------- the index


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


# ---------------------------------------------------------------------------------------------------- 1NN captioner


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class NearestNeighbourCaptioner(FeatureFrontendMixin, keras.Model):
    """1NN-MFCC / 1NN-VGGish (section 5.2): the caption of the nearest training clip.

    Holds its frontend (MFCCFrontend, or LogMelFrontend + VGGish fc2: `self.vggish`, load its weights with
    `load_vggish_weights(captioner.vggish, source)`), a `NearestNeighbourIndex` of the training clips' pooled
    features with their caption ids, and the captions' text (in the config, so `load_model` restores it whole).

    "Training" is indexing: `index(pooled_features, captions)` with the pooled features of the training clips
    (anything `data.attributes.mean_pool` accepts: [N, C], [N, T, C] or a list of [T, C]; compute them with
    `pooled_features(inputs)` to use this model's own frontend) and one caption per clip (the paper returns "its
    text"). Nothing is learnt: `trainable_weights` is empty.

    `call(inputs)` / `decode(inputs)`: inputs as the pipeline yields ("mfcc" / "vggish_fc2" [B, T, C], or "waveform"
    [B, N]). `decode` -> {"tokens" int32 [B, L] (the retrieved caption's ids, ending with <eos>), "scores" (0),
    "lengths", "attention" ([]), "indices" int32 [B] (row of the retrieved clip)}; `call` returns the tokens.
    `generate(waveforms or inputs)` -> the retrieved captions' text, as given to `index`.
    """

    is_retrieval = True
    uses_attributes = False
    attributes = None

    def __init__(self, model_name, vocabulary, captions=(), max_caption_length=MAX_CAPTION_LENGTH, **kwargs):
        super().__init__(**kwargs)
        spec = get_spec(model_name)
        if not spec.is_retrieval:
            raise ValueError(f"{model_name} is not a retrieval model; use AudioCaptioner / build_captioner")
        object.__setattr__(self, "spec", spec)
        self.model_name = model_name
        object.__setattr__(self, "vocabulary", as_vocabulary(vocabulary))
        object.__setattr__(self, "captions", tuple(str(caption) for caption in captions))
        self.max_caption_length = int(max_caption_length)
        self._create_frontend(vggish_trainable=False)
        self.caption_index = NearestNeighbourIndex(FEATURE_SIZES[spec.features[0]], name="caption_index")
        self.build()

    @property
    def id_to_token(self):
        return tuple(self.vocabulary.id_to_token)

    def build(self, input_shape=None):
        self._build_frontend()
        self.built = True

    def get_build_config(self):
        return None

    def index(self, pooled_features, captions):
        """Indexes the training clips: pooled features [N, C] (or what `mean_pool` accepts), one caption each."""
        pooled = pooled_array(pooled_features)
        captions = [caption.decode() if isinstance(caption, bytes) else str(caption) for caption in captions]
        if len(captions) != len(pooled):
            raise ValueError(f"{len(captions)} captions for {len(pooled)} clips")
        ids = [self.vocabulary.encode(c, add_eos=True, max_length=self.max_caption_length) for c in captions]
        width = max([len(row) for row in ids] + [1])
        values = np.full((len(ids), width), PAD_ID, np.int32)
        for row, caption_ids in enumerate(ids):
            values[row, : len(caption_ids)] = caption_ids
        self.caption_index.assign(pooled, values)
        object.__setattr__(self, "captions", tuple(captions))
        return self

    def retrieve(self, inputs):
        """int32 [B]: the row of the nearest indexed clip of every input clip."""
        return self.caption_index.nearest(self.pooled_features(inputs))

    def decode(self, inputs, beam_size=1, max_length=None):
        indices = self.retrieve(inputs)
        values = ops.convert_to_tensor(self.caption_index.index_values)
        values = ops.concatenate([values, ops.zeros((1, ops.shape(values)[1]), dtype="int32")], axis=0)
        tokens = ops.take(values, indices, axis=0)
        tokens = tokens[:, : (max_length or self.max_caption_length)]
        lengths = ops.sum(ops.cast(ops.not_equal(tokens, PAD_ID), "int32"), axis=-1)
        tokens = tokens[:, : ops.max(ops.concatenate([lengths, ops.zeros((1,), "int32")], axis=0))]
        return {
            "tokens": tokens,
            "scores": ops.zeros((ops.shape(tokens)[0],), dtype="float32"),
            "lengths": lengths,
            "attention": [],
            "indices": indices,
        }

    def call(self, inputs, training=False):
        return self.decode(inputs)["tokens"]

    def generate(self, waveforms_or_inputs, beam_size=1, max_length=None, batch_size=16,
                 clip_seconds=params.CLIP_SECONDS):
        """The caption of the nearest training clip for every clip (see `AudioCaptioner.generate` for inputs)."""
        if self.caption_index.size == 0 or not self.captions:
            raise ValueError(f"{self.model_name} has an empty index: call index(pooled_features, captions) first")
        decode = cached_decode_function(self, 1, max_length)
        captions = []
        for batch in input_batches(waveforms_or_inputs, batch_size, clip_seconds):
            indices = np.asarray(decode(batch)["indices"])
            captions.extend(self.captions[i] for i in indices)
        return captions

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "model_name": self.model_name,
            "vocabulary": self.vocabulary.get_config(),
            "captions": list(self.captions),
            "max_caption_length": self.max_caption_length,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
