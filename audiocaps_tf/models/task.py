"""`Captioner`: the task every captioner is, keras-hub style: a preprocessor, a model, a tokenizer, `generate`.

    waveform -> preprocessor (features) -> [encoder -> decoder | nearest-neighbour index] -> tokens -> text

The base owns what all captioners share: the `AudioPreprocessor` and the caption vocabulary, `generate` (text
for waveforms or input dicts, in batches, through one cached `tf.function` of `decode` per decoding option),
detokenisation in Python (`captions_of`) and in the serving graph (`caption_strings`), `check_ready`, the cached or
computed features and the pooled features of the 1NN searches. Subclasses implement `decode`. Training, export,
serving and evaluation use only this interface, so none of them asks which kind of captioner it holds.

Models saved by version 0.1 (before this split) keep their weight layout while loaded (`models.legacy`); saving one
again writes the current layout.
"""

import numpy as np
import tensorflow as tf

import keras

from audiocaps_tf import params
from audiocaps_tf.decoding import MAX_CAPTION_LENGTH
from audiocaps_tf.models.inputs import input_batches
from audiocaps_tf.models.preprocessor import AudioPreprocessor
from audiocaps_tf.models.segments import Segment, caption_windows, merge_segments, source_windows, window_lengths
from audiocaps_tf.tokens.graph_detokenizer import graph_detokenizer
from audiocaps_tf.tokens.vocabulary import Vocabulary, vocabulary_from_config

__all__ = ["Captioner", "as_vocabulary"]


def as_vocabulary(vocabulary):
    """A `Vocabulary` from one or its `get_config()` dict."""
    if isinstance(vocabulary, Vocabulary):
        return vocabulary
    if isinstance(vocabulary, dict):
        return vocabulary_from_config(vocabulary)
    raise TypeError(f"vocabulary must be a Vocabulary or its config dict; got {type(vocabulary).__name__}")


def as_layer(value):
    """A layer, or one rebuilt from its serialized config."""
    return keras.saving.deserialize_keras_object(value) if isinstance(value, dict) else value


class Captioner(keras.Model):
    """Base of the captioners (module docstring). `model_name` is its registry name, if it has one."""

    uses_attributes = False
    attributes = None

    def __init__(self, preprocessor, vocabulary, model_name=None, max_caption_length=MAX_CAPTION_LENGTH, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "vocabulary", as_vocabulary(vocabulary))
        self.model_name = model_name
        self.max_caption_length = int(max_caption_length)
        preprocessor = as_layer(preprocessor)
        if not isinstance(preprocessor, AudioPreprocessor):
            raise TypeError(f"preprocessor must be an AudioPreprocessor; got {type(preprocessor).__name__}")
        self.preprocessor = preprocessor

    # ------------------------------------------------------------------ features

    @property
    def vggish(self):
        """The VGGish network of VGGish models (None for the others): `load_vggish_weights(model.vggish, source)`."""
        return self.preprocessor.vggish

    @property
    def required_fields(self):
        """The cached record fields the model consumes; it accepts "waveform" [B, N] (16 kHz) instead."""
        return self.preprocessor.fields

    @property
    def id_to_token(self):
        """Token of every caption id, in id order."""
        return tuple(self.vocabulary.id_to_token)

    def features(self, inputs):
        """{record field: [B, T, C]}: the cached fields when `inputs` holds all of them, else from "waveform"."""
        return self.preprocessor.features(inputs)

    def pooled_features(self, inputs, field=None):
        """Time-mean-pooled float32 features [B, C] of `field` (default: the first required one), over the
        non-padded steps: the query of the 1NN searches, and what `index` / `set_attribute_index` expect."""
        return self.preprocessor.pooled(inputs, field)

    def model_inputs(self, inputs):
        """The part of a pipeline element the model reads, all numeric: the cached feature fields when `inputs`
        holds them all (else "waveform"), "caption_in", and what the encoder reads besides (attribute ids).

        Map it over a dataset (`dataset.map(lambda x, y: (captioner.model_inputs(x), y))`) to drop the fields the
        model ignores; needed under `tf.distribute` strategies, whose Keras `fit` cannot take tf.string tensors.
        """
        selected = self.preprocessor.model_inputs(inputs)
        if "caption_in" in inputs:
            selected["caption_in"] = inputs["caption_in"]
        return selected

    # ------------------------------------------------------------------ captions

    def decode(self, inputs, beam_size=None, max_length=None, no_repeat_ngram_size=None):
        """Captions as ids, graph-friendly: {"tokens" int32 [B, L], "scores" float32 [B], "lengths" int32 [B],
        "attention" [...], and what the subclass adds}. beam_size 1: greedy; None: the model's own
        (`decoding_beam_size`). no_repeat_ngram_size n > 0: no n-gram twice in a caption
        (`audiocaps_tf.decoding`); None: the model's own (`decoding_no_repeat_ngram_size`)."""
        raise NotImplementedError

    @property
    def decoding_beam_size(self):
        """The beam width the model decodes with when a call does not say (1: greedy)."""
        return 1

    def resolve_beam(self, beam_size):
        """`beam_size` as an int, the model's own when None; a ValueError below 1."""
        beam_size = int(self.decoding_beam_size if beam_size is None else beam_size)
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1; got {beam_size}")
        return beam_size

    @property
    def decoding_no_repeat_ngram_size(self):
        """The no-repeat n-gram size the model decodes with when a call does not say (0: off)."""
        return 0

    def resolve_no_repeat(self, no_repeat_ngram_size):
        """`no_repeat_ngram_size` as an int, the model's own when None."""
        if no_repeat_ngram_size is None:
            return int(self.decoding_no_repeat_ngram_size)
        return int(no_repeat_ngram_size)

    def check_ready(self):
        """Raises ValueError when the model cannot caption yet (an empty index); nothing by default."""

    def detokenize(self, tokens):
        """Text of every row of token ids (stops at <eos>, drops <pad>/<bos>)."""
        return [self.vocabulary.decode(row) for row in np.asarray(tokens)]

    def captions_of(self, outputs):
        """The text of `decode`'s outputs (NumPy or eager tensors), one string per clip."""
        return self.detokenize(outputs["tokens"])

    def caption_strings(self, outputs):
        """The text of `decode`'s outputs inside a graph (core TF ops): tf.string [B]."""
        detokenize = self.__dict__.get("_graph_detokenizer")
        if detokenize is None:
            detokenize = self.__dict__["_graph_detokenizer"] = graph_detokenizer(self.vocabulary)
        return detokenize(tf.cast(outputs["tokens"], tf.int32))

    def decode_function(self, beam_size=None, max_length=None, no_repeat_ngram_size=None):
        """A `tf.function` of `decode` for these options, made once per model (shapes relaxed)."""
        key = (self.resolve_beam(beam_size), None if max_length is None else int(max_length),
               self.resolve_no_repeat(no_repeat_ngram_size))
        cache = self.__dict__.setdefault("_decode_functions", {})
        if key not in cache:
            cache[key] = tf.function(
                lambda inputs: self.decode(inputs, beam_size=key[0], max_length=key[1], no_repeat_ngram_size=key[2]),
                reduce_retracing=True,
            )
        return cache[key]

    def generate(self, waveforms_or_inputs, beam_size=None, max_length=None, batch_size=16,
                 clip_seconds=params.CLIP_SECONDS, no_repeat_ngram_size=None):
        """Captions (text) for clips.

        waveforms_or_inputs: 16 kHz mono audio, a float array [B, N] or a list of 1-D arrays (zero-padded at the
        end to the longest one, and to at least `clip_seconds`, the 10 s the models are trained on; None: to the
        longest only), or an inputs dict of arrays as `decode` takes (cached features, "attributes", ...).
        Decodes `batch_size` clips at a time. beam_size 1: greedy; None: the model's own (`decoding_beam_size`).
        no_repeat_ngram_size n > 0: no caption holds the same n-gram twice; None: the model's own setting
        (`decoding_no_repeat_ngram_size`).
        """
        decode = self.decode_function(beam_size, max_length, no_repeat_ngram_size)
        captions = []
        for batch in input_batches(waveforms_or_inputs, batch_size, clip_seconds):
            captions.extend(self.captions_of(tf.nest.map_structure(np.asarray, decode(batch))))
        return captions

    def caption_segments(self, audio, window=None, hop=None, sample_rate=None, beam_size=None,
                         no_repeat_ngram_size=None, batch_size=16, merge=True):
        """Captions of a recording of any length, window by window: a list of `Segment(start, end, caption,
        score)`, times in seconds (`audiocaps_tf.models.segments`).

        audio: a path, the file's bytes or a binary file object (read as a stream, never whole), or a waveform
        [N] or [N, channels] with its `sample_rate`. window: seconds per window (None: the 10 s of the training
        clips); hop: seconds between window starts (None: the window). The last window holds the rest of the
        audio, zero-padded. merge: join neighbouring windows with the same caption into one segment. Decoding
        options as `generate`.
        """
        items = ((0, value) for value in source_windows(audio, *window_lengths(window, hop), sample_rate=sample_rate))
        found = (value for _, value in caption_windows(self, items, beam_size, no_repeat_ngram_size, batch_size)
                 if isinstance(value, Segment))
        return list(merge_segments(found) if merge else found)

    # ------------------------------------------------------------------ saving

    def get_build_config(self):
        return None  # built in __init__

    def base_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "model_name": self.model_name,
            "vocabulary": self.vocabulary.get_config(),
            "max_caption_length": self.max_caption_length,
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
        }

    @property
    def layers(self):
        layers = super().layers
        legacy = self.__dict__.get("_legacy_layers")
        if not legacy:
            return layers
        # First, so that loading finds their weights at their old paths before trying the new ones.
        return legacy + [layer for layer in layers if all(layer is not other for other in legacy)]

    def drop_legacy_layout(self):
        """Forgets the version 0.1 weight paths of a model loaded from such a file (`models.legacy`)."""
        for name in self.__dict__.pop("_legacy_aliases", ()):
            self.__dict__.pop(name, None)
        self.__dict__.pop("_legacy_layers", None)

    def save_own_variables(self, store):
        self.drop_legacy_layout()  # saving writes the current layout
        super().save_own_variables(store)
