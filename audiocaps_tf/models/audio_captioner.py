"""`AudioCaptioner`: the paper's generative captioners, preprocessor -> encoder -> decoder, one Keras model.

    features = preprocessor(waveform)          or the cached fields of prepared TFRecords
    features = augmentation(features)          training only, when the model has one (`layers.FeatureMasking`, or
                                               `layers.InputAugmentation`, which also augments the waveform first)
    encoded  = encoder.encode(features)        {"memories", "memory_masks", "initial_state"} (`encoders.base`)
    logits   = decoder(caption_in, encoded)    teacher forcing (training), or greedy / beam search (`decode`)

The encoder is any `encoders.AudioEncoder`, the decoder any `layers.CaptionDecoder`; `models.registry` names the
paper's combinations and `build_captioner` makes them. The model holds its tokenizer (in its config), so
`keras.models.load_model(path)` restores it whole after `import audiocaps_tf` (`safe_mode=True` works).

Call: `inputs` a dict as `data.pipeline.training_dataset` yields (feature fields or "waveform", attribute words,
"caption_in" int32 [B, L]) -> logits [B, L, V] float32 (also under mixed_float16), masked where caption_in is
<pad>. Loss: `SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)` against the targets.
"""

import keras

from audiocaps_tf.decoding import MAX_CAPTION_LENGTH, beam_search, greedy_decode
from audiocaps_tf.layers.input_augmentation import InputAugmentation
from audiocaps_tf.neighbours import nearest_training_clips, pooled_array
from audiocaps_tf.models import legacy
from audiocaps_tf.models.task import Captioner, as_layer

__all__ = ["AudioCaptioner"]


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class AudioCaptioner(Captioner):
    """A generative captioner (module docstring).

    Args:
        preprocessor: the `AudioPreprocessor` (or its serialized config).
        encoder: an `AudioEncoder` layer reading the preprocessor's fields (or its serialized config).
        decoder: a `CaptionDecoder` over the encoder's memories (or its serialized config).
        vocabulary: the caption `Vocabulary` or its config.
        model_name: the registry name, when it has one.
        max_caption_length: tokens of a generated caption at most, <eos> included (51, the authors').
        length_penalty: decoding score, log P / len ** length_penalty (1: mean per-token log-probability).
        no_repeat_ngram_size: n > 0: decoding never repeats an n-gram within a caption unless a call says otherwise
            (0: off, the paper's decoding).
        beam_size: the beam width decoding uses unless a call says otherwise (1: greedy, the paper's decoding).
        hyper_parameters: the registry hyper-parameters it was built with (for reference; not used).
        augmentation: None, or a layer applied in training only: to the features dict (`layers.FeatureMasking`),
            or an `InputAugmentation` (to the waveform before the preprocessor, then to the features).
    """

    def __init__(self, preprocessor, encoder, decoder, vocabulary, model_name=None,
                 max_caption_length=MAX_CAPTION_LENGTH, length_penalty=1.0, hyper_parameters=None, augmentation=None,
                 no_repeat_ngram_size=0, beam_size=1, **kwargs):
        super().__init__(preprocessor, vocabulary, model_name=model_name, max_caption_length=max_caption_length,
                         **kwargs)
        self.encoder = as_layer(encoder)
        self.decoder = as_layer(decoder)
        self.augmentation = None if augmentation is None else as_layer(augmentation)
        missing = [field for field in self.encoder.fields if field not in self.preprocessor.fields]
        if missing:
            raise ValueError(f"the encoder reads {missing}, which the preprocessor does not compute")
        self.length_penalty = float(length_penalty)
        self.no_repeat_ngram_size = int(no_repeat_ngram_size)
        self.beam_size = self.resolve_beam(beam_size)
        object.__setattr__(self, "hyper_parameters", dict(hyper_parameters or {}))  # plain, untracked
        self.build()

    # ------------------------------------------------------------------ properties

    @property
    def units(self):
        return self.decoder.units

    @property
    def uses_attributes(self):
        return hasattr(self.encoder, "attribute_key")

    @property
    def attributes(self):
        return getattr(self.encoder, "attributes", None)

    @property
    def attribute_vocabulary(self):
        return getattr(self.encoder, "attribute_vocabulary", None)

    @property
    def attribute_index(self):
        return getattr(self.encoder, "attribute_index", None)

    def set_attribute_index(self, train_pooled_features, train_attribute_lists):
        """Semantic models: the 1NN attribute index, the training clips' pooled fc2 features ([N, 128], or anything
        `neighbours.mean_pool` accepts) and their attribute words (N lists of strings). Saved with the model."""
        if not self.uses_attributes:
            raise ValueError(f"{self.model_name} has no semantic attention, hence no attribute index")
        self.encoder.set_attribute_index(pooled_array(train_pooled_features), train_attribute_lists)
        return self

    def set_up_attributes(self, train_pooled_fc2, train_attribute_lists, splits=None):
        """Semantic models, before training: the attribute index (what inference on raw audio uses), and with
        `attributes` "1nn" the attribute words each clip of `splits` ({split: pooled fc2 [N, 128]}) trains and
        validates with: those of its nearest training clip (exact float64 search, `neighbours`), never a
        training clip's own ("train" must be the training set, in the order of `train_pooled_fc2`).

        Returns {split: one list of words per clip} for the 1NN variant, {} for the GT variant (the clips' own).
        """
        self.set_attribute_index(train_pooled_fc2, train_attribute_lists)
        if self.attributes != "1nn":
            return {}
        train = pooled_array(train_pooled_fc2)
        lists = [list(words) for words in train_attribute_lists]
        return {split: [list(lists[i]) for i in nearest_training_clips(pooled, train, exclude_self=split == "train")]
                for split, pooled in (splits or {}).items()}

    def attribute_ids(self, inputs, features=None, training=False):
        """Attribute ids [B, M] int32 (0 = padding) of the semantic models (`encoders.semantic`)."""
        if features is None and self.encoder.attribute_key not in inputs:
            features = self.features(inputs)
        return self.encoder.attribute_ids(inputs, features, training)

    def model_inputs(self, inputs):
        return {**super().model_inputs(inputs), **self.encoder.model_inputs(inputs)}

    def check_ready(self):
        try:
            self.encoder.check_ready()
        except ValueError as err:
            raise ValueError(f"{self.model_name} {err}") from None

    # ------------------------------------------------------------------ build and forward

    def build(self, input_shape=None):
        self.preprocessor.build()
        self.encoder.build_encoder()
        # Lists, as the decoder's build config reads back from JSON.
        shape = {"caption_in": [None, None], "initial_state": [None, self.encoder.state_size]}
        if self.decoder.use_attention:
            shape["memories"] = [[None, None, depth] for depth in self.encoder.memory_depths]
        if not self.decoder.built:  # a deserialized decoder is built from its build config already
            self.decoder.build(shape)
        if self.augmentation is not None and not self.augmentation.built:
            self.augmentation.build()
        self.built = True

    def encode(self, inputs, training=False):
        """Everything the decoder needs: {"memories", "memory_masks", "initial_state"} (`encoders.base`)."""
        if training and self.augmentation is not None:
            features = self.training_features(inputs)
        else:
            features = self.features(inputs)
        encoded = self.encoder.encode(features, inputs, training=training)
        if not self.decoder.use_attention:
            encoded = {**encoded, "memories": [], "memory_masks": []}
        return encoded

    def training_features(self, inputs):
        """The features of a training step, augmented: an `InputAugmentation` augments a fed waveform before the
        preprocessor (and then tells the features are not cached ones), any other layer the features alone."""
        augmentation = self.augmentation
        if not isinstance(augmentation, InputAugmentation):
            return augmentation(self.features(inputs), training=True)
        cached = all(field in inputs for field in self.preprocessor.fields) or "waveform" not in inputs
        if not cached:
            inputs = {**inputs, "waveform": augmentation.augment_waveform(inputs["waveform"], training=True)}
        return augmentation(self.features(inputs), training=True, cached=cached)

    def call(self, inputs, training=False):
        encoded = self.encode(inputs, training=training)
        decoder_inputs = {"caption_in": inputs["caption_in"], "initial_state": encoded["initial_state"]}
        mask = None
        if self.decoder.use_attention:
            decoder_inputs["memories"] = encoded["memories"]
            mask = {"memories": encoded["memory_masks"]}
        return self.decoder(decoder_inputs, mask=mask, training=training)

    @property
    def decoding_no_repeat_ngram_size(self):
        return self.no_repeat_ngram_size

    @property
    def decoding_beam_size(self):
        return self.beam_size

    def decode(self, inputs, beam_size=None, max_length=None, no_repeat_ngram_size=None):
        """Captions as ids, graph-friendly (core TF ops only; any batch size, inside a tf.function too).

        inputs: as `call` without "caption_in". beam_size 1 is greedy decoding (the authors'), more is beam search
        (`audiocaps_tf.decoding`), None the model's `beam_size`; max_length defaults to `max_caption_length`;
        no_repeat_ngram_size n > 0 blocks every token that would repeat an n-gram of the caption (None: the model's
        `no_repeat_ngram_size`).
        Returns {"tokens" int32 [B, L] (ending with <eos> unless cut, padded with 0), "scores" float32 [B]
        (length-normalised log-probability, `length_penalty`), "lengths" int32 [B], "attention": greedy only, one
        float32 [B, L, T_i] per memory ([] for beam search and decoders without attention)}.
        """
        encoded = self.encode(inputs, training=False)
        options = dict(
            memories=encoded["memories"] or None,
            memory_masks=encoded["memory_masks"] or None,
            initial_state=encoded["initial_state"],
            max_length=int(max_length or self.max_caption_length),
            length_penalty=self.length_penalty,
            no_repeat_ngram_size=self.resolve_no_repeat(no_repeat_ngram_size),
        )
        beam_size = self.resolve_beam(beam_size)
        if beam_size == 1:
            return greedy_decode(self.decoder, **options)
        result = beam_search(self.decoder, beam_size=beam_size, **options)
        return {**{key: result[key] for key in ("tokens", "scores", "lengths")}, "attention": []}

    # ------------------------------------------------------------------ config

    def get_config(self):
        self.drop_legacy_layout()  # a saved config is always the current layout's
        return {
            **self.base_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "length_penalty": self.length_penalty,
            **({"no_repeat_ngram_size": self.no_repeat_ngram_size} if self.no_repeat_ngram_size else {}),
            **({"beam_size": self.beam_size} if self.beam_size != 1 else {}),
            "hyper_parameters": dict(self.hyper_parameters),
            **({} if self.augmentation is None
               else {"augmentation": keras.saving.serialize_keras_object(self.augmentation)}),
        }

    @classmethod
    def from_config(cls, config):
        if legacy.is_legacy_config(config):
            return legacy.from_legacy_config(cls, config)
        return cls(**config)
