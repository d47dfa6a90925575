"""An offline stand-in for the TF Hub module google/vggish/1, and TF1 checkpoints, with random weights.

Written in the layout of the hub export (shared/docs/vggish.md section 3): a `tf.Module` whose
`_variables` list holds the 18 slim-named, non-trainable variables, and a `__call__` taking one 1-D
16 kHz float32 waveform to [N, 128] pre-activation embeddings. The whole pipeline (frontend and
network) is written here in raw TF ops, independently of the package under test.
"""

import numpy as np
import tensorflow as tf

# The 18 slim variables and their shapes, in creation order (listed independently of the package).
SLIM_SHAPES = {
    "vggish/conv1/weights": (3, 3, 1, 64),
    "vggish/conv1/biases": (64,),
    "vggish/conv2/weights": (3, 3, 64, 128),
    "vggish/conv2/biases": (128,),
    "vggish/conv3/conv3_1/weights": (3, 3, 128, 256),
    "vggish/conv3/conv3_1/biases": (256,),
    "vggish/conv3/conv3_2/weights": (3, 3, 256, 256),
    "vggish/conv3/conv3_2/biases": (256,),
    "vggish/conv4/conv4_1/weights": (3, 3, 256, 512),
    "vggish/conv4/conv4_1/biases": (512,),
    "vggish/conv4/conv4_2/weights": (3, 3, 512, 512),
    "vggish/conv4/conv4_2/biases": (512,),
    "vggish/fc1/fc1_1/weights": (12288, 4096),
    "vggish/fc1/fc1_1/biases": (4096,),
    "vggish/fc1/fc1_2/weights": (4096, 4096),
    "vggish/fc1/fc1_2/biases": (4096,),
    "vggish/fc2/weights": (4096, 128),
    "vggish/fc2/biases": (128,),
}


def random_values(seed=0, shapes=SLIM_SHAPES):
    """{slim name: float32 array}: He-normal weights, N(0, 0.01) biases.

    Not slim's N(0, 0.01) weights: through 14 layers those shrink the activations to ~1e-5 and fc2
    would be all bias; He scaling keeps every layer O(1), so the comparisons test the whole network.
    """
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in shapes.items():
        if name.endswith("/weights"):
            std = np.sqrt(2.0 / np.prod(shape[:-1]))
        else:
            std = 0.01
        values[name] = (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)
    return values


class FakeVGGishModule(tf.Module):
    """The hub export's shape: `_variables` + a 1-D waveform `__call__` (no batch axis)."""

    def __init__(self, values):
        super().__init__()
        self._variables = [tf.Variable(value, name=name, trainable=False) for name, value in values.items()]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, waveform):
        var = {v.name.split(":")[0]: v for v in self._variables}
        magnitude = tf.abs(tf.signal.stft(waveform, frame_length=400, frame_step=160, fft_length=512))
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125.0, 7500.0)
        log_mel = tf.math.log(tf.matmul(magnitude, mel_matrix) + 0.01)
        x = tf.signal.frame(log_mel, 96, 96, axis=0)[..., tf.newaxis]  # [N, 96, 64, 1]

        def conv(x, scope):
            y = tf.nn.conv2d(x, var[f"{scope}/weights"], strides=1, padding="SAME")
            return tf.nn.relu(y + var[f"{scope}/biases"])

        def pool(x):
            return tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")

        x = pool(conv(x, "vggish/conv1"))
        x = pool(conv(x, "vggish/conv2"))
        x = pool(conv(conv(x, "vggish/conv3/conv3_1"), "vggish/conv3/conv3_2"))
        x = pool(conv(conv(x, "vggish/conv4/conv4_1"), "vggish/conv4/conv4_2"))
        x = tf.reshape(x, [-1, 6 * 4 * 512])  # NHWC row-major, as slim.flatten
        x = tf.nn.relu(tf.matmul(x, var["vggish/fc1/fc1_1/weights"]) + var["vggish/fc1/fc1_1/biases"])
        x = tf.nn.relu(tf.matmul(x, var["vggish/fc1/fc1_2/weights"]) + var["vggish/fc1/fc1_2/biases"])
        return tf.matmul(x, var["vggish/fc2/weights"]) + var["vggish/fc2/biases"]  # pre-activation


class VariablesOnlyModule(tf.Module):
    """Just the `_variables` list: for malformed modules, whose `__call__` would not trace."""

    def __init__(self, values):
        super().__init__()
        self._variables = [tf.Variable(value, name=name, trainable=False) for name, value in values.items()]


def write_module(values, directory, with_call=True):
    """Saves a fake hub module holding `values` as a SavedModel in `directory`."""
    module = FakeVGGishModule(values) if with_call else VariablesOnlyModule(values)
    tf.saved_model.save(module, str(directory))
    return directory


def write_checkpoint_v2(values, prefix):
    """A TF1-style name-based V2 checkpoint (`prefix.index` + `prefix.data-*`)."""
    names = list(values)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(values[name]) for name in names],
    )
    return str(prefix)


def write_checkpoint_v1(values, filename):
    """A TF1 V1 single-file checkpoint, the format of the released vggish_model.ckpt."""
    names = list(values)
    tf.raw_ops.Save(filename=str(filename), tensor_names=names, data=[tf.constant(values[name]) for name in names])
    return str(filename)
