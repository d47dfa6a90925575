"""load_vggish_weights against an offline fake of the TF Hub module google/vggish/1 (no internet)."""

import hashlib
import os
import socket
import types
import urllib.request

import keras
import numpy as np
import pytest
import soundfile as sf
import soxr
import tensorflow as tf

import fake_vggish_hub
from audiocaps_tf import params
from audiocaps_tf.layers import LogMelFrontend, VGGish, load_vggish_weights, save_vggish_weights
from audiocaps_tf.layers.vggish_weights import VGGishWeightsUnavailableError

# Module output vs. LogMelFrontend + VGGish: both float32 TF with the same ops (stft, mel matmul, conv2d,
# max_pool, matmul), so on this CPU they agree bit for bit (max |diff| = 0 on four clips, fc2 up to ~27).
# rtol 1e-4 leaves room for other kernels (GPU, oneDNN fusions); atol 1e-5 only covers entries that
# cancel to near zero in the fc2 dot product, where a relative bound means nothing.
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="session")
def fake_values():
    return fake_vggish_hub.random_values(seed=0)


@pytest.fixture(scope="session")
def fake_hub(tmp_path_factory, fake_values):
    """The fake module written once, at its place in a TF Hub cache for the default handle."""
    cache_dir = tmp_path_factory.mktemp("tfhub_cache")
    module_dir = cache_dir / hashlib.sha1(params.VGGISH_HUB_HANDLE.encode("utf8")).hexdigest()
    fake_vggish_hub.write_module(fake_values, module_dir)
    return types.SimpleNamespace(cache_dir=cache_dir, module_dir=module_dir)


@pytest.fixture(scope="session")
def waveform(example_paths):
    """A real AudioCaps clip: mono, 22.05 kHz -> 16 kHz float32."""
    audio, rate = sf.read(str(example_paths[0]), always_2d=True)
    assert rate == 22050
    return soxr.resample(audio.mean(axis=1), rate, params.SAMPLE_RATE, "HQ").astype("float32")


@pytest.fixture(scope="session")
def module_embeddings(fake_hub, waveform):
    """What the module itself computes: [N, 128]."""
    module = tf.saved_model.load(str(fake_hub.module_dir))
    return module(tf.constant(waveform)).numpy()


def _fc2(vggish, waveform):
    examples = LogMelFrontend()(waveform[None])
    return vggish(examples)["fc2"][0].numpy()


def _assert_weights_are(vggish, values):
    by_scope = {
        "conv1": "vggish/conv1",
        "conv2": "vggish/conv2",
        "conv3_1": "vggish/conv3/conv3_1",
        "conv3_2": "vggish/conv3/conv3_2",
        "conv4_1": "vggish/conv4/conv4_1",
        "conv4_2": "vggish/conv4/conv4_2",
        "fc1_1": "vggish/fc1/fc1_1",
        "fc1_2": "vggish/fc1/fc1_2",
        "fc2": "vggish/fc2",
    }
    for name, scope in by_scope.items():
        if hasattr(vggish, name):
            np.testing.assert_array_equal(getattr(vggish, name).kernel.numpy(), values[f"{scope}/weights"])
            np.testing.assert_array_equal(getattr(vggish, name).bias.numpy(), values[f"{scope}/biases"])


def _no_network(*args, **kwargs):
    raise AssertionError("tensorflow_hub tried the network although the module is cached")


def test_fake_module_has_the_hub_layout(fake_hub):
    module = tf.saved_model.load(str(fake_hub.module_dir))
    assert [v.name for v in module._variables] == [f"{name}:0" for name in fake_vggish_hub.SLIM_SHAPES]
    assert not any(v.trainable for v in module._variables)


def test_default_handle_is_read_from_the_tfhub_cache(monkeypatch, fake_hub, fake_values, waveform, module_embeddings):
    import tensorflow_hub as hub

    monkeypatch.setenv("TFHUB_CACHE_DIR", str(fake_hub.cache_dir))  # read by hub at call time
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    assert hub.resolve(params.VGGISH_HUB_HANDLE) == str(fake_hub.module_dir)

    vggish = load_vggish_weights(VGGish())  # the default handle, as a real download would take
    assert vggish.built and vggish.trainable_weights == []
    _assert_weights_are(vggish, fake_values)
    embeddings = _fc2(vggish, waveform)
    assert embeddings.shape == module_embeddings.shape and embeddings.shape[0] >= 5
    np.testing.assert_allclose(embeddings, module_embeddings, rtol=RTOL, atol=ATOL)


def test_local_module_directory(fake_hub, fake_values, waveform, module_embeddings):
    vggish = load_vggish_weights(VGGish(), fake_hub.module_dir)  # a pathlib.Path works too
    np.testing.assert_allclose(_fc2(vggish, waveform), module_embeddings, rtol=RTOL, atol=ATOL)

    # A layer with fewer outputs takes the variables it has; its conv4 is the full layer's.
    conv_only = load_vggish_weights(VGGish(outputs=("conv4",)), str(fake_hub.module_dir))
    _assert_weights_are(conv_only, fake_values)
    examples = LogMelFrontend()(waveform[None])
    np.testing.assert_allclose(
        conv_only(examples)["conv4"].numpy(),
        vggish(examples)["conv4"].numpy(),
        rtol=1e-6,
    )


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_tf1_checkpoint(tmp_path, fake_values, waveform, module_embeddings, version):
    """Slim-named TF1 checkpoints (the released vggish_model.ckpt is one V1 file); global_step is ignored."""
    values = {**fake_values, "global_step": np.array(123, np.int64)}
    if version == "v1":
        path = fake_vggish_hub.write_checkpoint_v1(values, tmp_path / "vggish_model.ckpt")
    else:
        path = fake_vggish_hub.write_checkpoint_v2(values, tmp_path / "vggish_model.ckpt")
    vggish = load_vggish_weights(VGGish(), path)
    _assert_weights_are(vggish, fake_values)
    np.testing.assert_allclose(_fc2(vggish, waveform), module_embeddings, rtol=RTOL, atol=ATOL)


def test_saved_weights_load_back(tmp_path, fake_hub, fake_values, waveform, module_embeddings):
    """save_vggish_weights writes what load_vggish_weights reads: same 18 values, same embeddings."""
    source = load_vggish_weights(VGGish(), fake_hub.module_dir)
    path = save_vggish_weights(source, tmp_path / "saved" / "vggish")
    assert set(tf.train.load_checkpoint(path).get_variable_to_shape_map()) == set(fake_vggish_hub.SLIM_SHAPES)
    vggish = load_vggish_weights(VGGish(), path)
    _assert_weights_are(vggish, fake_values)
    np.testing.assert_allclose(_fc2(vggish, waveform), module_embeddings, rtol=RTOL, atol=ATOL)
    with pytest.raises(FileExistsError, match="not overwritten"):
        save_vggish_weights(VGGish(), path)
    with pytest.raises(ValueError, match="fewer `outputs`"):
        save_vggish_weights(VGGish(outputs=("conv4",)), tmp_path / "partial")


def _mismatched(fake_values, case):
    values = dict(fake_values)
    if case == "missing":
        del values["vggish/fc2/biases"]
    elif case == "mis-shaped":
        values["vggish/fc2/weights"] = values["vggish/fc2/weights"].T.copy()
    else:
        values["vggish/fc3/weights"] = np.zeros((4, 4), np.float32)
    return values


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", r"missing \['vggish/fc2/biases'\]; unexpected none; mis-shaped none"),
        (
            "mis-shaped",
            r"missing none; unexpected none; mis-shaped \['vggish/fc2/weights \(128, 4096\) \(expected \(4096, 128\)\)'\]",
        ),
        ("unexpected", r"missing none; unexpected \['vggish/fc3/weights'\]; mis-shaped none"),
    ],
)
def test_mismatched_module_fails_loudly(tmp_path, fake_values, case, message):
    module_dir = fake_vggish_hub.write_module(_mismatched(fake_values, case), tmp_path / "module", with_call=False)
    vggish = VGGish()
    vggish.build((None, None, 96, 64))
    before = vggish.fc2.kernel.numpy()
    with pytest.raises(ValueError, match=message):
        load_vggish_weights(vggish, module_dir)
    np.testing.assert_array_equal(vggish.fc2.kernel.numpy(), before)  # nothing half-loaded


def test_incomplete_checkpoint_fails_loudly(tmp_path, fake_values):
    conv1 = {name: value for name, value in fake_values.items() if name.startswith("vggish/conv1/")}
    path = fake_vggish_hub.write_checkpoint_v2(conv1, tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match=r"missing \['vggish/conv2/biases', .*'vggish/fc2/weights'\]"):
        load_vggish_weights(VGGish(outputs="conv3"), path)


def test_offline_with_empty_cache_says_how_to_supply_the_weights(tmp_path, monkeypatch):
    cache_dir = tmp_path / "empty_cache"
    cache_dir.mkdir()
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache_dir))
    # This machine has no network (name resolution fails at once); pointing the proxies at a closed
    # local port keeps the test offline and fast on a machine that has one.
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)

    with pytest.raises(VGGishWeightsUnavailableError) as error:
        load_vggish_weights(VGGish(outputs="conv3"))
    message = str(error.value)
    module_dir = cache_dir / hashlib.sha1(params.VGGISH_HUB_HANDLE.encode("utf8")).hexdigest()
    for needle in (
        "https://tfhub.dev/google/vggish/1?tf-hub-format=compressed",
        "https://storage.googleapis.com/tfhub-modules/google/vggish/1.tar.gz",
        params.VGGISH_CHECKPOINT_URL,
        "TFHUB_CACHE_DIR",
        str(module_dir),
        "extract",
    ):
        assert needle in message
    assert isinstance(error.value.__cause__, OSError)  # urllib's URLError kept as the cause
    assert socket.getdefaulttimeout() is None  # the download timeout was restored
    assert os.listdir(cache_dir) == []  # hub cleaned up its lock and temp dir


def test_missing_local_path_says_how_to_supply_the_weights(tmp_path):
    with pytest.raises(VGGishWeightsUnavailableError, match="(?s)No VGGish weights at .*Supply the VGGish weights"):
        load_vggish_weights(VGGish(outputs="conv3"), tmp_path / "nowhere" / "vggish_model.ckpt")


def test_loaded_weights_travel_in_a_keras_file(tmp_path, fake_hub, fake_values, waveform):
    vggish = load_vggish_weights(VGGish(), fake_hub.module_dir)
    inputs = keras.Input((None,))
    features = vggish(LogMelFrontend()(inputs))
    model = keras.Model(inputs, {"fc2": features["fc2"], "conv4": features["conv4"]})
    expected = {name: x.numpy() for name, x in model(waveform[None]).items()}

    path = tmp_path / "vggish.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)  # safe_mode=True
    got = {name: x.numpy() for name, x in reloaded(waveform[None]).items()}
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-6)
    (reloaded_vggish,) = [layer for layer in reloaded.layers if isinstance(layer, VGGish)]
    _assert_weights_are(reloaded_vggish, fake_values)
    assert reloaded.trainable_weights == []
