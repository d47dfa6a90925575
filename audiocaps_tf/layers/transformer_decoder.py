"""A Transformer caption decoder (Vaswani et al. 2017): masked self-attention over the words so far, cross-attention
over the encoder's memories, behind the `CaptionDecoder` interface (so greedy and beam search, export and serving
work as with `LuongDecoder`).

    x_0      = sqrt(d) * E[y_<t] + P[position]                         word and learned position embeddings
    memory   = [W_s s ; W_1 M_1 ; ... ; W_k M_k]                        the encoder's initial state s as one memory
                                                                        step, then each memory projected to d
    x_{l+1}  = x_l' + FFN(LN(x_l')),  x_l' = x_l'' + CrossAttn(LN(x_l''), memory),
               x_l'' = x_l + SelfAttn(LN(x_l), causal)                 pre-LN blocks, `num_layers` of them
    logits   = W_o LN(x_L)

Without attention (`use_attention=False`, the "-LSTM" rows) the memory is the initial-state step alone.
Incremental decoding keeps the words so far in the state ([B, max_length] ids and the position) and runs the stack
over the prefix at every step (at most `max_length` tokens; no key/value cache, so the graph stays simple core ops).
The memories are projected once per search (`attention_keys`). The searches step every row in lockstep, so the
prefix is cut at the furthest row's position.
"""

import math

import keras
from keras import ops

from audiocaps_tf.layers.caption_decoder import CaptionDecoder

__all__ = ["TransformerDecoder"]


def _block_layers(prefix, model_dim, num_heads, feedforward_dim, dropout, dtype):
    head_dim = model_dim // num_heads

    def norm(name):
        return keras.layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_{name}", dtype=dtype)

    def attention(name):
        return keras.layers.MultiHeadAttention(num_heads, head_dim, dropout=dropout, name=f"{prefix}_{name}",
                                               dtype=dtype)

    return {
        "self_norm": norm("self_norm"), "self_attention": attention("self_attention"),
        "cross_norm": norm("cross_norm"), "cross_attention": attention("cross_attention"),
        "ffn_norm": norm("ffn_norm"),
        "ffn_in": keras.layers.Dense(feedforward_dim, activation="relu", name=f"{prefix}_ffn_in", dtype=dtype),
        "ffn_out": keras.layers.Dense(model_dim, name=f"{prefix}_ffn_out", dtype=dtype),
    }  # fmt: skip


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class TransformerDecoder(CaptionDecoder):
    """Transformer decoder over one or more memories (module docstring).

    Args:
        vocabulary_size: V, the caption vocabulary (with <pad>, <bos>, <eos>).
        num_memories: how many memories `call` / `step` get (ignored without attention).
        model_dim: d, the width of every block.
        num_layers: blocks.
        num_heads: attention heads (d must be a multiple).
        feedforward_dim: hidden width of each block's FFN.
        dropout: on embeddings, attention weights and block outputs, in training.
        max_length: the longest prefix (positions), <bos> included.
        use_attention: read the memories (False: the initial state only).
        pad_id: the <pad> id of `caption_in`.
    """

    def __init__(self, vocabulary_size, num_memories=1, model_dim=256, num_layers=2, num_heads=4,
                 feedforward_dim=1024, dropout=0.1, max_length=52, use_attention=True, pad_id=0, **kwargs):
        super().__init__(**kwargs)
        if model_dim % num_heads:
            raise ValueError(f"model_dim ({model_dim}) must be a multiple of num_heads ({num_heads})")
        self.vocabulary_size = int(vocabulary_size)
        self.num_memories = int(num_memories)
        self.model_dim = int(model_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.feedforward_dim = int(feedforward_dim)
        self.dropout = float(dropout)
        self.max_length = int(max_length)
        self.use_attention = bool(use_attention)
        self.pad_id = int(pad_id)
        dtype = self.dtype_policy
        self.embedding = keras.layers.Embedding(vocabulary_size, model_dim, name="embedding", dtype=dtype)
        self.positions = keras.layers.Embedding(self.max_length, model_dim, name="positions", dtype=dtype)
        self.state_projection = keras.layers.Dense(model_dim, name="state_projection", dtype=dtype)
        count = self.num_memories if self.use_attention else 0
        self.memory_projections = [keras.layers.Dense(model_dim, name=f"memory_projection_{i}", dtype=dtype)
                                   for i in range(count)]
        self.blocks = [_block_layers(f"block_{i}", model_dim, num_heads, feedforward_dim, dropout, dtype)
                       for i in range(self.num_layers)]
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=dtype)
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm", dtype=dtype)
        self.output_projection = keras.layers.Dense(vocabulary_size, name="output_projection", dtype=dtype)

    @property
    def units(self):
        return self.model_dim

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        d = self.model_dim
        self.embedding.build((None, None))
        self.positions.build((None, None))
        state_shape = input_shape.get("initial_state")
        if state_shape is None or state_shape[-1] is None:
            raise ValueError(f"TransformerDecoder needs an initial_state vector of known size; got {state_shape}")
        self.state_projection.build(tuple(state_shape))
        if self.use_attention:
            memory_shapes = list(input_shape.get("memories") or [])
            if len(memory_shapes) != self.num_memories:
                raise ValueError(f"TransformerDecoder expects {self.num_memories} memories; got {memory_shapes}")
            for layer, shape in zip(self.memory_projections, memory_shapes):
                layer.build(tuple(shape))
        sequence = (None, None, d)
        for block in self.blocks:
            for name in ("self_norm", "cross_norm", "ffn_norm"):
                block[name].build(sequence)
            block["self_attention"].build(sequence, sequence)
            block["cross_attention"].build(sequence, sequence)
            block["ffn_in"].build(sequence)
            block["ffn_out"].build((None, None, self.feedforward_dim))
        self.final_norm.build(sequence)
        self.output_projection.build(sequence)
        self.built = True

    # ------------------------------------------------------------------ pieces shared by call() and step()

    def prepare_memories(self, memories, memory_masks=None):
        if not self.use_attention:
            return [], []
        memories, masks = super().prepare_memories(memories, memory_masks)
        if len(memories) != self.num_memories:
            raise ValueError(f"TransformerDecoder expects {self.num_memories} memories; got {len(memories)}")
        memories = [ops.cast(memory, self.compute_dtype) for memory in memories]
        return memories, [None if m is None else ops.cast(m, "bool") for m in masks]

    def attention_keys(self, memories):
        """The memories projected to d, once per search (`step` takes them as `keys`)."""
        return [layer(ops.cast(memory, self.compute_dtype)) for layer, memory in zip(self.memory_projections, memories)]

    def _memory(self, initial_state, memories, memory_masks, keys=None):
        """(memory [B, 1 + sum T_i, d], its mask [B, 1 + sum T_i] bool): the state step, then each memory."""
        state = self.state_projection(ops.cast(initial_state, self.compute_dtype))[:, None, :]
        parts, masks = [state], [ops.ones((ops.shape(state)[0], 1), dtype="bool")]
        keys = self.attention_keys(memories) if keys is None else keys
        for projected, memory, mask in zip(keys, memories, memory_masks):
            parts.append(projected)
            masks.append(ops.ones(ops.shape(memory)[:2], dtype="bool") if mask is None else mask)
        return ops.concatenate(parts, axis=1), ops.concatenate(masks, axis=1)

    def _stack(self, caption_in, memory, memory_mask, training=False):
        """The last block's output [B, L, d] and its cross-attention weights [B, heads, L, 1 + sum T_i]."""
        length = ops.shape(caption_in)[1]
        x = self.embedding(caption_in) * ops.cast(math.sqrt(self.model_dim), self.compute_dtype)
        x = self.dropout_layer(x + self.positions(ops.arange(length))[None], training=training)
        words = ops.not_equal(caption_in, self.pad_id)
        causal = ops.tril(ops.ones((length, length), dtype="bool"))
        self_mask = ops.logical_and(causal[None], words[:, None, :])  # query i sees words j <= i, not <pad>
        self_mask = ops.logical_or(self_mask, ops.eye(length, dtype="bool")[None])  # a <pad> query sees itself
        cross_mask = ops.broadcast_to(memory_mask[:, None, :], (ops.shape(x)[0], length, ops.shape(memory)[1]))
        scores = None
        for block in self.blocks:
            h = block["self_norm"](x)
            x = x + self.dropout_layer(block["self_attention"](h, h, attention_mask=self_mask, training=training),
                                       training=training)
            h = block["cross_norm"](x)
            attended, scores = block["cross_attention"](h, memory, attention_mask=cross_mask,
                                                        return_attention_scores=True, training=training)
            x = x + self.dropout_layer(attended, training=training)
            h = block["ffn_out"](block["ffn_in"](block["ffn_norm"](x)))
            x = x + self.dropout_layer(h, training=training)
        return x, scores

    def _logits(self, hidden):
        return ops.cast(self.output_projection(self.final_norm(hidden)), "float32")

    # ------------------------------------------------------------------ inference API

    def initial_decoding_state(self, memories=None, memory_masks=None, initial_state=None, batch_size=None):
        """(words [B, max_length] int32 (<pad>), position [B] int32 (0), the initial state [B, S])."""
        if initial_state is None or isinstance(initial_state, (list, tuple)):
            raise ValueError("TransformerDecoder decodes from one initial_state vector [B, S]")
        batch = ops.shape(initial_state)[0]
        words = ops.full((batch, self.max_length), self.pad_id, dtype="int32")
        return (words, ops.zeros((batch,), dtype="int32"), initial_state)

    def step(self, token_ids, state, memories=None, memory_masks=None, keys=None):
        """Writes `token_ids` at each row's position, runs the stack over the prefix, and returns the logits there
        (float32 [B, V]), the new state and the cross-attention over each memory (head mean, [B, T_i] each)."""
        words, position, initial_state = state
        memories, memory_masks = self.prepare_memories(memories, memory_masks)
        position = ops.minimum(position, self.max_length - 1)  # a longer search repeats the last position
        at = ops.one_hot(position, self.max_length, dtype="int32")
        words = words * (1 - at) + at * ops.cast(token_ids, "int32")[:, None]
        memory, memory_mask = self._memory(initial_state, memories, memory_masks, keys)
        length = ops.max(position) + 1
        hidden, scores = self._stack(words[:, :length], memory, memory_mask)  # the prefix only
        rows = ops.cast(ops.one_hot(position, length), "float32")  # [B, length]: each row's position
        step_logits = self._logits(ops.sum(hidden * ops.cast(rows, hidden.dtype)[:, :, None], axis=1))  # [B, V]
        weights = ops.sum(ops.mean(ops.cast(scores, "float32"), axis=1) * rows[:, :, None], axis=1)  # [B, 1+T]
        alphas, start = [], 1
        for memory_tensor in memories:
            end = start + ops.shape(memory_tensor)[1]
            alphas.append(weights[:, start:end])
            start = end
        return step_logits, (words, position + 1, initial_state), alphas

    # ------------------------------------------------------------------ teacher forcing

    def call(self, inputs, mask=None, training=None):
        caption_in = ops.cast(inputs["caption_in"], "int32")
        memory_masks = mask.get("memories") if isinstance(mask, dict) else None
        memories, memory_masks = self.prepare_memories(inputs.get("memories"), memory_masks)
        memory, memory_mask = self._memory(inputs["initial_state"], memories, memory_masks)
        hidden, _ = self._stack(caption_in, memory, memory_mask, training=bool(training))
        return self._logits(hidden)

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs["caption_in"], self.pad_id)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_memories": self.num_memories,
            "model_dim": self.model_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "feedforward_dim": self.feedforward_dim,
            "dropout": self.dropout,
            "max_length": self.max_length,
            "use_attention": self.use_attention,
            "pad_id": self.pad_id,
        }
