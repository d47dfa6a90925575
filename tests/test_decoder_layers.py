import keras
import numpy as np
import pytest
import tensorflow as tf

from audiocaps_tf.layers import LayerNormLSTM, LayerNormLSTMCell, LuongDecoder
from layer_test_case import run_layer_test

V, E, UNITS, T1, T2, L = 20, 6, 8, 5, 3, 4


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_layer_norm(x, gamma, beta, epsilon=1e-5):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def _np_cell(cell, x, h, c):
    """TF1 LayerNormBasicLSTMCell, transcribed: gates i, g, f, o; LN per gate and on the new cell."""
    units = cell.units
    z = np.concatenate([x, h], -1) @ _np(cell.kernel)
    z = _np_layer_norm(z.reshape(-1, 4, units), _np(cell.gate_gamma), _np(cell.gate_beta))
    i, g, f, o = z[:, 0], z[:, 1], z[:, 2], z[:, 3]
    c = c * _sigmoid(f + cell.forget_bias) + _sigmoid(i) * np.tanh(g)
    c = _np_layer_norm(c, _np(cell.cell_gamma), _np(cell.cell_beta))
    return np.tanh(c) * _sigmoid(o), c


def _randomise_norms(cell, rng):
    for weight in (cell.gate_gamma, cell.gate_beta, cell.cell_gamma, cell.cell_beta):
        weight.assign(rng.normal(1.0 if "gamma" in weight.path else 0.0, 0.5, size=weight.shape).astype("float32"))


def _memories(rng, batch=2):
    return [rng.normal(size=(batch, T1, 6)).astype("float32"), rng.normal(size=(batch, T2, 7)).astype("float32")]


def _inputs(rng):
    return {"caption_in": np.array([[1, 4, 5, 0], [1, 6, 7, 8]], "int32"), "memories": _memories(rng)}


MEMORY_MASKS = [np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool), np.array([[1, 1, 0], [1, 1, 1]], bool)]


def _decoder(**kwargs):
    config = {"vocabulary_size": V, "embedding_dim": E, "units": UNITS, "num_memories": 2, "dropout": 0.25}
    config.update(kwargs)
    return LuongDecoder(**config)


# ---------------------------------------------------------------- LayerNormLSTMCell


def test_layer_norm_lstm_contract(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    run_layer_test(LayerNormLSTM, {"units": 8, "return_sequences": True}, x, (2, 3, 8), tmp_path=tmp_path)


def test_cell_matches_numpy_transcription():
    rng = np.random.default_rng(1)
    cell = LayerNormLSTMCell(UNITS)
    cell.build((None, 5))
    _randomise_norms(cell, rng)
    x, h, c = (rng.normal(size=(3, n)).astype("float32") for n in (5, UNITS, UNITS))
    output, (new_h, new_c) = cell(x, [h, c])
    want_h, want_c = _np_cell(cell, x, h, c)
    np.testing.assert_allclose(_np(output), want_h, atol=1e-5)
    np.testing.assert_allclose(_np(new_h), want_h, atol=1e-5)
    np.testing.assert_allclose(_np(new_c), want_c, atol=1e-5)
    assert cell.state_size == [UNITS, UNITS] and cell.output_size == UNITS


def test_cell_in_keras_rnn_equals_stepping_and_dropout_trains():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    cell = LayerNormLSTMCell(UNITS, dropout=0.3, recurrent_dropout=0.3, seed=1)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    outputs, h, c = rnn(x)
    state = [np.zeros((2, UNITS), "float32")] * 2
    for t in range(3):
        step, state = cell(x[:, t], state)
        np.testing.assert_allclose(_np(outputs[:, t]), _np(step), atol=1e-6)
    np.testing.assert_allclose(_np(c), _np(state[1]), atol=1e-6)
    trained = _np(rnn(x, training=True)[0])
    assert np.all(np.isfinite(trained)) and not np.allclose(trained, _np(outputs))
    # Bidirectional recreates the backward copy from the flat config.
    bidirectional = keras.layers.Bidirectional(LayerNormLSTM(UNITS, return_sequences=True))
    assert tuple(bidirectional(x).shape) == (2, 3, 2 * UNITS)


# ---------------------------------------------------------------- LuongDecoder contract


def test_decoder_contract(tmp_path):
    run_layer_test(
        LuongDecoder,
        {"vocabulary_size": V, "embedding_dim": E, "units": UNITS, "num_memories": 2, "return_attention": True},
        _inputs(np.random.default_rng(3)),
        {"logits": (2, L, V), "attention": [(2, L, T1), (2, L, T2)]},
        run_mixed_precision_check=False,  # logits and attention stay float32: checked below
        tmp_path=tmp_path,
    )


def test_decoder_without_attention_contract(tmp_path):
    rng = np.random.default_rng(4)
    inputs = {"caption_in": np.array([[1, 4, 5, 0], [1, 6, 7, 8]], "int32"), "initial_state": rng.normal(size=(2, 6))}
    run_layer_test(
        LuongDecoder,
        {"vocabulary_size": V, "embedding_dim": E, "units": UNITS, "use_attention": False},
        {**inputs, "initial_state": inputs["initial_state"].astype("float32")},
        (2, L, V),
        run_mixed_precision_check=False,
        tmp_path=tmp_path,
    )


def test_mixed_precision_float32_logits():
    rng = np.random.default_rng(5)
    inputs = _inputs(rng)
    full = _decoder(return_attention=True)
    want = full(inputs)
    mixed = _decoder(return_attention=True, dtype="mixed_float16")
    mixed(inputs)
    mixed.set_weights(full.get_weights())
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in mixed.weights)
    got = mixed(inputs, mask={"memories": MEMORY_MASKS})
    for output in [got["logits"], *got["attention"]]:
        assert keras.backend.standardize_dtype(output.dtype) == "float32"
        assert np.all(np.isfinite(_np(output)))
    want = full(inputs, mask={"memories": MEMORY_MASKS})
    np.testing.assert_allclose(_np(got["logits"]), _np(want["logits"]), atol=2e-2)


# ---------------------------------------------------------------- masking


def test_padded_memory_steps_get_no_attention_and_padding_changes_nothing():
    rng = np.random.default_rng(6)
    decoder = _decoder(return_attention=True)
    inputs = _inputs(rng)
    out = decoder(inputs, mask={"memories": MEMORY_MASKS})
    for alpha, mask in zip(out["attention"], MEMORY_MASKS):
        alpha = _np(alpha)
        assert np.all(alpha[~np.broadcast_to(mask[:, None, :], alpha.shape)] == 0.0)
        np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-6)
    # Garbage in padded steps, and extra padded steps, leave the logits unchanged.
    padded = []
    padded_masks = []
    for memory, mask in zip(inputs["memories"], MEMORY_MASKS):
        garbage = np.where(mask[:, :, None], memory, 100.0).astype("float32")
        padded.append(np.concatenate([garbage, np.full((2, 2, memory.shape[-1]), -50.0, "float32")], axis=1))
        padded_masks.append(np.concatenate([mask, np.zeros((2, 2), bool)], axis=1))
    again = decoder({**inputs, "memories": padded}, mask={"memories": padded_masks})
    np.testing.assert_allclose(_np(again["logits"]), _np(out["logits"]), atol=1e-6)


def test_padded_caption_positions_do_not_change_earlier_logits_and_carry_the_mask():
    rng = np.random.default_rng(7)
    decoder = _decoder()
    inputs = _inputs(rng)
    logits = decoder(inputs)
    np.testing.assert_array_equal(_np(logits._keras_mask), inputs["caption_in"] != 0)
    changed = inputs["caption_in"].copy()
    changed[0, 3] = 9  # the <pad> of row 0 becomes a word
    changed[1, 2:] = 0  # row 1 padded from position 2
    other = decoder({**inputs, "caption_in": changed})
    np.testing.assert_allclose(_np(other)[0, :3], _np(logits)[0, :3], atol=1e-6)
    np.testing.assert_allclose(_np(other)[1, :2], _np(logits)[1, :2], atol=1e-6)


# ---------------------------------------------------------------- numerics


def test_attention_step_matches_numpy_eq_10_to_13():
    rng = np.random.default_rng(8)
    decoder = _decoder()
    inputs = _inputs(rng)
    decoder(inputs)
    memories = inputs["memories"]
    h = rng.normal(size=(2, UNITS)).astype("float32")
    a, alphas = decoder.attend(h, memories, MEMORY_MASKS)
    logits = decoder.output_logits(a)

    contexts, want_alphas = [], []
    for i, (memory, mask) in enumerate(zip(memories, MEMORY_MASKS)):
        keys = memory @ _np(decoder.memory_layers[i].kernel)  # W_a m_t, general score
        scores = np.einsum("btu,bu->bt", keys, h)  # (10) h^T W_a m_t
        scores = np.where(mask, scores, -np.inf)
        alpha = np.exp(scores - scores.max(-1, keepdims=True))
        alpha /= alpha.sum(-1, keepdims=True)
        contexts.append(np.einsum("bt,btd->bd", alpha, memory))  # (11)
        want_alphas.append(alpha)
    want_a = np.tanh(np.concatenate(contexts + [h], -1) @ _np(decoder.attention_layers[0].kernel))  # (12)
    want_logits = want_a @ _np(decoder.output_projection.kernel)  # (13)
    for got, want in zip(alphas, want_alphas):
        np.testing.assert_allclose(_np(got), want, atol=1e-5)
    np.testing.assert_allclose(_np(a), want_a, atol=1e-5)
    np.testing.assert_allclose(_np(logits), want_logits, atol=1e-5)


def test_teacher_forcing_matches_numpy_with_input_feeding():
    rng = np.random.default_rng(9)
    decoder = _decoder()
    inputs = _inputs(rng)
    decoder(inputs)
    _randomise_norms(decoder.cell, rng)
    logits = _np(decoder(inputs, mask={"memories": MEMORY_MASKS}))
    embeddings = _np(decoder.embedding.embeddings)
    h = c = np.zeros((2, UNITS), "float32")
    a = np.zeros((2, UNITS), "float32")
    for m in range(L):
        x = np.concatenate([embeddings[inputs["caption_in"][:, m]], a], -1)  # input feeding of a_{m-1}
        h, c = _np_cell(decoder.cell, x, h, c)
        a, _ = decoder.attend(h.astype("float32"), inputs["memories"], MEMORY_MASKS)
        a = _np(a)
        np.testing.assert_allclose(logits[:, m], a @ _np(decoder.output_projection.kernel), atol=1e-5)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"score": "dot", "num_memories": 1, "attention_units": 5},
        {"attention_layer": "per_memory", "attention_activation": None},
        {"use_attention": False},
        {"initial_state": "h_c"},
    ],
    ids=["general-shared", "dot", "per-memory-linear", "no-attention-vector-state", "h-c-state"],
)
def test_teacher_forcing_equals_stepping(config):
    rng = np.random.default_rng(10)
    config = dict(config)
    state_kind = config.pop("initial_state", None)
    decoder = _decoder(**config)
    inputs = _inputs(rng)
    if state_kind == "h_c":
        inputs["initial_state"] = [rng.normal(size=(2, UNITS)).astype("float32") for _ in range(2)]
    if config.get("score") == "dot":
        inputs["memories"] = [rng.normal(size=(2, T1, UNITS)).astype("float32")]
    masks = MEMORY_MASKS[: decoder.num_memories]
    if not decoder.use_attention:
        inputs = {"caption_in": inputs["caption_in"], "initial_state": rng.normal(size=(2, 6)).astype("float32")}
        masks = None
    logits = _np(decoder(inputs, mask={"memories": masks} if masks else None))
    memories = inputs.get("memories")
    state = decoder.initial_decoding_state(memories, masks, inputs.get("initial_state"), batch_size=2)
    assert len(state) == (3 if decoder.use_attention else 2)
    for m in range(L):
        step_logits, state, alphas = decoder.step(inputs["caption_in"][:, m], state, memories, masks)
        assert tuple(step_logits.shape) == (2, V) and len(alphas) == (decoder.num_memories if memories else 0)
        np.testing.assert_allclose(_np(step_logits), logits[:, m], atol=1e-5)


def test_dropout_only_in_training():
    rng = np.random.default_rng(11)
    decoder = _decoder(dropout=0.5)
    inputs = _inputs(rng)
    inference = _np(decoder(inputs))
    np.testing.assert_array_equal(_np(decoder(inputs, training=False)), inference)
    trained = _np(decoder(inputs, training=True))
    assert np.all(np.isfinite(trained)) and not np.allclose(trained, inference)


def test_masks_reach_the_decoder_in_a_functional_model_and_gradients_flow():
    caption_in = keras.Input((None,), dtype="int32")
    features = keras.Input((T1, 4))
    memory = LayerNormLSTM(UNITS, return_sequences=True)(keras.layers.Masking()(features))
    outputs = _decoder(num_memories=1, return_attention=True)({"caption_in": caption_in, "memories": [memory]})
    model = keras.Model([caption_in, features], outputs)
    x = np.random.default_rng(12).normal(size=(2, T1, 4)).astype("float32")
    x[0, 3:] = 0.0  # masked steps of row 0
    captions = np.array([[1, 4, 5, 0], [1, 6, 7, 8]], "int32")
    with tf.GradientTape() as tape:
        out = model([captions, x], training=True)
        loss = keras.ops.mean(out["logits"] ** 2)
    assert np.all(_np(out["attention"][0])[0, :, 3:] == 0.0)
    gradients = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.all(np.isfinite(_np(g))) for g in gradients)


def test_training_graph_with_unknown_caption_length():
    """Dropout masks and embeddings scanned together: a graph of unknown batch and caption length trains."""
    decoder = _decoder()
    rng = np.random.default_rng(5)
    signature = [
        {
            "caption_in": tf.TensorSpec([None, None], tf.int32),
            "memories": [tf.TensorSpec([None, None, 6]), tf.TensorSpec([None, None, 7])],
        }
    ]
    train_step = tf.function(lambda inputs: decoder(inputs, training=True), input_signature=signature)
    for length in (3, 6):
        inputs = {"caption_in": rng.integers(1, V, size=(2, length)).astype("int32"), "memories": _memories(rng)}
        logits = train_step(inputs)
        assert logits.shape == (2, length, V)
        assert np.all(np.isfinite(logits.numpy()))
