"""`run_captioner_test`: what every captioner must do, in one helper (keras-hub's `run_task_test` /
`run_model_saving_test` for our tasks): one training step, `generate`, a `.keras` round trip, the same outputs after.
"""

import keras
import numpy as np

from audiocaps_tf.models import AudioCaptioner, Captioner
from audiocaps_tf.tokens.vocabulary import PAD_ID


def _np(x):
    return keras.ops.convert_to_numpy(x)


def save_tiny_demo_captioner(path, seed, max_caption_length):
    """An untrained tiny tempatt-mfcc-lstm over the demo captions' words, saved to `path`. Seeded: its weights must
    not depend on the tests that ran before in this process (some random weights leave two words nearly tied, and
    a batch of other windows then tips the choice)."""
    from audiocaps_tf.data import demo
    from audiocaps_tf.models import build_captioner
    from audiocaps_tf.tokens.vocabulary import build_vocabulary

    keras.utils.set_random_seed(seed)
    vocabulary = build_vocabulary([c for spec in demo.clip_specs(20, 0) for c in demo.describe(spec, 1)])
    model = build_captioner("tempatt-mfcc-lstm", vocabulary, units=8, embedding_dim=8,
                            max_caption_length=max_caption_length)
    model.save(path)
    return path


def run_captioner_test(model, inputs, targets, tmp_path, max_length=6):
    """Checks `model` (a built captioner, with its index set if it needs one) on a batch (`inputs`, `targets`).

    Generative captioners take one compiled training step (`train_on_batch`, finite loss). Every captioner then
    generates greedy and beam-2 captions, saves to `.keras`, reloads with `safe_mode=True` as the same class and
    config, and gives the same weights, tokens, scores and captions after the reload. Returns the reloaded model.
    """
    assert isinstance(model, Captioner)
    if isinstance(model, AudioCaptioner):
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=PAD_ID))
        loss = model.train_on_batch(model.model_inputs(inputs), targets)
        assert np.isfinite(loss)
    features = {key: value for key, value in inputs.items() if key != "caption_in"}
    greedy = model.generate(features, max_length=max_length)
    beam = model.generate(features, beam_size=2, max_length=max_length)
    assert len(greedy) == len(beam) == len(targets) and all(isinstance(c, str) for c in greedy + beam)

    path = tmp_path / f"{model.model_name or 'captioner'}.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    assert type(restored) is type(model) and restored.get_config() == model.get_config()
    assert len(restored.weights) == len(model.weights)
    for before, after in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(_np(before), _np(after), err_msg=before.path)
    expected, got = model.decode(features, max_length=max_length), restored.decode(features, max_length=max_length)
    np.testing.assert_array_equal(_np(expected["tokens"]), _np(got["tokens"]))
    np.testing.assert_allclose(_np(expected["scores"]), _np(got["scores"]), rtol=1e-6, atol=1e-6)
    assert restored.generate(features, max_length=max_length) == greedy
    assert restored.generate(features, beam_size=2, max_length=max_length) == beam
    return restored


def assert_augmentation_is_training_only(augmented, plain, features, caption_in):
    """`augmented` and `plain`: one model's weights with and without training augmentation. Their logits and
    captions (greedy and beam 2: what generate, fit's validation and the export run) must be equal outside
    training, and the logits must differ in training (while `plain` is deterministic there)."""
    inputs = {**features, "caption_in": caption_in}

    def logits(model, training):
        return _np(model(inputs, training=training))

    np.testing.assert_array_equal(logits(augmented, False), logits(plain, False))  # validation / test
    np.testing.assert_array_equal(logits(plain, True), logits(plain, False))  # nothing else random here
    assert not np.allclose(logits(augmented, True), logits(plain, True))  # training sees augmented inputs
    for beam_size in (1, 2):
        expected = plain.decode(features, beam_size=beam_size, max_length=8)
        got = augmented.decode(features, beam_size=beam_size, max_length=8)
        np.testing.assert_array_equal(_np(got["tokens"]), _np(expected["tokens"]))
