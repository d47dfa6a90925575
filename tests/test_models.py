"""Every model of the registry builds, trains one step, decodes, captions audio and reloads whole.

Tiny models (8 units, 8-D embeddings, a 24-word vocabulary) on two clips: three VGGish examples / twelve MFCC
frames / sixteen log-mel frames of cached features, or two seconds of audio.
"""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import audiocaps_tf  # noqa: F401  (registers the models for load_model)
import fake_vggish_hub
from model_test_case import run_captioner_test
from audiocaps_tf.tokens.vocabulary import BOS_ID, EOS_ID, PAD_ID, WordVocabulary
from audiocaps_tf.layers import LogMelFrontend, MFCCFrontend, VGGish, load_vggish_weights
from audiocaps_tf.models import (
    DEFAULT_HYPER_PARAMETERS,
    EXCLUDED_ROWS,
    MODEL_NAMES,
    MODELS,
    PAPER_MODEL_NAMES,
    AudioCaptioner,
    NearestNeighbourCaptioner,
    build_captioner,
    resolve_hyper_parameters,
)

CAPTIONS = [
    "a dog barks and a man speaks",
    "birds chirp while water flows",
    "a car engine revs loudly",
    "people laugh then a baby cries",
]
ATTRIBUTE_WORDS = ["dog", "man", "bird", "water", "car engine", "baby"]
TINY = dict(units=8, embedding_dim=8, attribute_embedding_dim=8)
MAX_LENGTH = 6
SECONDS = 2.0


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def vocabulary():
    vocabulary = WordVocabulary.build(CAPTIONS)
    assert 20 <= vocabulary.size <= 30
    return vocabulary


@pytest.fixture(scope="module")
def batch(vocabulary):
    """(inputs, targets) as the training pipeline yields them; clip 1 is shorter (zero-padded steps)."""
    rng = np.random.default_rng(0)
    inputs = {
        "mfcc": rng.normal(0.0, 10.0, size=(2, 12, 20)).astype("float32"),
        "vggish_fc2": rng.normal(size=(2, 3, 128)).astype("float32"),
        "vggish_conv4": rng.uniform(0.0, 50.0, size=(2, 3, 512)).astype("float32"),
        "vggish_conv3": rng.uniform(0.0, 50.0, size=(2, 3, 256)).astype("float32"),
        "log_mel": rng.normal(-2.0, 2.0, size=(2, 16, 64)).astype("float32"),  # drawn last: the others as before
    }
    inputs["mfcc"][1, 8:] = 0.0
    inputs["log_mel"][1, 11:] = 0.0
    for field in ("vggish_fc2", "vggish_conv4", "vggish_conv3"):
        inputs[field][1, 2:] = 0.0
    inputs["attributes"] = tf.constant([[b"dog", b"man"], [b"bird", b""]])
    ids = [vocabulary.encode(caption, add_eos=True) for caption in CAPTIONS[:2]]
    width = max(len(i) for i in ids)
    caption_in = np.zeros((2, width), "int32")
    targets = np.zeros((2, width), "int32")
    for row, caption_ids in enumerate(ids):
        caption_in[row, : len(caption_ids)] = [BOS_ID] + caption_ids[:-1]
        targets[row, : len(caption_ids)] = caption_ids
    inputs["caption_in"] = caption_in
    return inputs, targets


@pytest.fixture(scope="module")
def waveforms():
    """Two clips of 2 s at 16 kHz: noise bursts over a tone."""
    rng = np.random.default_rng(1)
    t = np.arange(int(SECONDS * 16000)) / 16000.0
    tone = 0.1 * np.sin(2 * np.pi * np.array([[440.0], [1200.0]]) * t)
    return (tone + rng.normal(0.0, 0.05, size=tone.shape)).astype("float32")


@pytest.fixture(scope="module")
def vggish_checkpoint(tmp_path_factory):
    """Random VGGish weights in the released checkpoint's format (He-scaled, so features are O(1))."""
    values = fake_vggish_hub.random_values(seed=3)
    return fake_vggish_hub.write_checkpoint_v2(values, tmp_path_factory.mktemp("vggish") / "vggish_model.ckpt")


def _build(name, vocabulary, **kwargs):
    return build_captioner(name, vocabulary, attribute_vocabulary=ATTRIBUTE_WORDS, **{**TINY, **kwargs})


def _loss(targets, logits):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)
    return loss(targets, logits)


def _compile(model):
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=PAD_ID))
    return model


def _assert_valid_tokens(result, vocabulary_size, batch_size, max_length=MAX_LENGTH):
    tokens, lengths = _np(result["tokens"]), _np(result["lengths"])
    assert tokens.dtype == np.int32 and tokens.shape[0] == batch_size and tokens.shape[1] <= max_length
    assert _np(result["scores"]).shape == (batch_size,) and np.all(np.isfinite(_np(result["scores"])))
    for row, length in zip(tokens, lengths):
        assert 1 <= length <= max_length
        assert np.all(row[length:] == PAD_ID)
        body = row[:length]
        assert np.all((body > BOS_ID) & (body < vocabulary_size)), row  # never <pad> / <bos>
        assert np.all(body[:-1] != EOS_ID)  # <eos> only last
        assert body[-1] == EOS_ID or length == max_length


def _random_index(model, rng):
    """An attribute index of four other clips, so the in-graph 1NN search runs."""
    model.set_attribute_index(
        rng.normal(size=(4, 128)).astype("float32"), [["dog"], ["man", "car engine"], [], ["baby", "unknown word"]]
    )


# ---------------------------------------------------------------------------------------------------- registry


def test_registry_names_follow_the_paper():
    assert PAPER_MODEL_NAMES == tuple(name for name in MODEL_NAMES if MODELS[name].paper) == (
        "1nn-mfcc",
        "1nn-vggish",
        "mfcc-lstm",
        "vggish-lstm",
        "tempatt-mfcc-lstm",
        "tempatt-vggish-fc2-lstm",
        "tempatt-vggish-c4-lstm",
        "tempatt-vggish-c3-lstm",
        "topdown-vggish-lstm",
        "topdown-vggish3-lstm",
        "topdown-semtempatt",
        "topdown-alignedatt",
    )
    assert MODELS["topdown-alignedatt"].row_label("gt") == "TopDown-AlignedAtt(GT)"
    assert MODELS["topdown-semtempatt"].row_label("1nn") == "TopDown-SemTempAtt(1NN)"
    assert MODELS["tempatt-vggish-c4-lstm"].row_label() == "TempAtt-VGGish(C4)-LSTM"
    assert not MODELS["mfcc-lstm"].attention and not MODELS["vggish-lstm"].attention
    assert MODELS["topdown-vggish3-lstm"].features == ("vggish_fc2", "vggish_conv4", "vggish_conv3")
    # Ours come after the paper's rows, marked as such, in the paper's naming and row style.
    ours = MODEL_NAMES[len(PAPER_MODEL_NAMES):]
    assert MODEL_NAMES[: len(PAPER_MODEL_NAMES)] == PAPER_MODEL_NAMES and ours == (
        "tempatt-logmel-cnn-lstm", "tempatt-mfcc-lstm-specaug", "tempatt-mfcc-transformer-specaug")
    for name in ours:
        spec = MODELS[name]
        assert not spec.paper and spec.row.endswith(" (ours)") and f"-{spec.decoder.replace('luong', 'lstm')}" in name
        assert spec.row_label() not in EXCLUDED_ROWS
    transformer = MODELS["tempatt-mfcc-transformer-specaug"]
    assert transformer.decoder == "transformer" and transformer.defaults == MODELS["tempatt-mfcc-lstm-specaug"].defaults
    # The paper's entries take the authors' hyper-parameters; a recipe of ours may change them, never the wiring.
    assert all(not MODELS[name].defaults for name in PAPER_MODEL_NAMES)
    specaug = MODELS["tempatt-mfcc-lstm-specaug"]
    paper = MODELS["tempatt-mfcc-lstm"]
    assert (specaug.features, specaug.encoder, specaug.decoder) == (paper.features, paper.encoder, paper.decoder)
    recipe = resolve_hyper_parameters(None, "tempatt-mfcc-lstm-specaug")
    assert {k: recipe[k] for k in ("time_masks", "feature_masks", "no_repeat_ngram_size", "beam_size")} == {
        "time_masks": 2, "feature_masks": 2, "no_repeat_ngram_size": 3, "beam_size": 3}
    assert resolve_hyper_parameters({"beam_size": 1}, "tempatt-mfcc-lstm-specaug")["beam_size"] == 1
    assert MODELS["tempatt-logmel-cnn-lstm"].features == ("log_mel",)
    assert not MODELS["tempatt-logmel-cnn-lstm"].uses_vggish


def test_defaults_are_the_authors_hyper_parameters(vocabulary):
    assert DEFAULT_HYPER_PARAMETERS["units"] == 128 and DEFAULT_HYPER_PARAMETERS["embedding_dim"] == 300
    assert DEFAULT_HYPER_PARAMETERS["max_caption_length"] == 51
    rates = [DEFAULT_HYPER_PARAMETERS[f"{k}_dropout"] for k in ("encoder", "word", "context", "decoder")]
    assert rates == [0.25, 0.25, 0.2, 0.25]
    assert resolve_hyper_parameters({"dropouts": 0.0})["context_dropout"] == 0.0
    assert resolve_hyper_parameters({"dropouts": {"word": 0.5}})["word_dropout"] == 0.5
    with pytest.raises(TypeError, match="unknown hyper-parameters"):
        resolve_hyper_parameters({"unit": 3})
    model = build_captioner("topdown-alignedatt", vocabulary, attribute_vocabulary=ATTRIBUTE_WORDS)
    assert model.attributes == "1nn" and model.decoder.units == 128 and model.decoder.embedding_dim == 300
    assert model.encoder.context_encoder.dropout == 0.2 and model.encoder.semantic_encoder.dropout == 0.25
    assert model.decoder.dropout == 0.25 and model.encoder.dropout == 0.25
    assert model.decoder.num_memories == 2
    assert model.vggish.trainable is False and model.vggish.feature_names == ("fc2", "conv4")
    assert model.required_fields == ("vggish_fc2", "vggish_conv4")
    with pytest.raises(ValueError, match="unknown model"):
        build_captioner("soundnet-lstm", vocabulary)
    with pytest.raises(ValueError, match="attribute_vocabulary"):
        build_captioner("topdown-semtempatt", vocabulary)


# ---------------------------------------------------------------------------------------------------- every model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_registry_model_passes_the_captioner_test(name, vocabulary, batch, tmp_path):
    """Every registry entry: its own wiring checks (indexing for 1NN; logits, a gradient for every weight, attention
    maps for the generative ones), then `run_captioner_test`: a training step, generate, save / load, same outputs."""
    inputs, targets = batch
    rng = np.random.default_rng(2)
    model = _build(name, vocabulary)
    spec = MODELS[name]
    assert model.required_fields == spec.features
    cached = {key: value for key, value in inputs.items() if key in spec.features or key == "caption_in"}

    if spec.is_retrieval:
        assert isinstance(model, NearestNeighbourCaptioner) and model.trainable_weights == []
        # Its training step is indexing: clip 0 of the batch, and three others.
        features = rng.normal(size=(4, model.caption_index.feature_dim)).astype("float32")
        features[2] = _np(model.pooled_features(cached))[0]
        model.index(features, CAPTIONS)
        result = model.decode(cached)
        assert _np(result["indices"])[0] == 2
        assert list(_np(result["tokens"])[0, : _np(result["lengths"])[0]]) == vocabulary.encode(CAPTIONS[2])
        captions = model.generate(cached)
        assert len(captions) == 2 and captions[0] == CAPTIONS[2] and all(c in CAPTIONS for c in captions)
        run_captioner_test(model, cached, targets, tmp_path)
        return

    assert isinstance(model, AudioCaptioner)
    if spec.uses_attributes:
        _random_index(model, rng)
    logits = model(cached)
    assert tuple(logits.shape) == targets.shape + (vocabulary.size,) and logits.dtype == "float32"

    # One training step: every trainable weight gets a gradient (the wiring uses them all) and moves.
    optimizer = keras.optimizers.Adam(0.01)
    before = [_np(v).copy() for v in model.trainable_weights]
    with tf.GradientTape() as tape:
        loss = _loss(targets, model(cached, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(float(loss))
    missing = [v.path for v, g in zip(model.trainable_weights, gradients) if g is None]
    assert not missing, f"weights without a gradient: {missing}"
    optimizer.apply(gradients, model.trainable_weights)
    changed = [not np.array_equal(b, _np(v)) for b, v in zip(before, model.trainable_weights)]
    assert sum(changed) >= 0.9 * len(changed)
    assert model.vggish is None or model.vggish.trainable_weights == []

    # One decoding step each way, and text.
    greedy = model.decode(cached, beam_size=1, max_length=MAX_LENGTH)
    _assert_valid_tokens(greedy, vocabulary.size, 2)
    memories = 2 if spec.uses_attributes else int(spec.attention)
    assert len(greedy["attention"]) == memories
    for alpha in greedy["attention"]:
        assert alpha.shape[:2] == greedy["tokens"].shape
    _assert_valid_tokens(model.decode(cached, beam_size=2, max_length=MAX_LENGTH), vocabulary.size, 2)
    captions = model.generate(cached, beam_size=2, max_length=MAX_LENGTH)
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
    assert captions == model.detokenize(model.decode(cached, beam_size=2, max_length=MAX_LENGTH)["tokens"])
    run_captioner_test(model, cached, targets, tmp_path)


def test_generate_without_repeated_ngrams(vocabulary, batch):
    """`no_repeat_ngram_size` reaches the model's search: the untrained model repeats itself without it."""
    keras.utils.set_random_seed(3)  # the random weights, whatever ran before in this process
    model = _build("topdown-alignedatt", vocabulary)
    _random_index(model, np.random.default_rng(3))
    cached = {key: value for key, value in batch[0].items() if key in model.required_fields}

    def repeats(tokens, n):
        grams = [tuple(row[i : i + n]) for row in tokens for i in range(len(row) - n + 1)]
        return len(grams) - len(set(grams))

    def captions(**options):
        return [c.split() for c in model.generate(cached, max_length=20, **options)]

    unblocked = captions()
    assert any(repeats([c], 2) for c in unblocked), unblocked
    for beam_size in (1, 2):
        for n in (1, 2):
            blocked = captions(beam_size=beam_size, no_repeat_ngram_size=n)
            assert all(repeats([c], n) == 0 for c in blocked), (beam_size, n, blocked)
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        model.generate(cached, no_repeat_ngram_size=-1)


def test_a_model_decodes_with_its_own_no_repeat_setting(vocabulary, batch, tmp_path):
    """The `no_repeat_ngram_size` hyper-parameter is the model's decoding default, kept when saved; a call's
    explicit value (0 too) wins."""
    keras.utils.set_random_seed(3)  # the random weights, whatever ran before in this process
    plain = _build("topdown-alignedatt", vocabulary)
    _random_index(plain, np.random.default_rng(3))
    blocking = _build("topdown-alignedatt", vocabulary, no_repeat_ngram_size=2)
    _random_index(blocking, np.random.default_rng(3))
    blocking.set_weights(plain.get_weights())
    cached = {key: value for key, value in batch[0].items() if key in plain.required_fields}
    assert "no_repeat_ngram_size" not in plain.get_config()  # configs saved before the setting existed still load
    assert blocking.generate(cached, max_length=20) == plain.generate(cached, max_length=20, no_repeat_ngram_size=2)
    assert blocking.generate(cached, max_length=20, no_repeat_ngram_size=0) == plain.generate(cached, max_length=20)
    assert blocking.generate(cached, max_length=20) != plain.generate(cached, max_length=20)
    blocking.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert restored.no_repeat_ngram_size == 2
    assert restored.generate(cached, max_length=20) == blocking.generate(cached, max_length=20)


def test_a_model_decodes_with_its_own_beam_size(vocabulary, batch, tmp_path):
    """The `beam_size` hyper-parameter is the model's decoding default (a registry recipe's, too), kept when saved;
    a call's explicit value (1 too) wins."""
    keras.utils.set_random_seed(3)  # the random weights, whatever ran before in this process
    plain = _build("tempatt-mfcc-lstm", vocabulary)
    beaming = _build("tempatt-mfcc-lstm", vocabulary, beam_size=3)
    beaming.set_weights(plain.get_weights())
    cached = {key: value for key, value in batch[0].items() if key in plain.required_fields}
    assert "beam_size" not in plain.get_config() and plain.decoding_beam_size == 1
    assert beaming.generate(cached, max_length=20) == plain.generate(cached, max_length=20, beam_size=3)
    assert beaming.generate(cached, max_length=20, beam_size=1) == plain.generate(cached, max_length=20)
    # Beam search returns no attention maps: the default really is the beam.
    assert beaming.decode(cached, max_length=20)["attention"] == []
    assert len(beaming.decode(cached, max_length=20, beam_size=1)["attention"]) == 1
    beaming.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert restored.decoding_beam_size == 3
    assert restored.generate(cached, max_length=20) == beaming.generate(cached, max_length=20)
    recipe = _build("tempatt-mfcc-lstm-specaug", vocabulary)
    assert (recipe.decoding_beam_size, recipe.decoding_no_repeat_ngram_size) == (3, 3)
    with pytest.raises(ValueError, match="beam_size"):
        plain.generate(cached, beam_size=0)
    with pytest.raises(ValueError, match="beam_size"):
        _build("tempatt-mfcc-lstm", vocabulary, beam_size=0)


# ---------------------------------------------------------------------------------------------------- waveforms


@pytest.mark.parametrize("name", ["tempatt-mfcc-lstm", "topdown-vggish3-lstm"])
def test_cached_features_equal_the_waveform_path(name, vocabulary, waveforms, vggish_checkpoint):
    """Features made as `prepare` makes them (standalone frontends, the same VGGish weights) give the logits the
    model computes from the waveform itself."""
    model = _build(name, vocabulary)
    if model.vggish is not None:
        load_vggish_weights(model.vggish, vggish_checkpoint)
        vggish = load_vggish_weights(VGGish(), vggish_checkpoint)
        cached = {f"vggish_{k}": _np(v) for k, v in vggish(LogMelFrontend()(waveforms)).items()}
    else:
        cached = {"mfcc": _np(MFCCFrontend()(waveforms))}
    caption_in = np.array([[BOS_ID, 4, 5], [BOS_ID, 6, 0]], "int32")
    from_cache = _np(model({**cached, "caption_in": caption_in}))
    from_audio = _np(model({"waveform": waveforms, "caption_in": caption_in}))
    np.testing.assert_allclose(from_cache, from_audio, rtol=1e-4, atol=1e-4)
    assert model.generate(cached) == model.generate(waveforms, clip_seconds=None)


@pytest.mark.parametrize("name", ["mfcc-lstm", "topdown-alignedatt"])
def test_fit_step_from_waveforms(name, vocabulary, batch, waveforms):
    """The compiled Keras path (train_on_batch), end to end from audio, VGGish frozen."""
    _, targets = batch
    model = _compile(_build(name, vocabulary))
    inputs = {"waveform": waveforms, "caption_in": batch[0]["caption_in"], "attributes": batch[0]["attributes"]}
    if model.uses_attributes:
        _random_index(model, np.random.default_rng(4))
    vggish_before = [_np(v).copy() for v in model.vggish.weights] if model.vggish else []
    decoder_before = _np(model.decoder.output_projection.kernel).copy()
    loss = model.train_on_batch(inputs, targets)
    assert np.isfinite(loss)
    assert not np.array_equal(decoder_before, _np(model.decoder.output_projection.kernel))
    for before, variable in zip(vggish_before, model.vggish.weights if model.vggish else []):
        np.testing.assert_array_equal(before, _np(variable))
    captions = model.generate(list(waveforms), max_length=MAX_LENGTH, clip_seconds=None)
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)


# One model per frontend, encoder and decoder kind (all 15 took ~90 s more of the suite, and passed).
MASKING_MODELS = ["1nn-vggish", "tempatt-mfcc-lstm", "tempatt-mfcc-transformer-specaug", "topdown-vggish3-lstm",
                  "topdown-alignedatt", "tempatt-logmel-cnn-lstm"]


@pytest.mark.parametrize("name", MASKING_MODELS)
def test_a_clip_gives_the_same_logits_and_caption_batched_with_longer_clips(name, vocabulary, vggish_checkpoint):
    """Padding is masked from the waveform on: a 3.2 s clip zero-padded to the 7 s of its batch (and to the 10 s
    `generate` pads to) gets the logits, score and caption it gets alone."""
    model = _build(name, vocabulary)
    if model.vggish is not None:
        load_vggish_weights(model.vggish, vggish_checkpoint)
    rng = np.random.default_rng(5)
    short = rng.normal(0.0, 0.1, int(3.2 * 16000)).astype("float32")
    long = rng.normal(0.0, 0.1, 7 * 16000).astype("float32")
    batch = np.zeros((2, long.size), "float32")
    batch[0, : short.size], batch[1] = short, long
    alone, batched = {"waveform": short[None]}, {"waveform": batch}
    if isinstance(model, NearestNeighbourCaptioner):
        pooled = [_np(model.pooled_features(inputs)) for inputs in (alone, batched)]
        np.testing.assert_allclose(pooled[1][0], pooled[0][0], rtol=1e-4, atol=1e-4)
        model.index(pooled[1][:1] + rng.normal(size=(3, pooled[0].shape[1])).astype("float32"),
                    ["a dog barks", "water flows", "a car revs"])
    else:
        if model.uses_attributes:
            _random_index(model, rng)
        alone["caption_in"], batched["caption_in"] = (np.array([[BOS_ID, 4, 5]] * n, "int32") for n in (1, 2))
        logits = [_np(model(inputs)) for inputs in (alone, batched)]
        np.testing.assert_allclose(logits[1][0], logits[0][0], rtol=1e-4, atol=1e-4)
    scores = [_np(model.decode({"waveform": inputs["waveform"]})["scores"]) for inputs in (alone, batched)]
    np.testing.assert_allclose(scores[1][0], scores[0][0], rtol=1e-4, atol=1e-5)
    assert model.generate([short, long], max_length=MAX_LENGTH)[0] == model.generate(
        [short], max_length=MAX_LENGTH, clip_seconds=None)[0]


def test_vggish_fine_tuning_updates_vggish(vocabulary, batch, waveforms):
    _, targets = batch
    model = _compile(_build("tempatt-vggish-c3-lstm", vocabulary, vggish_trainable=True))
    assert len(model.vggish.trainable_weights) == 8  # conv1 .. conv3_2, nothing beyond conv3
    before = [_np(v).copy() for v in model.vggish.trainable_weights]
    model.train_on_batch({"waveform": waveforms, "caption_in": batch[0]["caption_in"]}, targets)
    assert all(not np.array_equal(b, _np(v)) for b, v in zip(before, model.vggish.trainable_weights))
    assert AudioCaptioner.from_config(model.get_config()).vggish.trainable


def test_decode_in_a_graph_with_unknown_batch(vocabulary, waveforms):
    model = _build("topdown-semtempatt", vocabulary)
    _random_index(model, np.random.default_rng(5))
    decode = tf.function(
        lambda waveform: model.decode({"waveform": waveform}, beam_size=2, max_length=MAX_LENGTH),
        input_signature=[tf.TensorSpec([None, None], tf.float32)],
    )
    both, first = decode(waveforms), decode(waveforms[:1])
    np.testing.assert_array_equal(_np(first["tokens"])[0], _np(both["tokens"])[0, : first["tokens"].shape[1]])
    ops = {op.type for op in decode.get_concrete_function().graph.get_operations()}
    assert "While" in ops or "StatelessWhile" in ops
    assert not any("PyFunc" in op for op in ops)


# ---------------------------------------------------------------------------------------------------- attributes


def test_missing_attributes_come_from_the_nearest_training_clip(vocabulary, batch):
    inputs, _ = batch
    cached = {key: inputs[key] for key in ("vggish_fc2", "vggish_conv4", "caption_in")}
    rng = np.random.default_rng(6)
    for attributes in ("1nn", "gt"):
        model = _build("topdown-alignedatt", vocabulary, attributes=attributes)
        pooled = _np(model.pooled_features(cached))
        index = rng.normal(size=(5, 128)).astype("float32")
        index[3] = pooled[0] + 0.01  # clip 0's neighbour
        index[1] = pooled[1] - 0.01  # clip 1's neighbour
        lists = [["dog"], ["water", "car engine"], ["man"], ["baby", "bird", "dog"], ["man", "dog"]]
        model.set_attribute_index(index, lists)
        ids = _np(model.encode(cached)["attribute_ids"])
        words = {i + 2: w for i, w in enumerate(ATTRIBUTE_WORDS)}
        assert [[words[i] for i in row if i] for row in ids] == [["baby", "bird", "dog"], ["water", "car engine"]]
        # The same as being given those words.
        given = tf.constant([[b"baby", b"bird", b"dog"], [b"water", b"car engine", b""]])
        key = "attributes" if attributes == "gt" else "neighbour_attributes"
        np.testing.assert_allclose(_np(model(cached)), _np(model({**cached, key: given})), atol=1e-6)
        # Training on the index's own clips: a clip never finds itself.
        model.set_attribute_index(pooled, [["dog"], ["man"]])
        own = _np(model.attribute_ids(cached, training=False))
        other = _np(model.attribute_ids(cached, training=True))
        assert own[:, 0].tolist() == [2, 3] and other[:, 0].tolist() == [3, 2]


def test_attribute_sources(vocabulary, batch):
    inputs, _ = batch
    cached = {key: inputs[key] for key in ("vggish_fc2", "vggish_conv4", "caption_in")}
    other = tf.constant([[b"car engine", b""], [b"dog", b"man"]])
    nn = _build("topdown-semtempatt", vocabulary, attributes="1nn")
    _random_index(nn, np.random.default_rng(7))
    # "1nn" never reads the clip's own labels ...
    np.testing.assert_array_equal(_np(nn(cached)), _np(nn({**cached, "attributes": other})))
    # ... "gt" does; unknown words map to the OOV id 1.
    gt = _build("topdown-semtempatt", vocabulary, attributes="gt")
    own = _np(gt({**cached, "attributes": inputs["attributes"]}))
    assert not np.allclose(own, _np(gt({**cached, "attributes": other})))
    ids = _np(gt.attribute_ids({"attributes": tf.constant([[b"dog", b"what", b""]])}))
    assert ids.tolist() == [[2, 1, 0]]
    # Without attributes nor an index: no attribute words, and a warning.
    empty = _build("topdown-semtempatt", vocabulary)
    with pytest.warns(UserWarning, match="empty attribute index"):
        assert np.all(_np(empty.encode(cached)["attribute_ids"]) == 0)


def test_model_inputs_are_numeric_and_fit_a_dataset(vocabulary, batch):
    inputs, targets = batch
    model = _compile(_build("topdown-semtempatt", vocabulary, attributes="gt"))
    selected = model.model_inputs(inputs)
    assert sorted(selected) == ["attributes", "caption_in", "vggish_conv4", "vggish_fc2"]
    assert _np(selected["attributes"]).tolist() == [[2, 3], [4, 0]]
    np.testing.assert_array_equal(_np(model(selected)), _np(model(inputs)))
    assert sorted(model.model_inputs({"waveform": np.zeros((1, 16000), "float32"), **inputs})) == sorted(selected)
    assert sorted(model.model_inputs({"waveform": 0, "vggish_fc2": 0})) == ["waveform"]
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(2)
    history = model.fit(dataset.map(lambda x, y: (model.model_inputs(x), y)), epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


# ---------------------------------------------------------------------------------------------------- saving


def _roundtrip_inputs(inputs):
    return {key: inputs[key] for key in ("mfcc", "caption_in")}


@pytest.mark.parametrize("name", ["mfcc-lstm", "1nn-mfcc"])
def test_save_and_load_model(name, vocabulary, batch, tmp_path):
    inputs, targets = batch
    cached = _roundtrip_inputs(inputs)
    model = _build(name, vocabulary)
    if isinstance(model, NearestNeighbourCaptioner):
        model.index(np.random.default_rng(8).normal(size=(4, 20)), CAPTIONS)
    else:
        _compile(model).train_on_batch(cached, targets)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    assert type(restored) is type(model) and restored.model_name == name
    assert restored.vocabulary == vocabulary and restored.get_config() == model.get_config()
    np.testing.assert_array_equal(_np(restored(cached)), _np(model(cached)))
    assert restored.generate(cached, beam_size=2) == model.generate(cached, beam_size=2)


def test_best_model_reloads_whole_in_a_fresh_process(vocabulary, batch, tmp_path):
    """Saved after a training step with its attribute index; loaded by a new interpreter that only imports
    audiocaps_tf (no custom_objects), with safe_mode=True: same logits, same captions, same tokenizer."""
    inputs, targets = batch
    cached = {key: inputs[key] for key in ("vggish_fc2", "vggish_conv4", "caption_in")}
    model = _compile(_build("topdown-alignedatt", vocabulary))
    _random_index(model, np.random.default_rng(9))
    model.train_on_batch({**cached, "neighbour_attributes": inputs["attributes"]}, targets)
    path = tmp_path / "best.keras"
    model.save(path)
    np.savez(tmp_path / "inputs.npz", **cached)
    script = textwrap.dedent(
        f"""
        import json, numpy as np, keras
        import audiocaps_tf
        model = keras.models.load_model({str(path)!r}, safe_mode=True)
        inputs = dict(np.load({str(tmp_path / "inputs.npz")!r}))
        np.save({str(tmp_path / "logits.npy")!r}, keras.ops.convert_to_numpy(model(inputs)))
        print(json.dumps({{"class": type(model).__name__, "tokens": model.vocabulary.id_to_token,
                          "captions": model.generate(inputs, max_length={MAX_LENGTH}),
                          "index": int(model.attribute_index.size)}}))
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["class"] == "AudioCaptioner" and result["index"] == 4
    assert result["tokens"] == vocabulary.id_to_token
    assert result["captions"] == model.generate(cached, max_length=MAX_LENGTH)
    np.testing.assert_array_equal(np.load(tmp_path / "logits.npy"), _np(model(cached)))


def test_mixed_precision(vocabulary, batch):
    inputs, targets = batch
    cached = {key: inputs[key] for key in ("vggish_fc2", "vggish_conv4", "caption_in")}
    model = _compile(_build("topdown-alignedatt", vocabulary, dtype="mixed_float16"))
    _random_index(model, np.random.default_rng(10))
    assert model.decoder.compute_dtype == "float16"
    logits = model(cached)
    assert logits.dtype == "float32" and np.all(np.isfinite(_np(logits)))
    assert np.isfinite(model.train_on_batch(cached, targets))
    _assert_valid_tokens(model.decode(cached, beam_size=2, max_length=MAX_LENGTH), vocabulary.size, 2)
