"""`CaptionDecoder`: the small interface every caption decoder implements, so captioners and search share it.

A decoder turns an encoder's output into next-word logits, in two ways:

    call({"caption_in": int32 [B, L], "initial_state": [B, S], "memories": [[B, T_i, D_i]]},
         mask={"memories": [[B, T_i] bool]}, training)             -> logits float32 [B, L, V]  (teacher forcing)
    initial_decoding_state(memories, memory_masks, initial_state)   -> a flat tuple of [B, ...] state tensors
    step(tokens int32 [B], state, memories, memory_masks, keys)     -> (logits [B, V], new state, attention list)
    prepare_memories(memories, memory_masks)                         -> (memories list, masks list), defaults filled
    attention_keys(memories)                                         -> anything `step` can reuse every step (or None)

`use_attention` (bool) says whether it reads the memories at all (the paper's "-LSTM" baselines do not); the
captioner then passes none. `audiocaps_tf.decoding` runs greedy and beam search over `step` (its
`decoder_step_fn`), so a new decoder gets both searches, export and serving by implementing these methods.
"""

import keras

__all__ = ["CaptionDecoder"]


class CaptionDecoder(keras.layers.Layer):
    """Base class of caption decoders (see the module docstring); subclasses implement the methods below."""

    use_attention = True

    def initial_decoding_state(self, memories=None, memory_masks=None, initial_state=None, batch_size=None):
        raise NotImplementedError

    def step(self, token_ids, state, memories=None, memory_masks=None, keys=None):
        raise NotImplementedError

    def prepare_memories(self, memories, memory_masks=None):
        """Memories and masks as lists (a mask of None is all True)."""
        memories = list(memories or [])
        masks = list(memory_masks) if memory_masks is not None else [None] * len(memories)
        return memories, masks

    def attention_keys(self, memories):
        return None
