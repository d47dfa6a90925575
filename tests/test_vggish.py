import keras
import numpy as np
import pytest
import tensorflow as tf

from audiocaps_tf.layers import VGGish
from layer_test_case import run_layer_test

# Sublayer -> (kernel shape, bias shape), the slim variables of shared/docs/vggish.md section 2.
SLIM_SHAPES = {
    "conv1": ((3, 3, 1, 64), (64,)),
    "conv2": ((3, 3, 64, 128), (128,)),
    "conv3_1": ((3, 3, 128, 256), (256,)),
    "conv3_2": ((3, 3, 256, 256), (256,)),
    "conv4_1": ((3, 3, 256, 512), (512,)),
    "conv4_2": ((3, 3, 512, 512), (512,)),
    "fc1_1": ((12288, 4096), (4096,)),
    "fc1_2": ((4096, 4096), (4096,)),
    "fc2": ((4096, 128), (128,)),
}


def _log_mel(batch, steps, seed=0):
    """Values in the range of real log-mel examples: ln(0.01) = -4.6 for silence up to a few units."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-4.6, 3.0, size=(batch, steps, 96, 64)).astype("float32")


@pytest.fixture(scope="module")
def vggish():
    layer = VGGish()
    layer.build((None, None, 96, 64))
    return layer


def test_layer_contract(tmp_path):
    run_layer_test(
        VGGish,
        init_kwargs={},
        input_data=_log_mel(2, 3),
        expected_output_shape={"fc2": (2, 3, 128), "conv4": (2, 3, 512), "conv3": (2, 3, 256)},
        tmp_path=tmp_path,
    )


def test_frozen_by_default_trainable_on_request():
    frozen = VGGish()
    inputs = keras.Input((None, 96, 64))
    model = keras.Model(inputs, frozen(inputs))
    assert frozen.trainable_weights == [] and len(frozen.non_trainable_weights) == 18
    assert model.trainable_weights == []  # its variables are frozen too, not only the layer flag
    assert VGGish.from_config(frozen.get_config()).trainable is False

    trainable = VGGish(trainable=True)
    trainable.build((None, None, 96, 64))
    assert len(trainable.trainable_weights) == 18
    assert VGGish.from_config(trainable.get_config()).trainable is True

    frozen.trainable = True  # unfreeze later for fine-tuning
    assert len(model.trainable_weights) == 18


def test_weights_have_the_slim_shapes(vggish):
    assert len(vggish.weights) == 18
    for name, (kernel, bias) in SLIM_SHAPES.items():
        sublayer = getattr(vggish, name)
        assert tuple(sublayer.kernel.shape) == kernel and tuple(sublayer.bias.shape) == bias, name
    assert sum(int(np.prod(w.shape)) for w in vggish.weights) == 72_141_184


def test_features_are_the_sublayer_computation(vggish):
    """conv3 / conv4 are ReLU grids summed over time x mel; fc2 is the flattened NHWC stack, no ReLU."""
    examples = _log_mel(1, 2, seed=1)
    outputs = {name: x.numpy() for name, x in vggish(examples).items()}

    x = examples[0, 1][None, :, :, None]  # the second example alone, [1, 96, 64, 1]
    for name in ("conv1", "pool1", "conv2", "pool2", "conv3_1", "conv3_2"):
        x = getattr(vggish, name)(x)
    x = x.numpy()
    assert x.shape == (1, 24, 16, 256) and x.min() >= 0.0
    np.testing.assert_allclose(outputs["conv3"][0, 1], x.sum(axis=(1, 2))[0], rtol=1e-5, atol=1e-4)
    for name in ("pool3", "conv4_1", "conv4_2"):
        x = getattr(vggish, name)(x)
    x = x.numpy()
    assert x.shape == (1, 12, 8, 512) and x.min() >= 0.0
    np.testing.assert_allclose(outputs["conv4"][0, 1], x.sum(axis=(1, 2))[0], rtol=1e-5, atol=1e-4)

    x = vggish.pool4(x).numpy().reshape(1, 6 * 4 * 512)  # row-major NHWC
    weights = {name: [w.numpy() for w in getattr(vggish, name).weights] for name in ("fc1_1", "fc1_2", "fc2")}
    x = np.maximum(x @ weights["fc1_1"][0] + weights["fc1_1"][1], 0.0)
    x = np.maximum(x @ weights["fc1_2"][0] + weights["fc1_2"][1], 0.0)
    fc2 = x @ weights["fc2"][0] + weights["fc2"][1]
    np.testing.assert_allclose(outputs["fc2"][0, 1], fc2[0], rtol=1e-4, atol=1e-5)
    assert (outputs["fc2"] < 0).any() and (outputs["fc2"] > 0).any()  # pre-activation


def test_outputs_subset_skips_the_rest(vggish):
    examples = _log_mel(1, 2, seed=2)
    full = {name: x.numpy() for name, x in vggish(examples).items()}

    conv_only = VGGish(outputs=("conv4", "conv3"))
    conv_only.build((None, None, 96, 64))
    assert len(conv_only.weights) == 12 and not hasattr(conv_only, "fc1_1")
    conv_only.set_weights(vggish.get_weights()[:12])
    outputs = conv_only(examples)
    assert list(outputs) == ["conv4", "conv3"]
    for name in outputs:
        np.testing.assert_allclose(outputs[name].numpy(), full[name], rtol=1e-6)

    conv3 = VGGish(outputs="conv3")
    assert list(conv3(examples)) == ["conv3"] and len(conv3.weights) == 8
    assert VGGish.from_config(conv3.get_config()).feature_names == ("conv3",)
    with pytest.raises(ValueError, match="distinct names"):
        VGGish(outputs=("fc3",))
    with pytest.raises(ValueError, match="distinct names"):
        VGGish(outputs=())


def test_dynamic_number_of_examples(vggish):
    serve = tf.function(vggish.call, input_signature=[tf.TensorSpec([None, None, 96, 64], tf.float32)])
    for batch, steps in ((1, 1), (2, 4)):
        outputs = serve(_log_mel(batch, steps))
        assert {name: tuple(x.shape) for name, x in outputs.items()} == {
            "fc2": (batch, steps, 128),
            "conv4": (batch, steps, 512),
            "conv3": (batch, steps, 256),
        }


def test_mixed_float16_is_close_to_float32(vggish):
    mixed = VGGish(dtype="mixed_float16")
    mixed.build((None, None, 96, 64))
    mixed.set_weights(vggish.get_weights())
    assert all(w.dtype == "float32" for w in mixed.weights)  # float32 variables, float16 compute
    examples = _log_mel(1, 2, seed=3)
    want, got = vggish(examples), mixed(examples)
    for name in want:
        assert got[name].dtype == "float16"
        want_np, got_np = want[name].numpy(), got[name].numpy()
        scale = np.abs(want_np).max()
        np.testing.assert_allclose(got_np.astype("float32"), want_np, rtol=0, atol=1e-2 * scale)
