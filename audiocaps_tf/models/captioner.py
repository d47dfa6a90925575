"""The generative captioners of the paper: frontend -> encoder -> (semantic attention) -> Luong decoder, one model.

`AudioCaptioner` is a `keras.Model` that holds every piece a caption needs: the feature frontend (the paper's MFCCs,
or the VGGish log-mel frontend and a native VGGish), the audio encoder, the semantic encoder and attention flow of
the semantic models, the decoder, and the tokenizer. It trains on cached features (the fast path) or end to end on
waveforms, captions raw audio with `generate`, and `keras.models.load_model(path)` restores it whole after
`import audiocaps_tf` (`safe_mode=True` works: no Lambda layers, the tokenizer travels in the config).
"""

import warnings

import numpy as np

import keras
from keras import ops

from audiocaps_tf import params
from audiocaps_tf.data.vocabulary import PAD_ID
from audiocaps_tf.decoding import beam_search, greedy_decode
from audiocaps_tf.layers import (
    AttentionFlow,
    BiLSTMEncoder,
    LuongDecoder,
    MFCCEncoder,
    SemanticEncoder,
    TopDownEncoder,
)
from audiocaps_tf.models.nearest_neighbour import (
    FeatureFrontendMixin,
    NearestNeighbourIndex,
    as_vocabulary,
    cached_decode_function,
    input_batches,
    masked_mean,
    pooled_array,
    time_mask,
)
from audiocaps_tf.models.registry import (
    ATTRIBUTE_SOURCES,
    DEFAULT_HYPER_PARAMETERS,
    FEATURE_SIZES,
    VGGISH_OUTPUTS,
    get_spec,
)

__all__ = ["AudioCaptioner"]


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class AudioCaptioner(FeatureFrontendMixin, keras.Model):
    """One of the paper's generative captioners, by registry name (`models.MODEL_NAMES`, `build_captioner`).

    Wiring (D = 2 * units, the size of every biLSTM output; all LSTMs have `units` per direction):

      features     cached record fields of `required_fields` when `inputs` holds them all, otherwise computed from
                   inputs["waveform"] [B, N] (16 kHz) by the model's own frontend: `MFCCFrontend`, or
                   `LogMelFrontend` + `VGGish(outputs=<the needed ones>)` (`self.vggish`, frozen unless
                   `vggish_trainable=True`; load its weights with `load_vggish_weights(captioner.vggish, ...)`).
                   Steps that are zero in every channel are batch padding (`time_mask`); step 0 is always valid.
      encoder      "mfcc": `MFCCEncoder` (biLSTM + gated convolutions, section 5.1) -> sequence [B, F/4, D];
                   the encoded audio is the masked time mean of its output (the paper's MFCC encoder ends with
                   the gated convolutions, so the "-LSTM" state goes through them).
                   "bilstm": `BiLSTMEncoder` over one VGGish feature -> sequence [B, T, D], encoded audio
                   [fw_h_T; bw_h_1] (eq. 1's final states).
                   "topdown": `TopDownEncoder` (eqs. 1-3) over fc2, conv4 (, conv3) -> h_a2 [B, T, D] and the last
                   level's final states as the encoded audio.
      semantic     attribute words -> ids (`StringLookup(attribute_vocabulary, mask_token="")`: "" -> 0, unknown
                   -> 1) -> `SemanticEncoder` (eq. 4, dropout `word_dropout`) -> h_w [B, M, D].
                   "semtempatt": the decoder attends over h_w and h_a2 separately (two memories, no flow; You
                   et al. 2016's semantic attention beside temporal attention).
                   "alignedatt": h_flow = `AttentionFlow`(h_a2, h_w) [B, T, 4D] (eqs. 5-9); a context biLSTM
                   (dropout `context_dropout`) over h_flow; its outputs concatenated with h_flow [B, T, 5D]; the
                   decoder attends over h_w and that context memory (two memories, the authors' code).
      decoder      `LuongDecoder` (eqs. 10-13, layer-normalised LSTM, dropout `decoder_dropout`), initial state
                   from the encoded audio (its Dense(2 * units, tanh) projection) in every model; memories:
                     "-lstm" baselines (mfcc-lstm, vggish-lstm): none (`use_attention=False`);
                     tempatt-* and topdown-vggish(3)-lstm: the encoder sequence (one memory);
                     semantic models: [h_w, audio memory] as above.

    Attributes of the semantic models (`attributes` "1nn" or "gt", Table 3):
      - "gt": inputs["attributes"] (tf.string [B, M], padded with b"", as the pipeline yields: the clip's own
        labels) when present;
      - "1nn": inputs["neighbour_attributes"] when present (the nearest training clip's attributes precomputed by
        the trainer, e.g. `data.attributes.nearest_neighbour_attributes(..., exclude_self=True)` for the training
        split); inputs["attributes"] (the clip's own labels) are ignored;
      - otherwise (also at inference on raw audio, and in serving) the model finds them itself in its attribute
        index: the attribute ids of the training clip whose time-mean-pooled fc2 features are nearest (L2, in the
        graph). With `training=True` an exact match (the clip itself, when the index is the training set) is
        skipped. Set the index with `set_attribute_index(train_pooled_fc2, train_attribute_lists)`; until then
        it is empty and gives no attribute words.
      Integer inputs are taken as attribute ids already: `model_inputs(inputs)` converts the strings (in a
      tf.data map), which `fit` under a tf.distribute strategy needs (it cannot handle tf.string inputs).

    Call: `inputs` a dict as `data.pipeline.training_dataset` yields (feature fields or "waveform", "attributes",
    "caption_in" int32 [B, L]) -> logits [B, L, V] float32 (also under mixed_float16), masked where caption_in is
    <pad>. Loss: `SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)` against the targets.
    `decode(inputs, beam_size, max_length)`: graph-friendly captions (see there). `generate(...)`: text.

    Args:
        model_name: a generative name of `models.MODEL_NAMES`.
        vocabulary: the caption `Vocabulary` or its config; `self.vocabulary`, `self.id_to_token`.
        attribute_vocabulary: attribute words of the semantic models (None for the others).
        attributes: "1nn" or "gt" for the semantic models, else None.
        vggish_trainable: fine-tune VGGish on the waveform path.
        units, embedding_dim, attribute_embedding_dim, encoder_dropout, word_dropout, context_dropout,
        decoder_dropout, max_caption_length, score, attention_layer, attention_activation, audio_to_word,
        mfcc_kernel_size, mfcc_num_blocks, mfcc_pool_size, length_penalty: see
            `registry.DEFAULT_HYPER_PARAMETERS` (the authors' values).
    """

    is_retrieval = False

    def __init__(
        self,
        model_name,
        vocabulary,
        attribute_vocabulary=None,
        attributes=None,
        vggish_trainable=False,
        units=DEFAULT_HYPER_PARAMETERS["units"],
        embedding_dim=DEFAULT_HYPER_PARAMETERS["embedding_dim"],
        attribute_embedding_dim=DEFAULT_HYPER_PARAMETERS["attribute_embedding_dim"],
        encoder_dropout=DEFAULT_HYPER_PARAMETERS["encoder_dropout"],
        word_dropout=DEFAULT_HYPER_PARAMETERS["word_dropout"],
        context_dropout=DEFAULT_HYPER_PARAMETERS["context_dropout"],
        decoder_dropout=DEFAULT_HYPER_PARAMETERS["decoder_dropout"],
        max_caption_length=DEFAULT_HYPER_PARAMETERS["max_caption_length"],
        score=DEFAULT_HYPER_PARAMETERS["score"],
        attention_layer=DEFAULT_HYPER_PARAMETERS["attention_layer"],
        attention_activation=DEFAULT_HYPER_PARAMETERS["attention_activation"],
        audio_to_word=DEFAULT_HYPER_PARAMETERS["audio_to_word"],
        mfcc_kernel_size=DEFAULT_HYPER_PARAMETERS["mfcc_kernel_size"],
        mfcc_num_blocks=DEFAULT_HYPER_PARAMETERS["mfcc_num_blocks"],
        mfcc_pool_size=DEFAULT_HYPER_PARAMETERS["mfcc_pool_size"],
        length_penalty=DEFAULT_HYPER_PARAMETERS["length_penalty"],
        **kwargs,
    ):
        super().__init__(**kwargs)
        spec = get_spec(model_name)
        if spec.is_retrieval:
            raise ValueError(f"{model_name} is a retrieval model; use NearestNeighbourCaptioner / build_captioner")
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "vocabulary", as_vocabulary(vocabulary))
        self.model_name = model_name
        self.vggish_trainable = bool(vggish_trainable)
        hyper = dict(
            units=int(units),
            embedding_dim=int(embedding_dim),
            attribute_embedding_dim=int(attribute_embedding_dim),
            encoder_dropout=float(encoder_dropout),
            word_dropout=float(word_dropout),
            context_dropout=float(context_dropout),
            decoder_dropout=float(decoder_dropout),
            max_caption_length=int(max_caption_length),
            score=score,
            attention_layer=attention_layer,
            attention_activation=attention_activation,
            audio_to_word=audio_to_word,
            mfcc_kernel_size=int(mfcc_kernel_size),
            mfcc_num_blocks=int(mfcc_num_blocks),
            mfcc_pool_size=int(mfcc_pool_size),
            length_penalty=float(length_penalty),
        )
        object.__setattr__(self, "hyper_parameters", hyper)  # a plain dict, untracked by Keras / TF
        self.units = hyper["units"]
        self.max_caption_length = hyper["max_caption_length"]
        self.length_penalty = hyper["length_penalty"]

        if spec.uses_attributes:
            attributes = attributes or "1nn"
            if attributes not in ATTRIBUTE_SOURCES:
                raise ValueError(f"attributes must be one of {ATTRIBUTE_SOURCES}; got {attributes!r}")
            if attribute_vocabulary is None:
                raise ValueError(f"{model_name} needs an attribute_vocabulary")
            words = [w.decode() if isinstance(w, bytes) else str(w) for w in attribute_vocabulary]
            if not words or "" in words or len(set(words)) != len(words):
                raise ValueError("attribute_vocabulary must be distinct, non-empty words")
        else:
            attributes, words = None, None
        self.attributes = attributes
        object.__setattr__(self, "attribute_vocabulary", None if words is None else tuple(words))

        policy = self.dtype_policy
        units, depth = self.units, 2 * self.units
        self._create_frontend(vggish_trainable=self.vggish_trainable)

        # Audio encoder.
        if spec.encoder == "mfcc":
            self.encoder = MFCCEncoder(
                units,
                kernel_size=hyper["mfcc_kernel_size"],
                num_blocks=hyper["mfcc_num_blocks"],
                pool_size=hyper["mfcc_pool_size"],
                dropout=hyper["encoder_dropout"],
                name="mfcc_encoder",
                dtype=policy,
            )
        elif spec.encoder == "bilstm":
            self.encoder = BiLSTMEncoder(units, dropout=hyper["encoder_dropout"], name="audio_encoder", dtype=policy)
        else:
            self.encoder = TopDownEncoder(
                units,
                levels=spec.vggish_outputs,
                dropout=hyper["encoder_dropout"],
                name="top_down_encoder",
                dtype=policy,
            )

        # Semantic attention.
        self.attribute_lookup = None
        self.semantic_encoder = None
        self.attribute_index = None
        self.attention_flow = None
        self.context_encoder = None
        memory_depths = []
        if spec.uses_attributes:
            self.attribute_lookup = keras.layers.StringLookup(
                vocabulary=list(words), mask_token="", num_oov_indices=1, name="attribute_lookup"
            )
            self.semantic_encoder = SemanticEncoder(
                len(words) + 2,  # + the mask ("") and OOV ids
                embedding_dim=hyper["attribute_embedding_dim"],
                units=units,
                dropout=hyper["word_dropout"],
                name="semantic_encoder",
                dtype=policy,
            )
            self.attribute_index = NearestNeighbourIndex(FEATURE_SIZES["vggish_fc2"], name="attribute_index")
            if spec.semantic == "alignedatt":
                self.attention_flow = AttentionFlow(audio_to_word=audio_to_word, name="attention_flow", dtype=policy)
                self.context_encoder = BiLSTMEncoder(
                    units, dropout=hyper["context_dropout"], name="context_encoder", dtype=policy
                )
                memory_depths = [depth, depth + 4 * depth]  # h_w; [context biLSTM ; h_flow]
            else:
                memory_depths = [depth, depth]  # h_w; h_a2
        elif spec.attention:
            memory_depths = [depth]
        object.__setattr__(self, "_memory_depths", tuple(memory_depths))

        self.decoder = LuongDecoder(
            self.vocabulary.size,
            embedding_dim=hyper["embedding_dim"],
            units=units,
            num_memories=max(1, len(memory_depths)),
            score=score,
            dropout=hyper["decoder_dropout"],
            use_attention=spec.attention,
            attention_layer=attention_layer,
            attention_activation=attention_activation,
            pad_id=PAD_ID,
            name="decoder",
            dtype=policy,
        )
        self.build()

    # ------------------------------------------------------------------ properties

    @property
    def id_to_token(self):
        """Token of every caption id, in id order (for detokenising in a graph)."""
        return tuple(self.vocabulary.id_to_token)

    @property
    def uses_attributes(self):
        return self.spec.uses_attributes

    # ------------------------------------------------------------------ build

    def build(self, input_shape=None):
        spec = self.spec
        self._build_frontend()
        depth = 2 * self.units
        if spec.encoder == "topdown":
            self.encoder.build({VGGISH_OUTPUTS[f]: (None, None, FEATURE_SIZES[f]) for f in spec.features})
        else:
            self.encoder.build((None, None, FEATURE_SIZES[spec.features[0]]))
        if spec.uses_attributes:
            self.attribute_lookup.build((None, None))
            self.semantic_encoder.build((None, None))
            if self.attention_flow is not None:
                self.attention_flow.build({"audio": (None, None, depth), "words": (None, None, depth)})
                self.context_encoder.build((None, None, 4 * depth))
        decoder_shape = {"caption_in": (None, None), "initial_state": (None, depth)}
        if spec.attention:
            decoder_shape["memories"] = [(None, None, d) for d in self._memory_depths]
        self.decoder.build(decoder_shape)
        self.built = True

    def get_build_config(self):
        return None  # built in __init__

    # ------------------------------------------------------------------ attributes

    def _attribute_id(self, word):
        if isinstance(word, bytes):
            word = word.decode()
        if word == "":
            return 0
        index = self.__dict__.setdefault("_attribute_ids", {w: i + 2 for i, w in enumerate(self.attribute_vocabulary)})
        return index.get(word, 1)

    @property
    def _attribute_key(self):
        """The inputs key holding the attribute words this model reads when present."""
        return "attributes" if self.attributes == "gt" else "neighbour_attributes"

    def set_attribute_index(self, train_pooled_features, train_attribute_lists):
        """The attribute index of the 1NN attributes: the training clips' time-mean-pooled VGGish fc2 features
        ([N, 128], or anything `data.attributes.mean_pool` accepts; `pooled_features(inputs)` computes them with
        this model's frontend) and their attribute words (N lists of strings). Replaces any previous index; it is
        saved with the model."""
        if not self.uses_attributes:
            raise ValueError(f"{self.model_name} has no semantic attention, hence no attribute index")
        pooled = pooled_array(train_pooled_features)
        rows = [[self._attribute_id(w) for w in words] for words in train_attribute_lists]
        rows = [[i for i in row if i != 0] for row in rows]
        if len(rows) != len(pooled):
            raise ValueError(f"{len(rows)} attribute lists for {len(pooled)} clips")
        values = np.zeros((len(rows), max([len(row) for row in rows] + [1])), np.int32)
        for r, row in enumerate(rows):
            values[r, : len(row)] = row
        self.attribute_index.assign(pooled, values)
        return self

    def attribute_ids(self, inputs, features=None, training=False):
        """Attribute ids [B, M] int32 (0 = padding) of the semantic models; see the class docstring."""
        key = self._attribute_key
        if key in inputs:
            words = inputs[key]
            if keras.backend.standardize_dtype(words.dtype) == "string":
                return ops.cast(self.attribute_lookup(words), "int32")
            return ops.cast(words, "int32")
        if self.attribute_index.size == 0:
            warnings.warn(
                f"{self.model_name}: no inputs['{key}'] and an empty attribute index, so the clips get no attribute "
                "words; call set_attribute_index(train_pooled_fc2, train_attribute_lists) first",
                stacklevel=2,
            )
        if features is None:
            features = self.features(inputs)
        fc2 = features["vggish_fc2"]
        queries = masked_mean(fc2, time_mask(fc2))
        return self.attribute_index.lookup(ops.stop_gradient(queries), exclude_exact=bool(training))

    def model_inputs(self, inputs):
        selected = super().model_inputs(inputs)
        if self.uses_attributes:
            key = self._attribute_key
            if key in inputs:
                words = inputs[key]
                if keras.backend.standardize_dtype(words.dtype) == "string":
                    words = ops.cast(self.attribute_lookup(words), "int32")
                selected[key] = words
        return selected

    # ------------------------------------------------------------------ forward

    def encode(self, inputs, training=False):
        """Everything the decoder needs: {"memories": [M_i [B, T_i, D_i]], "memory_masks": [[B, T_i] bool],
        "initial_state": [B, 2 * units] (the encoded audio), "attribute_ids": [B, M] or None}."""
        spec = self.spec
        features = self.features(inputs)
        if spec.encoder == "topdown":
            levels = {VGGISH_OUTPUTS[f]: features[f] for f in spec.features}
            mask = time_mask(features[spec.features[0]])
            encoded = self.encoder(levels, mask=mask, training=training)
            sequence, sequence_mask, state = encoded["sequence"], mask, encoded["state"]
        else:
            x = features[spec.features[0]]
            mask = time_mask(x)
            encoded = self.encoder(x, mask=mask, training=training)
            sequence = encoded["sequence"]
            if spec.encoder == "mfcc":
                sequence_mask = self.encoder.compute_mask(x, mask)["sequence"]
                state = masked_mean(sequence, sequence_mask)
            else:
                sequence_mask, state = mask, encoded["state"]

        memories, memory_masks, ids = [], [], None
        if spec.uses_attributes:
            ids = self.attribute_ids(inputs, features, training)
            words = self.semantic_encoder(ids, training=training)
            word_mask = ops.not_equal(ids, 0)
            if spec.semantic == "alignedatt":
                flow = self.attention_flow(
                    {"audio": sequence, "words": words},
                    mask={"audio": sequence_mask, "words": word_mask},
                    training=training,
                )
                context = self.context_encoder(flow, mask=sequence_mask, training=training)["sequence"]
                memories = [words, ops.concatenate([context, flow], axis=-1)]
            else:
                memories = [words, sequence]
            memory_masks = [word_mask, sequence_mask]
        elif spec.attention:
            memories, memory_masks = [sequence], [sequence_mask]
        return {"memories": memories, "memory_masks": memory_masks, "initial_state": state, "attribute_ids": ids}

    def call(self, inputs, training=False):
        encoded = self.encode(inputs, training=training)
        decoder_inputs = {"caption_in": inputs["caption_in"], "initial_state": encoded["initial_state"]}
        mask = None
        if self.spec.attention:
            decoder_inputs["memories"] = encoded["memories"]
            mask = {"memories": encoded["memory_masks"]}
        return self.decoder(decoder_inputs, mask=mask, training=training)

    # ------------------------------------------------------------------ inference

    def decode(self, inputs, beam_size=1, max_length=None):
        """Captions as ids, graph-friendly (core TF ops only; any batch size, inside a tf.function too).

        inputs: as `call` without "caption_in". beam_size 1 is greedy decoding (the authors'), more is beam search
        (`audiocaps_tf.decoding`); max_length defaults to `max_caption_length` (51, <eos> included).
        Returns {"tokens" int32 [B, L] (ending with <eos> unless cut, padded with 0), "scores" float32 [B]
        (length-normalised log-probability, `length_penalty`), "lengths" int32 [B], "attention": greedy only, one
        float32 [B, L, T_i] per memory ([] for beam search and the "-LSTM" baselines)}.
        """
        encoded = self.encode(inputs, training=False)
        max_length = int(max_length or self.max_caption_length)
        options = dict(
            memories=encoded["memories"] or None,
            memory_masks=encoded["memory_masks"] or None,
            initial_state=encoded["initial_state"],
            max_length=max_length,
            length_penalty=self.length_penalty,
        )
        if int(beam_size) == 1:
            result = greedy_decode(self.decoder, **options)
        else:
            result = beam_search(self.decoder, beam_size=int(beam_size), **options)
            result = {key: result[key] for key in ("tokens", "scores", "lengths")}
            result["attention"] = []
        return result

    def detokenize(self, tokens):
        """Text of every row of token ids (stops at <eos>, drops <pad>/<bos>)."""
        return [self.vocabulary.decode(row) for row in np.asarray(tokens)]

    def generate(self, waveforms_or_inputs, beam_size=1, max_length=None, batch_size=16,
                 clip_seconds=params.CLIP_SECONDS):
        """Captions (text) for clips.

        waveforms_or_inputs: 16 kHz mono audio, a float array [B, N] or a list of 1-D arrays (zero-padded at the
        end to the longest one, and to at least `clip_seconds`, the 10 s the models are trained on; None: to the
        longest only), or an inputs dict of arrays as `decode` takes (cached features, "attributes", ...).
        Decodes `batch_size` clips at a time in a cached `tf.function` of `decode`.
        """
        decode = cached_decode_function(self, beam_size, max_length)
        captions = []
        for batch in input_batches(waveforms_or_inputs, batch_size, clip_seconds):
            captions.extend(self.detokenize(decode(batch)["tokens"]))
        return captions

    # ------------------------------------------------------------------ config

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "model_name": self.model_name,
            "vocabulary": self.vocabulary.get_config(),
            "attribute_vocabulary": None if self.attribute_vocabulary is None else list(self.attribute_vocabulary),
            "attributes": self.attributes,
            "vggish_trainable": self.vggish_trainable,
            **self.hyper_parameters,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
