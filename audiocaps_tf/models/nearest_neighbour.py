"""`NearestNeighbourCaptioner`: the 1NN-MFCC / 1NN-VGGish baselines (section 5.2) as a captioner.

A query clip gets the caption of its nearest training clip by L2 distance between time-mean-pooled features
(MFCCs, or VGGish fc2 embeddings), found in the graph by a `NearestNeighbourIndex`. "Training" is indexing:
nothing is learnt (`trainable_weights` is empty). `python -m audiocaps_tf.evaluate retrieval` and `fit --model
1nn-*` both run this model.
"""

import numpy as np
import tensorflow as tf

import keras
from keras import ops

from audiocaps_tf.decoding import MAX_CAPTION_LENGTH
from audiocaps_tf.features import feature
from audiocaps_tf.neighbours import pooled_array
from audiocaps_tf.layers.nearest_neighbour_index import NearestNeighbourIndex
from audiocaps_tf.models import legacy
from audiocaps_tf.models.task import Captioner
from audiocaps_tf.tokens.vocabulary import PAD_ID

__all__ = ["NearestNeighbourCaptioner"]


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class NearestNeighbourCaptioner(Captioner):
    """The caption of the nearest training clip.

    Holds its preprocessor (one field: "mfcc" or "vggish_fc2"), a `NearestNeighbourIndex` of the training clips'
    pooled features with their caption ids, and the captions' text (in the config, so `load_model` restores it
    whole). `index(pooled_features, captions)` fills it, with the pooled features of the training clips
    (anything `neighbours.mean_pool` accepts; `pooled_features(inputs)` computes them with this model's own
    preprocessor) and one caption per clip (the paper returns "its text").

    `decode(inputs)` -> {"tokens" int32 [B, L] (the retrieved caption's ids, ending with <eos>), "scores" (0),
    "lengths", "attention" ([]), "indices" int32 [B] (row of the retrieved clip)}; `call` returns the tokens.
    `generate(waveforms or inputs)` and the serving graph answer the retrieved captions' text, as given to `index`.
    """

    def __init__(self, preprocessor, vocabulary, captions=(), model_name=None,
                 max_caption_length=MAX_CAPTION_LENGTH, **kwargs):
        super().__init__(preprocessor, vocabulary, model_name=model_name, max_caption_length=max_caption_length,
                         **kwargs)
        if len(self.preprocessor.fields) != 1:
            raise ValueError(f"a nearest-neighbour captioner reads one feature; got {list(self.preprocessor.fields)}")
        object.__setattr__(self, "captions", tuple(str(caption) for caption in captions))
        self.caption_index = NearestNeighbourIndex(feature(self.preprocessor.fields[0]).size, name="caption_index")
        self.build()

    def build(self, input_shape=None):
        self.preprocessor.build()
        self.built = True

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

    def check_ready(self):
        if self.caption_index.size == 0 or not self.captions:
            raise ValueError(f"{self.model_name} has an empty caption index: call index(pooled_features, captions)")

    def retrieve(self, inputs):
        """int32 [B]: the row of the nearest indexed clip of every input clip."""
        return self.caption_index.nearest(self.pooled_features(inputs))

    def decode(self, inputs, beam_size=None, max_length=None, no_repeat_ngram_size=None):
        if self.resolve_no_repeat(no_repeat_ngram_size):
            raise ValueError("no_repeat_ngram_size: a 1NN captioner returns a training caption as it is; use 0")
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

    def captions_of(self, outputs):
        """The retrieved captions' own text (words outside the vocabulary included)."""
        return [self.captions[i] for i in np.asarray(outputs["indices"]).reshape(-1)]

    def caption_strings(self, outputs):
        # One extra "" row stands for the empty index's sentinel.
        return tf.gather(tf.constant(list(self.captions) + [""], tf.string), outputs["indices"])

    def generate(self, waveforms_or_inputs, beam_size=None, max_length=None, batch_size=16, **kwargs):
        """The caption of the nearest training clip for every clip (inputs as `Captioner.generate`)."""
        self.check_ready()
        return super().generate(waveforms_or_inputs, beam_size=1, max_length=max_length, batch_size=batch_size,
                                **kwargs)

    def get_config(self):
        self.drop_legacy_layout()
        return {**self.base_config(), "captions": list(self.captions)}

    @classmethod
    def from_config(cls, config):
        if legacy.is_legacy_config(config):
            return legacy.from_legacy_config(cls, config)
        return cls(**config)
