import keras
import numpy as np
import pytest
import tensorflow as tf

from audiocaps_tf import decoding
from audiocaps_tf.layers import LuongDecoder

PAD, BOS, EOS, A, B, C = 0, 1, 2, 3, 4, 5
V, UNITS, T1, T2 = 20, 8, 5, 3


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _markov_step_fn(table):
    """A hand-made step function: P(next | previous token) from `table` [V, V]; optional row bias state."""
    log_table = keras.ops.log(keras.ops.convert_to_tensor(np.asarray(table, "float32") + 1e-12))

    def step_fn(tokens, state):
        (bias,) = state
        log_probs = keras.ops.log_softmax(keras.ops.take(log_table, tokens, axis=0) + bias, axis=-1)
        return log_probs, (bias,)

    return step_fn


def _table(rows):
    table = np.zeros((len(rows), len(rows)), "float32")
    for previous, probabilities in rows.items():
        for token, p in probabilities.items():
            table[previous, token] = p
    return table


def test_greedy_follows_a_forced_chain_and_stops_at_eos():
    # <bos> -> A -> B -> C -> <eos>, each with probability 0.9 (the rest spread).
    chain = {BOS: A, A: B, B: C, C: EOS, EOS: EOS, PAD: EOS}
    table = _table({prev: {nxt: 0.9, **{t: 0.1 / 5 for t in range(6) if t != nxt}} for prev, nxt in chain.items()})
    # Row 1 gets a large <eos> bias: it stops at once, so its output is padded.
    bias = np.zeros((2, 6), "float32")
    bias[1, EOS] = 20.0
    result = decoding.greedy_search(_markov_step_fn(table), (bias,), 2, max_length=10, length_penalty=1.0)
    np.testing.assert_array_equal(_np(result["tokens"]), [[A, B, C, EOS], [EOS, PAD, PAD, PAD]])
    np.testing.assert_array_equal(_np(result["lengths"]), [4, 1])
    np.testing.assert_allclose(_np(result["scores"])[0], np.log(0.9), rtol=1e-5)
    # max_length cuts a sequence without <eos>.
    short = decoding.greedy_search(_markov_step_fn(table), (bias[:1],), 1, max_length=2)
    np.testing.assert_array_equal(_np(short["tokens"]), [[A, B]])
    np.testing.assert_array_equal(_np(short["lengths"]), [2])


MYOPIC = _table(
    {
        PAD: {EOS: 1.0},
        BOS: {A: 0.6, B: 0.4},
        EOS: {EOS: 1.0},
        A: {EOS: 0.4, A: 0.3, B: 0.3},  # greedy takes A (0.6), then the best ending is only 0.24
        B: {EOS: 0.9, A: 0.05, B: 0.05},  # B then <eos>: 0.36
    }
)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_search_beats_myopic_greedy(length_penalty):
    step_fn = _markov_step_fn(MYOPIC)
    state = (np.zeros((1, 5), "float32"),)
    greedy = decoding.greedy_search(step_fn, state, 1, max_length=6, length_penalty=length_penalty)
    np.testing.assert_array_equal(_np(greedy["tokens"]), [[A, EOS]])
    beam_state = tuple(decoding.tile_beams(x, 2) for x in state)
    beam = decoding.beam_search_loop(step_fn, beam_state, 1, beam_size=2, max_length=6, length_penalty=length_penalty)
    np.testing.assert_array_equal(_np(beam["tokens"]), [[B, EOS]])
    np.testing.assert_allclose(_np(beam["scores"]), [np.log(0.36) / 2**length_penalty], rtol=1e-5)
    np.testing.assert_allclose(_np(greedy["scores"]), [np.log(0.24) / 2**length_penalty], rtol=1e-5)
    # Both hypotheses are kept, best first, each with its own score.
    np.testing.assert_array_equal(_np(beam["beam_tokens"])[0], [[B, EOS], [A, EOS]])
    np.testing.assert_allclose(_np(beam["beam_scores"])[0], np.log([0.36, 0.24]) / 2**length_penalty, rtol=1e-5)


# ---------------------------------------------------------------- with the real LuongDecoder


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    decoder = LuongDecoder(V, embedding_dim=6, units=UNITS, num_memories=2, return_attention=True)
    memories = [rng.normal(size=(3, T1, 6)).astype("float32"), rng.normal(size=(3, T2, 7)).astype("float32")]
    masks = [np.array([[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0]], bool), None]
    decoder({"caption_in": np.ones((3, 2), "int32"), "memories": memories})
    # A likelier <eos> so that some captions end before max_length.
    kernel = _np(decoder.output_projection.kernel)
    kernel[:, EOS] += 0.8 * np.abs(kernel).max()
    decoder.output_projection.kernel.assign(kernel)
    return decoder, memories, masks


def _teacher_forced(decoder, memories, masks, tokens):
    """Log-probabilities of `tokens` [B, L] and attention, from teacher forcing <bos> + tokens[:-1]."""
    caption_in = np.concatenate([np.full((len(tokens), 1), BOS, "int32"), tokens[:, :-1]], axis=1)
    out = decoder({"caption_in": caption_in, "memories": memories}, mask={"memories": masks})
    log_probs = _np(keras.ops.log_softmax(out["logits"], axis=-1))
    token_log_probs = np.take_along_axis(log_probs, tokens[:, :, None], axis=-1)[:, :, 0]
    return log_probs, token_log_probs, [_np(a) for a in out["attention"]]


def _check_scores(result, decoder, memories, masks, length_penalty):
    tokens, lengths = _np(result["tokens"]), _np(result["lengths"])
    _, token_log_probs, _ = _teacher_forced(decoder, memories, masks, tokens)
    valid = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
    assert np.all(tokens[~valid] == PAD) and np.all(tokens[valid] > BOS)
    want = (token_log_probs * valid).sum(1) / lengths.astype("float32") ** length_penalty
    np.testing.assert_allclose(_np(result["scores"]), want, atol=1e-5)


def test_greedy_decode_is_argmax_of_teacher_forcing(setup):
    decoder, memories, masks = setup
    result = decoding.greedy_decode(decoder, memories, masks, max_length=8)
    tokens, lengths = _np(result["tokens"]), _np(result["lengths"])
    assert 1 <= lengths.min() and lengths.max() <= 8 and tokens.shape == (3, lengths.max())
    assert (lengths < 8).any()  # some caption stopped at <eos>
    log_probs, _, attention = _teacher_forced(decoder, memories, masks, tokens)
    log_probs[:, :, [PAD, BOS]] = -np.inf
    for row, length in enumerate(lengths):
        np.testing.assert_array_equal(tokens[row, :length], log_probs[row, :length].argmax(-1))
        assert length == 8 or tokens[row, length - 1] == EOS
        for got, want in zip(result["attention"], attention):
            np.testing.assert_allclose(_np(got)[row, :length], want[row, :length], atol=1e-5)
            assert np.all(_np(got)[row, length:] == 0.0)
    _check_scores(result, decoder, memories, masks, 1.0)


def test_beam_size_one_equals_greedy_and_scores_match_teacher_forcing(setup):
    decoder, memories, masks = setup
    greedy = decoding.greedy_decode(decoder, memories, masks, max_length=8, length_penalty=0.7)
    beam1 = decoding.beam_search(decoder, memories, masks, beam_size=1, max_length=8, length_penalty=0.7)
    for key in ("tokens", "lengths", "scores"):
        np.testing.assert_allclose(_np(beam1[key]), _np(greedy[key]), atol=1e-6)
    beam3 = decoding.beam_search(decoder, memories, masks, beam_size=3, max_length=8, length_penalty=0.7)
    _check_scores(beam3, decoder, memories, masks, 0.7)
    beam_scores = _np(beam3["beam_scores"])
    assert np.all(np.diff(beam_scores, axis=1) <= 1e-6)  # best first
    assert np.all(_np(beam3["scores"]) >= _np(greedy["scores"]) - 1e-6)


def test_decoding_runs_in_a_tf_function_with_unknown_batch(setup):
    decoder, memories, masks = setup
    signature = [
        tf.TensorSpec([None, None, 6], tf.float32),
        tf.TensorSpec([None, None, 7], tf.float32),
        tf.TensorSpec([None, None], tf.bool),
    ]

    @tf.function(input_signature=signature)
    def decode(memory_1, memory_2, mask_1):
        greedy = decoding.greedy_decode(decoder, [memory_1, memory_2], [mask_1, None], max_length=8)
        beam = decoding.beam_search(decoder, [memory_1, memory_2], [mask_1, None], beam_size=3, max_length=8)
        return greedy, beam

    graph_greedy, graph_beam = decode(memories[0], memories[1], masks[0])
    eager_greedy = decoding.greedy_decode(decoder, memories, masks, max_length=8)
    eager_beam = decoding.beam_search(decoder, memories, masks, beam_size=3, max_length=8)
    for graph, eager in ((graph_greedy, eager_greedy), (graph_beam, eager_beam)):
        np.testing.assert_array_equal(_np(graph["tokens"]), _np(eager["tokens"]))
        np.testing.assert_allclose(_np(graph["scores"]), _np(eager["scores"]), atol=1e-5)
    graph = decode.get_concrete_function().graph
    assert "While" in {op.type for op in graph.get_operations()}


def test_greedy_decode_without_attention_from_a_vector_state():
    decoder = LuongDecoder(V, embedding_dim=6, units=UNITS, use_attention=False)
    vector = np.random.default_rng(1).normal(size=(2, 4)).astype("float32")
    decoder({"caption_in": np.ones((2, 3), "int32"), "initial_state": vector})
    greedy = decoding.greedy_decode(decoder, initial_state=vector, max_length=5)
    beam1 = decoding.beam_search(decoder, initial_state=vector, beam_size=1, max_length=5)
    assert greedy["attention"] == []
    np.testing.assert_array_equal(_np(beam1["tokens"]), _np(greedy["tokens"]))


# ---------------------------------------------------------------------------------------------------- no repeats


def _repeat_loving_table(vocab, seed):
    """P(next | previous) that prefers a short cycle over <eos>: unblocked captions repeat themselves."""
    rng = np.random.default_rng(seed)
    table = rng.uniform(0.0, 0.05, size=(vocab, vocab)).astype("float32")
    cycle = rng.permutation(np.arange(3, vocab))[:3]  # three word ids after <pad>, <bos>, <eos>
    for previous in range(vocab):
        table[previous, cycle[0]] += 1.0
    for a, b in zip(cycle, np.roll(cycle, -1)):
        table[a, b] += 2.0
    table[:, EOS] = 0.02
    return table / table.sum(axis=1, keepdims=True)


def _ngrams(tokens, n):
    words = [t for t in tokens if t not in (PAD, EOS)]
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def _greedy_oracle(table, max_length, n):
    """Greedy decoding with n-gram blocking in plain Python over the same table."""
    log_table = np.log(table + 1e-12)
    tokens, previous = [], BOS
    for _ in range(max_length):
        scores = log_table[previous].astype("float64")
        scores[[PAD, BOS]] = -np.inf
        if n:
            for i in range(len(tokens) - n + 1):
                if tuple(tokens[i : i + n - 1]) == tuple(tokens[len(tokens) - n + 1 :]) or n == 1:
                    scores[tokens[i + n - 1]] = -np.inf
        previous = int(np.argmax(scores))
        tokens.append(previous)
        if previous == EOS:
            break
    return tokens


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_repeat_ngram_size_never_emits_a_repeated_ngram(seed):
    vocab, max_length = 12, 14
    table = _repeat_loving_table(vocab, seed)
    bias = np.zeros((2, vocab), "float32")
    bias[1] = np.random.default_rng(seed + 10).normal(0.0, 0.5, size=vocab)
    step_fn = _markov_step_fn(table)
    unblocked = _np(decoding.greedy_search(step_fn, (bias,), 2, max_length=max_length)["tokens"])
    assert len(set(_ngrams(unblocked[0], 3))) < len(_ngrams(unblocked[0], 3))  # it does repeat when allowed
    for n in (1, 2, 3):
        greedy = _np(decoding.greedy_search(step_fn, (bias,), 2, max_length=max_length,
                                            no_repeat_ngram_size=n)["tokens"])
        assert [t for t in greedy[0] if t != PAD] == _greedy_oracle(table, max_length, n)
        for beam_size in (1, 3):
            beams = decoding.beam_search_loop(step_fn, (decoding.tile_beams(bias, beam_size),), 2,
                                              beam_size=beam_size, max_length=max_length, no_repeat_ngram_size=n)
            for row in [*greedy, *_np(beams["beam_tokens"]).reshape(-1, _np(beams["beam_tokens"]).shape[-1])]:
                grams = _ngrams(row, n)
                assert len(set(grams)) == len(grams), (n, beam_size, row)
            if beam_size == 1:
                np.testing.assert_array_equal(_np(beams["tokens"]), greedy)


def test_no_repeat_blocking_runs_in_a_tf_function_with_unknown_batch():
    table = _repeat_loving_table(12, 4)
    step_fn = _markov_step_fn(table)

    @tf.function(input_signature=[tf.TensorSpec([None, 12], tf.float32)])
    def decode(bias):
        return decoding.beam_search_loop(step_fn, (decoding.tile_beams(bias, 2),), tf.shape(bias)[0], beam_size=2,
                                         max_length=10, no_repeat_ngram_size=2)["tokens"]

    bias = np.zeros((3, 12), "float32")
    eager = decoding.beam_search_loop(step_fn, (decoding.tile_beams(bias, 2),), 3, beam_size=2, max_length=10,
                                      no_repeat_ngram_size=2)["tokens"]
    np.testing.assert_array_equal(_np(decode(bias)), _np(eager))
