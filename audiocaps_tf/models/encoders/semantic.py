"""The top-down encoder with semantic attention over attribute words (eqs. 4-9): the paper's best models.

    attribute words -> ids (`StringLookup`: "" -> 0, unknown -> 1) -> `SemanticEncoder` (eq. 4) -> h_w [B, M, D]
    "semtempatt":  memories [h_w, h_a2]: the decoder attends over words and time separately (You et al. 2016)
    "alignedatt":  h_flow = `AttentionFlow`(h_a2, h_w) [B, T, 4D] (eqs. 5-9), a context biLSTM over it, memories
                   [h_w, [context; h_flow] [B, T, 5D]] (the authors' code)

Where the attribute words come from (`attributes`, Table 3):
  - "gt": inputs["attributes"] (tf.string [B, M], padded with b"": the clip's own labels) when present;
  - "1nn": inputs["neighbour_attributes"] when present (the nearest training clip's, precomputed by the trainer);
  - otherwise (at inference on raw audio, and in serving) the encoder finds them in its attribute index: the
    attribute ids of the training clip whose time-mean-pooled fc2 features are nearest (L2, in the graph); with
    `training=True` an exact match (the clip itself) is skipped. `set_attribute_index` fills it.
Integer inputs are taken as attribute ids already: `model_inputs` converts the strings (in a tf.data map), which
`fit` under a tf.distribute strategy needs (it cannot handle tf.string inputs).
"""

import warnings

import numpy as np

import keras
from keras import ops

from audiocaps_tf.features import FEATURES
from audiocaps_tf.layers.attention_flow import AttentionFlow
from audiocaps_tf.layers.masking import masked_mean, time_mask
from audiocaps_tf.layers.nearest_neighbour_index import NearestNeighbourIndex
from audiocaps_tf.layers.semantic_encoder import SemanticEncoder
from audiocaps_tf.layers.sequence_encoder import BiLSTMEncoder
from audiocaps_tf.models.encoders.top_down import TopDownAudioEncoder

__all__ = ["SemanticTopDownEncoder", "SEMANTIC_ATTENTIONS", "ATTRIBUTE_SOURCES"]

SEMANTIC_ATTENTIONS = ("semtempatt", "alignedatt")
# Where semantic models get their attribute words (section 4.2; Table 3): the nearest training clip's labels, or
# the clip's own ground-truth labels (an upper bound).
ATTRIBUTE_SOURCES = ("1nn", "gt")


def _words(attribute_vocabulary):
    words = [w.decode() if isinstance(w, bytes) else str(w) for w in attribute_vocabulary]
    if not words or "" in words or len(set(words)) != len(words):
        raise ValueError("attribute_vocabulary must be distinct, non-empty words")
    return tuple(words)


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class SemanticTopDownEncoder(TopDownAudioEncoder):
    """`TopDownAudioEncoder` plus semantic attention (module docstring); two memories, words first.

    Args: `fields`, `units`, `dropout` of `TopDownAudioEncoder`; `semantic` ("semtempatt" or "alignedatt");
    `attribute_vocabulary` (the attribute words); `attributes` ("1nn" or "gt"); `attribute_embedding_dim`;
    `word_dropout` (the semantic encoder's), `context_dropout` (the context biLSTM's); `audio_to_word` (eq. 7:
    "weighted", or "max" as the authors' code).
    """

    def __init__(self, attribute_vocabulary, semantic="alignedatt", attributes="1nn", attribute_embedding_dim=300,
                 word_dropout=0.25, context_dropout=0.2, audio_to_word="weighted", **kwargs):
        super().__init__(**kwargs)
        if semantic not in SEMANTIC_ATTENTIONS:
            raise ValueError(f"semantic must be one of {SEMANTIC_ATTENTIONS}; got {semantic!r}")
        if attributes not in ATTRIBUTE_SOURCES:
            raise ValueError(f"attributes must be one of {ATTRIBUTE_SOURCES}; got {attributes!r}")
        self.semantic = semantic
        self.attributes = attributes
        object.__setattr__(self, "attribute_vocabulary", _words(attribute_vocabulary))
        self.attribute_embedding_dim = int(attribute_embedding_dim)
        self.word_dropout = float(word_dropout)
        self.context_dropout = float(context_dropout)
        self.audio_to_word = audio_to_word
        policy = self.dtype_policy
        self.attribute_lookup = keras.layers.StringLookup(
            vocabulary=list(self.attribute_vocabulary), mask_token="", num_oov_indices=1, name="attribute_lookup"
        )
        self.semantic_encoder = SemanticEncoder(
            len(self.attribute_vocabulary) + 2,  # + the mask ("") and OOV ids
            embedding_dim=self.attribute_embedding_dim, units=self.units, dropout=self.word_dropout,
            name="semantic_encoder", dtype=policy,
        )
        self.attribute_index = NearestNeighbourIndex(FEATURES["vggish_fc2"].size, name="attribute_index")
        self.attention_flow = self.context_encoder = None
        if semantic == "alignedatt":
            self.attention_flow = AttentionFlow(audio_to_word=audio_to_word, name="attention_flow", dtype=policy)
            self.context_encoder = BiLSTMEncoder(self.units, dropout=self.context_dropout, name="context_encoder",
                                                 dtype=policy)

    @classmethod
    def from_spec(cls, spec, hyper, dtype=None, attribute_vocabulary=None, attributes=None):
        if attribute_vocabulary is None:
            raise ValueError(f"{spec.name} needs an attribute_vocabulary (the attribute words)")
        return cls(attribute_vocabulary, semantic=spec.semantic, attributes=attributes or "1nn",
                   attribute_embedding_dim=hyper["attribute_embedding_dim"], word_dropout=hyper["word_dropout"],
                   context_dropout=hyper["context_dropout"], audio_to_word=hyper["audio_to_word"],
                   fields=spec.features, units=hyper["units"], dropout=hyper["encoder_dropout"],
                   name="top_down_encoder", dtype=dtype)

    @property
    def memory_depths(self):
        depth = 2 * self.units
        return (depth, 5 * depth) if self.semantic == "alignedatt" else (depth, depth)  # h_w; [context; h_flow]

    @property
    def attribute_key(self):
        """The inputs key holding the attribute words this encoder reads when present."""
        return "attributes" if self.attributes == "gt" else "neighbour_attributes"

    def build_encoder(self):
        super().build_encoder()
        depth = 2 * self.units
        self.attribute_lookup.build((None, None))
        self.semantic_encoder.build((None, None))
        if self.attention_flow is not None:
            self.attention_flow.build({"audio": (None, None, depth), "words": (None, None, depth)})
            self.context_encoder.build((None, None, 4 * depth))

    # ------------------------------------------------------------------ attribute words

    def _attribute_id(self, word):
        if isinstance(word, bytes):
            word = word.decode()
        if word == "":
            return 0
        index = self.__dict__.setdefault("_attribute_ids", {w: i + 2 for i, w in enumerate(self.attribute_vocabulary)})
        return index.get(word, 1)

    def set_attribute_index(self, train_pooled_features, train_attribute_lists):
        """Replaces the attribute index: the training clips' pooled fc2 features [N, 128] and their attribute
        words (N lists of strings). It is saved with the model."""
        pooled = np.asarray(train_pooled_features, np.float32)
        rows = [[i for i in (self._attribute_id(w) for w in words) if i != 0] for words in train_attribute_lists]
        if len(rows) != len(pooled):
            raise ValueError(f"{len(rows)} attribute lists for {len(pooled)} clips")
        values = np.zeros((len(rows), max([len(row) for row in rows] + [1])), np.int32)
        for r, row in enumerate(rows):
            values[r, : len(row)] = row
        self.attribute_index.assign(pooled, values)

    def attribute_ids(self, inputs, features, training=False):
        """Attribute ids [B, M] int32 (0 = padding); see the module docstring."""
        key = self.attribute_key
        if key in inputs:
            words = inputs[key]
            if keras.backend.standardize_dtype(words.dtype) == "string":
                return ops.cast(self.attribute_lookup(words), "int32")
            return ops.cast(words, "int32")
        if self.attribute_index.size == 0:
            warnings.warn(
                f"{self.name}: no inputs['{key}'] and an empty attribute index, so the clips get no attribute "
                "words; call set_attribute_index(train_pooled_fc2, train_attribute_lists) first",
                stacklevel=3,
            )
        fc2 = features["vggish_fc2"]
        queries = masked_mean(fc2, time_mask(fc2))
        return self.attribute_index.lookup(ops.stop_gradient(queries), exclude_exact=bool(training))

    def model_inputs(self, inputs):
        key = self.attribute_key
        if key not in inputs:
            return {}
        words = inputs[key]
        if keras.backend.standardize_dtype(words.dtype) == "string":
            words = ops.cast(self.attribute_lookup(words), "int32")
        return {key: words}

    def check_ready(self):
        if self.attribute_index.size == 0:
            raise ValueError("has an empty attribute index, so clips would get no attribute words: call "
                             "set_attribute_index(train_pooled_fc2, train_attribute_lists)")

    # ------------------------------------------------------------------ encoding

    def encode(self, features, inputs=None, training=False):
        sequence, mask, state = self.encode_audio(features, training)
        ids = self.attribute_ids(inputs or {}, features, training)
        words = self.semantic_encoder(ids, training=training)
        word_mask = ops.not_equal(ids, 0)
        if self.attention_flow is not None:
            flow = self.attention_flow({"audio": sequence, "words": words},
                                       mask={"audio": mask, "words": word_mask}, training=training)
            context = self.context_encoder(flow, mask=mask, training=training)["sequence"]
            memories = [words, ops.concatenate([context, flow], axis=-1)]
        else:
            memories = [words, sequence]
        return {"memories": memories, "memory_masks": [word_mask, mask], "initial_state": state,
                "attribute_ids": ids}

    def get_config(self):
        return {
            **super().get_config(),
            "attribute_vocabulary": list(self.attribute_vocabulary),
            "semantic": self.semantic,
            "attributes": self.attributes,
            "attribute_embedding_dim": self.attribute_embedding_dim,
            "word_dropout": self.word_dropout,
            "context_dropout": self.context_dropout,
            "audio_to_word": self.audio_to_word,
        }
