"""Greedy and beam-search caption decoding, in graph-friendly `keras.ops` (`keras.ops.while_loop`).

Both run eagerly and inside a `tf.function` with an unknown batch size; they lower to core TF ops only
(While, GatherV2, TopKV2, ...), so they can live in a TF Serving SavedModel.

Two layers of API:
  - `greedy_decode(decoder, memories, ...)` / `beam_search(decoder, memories, ...)` for any
    `layers.CaptionDecoder` (`LuongDecoder` today);
  - `greedy_search(step_fn, state, batch_size, ...)` / `beam_search_loop(step_fn, state, batch_size, ...)`
    for any `step_fn(tokens [N], state) -> (log_probs [N, V], new_state[, extras])`, where `state` is a
    flat tuple of [N, ...] tensors (possibly empty) and `extras` an optional tuple of per-step outputs
    (the decoder's attention weights). Beam search reorders `state` by gathering rows.

Scores: the length-normalised log-probability `log P(y) / len(y) ** length_penalty`, len(y) counting
the tokens up to and including <eos> (not <bos>): simple length normalisation (Wu et al. 2016 discuss
it next to their ((5 + len) / 6) ** alpha). The default `length_penalty=1.0` gives the mean per-token
log-probability; 0.0 the raw log-probability. Beam search ranks hypotheses by that score.

Repeats: with `no_repeat_ngram_size=n` (> 0) no caption contains the same n-gram twice: at every step a token
that would complete an n-gram already in the caption gets log-probability _NEG (Paulus et al. 2018's trigram
blocking; Hugging Face's `no_repeat_ngram_size`). 0 turns it off.

<pad> and <bos> are never generated. Token outputs hold the generated ids (ending with <eos> unless
`max_length` was reached), padded with <pad>=0, width = the longest length in the batch.
"""

from keras import ops

from audiocaps_tf.tokens.vocabulary import BOS_ID, EOS_ID, PAD_ID

__all__ = [
    "MAX_CAPTION_LENGTH",
    "greedy_decode",
    "beam_search",
    "greedy_search",
    "beam_search_loop",
    "tile_beams",
    "decoder_step_fn",
]

MAX_CAPTION_LENGTH = 51  # tokens including <eos>, the original code's limit

# Log-probability of excluded candidates (float32; finite, so sums and divisions stay NaN-free).
_NEG = -1e9


def tile_beams(x, beam_size):
    """Repeats every row of x [B, ...] beam_size times: [B * beam_size, ...], row b*K + k from row b."""
    return None if x is None else ops.repeat(x, beam_size, axis=0)


def _normalise(log_prob, lengths, length_penalty):
    return log_prob / ops.power(ops.cast(lengths, "float32"), length_penalty)


def _forbid(log_probs, ids):
    """Sets the log-probability of `ids` to _NEG along the last axis."""
    vocab = ops.arange(ops.shape(log_probs)[-1], dtype="int32")
    forbidden = ops.zeros_like(vocab, dtype="bool")
    for token in ids:
        forbidden = ops.logical_or(forbidden, ops.equal(vocab, token))
    return ops.where(forbidden, _NEG, log_probs)


def _block_repeated_ngrams(log_probs, history, step, n):
    """log_probs [N, V] with every token that would repeat an n-gram of history [N, M] (tokens 0 .. step-1) set
    to _NEG; n = 0 changes nothing.

    The n-gram starting at i repeats when history[i : i+n-1] equals the last n-1 tokens and i + n - 1 < step;
    the token it bans is history[i + n - 1]. The bans are scattered into an [N, V] count (ScatterNd, a core op).
    """
    if n < 1:
        return log_probs
    rows, width = ops.shape(history)[0], history.shape[1]
    starts = width - n + 1  # n-grams that fit in the history buffer
    if starts < 1:
        return log_probs
    positions = ops.arange(starts, dtype="int32")
    match = (positions + n - 1) < step  # [W]: that n-gram is complete
    match = ops.broadcast_to(match[None, :], (rows, starts))
    for j in range(n - 1):
        last = ops.take(history, ops.maximum(step - n + 1 + j, 0)[None], axis=1)  # [N, 1]
        match = ops.logical_and(match, ops.equal(history[:, j : j + starts], last))
    banned = history[:, n - 1 : n - 1 + starts]  # [N, W]
    row_ids = ops.broadcast_to(ops.arange(rows, dtype="int32")[:, None], (rows, starts))
    indices = ops.stack([ops.reshape(row_ids, (-1,)), ops.reshape(banned, (-1,))], axis=1)
    counts = ops.scatter(indices, ops.reshape(ops.cast(match, "float32"), (-1,)), ops.shape(log_probs))
    return ops.where(counts > 0, _NEG, log_probs)


def _check_lengths(max_length, no_repeat_ngram_size):
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1; got {max_length}.")
    if no_repeat_ngram_size < 0:
        raise ValueError(f"no_repeat_ngram_size must be 0 (off) or more; got {no_repeat_ngram_size}.")


def _unpack_step(outputs):
    log_probs, state = outputs[0], tuple(outputs[1])
    extras = tuple(outputs[2]) if len(outputs) > 2 else ()
    return ops.cast(log_probs, "float32"), state, extras


def decoder_step_fn(decoder, memories, memory_masks=None):
    """`step_fn(tokens, state) -> (log_probs, state, alphas)` of a `CaptionDecoder` over fixed memories."""
    memories, memory_masks = decoder.prepare_memories(memories, memory_masks)
    keys = decoder.attention_keys(memories) if decoder.use_attention else None

    def step_fn(tokens, state):
        logits, state, alphas = decoder.step(tokens, state, memories, memory_masks, keys=keys)
        return ops.log_softmax(logits, axis=-1), state, tuple(alphas)

    return step_fn


def greedy_search(
    step_fn,
    state,
    batch_size,
    max_length=MAX_CAPTION_LENGTH,
    bos_id=BOS_ID,
    eos_id=EOS_ID,
    pad_id=PAD_ID,
    length_penalty=1.0,
    extra_shapes=(),
    no_repeat_ngram_size=0,
):
    """Greedy decoding with any `step_fn` (see the module docstring).

    `extra_shapes`: trailing shapes of the step_fn extras to record (e.g. [(T_1,), (T_2,)]); their
    values for the chosen tokens are returned as "extras" [B, L, ...] (zeros after <eos>).
    Returns {"tokens" int32 [B, L], "scores" float32 [B], "lengths" int32 [B], "extras" [...]}.
    """
    _check_lengths(max_length, no_repeat_ngram_size)
    state = tuple(state)
    num_state = len(state)
    tokens = ops.full((batch_size,), bos_id, dtype="int32")
    finished = ops.zeros((batch_size,), dtype="bool")
    log_prob = ops.zeros((batch_size,), dtype="float32")
    lengths = ops.zeros((batch_size,), dtype="int32")
    history = ops.zeros((batch_size, max_length), dtype="int32")
    buffers = tuple(ops.zeros((batch_size, max_length, *shape), dtype="float32") for shape in extra_shapes)

    def cond(step, tokens, finished, *_):
        return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

    def body(step, tokens, finished, log_prob, lengths, history, *rest):
        buffers, state = rest[: len(extra_shapes)], rest[len(extra_shapes) :]
        log_probs, state, extras = _unpack_step(step_fn(tokens, state))
        active = ops.logical_not(finished)
        allowed = _block_repeated_ngrams(_forbid(log_probs, (pad_id, bos_id)), history, step, no_repeat_ngram_size)
        next_tokens = ops.cast(ops.argmax(allowed, axis=-1), "int32")
        next_tokens = ops.where(active, next_tokens, pad_id)
        vocab = ops.shape(log_probs)[-1]
        rows = ops.arange(ops.shape(next_tokens)[0], dtype="int32") * vocab
        token_log_prob = ops.take(ops.reshape(log_probs, (-1,)), rows + next_tokens)
        log_prob = log_prob + ops.where(active, token_log_prob, 0.0)
        lengths = lengths + ops.cast(active, "int32")
        at_step = ops.one_hot(step, max_length, dtype="int32")
        history = history + at_step[None, :] * next_tokens[:, None]
        # Record the extras of this step in row `step` of their buffers, for the rows still decoding.
        row_weight = ops.cast(at_step, "float32")[None, :] * ops.cast(active, "float32")[:, None]  # [B, M]
        buffers = tuple(
            buffer
            + ops.reshape(row_weight, (-1, max_length) + (1,) * len(shape))
            * ops.expand_dims(ops.cast(extra, "float32"), 1)
            for buffer, extra, shape in zip(buffers, extras, extra_shapes)
        )
        finished = ops.logical_or(finished, ops.equal(next_tokens, eos_id))
        return (step + 1, next_tokens, finished, log_prob, lengths, history, *buffers, *state)

    outputs = ops.while_loop(
        cond,
        body,
        (ops.convert_to_tensor(0, dtype="int32"), tokens, finished, log_prob, lengths, history, *buffers, *state),
        maximum_iterations=max_length,
    )
    _, _, _, log_prob, lengths, history, *rest = outputs
    buffers = rest[: len(extra_shapes)]
    assert len(rest) == len(extra_shapes) + num_state
    width = ops.max(lengths)
    return {
        "tokens": history[:, :width],
        "scores": _normalise(log_prob, lengths, length_penalty),
        "lengths": lengths,
        "extras": [buffer[:, :width] for buffer in buffers],
    }


def beam_search_loop(
    step_fn,
    state,
    batch_size,
    beam_size=3,
    max_length=MAX_CAPTION_LENGTH,
    bos_id=BOS_ID,
    eos_id=EOS_ID,
    pad_id=PAD_ID,
    length_penalty=1.0,
    no_repeat_ngram_size=0,
):
    """Beam search with any `step_fn`; `state` tensors are already tiled to [B * K, ...] (`tile_beams`).

    Each step expands the K hypotheses of every batch row by every token, scores each candidate by its
    length-normalised log-probability and keeps the K best. A hypothesis that emits <eos> is finished:
    it stays in the beam with its score frozen (its only continuation is <pad> at log-probability 0,
    its length no longer grows) and competes with the live ones. Stops when all K hypotheses of all
    rows are finished, or after `max_length` steps. The first step expands only hypothesis 0 (the K
    copies of <bos> are identical). With beam_size=1 this is greedy decoding.

    The vocabulary must have at least beam_size + 2 tokens (<pad> and <bos> are excluded).
    Returns {"tokens" int32 [B, L], "scores" float32 [B], "lengths" int32 [B] of the best hypothesis,
    and "beam_tokens" [B, K, L], "beam_scores" [B, K], "beam_lengths" [B, K] of all K, best first}.
    """
    _check_lengths(max_length, no_repeat_ngram_size)
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1; got {beam_size}.")
    state = tuple(state)
    k = beam_size
    tokens = ops.full((batch_size * k,), bos_id, dtype="int32")
    first = ops.equal(ops.arange(k, dtype="int32"), 0)
    log_prob = ops.broadcast_to(ops.where(first, 0.0, _NEG)[None, :], (batch_size, k))
    finished = ops.zeros((batch_size, k), dtype="bool")
    lengths = ops.zeros((batch_size, k), dtype="int32")
    history = ops.zeros((batch_size * k, max_length), dtype="int32")
    row_offsets = ops.arange(batch_size, dtype="int32")[:, None] * k  # [B, 1]

    def cond(step, tokens, log_prob, finished, *_):
        return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

    def body(step, tokens, log_prob, finished, lengths, history, *state):
        log_probs, state, _ = _unpack_step(step_fn(tokens, state))
        vocab = ops.shape(log_probs)[-1]
        log_probs = _block_repeated_ngrams(_forbid(log_probs, (pad_id, bos_id)), history, step, no_repeat_ngram_size)
        log_probs = ops.reshape(log_probs, (batch_size, k, vocab))
        # A finished hypothesis continues only with <pad>, at no cost.
        pad_only = ops.where(ops.equal(ops.arange(vocab, dtype="int32"), pad_id), 0.0, _NEG)
        log_probs = ops.where(finished[:, :, None], pad_only[None, None, :], log_probs)
        candidate_log_prob = log_prob[:, :, None] + log_probs  # [B, K, V]
        candidate_lengths = lengths + ops.cast(ops.logical_not(finished), "int32")  # [B, K]
        candidate_scores = _normalise(candidate_log_prob, candidate_lengths[:, :, None], length_penalty)
        candidate_log_prob = ops.reshape(candidate_log_prob, (batch_size, k * vocab))
        candidate_scores = ops.reshape(candidate_scores, (batch_size, k * vocab))
        _, best = ops.top_k(candidate_scores, k)  # [B, K], sorted best first
        best = ops.cast(best, "int32")
        parent = best // vocab
        next_tokens = best % vocab
        flat_parent = ops.reshape(row_offsets + parent, (-1,))  # rows of the [B * K, ...] tensors
        flat_best = ops.reshape(row_offsets * vocab + best, (-1,))  # rows * K * V + best
        log_prob = ops.reshape(ops.take(ops.reshape(candidate_log_prob, (-1,)), flat_best), (batch_size, k))
        lengths = ops.reshape(ops.take(ops.reshape(candidate_lengths, (-1,)), flat_parent), (batch_size, k))
        parent_finished = ops.reshape(ops.take(ops.reshape(finished, (-1,)), flat_parent), (batch_size, k))
        finished = ops.logical_or(parent_finished, ops.equal(next_tokens, eos_id))
        next_tokens = ops.reshape(next_tokens, (-1,))
        at_step = ops.one_hot(step, max_length, dtype="int32")
        history = ops.take(history, flat_parent, axis=0) + at_step[None, :] * next_tokens[:, None]
        state = tuple(ops.take(x, flat_parent, axis=0) for x in state)
        return (step + 1, next_tokens, log_prob, finished, lengths, history, *state)

    outputs = ops.while_loop(
        cond,
        body,
        (ops.convert_to_tensor(0, dtype="int32"), tokens, log_prob, finished, lengths, history, *state),
        maximum_iterations=max_length,
    )
    _, _, log_prob, _, lengths, history = outputs[:6]
    scores = _normalise(log_prob, lengths, length_penalty)  # [B, K], best first
    width = ops.max(lengths)
    beam_tokens = ops.reshape(history, (batch_size, k, max_length))[:, :, :width]
    return {
        "tokens": beam_tokens[:, 0],
        "scores": scores[:, 0],
        "lengths": lengths[:, 0],
        "beam_tokens": beam_tokens,
        "beam_scores": scores,
        "beam_lengths": lengths,
    }


def _batch_size(decoder, memories, initial_state):
    if initial_state is not None:
        first = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        return ops.shape(first)[0]
    if memories:
        return ops.shape(memories[0])[0]
    raise ValueError("decoding needs memories or an initial_state to know the batch size.")


def greedy_decode(
    decoder,
    memories=None,
    memory_masks=None,
    initial_state=None,
    max_length=MAX_CAPTION_LENGTH,
    bos_id=BOS_ID,
    eos_id=EOS_ID,
    pad_id=PAD_ID,
    length_penalty=1.0,
    no_repeat_ngram_size=0,
):
    """Greedy captions from a built `CaptionDecoder` (the original code's decoding, beam width 1).

    memories: list of [B, T_i, D_i] (ignored without attention); memory_masks: list of [B, T_i] or None;
    initial_state: None, [h, c] or a vector [B, S] (see `LuongDecoder.initial_decoding_state`).
    Returns {"tokens" int32 [B, L], "scores" float32 [B], "lengths" int32 [B],
    "attention": [alpha_i float32 [B, L, T_i]] (the weights used for each chosen token, 0 after <eos>)}.
    """
    memories, memory_masks = decoder.prepare_memories(memories, memory_masks)
    batch_size = _batch_size(decoder, memories, initial_state)
    state = decoder.initial_decoding_state(memories, memory_masks, initial_state, batch_size=batch_size)
    result = greedy_search(
        decoder_step_fn(decoder, memories, memory_masks),
        state,
        batch_size,
        max_length=max_length,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        length_penalty=length_penalty,
        extra_shapes=[(ops.shape(memory)[1],) for memory in memories],
        no_repeat_ngram_size=no_repeat_ngram_size,
    )
    result["attention"] = result.pop("extras")
    return result


def beam_search(
    decoder,
    memories=None,
    memory_masks=None,
    initial_state=None,
    beam_size=3,
    length_penalty=1.0,
    max_length=MAX_CAPTION_LENGTH,
    bos_id=BOS_ID,
    eos_id=EOS_ID,
    pad_id=PAD_ID,
    no_repeat_ngram_size=0,
):
    """Beam-search captions from a built `CaptionDecoder`; memories, masks and state tiled to [B * K, ...].

    Arguments as `greedy_decode`; outputs as `beam_search_loop`. beam_size=1 gives `greedy_decode`'s
    tokens and scores.
    """
    memories, memory_masks = decoder.prepare_memories(memories, memory_masks)
    batch_size = _batch_size(decoder, memories, initial_state)
    memories = [tile_beams(memory, beam_size) for memory in memories]
    memory_masks = [tile_beams(mask, beam_size) for mask in memory_masks]
    if isinstance(initial_state, (list, tuple)):
        initial_state = [tile_beams(x, beam_size) for x in initial_state]
    else:
        initial_state = tile_beams(initial_state, beam_size)
    state = decoder.initial_decoding_state(
        memories, memory_masks, initial_state, batch_size=batch_size * beam_size
    )
    return beam_search_loop(
        decoder_step_fn(decoder, memories, memory_masks),
        state,
        batch_size,
        beam_size=beam_size,
        max_length=max_length,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        length_penalty=length_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size,
    )
