"""The caption decoder: a layer-normalised LSTM with Luong global attention over one or more memories."""

import keras
from keras import ops

from audiocaps_tf.layers.caption_decoder import CaptionDecoder
from audiocaps_tf.layers.layer_norm_lstm_cell import LayerNormLSTMCell
from audiocaps_tf.tokens.vocabulary import PAD_ID

SCORES = ("general", "dot")
ATTENTION_LAYERS = ("shared", "per_memory")

# Score given to padded memory steps before the softmax (float32): exp(-1e9 - max) is exactly 0.
_MASKED_SCORE = -1e9


def _is_shape(value):
    """True for one shape (ints / None), False for a list of shapes (also after a JSON round trip)."""
    return isinstance(value, (list, tuple)) and all(d is None or isinstance(d, int) for d in value)


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class LuongDecoder(CaptionDecoder):
    """Caption decoder of the paper, section 4.2, "Temporal attention over attention flow" (eqs. 10-13).

    At step m, with y_{m-1} the previous word and one or more memories M_i [B, T_i, D_i]:

        x_m = [E y_{m-1}; a_{m-1}]                        input feeding, a_0 = 0, E: [V, embedding_dim]
        h_m, c_m' = LayerNormLSTM(x_m, h_{m-1}, c_{m-1})    `LayerNormLSTMCell`, `units`
        alpha_{m,i} = softmax_t(score(h_m, M_i[t]))         (10), masked: padded steps get weight 0
        c_{m,i} = sum_t alpha_{m,i,t} M_i[t]                 (11), [B, D_i]
        a_m = tanh(W_dec [c_{m,1}; ...; c_{m,k}; h_m])      (12), [B, attention_units]
        logits_m = W_o a_m                                   (13), [B, V], softmax outside (the loss)

    with the Luong "general" score h^T W_a,i M_i[t] (W_a,i: [D_i, units], one per memory, no bias;
    the keys W_a,i M_i are computed once per sequence) or "dot" h^T M_i[t] (needs D_i == units).

    Input feeding and output: as TF1's `AttentionWrapper` in the authors' code (its defaults
    `output_attention=True`, `cell_input_fn = concat([inputs, attention])`), the attention vector a_m,
    not h_m, is the step output fed to W_o and is concatenated to the next word embedding.
    Two memories (the best model: word encoder and context encoder outputs): `attention_layer="shared"`
    (default, eq. 12 as written) concatenates the contexts and applies one W_dec; `"per_memory"` is the
    authors' code, one attention layer per mechanism, a_m = [W_1 [c_{m,1}; h_m]; W_2 [c_{m,2}; h_m]]
    (size num_memories * attention_units). TF1's attention layer has no activation: pass
    `attention_activation=None` for that; the default "tanh" follows eq. 12. W_dec, W_a and W_o have no
    bias (paper and code). Dropout: as the code's `DropoutWrapper(input_keep_prob)`, on the cell input
    [E y_{m-1}; a_{m-1}] with a fresh mask every step (drawn for all steps before the recurrence).

    `use_attention=False` gives the "-LSTM" baselines: no memory, logits_m = W_o h_m; the audio enters
    only through `initial_state`.

    Call (teacher forcing): `inputs` is a dict
        - "caption_in": int ids [B, L] (<bos> w_1 ... w_n, padded with <pad>=0);
        - "memories": list of `num_memories` tensors [B, T_i, D_i] (omit when `use_attention=False`);
        - "initial_state" (optional): [h, c] each [B, units], or one vector [B, S] projected to both by
          a Dense(2 * units, tanh) created at build time (our choice: the paper does not say). Zero state
          otherwise.
    `mask` (optional, same structure, usually filled by Keras from the memories' masks):
    {"memories": [mask_1 [B, T_i] or None, ...]}.
    Output: logits [B, L, V] in float32 (also under mixed_float16). With `return_attention=True`:
    {"logits": [B, L, V], "attention": [alpha_1 [B, L, T_1], ...]} (float32). The outputs carry the
    caption mask `caption_in != pad_id` (Keras losses skip those positions). Positions depend only on
    earlier tokens, so padded positions never change earlier logits.

    Inference: `initial_decoding_state(...)` and `step(...)` (see `audiocaps_tf.decoding`). The state is
    a flat tuple (h [B, units], c [B, units], a [B, attention_size]) — (h, c) without attention — so beam
    search can reorder it with one gather per tensor.

    Args:
        vocabulary_size: V. embedding_dim: word embedding size (300, fastText in the paper).
        units: LSTM size. attention_units: size of a_m per attention layer (default `units`).
        num_memories: how many memories are attended. score: "general" | "dot".
        dropout: rate on the cell input (see above). use_attention: False for the "-LSTM" baselines.
        attention_layer: "shared" | "per_memory". attention_activation: "tanh" or None.
        return_attention: also output the attention weights. pad_id: id masked in "caption_in".
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=300,
        units=128,
        attention_units=None,
        num_memories=1,
        score="general",
        dropout=0.25,
        use_attention=True,
        attention_layer="shared",
        attention_activation="tanh",
        return_attention=False,
        pad_id=PAD_ID,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}; got {score!r}.")
        if attention_layer not in ATTENTION_LAYERS:
            raise ValueError(f"attention_layer must be one of {ATTENTION_LAYERS}; got {attention_layer!r}.")
        if use_attention and num_memories < 1:
            raise ValueError(f"num_memories must be at least 1 with attention; got {num_memories}.")
        if return_attention and not use_attention:
            raise ValueError("return_attention=True needs use_attention=True.")
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.attention_units = int(attention_units) if attention_units else self.units
        self.num_memories = int(num_memories)
        self.score = score
        self.dropout = float(dropout)
        self.use_attention = bool(use_attention)
        self.attention_layer = attention_layer
        self.attention_activation = attention_activation
        self.return_attention = bool(return_attention)
        self.pad_id = int(pad_id)
        self.supports_masking = True

        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim, name="embedding", dtype=policy
        )
        self.input_dropout = keras.layers.Dropout(self.dropout, name="input_dropout", dtype=policy)
        self.cell = LayerNormLSTMCell(self.units, name="lstm_cell", dtype=policy)
        self.memory_layers = []
        self.attention_layers = []
        if self.use_attention:
            if score == "general":
                self.memory_layers = [
                    keras.layers.Dense(self.units, use_bias=False, name=f"memory_layer_{i}", dtype=policy)
                    for i in range(self.num_memories)
                ]
            count = 1 if attention_layer == "shared" else self.num_memories
            self.attention_layers = [
                keras.layers.Dense(
                    self.attention_units,
                    use_bias=False,
                    activation=attention_activation,
                    name=f"attention_layer_{i}",
                    dtype=policy,
                )
                for i in range(count)
            ]
        self.output_projection = keras.layers.Dense(
            self.vocabulary_size, use_bias=False, name="output_projection", dtype=policy
        )
        self.initial_state_projection = None  # created in build() when "initial_state" is one vector

    @property
    def attention_size(self):
        """Size of the attention vector a_m (0 without attention)."""
        if not self.use_attention:
            return 0
        return self.attention_units * len(self.attention_layers)

    @property
    def output_size(self):
        """Size of the step output fed to W_o: a_m, or h_m without attention."""
        return self.attention_size if self.use_attention else self.units

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        caption_shape = tuple(input_shape["caption_in"])
        batch = caption_shape[0]
        self.embedding.build(caption_shape)
        self.cell.build((batch, self.embedding_dim + self.attention_size))
        if self.use_attention:
            memory_shapes = list(input_shape.get("memories") or [])
            if len(memory_shapes) != self.num_memories:
                raise ValueError(f"LuongDecoder expects {self.num_memories} memories; got shapes {memory_shapes}.")
            depths = [shape[-1] for shape in memory_shapes]
            if any(depth is None for depth in depths):
                raise ValueError(f"memory depths must be known; got shapes {memory_shapes}.")
            if self.score == "dot" and any(depth != self.units for depth in depths):
                raise ValueError(f"score='dot' needs memory depth == units ({self.units}); got {depths}.")
            for layer, shape in zip(self.memory_layers, memory_shapes):
                layer.build(tuple(shape))
            if self.attention_layer == "shared":
                self.attention_layers[0].build((batch, sum(depths) + self.units))
            else:
                for layer, depth in zip(self.attention_layers, depths):
                    layer.build((batch, depth + self.units))
        initial_shape = input_shape.get("initial_state")
        if initial_shape is not None and _is_shape(initial_shape):
            self.initial_state_projection = keras.layers.Dense(
                2 * self.units, activation="tanh", name="initial_state_projection", dtype=self.dtype_policy
            )
            self.initial_state_projection.build(tuple(initial_shape))
        self.output_projection.build((batch, self.output_size))
        self.built = True

    # ------------------------------------------------------------------ pieces shared by call() and step()

    def prepare_memories(self, memories, memory_masks=None):
        """Checks the memories, casts them to the compute dtype and the masks to bool (None: all valid)."""
        if not self.use_attention:
            return [], []
        memories = list(memories or [])
        if len(memories) != self.num_memories:
            raise ValueError(f"LuongDecoder expects {self.num_memories} memories; got {len(memories)}.")
        memories = [ops.cast(memory, self.compute_dtype) for memory in memories]
        if memory_masks is None:
            memory_masks = [None] * len(memories)
        memory_masks = [None if m is None else ops.cast(m, "bool") for m in memory_masks]
        if len(memory_masks) != len(memories):
            raise ValueError(f"got {len(memory_masks)} memory masks for {len(memories)} memories.")
        return memories, memory_masks

    def attention_keys(self, memories):
        """The memories projected for the score: W_a,i M_i (general) or M_i (dot); compute once per sequence."""
        memories = [ops.cast(memory, self.compute_dtype) for memory in memories]
        if self.score == "dot":
            return memories
        return [layer(memory) for layer, memory in zip(self.memory_layers, memories)]

    def attend(self, h, memories, memory_masks=None, keys=None):
        """Eqs. 10-12 for decoder states h [B, units]: returns (a [B, attention_size], [alpha_i [B, T_i]]).

        alpha_i are float32 and exactly 0 on padded memory steps (all 0 if a memory has no valid step).
        """
        memories, memory_masks = self.prepare_memories(memories, memory_masks)
        if keys is None:
            keys = self.attention_keys(memories)
        contexts, alphas = [], []
        for memory, key, mask in zip(memories, keys, memory_masks):
            scores = ops.cast(ops.squeeze(ops.matmul(key, ops.expand_dims(h, -1)), -1), "float32")  # [B, T]
            if mask is not None:
                scores = ops.where(mask, scores, _MASKED_SCORE)
            alpha = ops.softmax(scores, axis=-1)
            if mask is not None:
                alpha = alpha * ops.cast(mask, "float32")
            context = ops.squeeze(ops.matmul(ops.expand_dims(ops.cast(alpha, memory.dtype), 1), memory), 1)
            contexts.append(context)
            alphas.append(alpha)
        if self.attention_layer == "shared":
            a = self.attention_layers[0](ops.concatenate(contexts + [h], axis=-1))
        else:
            a = ops.concatenate(
                [layer(ops.concatenate([context, h], -1)) for layer, context in zip(self.attention_layers, contexts)],
                axis=-1,
            )
        return a, alphas

    def _cell_step(self, embedded, state, memories, memory_masks, keys, feed_mask=None):
        """One decoder step from an embedded word [B, E]: (output [B, output_size], new state, alphas)."""
        if self.use_attention:
            h, c, a = state
            if feed_mask is not None:
                a = a * feed_mask
            cell_input = ops.concatenate([embedded, a], axis=-1)
        else:
            h, c = state
            cell_input = embedded
        h, (h, c) = self.cell(cell_input, [h, c])
        if not self.use_attention:
            return h, (h, c), []
        a, alphas = self.attend(h, memories, memory_masks, keys)
        return a, (h, c, a), alphas

    def output_logits(self, outputs):
        """Eq. 13: W_o a_m for outputs [..., output_size] -> float32 logits [..., V]."""
        return ops.cast(self.output_projection(outputs), "float32")

    # ------------------------------------------------------------------ inference API

    def initial_decoding_state(self, memories=None, memory_masks=None, initial_state=None, batch_size=None):
        """The state before the first word: (h, c, a_0 = 0), or (h, c) without attention.

        `initial_state`: None (zeros), [h, c], or a vector [B, S] (needs the layer built with one).
        The batch size comes from `initial_state`, else `batch_size`, else the first memory.
        """
        dtype = self.compute_dtype
        if initial_state is None:
            if batch_size is None:
                if not memories:
                    raise ValueError("initial_decoding_state needs memories, initial_state or batch_size.")
                batch_size = ops.shape(memories[0])[0]
            h = c = ops.zeros((batch_size, self.units), dtype=dtype)
        elif isinstance(initial_state, (list, tuple)):
            if len(initial_state) != 2:
                raise ValueError(f"initial_state must be [h, c] or one vector; got {len(initial_state)} tensors.")
            h, c = (ops.cast(x, dtype) for x in initial_state)
        else:
            if self.initial_state_projection is None:
                raise ValueError(
                    "a vector initial_state needs the projection created at build time: build or call the "
                    "decoder with an 'initial_state' vector in its inputs."
                )
            h, c = ops.split(self.initial_state_projection(ops.cast(initial_state, dtype)), 2, axis=-1)
        if not self.use_attention:
            return (h, c)
        a = ops.zeros((ops.shape(h)[0], self.attention_size), dtype=dtype)
        return (h, c, a)

    def step(self, token_ids, state, memories=None, memory_masks=None, keys=None):
        """One inference step: previous tokens [B] and state -> (logits [B, V] float32, new state, alphas).

        `state` is the flat tuple of `initial_decoding_state`; alphas a list of [B, T_i] (empty without
        attention). Pass `keys=decoder.attention_keys(memories)` to skip recomputing them every step.
        """
        memories, memory_masks = self.prepare_memories(memories, memory_masks)
        if self.use_attention and keys is None:
            keys = self.attention_keys(memories)
        embedded = self.embedding(ops.cast(token_ids, "int32"))
        output, new_state, alphas = self._cell_step(embedded, tuple(state), memories, memory_masks, keys)
        return self.output_logits(output), new_state, alphas

    # ------------------------------------------------------------------ teacher forcing

    def call(self, inputs, mask=None, training=None):
        caption_in = ops.cast(inputs["caption_in"], "int32")
        memory_masks = mask.get("memories") if isinstance(mask, dict) else None
        memories, memory_masks = self.prepare_memories(inputs.get("memories"), memory_masks)
        batch_size = ops.shape(caption_in)[0]
        state = self.initial_decoding_state(memories, memory_masks, inputs.get("initial_state"), batch_size)
        keys = self.attention_keys(memories) if self.use_attention else []

        # Cell-input dropout (DropoutWrapper(input_keep_prob)), all steps' masks drawn up front.
        # The feed dropout masks ride in the same scanned tensor as the embeddings, after them: Keras' TF `scan`
        # fails on several sequences of unknown length.
        embedded = self.input_dropout(self.embedding(caption_in), training=training)  # [B, L, E]
        feed_dropout = bool(self.use_attention and training and self.dropout > 0.0)
        if feed_dropout:
            ones = ops.ones((batch_size, ops.shape(caption_in)[1], self.attention_size), dtype=embedded.dtype)
            embedded = ops.concatenate([embedded, self.input_dropout(ones, training=training)], axis=-1)
        xs = ops.transpose(embedded, (1, 0, 2))
        embedding_dim = self.embedding_dim

        # `keras.ops.scan` stacks outputs shaped like its carry, so the carry is the state plus the last
        # step's attention weights; the step output is in the state: a_m (state[2]), or h_m (state[0]).
        num_state = len(state)
        alphas0 = [ops.zeros((batch_size, ops.shape(memory)[1]), dtype="float32") for memory in memories]

        def scan_step(carry, x):
            feed_mask = (x[:, embedding_dim:],) if feed_dropout else ()
            _, carry, alphas = self._cell_step(
                x[:, :embedding_dim], carry[:num_state], memories, memory_masks, keys, *feed_mask
            )
            carry = (*carry, *alphas)
            return carry, carry

        _, ys = ops.scan(scan_step, (*state, *alphas0), xs)
        outputs = ops.transpose(ys[2 if self.use_attention else 0], (1, 0, 2))  # [B, L, output_size]
        logits = self.output_logits(outputs)
        if not self.return_attention:
            return logits
        return {"logits": logits, "attention": [ops.transpose(alpha, (1, 0, 2)) for alpha in ys[num_state:]]}

    def compute_mask(self, inputs, mask=None):
        caption_mask = ops.not_equal(inputs["caption_in"], self.pad_id)
        if self.return_attention:
            return {"logits": caption_mask, "attention": [caption_mask] * self.num_memories}
        return caption_mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "attention_units": self.attention_units,
                "num_memories": self.num_memories,
                "score": self.score,
                "dropout": self.dropout,
                "use_attention": self.use_attention,
                "attention_layer": self.attention_layer,
                "attention_activation": self.attention_activation,
                "return_attention": self.return_attention,
                "pad_id": self.pad_id,
            }
        )
        return config
