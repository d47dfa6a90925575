"""The attention flow layer of aligned semantic attention (paper, section 4.2, eqs. 5-9)."""

import keras

# Logit given to masked entries before a float32 softmax: exp(-1e9 - max) is exactly 0.
_MASKED_LOGIT = -1e9
AUDIO_TO_WORD_MODES = ("weighted", "max")


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class AttentionFlow(keras.layers.Layer):
    """Aligns word features with the audio time axis: {"audio": h, "words": h_w} -> h_flow [B, T, 4D].

    Eqs. (5)-(6): S_tn = w^T [h_t ; h_w_n ; h_t * h_w_n], one Dense(1, use_bias=False) (`self.score`,
      kernel w [3D, 1]) on the concatenation, computed without the [B, T, N, 3D] tensor as
      S = h w1 + (h_w w2)^T + (h * w3) h_w^T with w = [w1 ; w2 ; w3].
    Eq. (7): a_t = softmax_n(S_t:) over the valid words, h~w_t = sum_n a_tn h_w_n ("weighted", the
      paper). `audio_to_word="max"` is the authors' released code instead: h~w_t = max_n (a_tn h_w_n),
      an element-wise max over the valid words.
    Eq. (8): b = softmax_t(max_n S_tn) over valid steps, the max over valid words;
      h~a = sum_t b_t h_t, one vector tiled over T.
    Eq. (9): h_flow_t = [h_t ; h~w_t ; h_t * h~w_t ; h_t * h~a].

    Inputs: {"audio": h [B, T, D], "words": h_w [B, N, D]} (same D).
    Mask: None or {"audio": [B, T] or None, "words": [B, N] or None} (True = valid).
      Padded words never get attention (a_tn = 0 exactly) nor enter a max; padded steps get no
      audio attention (b_t = 0) and an all-zero row of word attention. A row without any valid word
      gets a_t = 0 and b = 0, so h~w = h~a = 0 and h_flow_t = [h_t ; 0 ; 0 ; 0] (no NaN).
    Output: h_flow [B, T, 4D] with the audio mask; with `return_attention=True` a dict
      {"flow": h_flow, "word_attention": a [B, T, N], "audio_attention": b [B, T]} ("flow" masked).

    Softmaxes run in float32 (safe under mixed_float16); the outputs have the compute dtype.

    Args:
        audio_to_word: "weighted" (paper, eq. 7) or "max" (the authors' code).
        return_attention: also return the attention weights (for plots).
    """

    def __init__(self, audio_to_word="weighted", return_attention=False, **kwargs):
        super().__init__(**kwargs)
        if audio_to_word not in AUDIO_TO_WORD_MODES:
            raise ValueError(f"audio_to_word must be one of {AUDIO_TO_WORD_MODES}; got {audio_to_word!r}.")
        self.audio_to_word = audio_to_word
        self.return_attention = bool(return_attention)
        self.score = keras.layers.Dense(1, use_bias=False, dtype=self.dtype_policy, name="score")

    def build(self, input_shape):
        audio_dim, word_dim = input_shape["audio"][-1], input_shape["words"][-1]
        if audio_dim is None or audio_dim != word_dim:
            raise ValueError(f"AttentionFlow needs audio and word features of one size; got {audio_dim}, {word_dim}.")
        self.score.build((None, 3 * audio_dim))
        self.built = True

    def call(self, inputs, mask=None, training=None):
        ops = keras.ops
        audio, words = inputs["audio"], inputs["words"]
        mask = mask or {}
        audio_mask, word_mask = mask.get("audio"), mask.get("words")
        batch, steps, num_words = ops.shape(audio)[0], ops.shape(audio)[1], ops.shape(words)[1]
        if audio_mask is None:
            audio_mask = ops.ones((batch, steps), dtype="bool")
        if word_mask is None:
            word_mask = ops.ones((batch, num_words), dtype="bool")
        audio_mask, word_mask = ops.cast(audio_mask, "bool"), ops.cast(word_mask, "bool")

        # Eqs. 5-6 without materialising [B, T, N, 3D].
        dim = audio.shape[-1]
        kernel = ops.cast(self.score.kernel, audio.dtype)
        w1, w2, w3 = kernel[:dim], kernel[dim : 2 * dim], kernel[2 * dim :]
        scores = (
            ops.matmul(audio, w1)  # [B, T, 1]
            + ops.transpose(ops.matmul(words, w2), (0, 2, 1))  # [B, 1, N]
            + ops.matmul(audio * ops.reshape(w3, (1, 1, dim)), ops.transpose(words, (0, 2, 1)))  # [B, T, N]
        )
        scores = ops.cast(scores, "float32")

        # Eq. 7: attention over the valid words of every step.
        pair_mask = ops.logical_and(ops.expand_dims(audio_mask, 2), ops.expand_dims(word_mask, 1))  # [B, T, N]
        word_logits = ops.where(ops.expand_dims(word_mask, 1), scores, _MASKED_LOGIT)
        word_attention = ops.softmax(word_logits, axis=-1) * ops.cast(pair_mask, "float32")
        word_weights = ops.cast(word_attention, audio.dtype)
        if self.audio_to_word == "weighted":
            attended_words = ops.matmul(word_weights, words)  # [B, T, D]
        else:  # the authors' code: element-wise max over the valid words of a_tn h_w_n
            weighted = ops.expand_dims(word_weights, -1) * ops.expand_dims(words, 1)  # [B, T, N, D]
            weighted = ops.where(ops.expand_dims(pair_mask, -1), weighted, float("-inf"))
            attended_words = ops.max(weighted, axis=2)
            any_word = ops.any(pair_mask, axis=2, keepdims=True)
            attended_words = ops.where(any_word, attended_words, ops.zeros_like(attended_words))

        # Eq. 8: attention over the valid steps, from the max score over the valid words.
        step_scores = ops.max(word_logits, axis=-1)  # [B, T]
        step_valid = ops.logical_and(audio_mask, ops.any(word_mask, axis=1, keepdims=True))
        step_logits = ops.where(step_valid, step_scores, _MASKED_LOGIT)
        audio_attention = ops.softmax(step_logits, axis=-1) * ops.cast(step_valid, "float32")
        attended_audio = ops.matmul(ops.expand_dims(ops.cast(audio_attention, audio.dtype), 1), audio)  # [B, 1, D]

        # Eq. 9.
        flow = ops.concatenate([audio, attended_words, audio * attended_words, audio * attended_audio], axis=-1)
        if not self.return_attention:
            return flow
        return {
            "flow": flow,
            "word_attention": ops.cast(word_attention, self.compute_dtype),
            "audio_attention": ops.cast(audio_attention, self.compute_dtype),
        }

    def compute_mask(self, inputs, mask=None):
        audio_mask = None if mask is None else mask.get("audio")
        if not self.return_attention:
            return audio_mask
        return {"flow": audio_mask, "word_attention": None, "audio_attention": None}

    def compute_output_shape(self, input_shape):
        batch, steps, dim = input_shape["audio"]
        flow = (batch, steps, None if dim is None else 4 * dim)
        if not self.return_attention:
            return flow
        num_words = input_shape["words"][1]
        return {"flow": flow, "word_attention": (batch, steps, num_words), "audio_attention": (batch, steps)}

    def get_config(self):
        config = super().get_config()
        config.update(audio_to_word=self.audio_to_word, return_attention=self.return_attention)
        return config
