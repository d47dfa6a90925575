"""Pretrained VGGish weights into the Keras `VGGish` layer, from TF Hub, an extracted module or the TF1 checkpoint."""

import contextlib
import hashlib
import os
import socket
import tempfile

import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.layers.vggish import SLIM_SCOPES, SLIM_SHAPES, VGGish

# Where the google/vggish/1 module can be fetched by hand (shared/docs/vggish.md section 3).
VGGISH_HUB_COMPRESSED_URL = "https://tfhub.dev/google/vggish/1?tf-hub-format=compressed"
VGGISH_HUB_TARBALL_URL = "https://storage.googleapis.com/tfhub-modules/google/vggish/1.tar.gz"

# Socket timeout (seconds per blocking socket operation) while tensorflow_hub resolves a handle:
# its urlopen has none, so a network that drops packets would otherwise block the call for minutes.
DOWNLOAD_TIMEOUT_SECONDS = 60.0


class VGGishWeightsUnavailableError(OSError):
    """The VGGish weights could not be fetched or found; the message says how to supply them."""


def load_vggish_weights(layer, source=params.VGGISH_HUB_HANDLE):
    """Assigns the pretrained VGGish weights to `layer` (a `VGGish`) and returns it.

    `source` is one of:
      - a TF Hub / Kaggle handle (http(s):// or gs://), loaded with `tensorflow_hub.load`: it reuses
        `$TFHUB_CACHE_DIR/<sha1(handle)>/` when that directory is non-empty (no network), otherwise
        downloads into it;
      - a local directory holding the extracted hub module (a SavedModel);
      - a TF1 checkpoint, e.g. the single-file `vggish_model.ckpt` (params.VGGISH_CHECKPOINT_URL).

    The 18 variables are matched by their slim names (`vggish/conv1/weights`, ...,
    `vggish/fc2/biases`; read from the module's `_variables`, the only collection the hub export
    tracks) and shapes, never by position. Any missing, unexpected or mis-shaped variable raises a
    ValueError listing them all (in a TF1 checkpoint, bookkeeping outside the `vggish/` scope such as
    `global_step` is ignored). A layer built with fewer `outputs` gets the variables it has.

    Offline with nothing cached, raises `VGGishWeightsUnavailableError` explaining how to supply the
    weights. With no network, name resolution fails at once; a network that drops packets is cut off
    by a `DOWNLOAD_TIMEOUT_SECONDS` socket timeout (set process-wide during the call, only when no
    default timeout is set). tensorflow_hub waits, polling, while another process holds
    `<module dir>.lock`: a lock left by a killed download blocks for up to 10 minutes.

    Once assigned, the weights are ordinary Keras variables: they travel inside saved `.keras` models.
    """
    if not isinstance(layer, VGGish):
        raise TypeError(f"load_vggish_weights expects a VGGish layer, got {type(layer).__name__}.")
    source = os.fspath(source)
    shapes, read = _open_source(source)
    _check_names_and_shapes(shapes, source)
    if not layer.built:
        layer.build((None, None, params.EXAMPLE_FRAMES, params.NUM_MEL_BANDS))
    for name, variable in _slim_variables(layer).items():
        variable.assign(read(name))
    return layer


def save_vggish_weights(layer, path):
    """Writes the 18 weights of `layer` (a complete `VGGish`) to a slim-named TF1-style checkpoint at `path`.

    The inverse of `load_vggish_weights(layer, path)`: a fine-tuned VGGish for TF1 tools or other models, or,
    offline, weights in the layout every command reads (the notebooks' smoke mode saves an untrained layer).
    An existing checkpoint at `path` is never overwritten. Returns `path` as a string.
    """
    if not isinstance(layer, VGGish):
        raise TypeError(f"save_vggish_weights expects a VGGish layer, got {type(layer).__name__}.")
    path = os.fspath(path)
    if os.path.exists(path + ".index") or os.path.exists(path):
        raise FileExistsError(f"{path}: a checkpoint is already there; it is not overwritten.")
    if not layer.built:
        layer.build((None, None, params.EXAMPLE_FRAMES, params.NUM_MEL_BANDS))
    variables = _slim_variables(layer)
    missing = sorted(set(SLIM_SHAPES) - set(variables))
    if missing:
        raise ValueError(f"this VGGish layer lacks {missing} (built with fewer `outputs`): build it with all of them.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=path,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.convert_to_tensor(variables[name]) for name in names],
    )
    return path


def _slim_variables(layer):
    """Slim name -> the layer's Keras variable, for the sublayers the layer has."""
    variables = {}
    for sublayer_name, scope in SLIM_SCOPES.items():
        sublayer = getattr(layer, sublayer_name, None)
        if sublayer is None:  # not created: `outputs` did not need it
            continue
        variables[f"{scope}/weights"] = sublayer.kernel
        variables[f"{scope}/biases"] = sublayer.bias
    for name, variable in variables.items():
        if tuple(variable.shape) != SLIM_SHAPES[name]:
            raise ValueError(
                f"VGGish variable {variable.path} has shape {tuple(variable.shape)}, not {SLIM_SHAPES[name]}."
            )
    return variables


def _open_source(source):
    """Returns ({slim name: shape}, read(name) -> array) for a handle, module directory or checkpoint."""
    if source.startswith(("http://", "https://", "gs://")):
        return _module_variables(_load_hub_module(source), source)
    if os.path.isdir(source) and any(
        os.path.exists(os.path.join(source, f)) for f in ("saved_model.pb", "saved_model.pbtxt")
    ):
        return _module_variables(tf.saved_model.load(source), source)
    if os.path.isfile(source) and source.endswith((".tar.gz", ".tgz", ".tar")):
        raise ValueError(f"{source} is an archive: extract it (tar xzf) and pass the directory holding saved_model.pb.")
    try:
        reader = tf.train.load_checkpoint(source)
    except (ValueError, tf.errors.OpError) as error:
        raise VGGishWeightsUnavailableError(
            f"No VGGish weights at '{source}': neither a TF Hub handle, a directory holding a SavedModel, "
            f"nor a TF1 checkpoint ({error}).\n" + _how_to_supply()
        ) from error
    shapes = {
        name: tuple(shape)
        for name, shape in reader.get_variable_to_shape_map().items()
        if name.startswith("vggish/")  # TF1 bookkeeping such as global_step is not ours
    }
    return shapes, reader.get_tensor


def _module_variables(module, source):
    """The variables of a loaded hub module / SavedModel, by name without the ':0' suffix."""
    variables = getattr(module, "_variables", None)
    if variables is None:
        variables = getattr(module, "variables", None)
    if variables is None:
        raise ValueError(f"'{source}' has no `_variables` (nor `variables`): it is not the VGGish hub module.")
    by_name, duplicates = {}, []
    for variable in variables:
        name = variable.name
        if name.rpartition(":")[2].isdigit():
            name = name.rpartition(":")[0]
        if name in by_name:
            duplicates.append(name)
        by_name[name] = variable
    if duplicates:
        raise ValueError(f"'{source}' holds several variables named {sorted(set(duplicates))}.")
    shapes = {name: tuple(variable.shape) for name, variable in by_name.items()}
    return shapes, lambda name: by_name[name].numpy()


def _check_names_and_shapes(shapes, source):
    """Raises a ValueError listing every missing, unexpected and mis-shaped variable."""
    missing = sorted(set(SLIM_SHAPES) - set(shapes))
    unexpected = sorted(set(shapes) - set(SLIM_SHAPES))
    misshaped = [
        f"{name} {shapes[name]} (expected {SLIM_SHAPES[name]})"
        for name in SLIM_SHAPES
        if name in shapes and shapes[name] != SLIM_SHAPES[name]
    ]
    if missing or unexpected or misshaped:
        raise ValueError(
            f"'{source}' does not hold the 18 VGGish variables: missing {missing or 'none'}; "
            f"unexpected {unexpected or 'none'}; mis-shaped {misshaped or 'none'}."
        )


@contextlib.contextmanager
def _socket_timeout(seconds):
    """Sets a default socket timeout for the duration, unless one is set already."""
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        if previous is None:
            socket.setdefaulttimeout(None)


def _hub_module_dir(handle):
    """Where tensorflow_hub caches `handle` (resolver.tfhub_cache_dir, read at call time)."""
    try:
        from tensorflow_hub import resolver

        cache_dir = resolver.tfhub_cache_dir(use_temp=True)
    except Exception:  # noqa: BLE001  (only for the error message)
        cache_dir = os.environ.get("TFHUB_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "tfhub_modules")
    return os.path.join(cache_dir, hashlib.sha1(handle.encode("utf8")).hexdigest())


def _load_hub_module(handle):
    import tensorflow_hub as hub  # only this path needs it

    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_SECONDS):
            return hub.load(handle)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise VGGishWeightsUnavailableError(
            f"Could not load the VGGish weights from '{handle}': {type(error).__name__}: {error}\n"
            f"Nothing usable is cached at {_hub_module_dir(handle)} "
            f"(TFHUB_CACHE_DIR={os.environ.get('TFHUB_CACHE_DIR') or 'unset'}) and the download failed "
            "(no network?).\n" + _how_to_supply(_hub_module_dir(handle))
        ) from error


def _how_to_supply(module_dir=None):
    cache = f" (here: {module_dir})" if module_dir else ""
    return (
        "Supply the VGGish weights in one of these ways:\n"
        f"  1. Elsewhere, download {VGGISH_HUB_COMPRESSED_URL} (or the same module as {VGGISH_HUB_TARBALL_URL}), "
        "extract it (mkdir vggish && tar xzf <file> -C vggish: the directory holds saved_model.pb and variables/), "
        "copy the directory here and call load_vggish_weights(layer, '/path/to/vggish').\n"
        f"  2. Or set TFHUB_CACHE_DIR to a tensorflow_hub cache that already holds google/vggish/1, or put the "
        f"extracted directory at $TFHUB_CACHE_DIR/<sha1 of the handle>/{cache}, and keep the default handle.\n"
        f"  3. Or download the TF1 checkpoint {params.VGGISH_CHECKPOINT_URL} and call "
        "load_vggish_weights(layer, '/path/to/vggish_model.ckpt')."
    )
