"""The VGGish network (AudioSet) as a native Keras 3 layer, with the AudioCaps conv features."""

import keras

from audiocaps_tf import params

# Output name -> channels. Order is the order of the network.
FEATURES = {"conv3": 256, "conv4": 512, "fc2": params.EMBEDDING_SIZE}

# Keras sublayer name -> slim variable scope of the TF1 checkpoint / TF Hub module
# (shared/docs/vggish.md section 2). Each scope holds `weights` and `biases`.
SLIM_SCOPES = {
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

# Slim variable name -> shape, all 18 variables (72,141,184 parameters). Slim conv kernels are HWIO and
# FC kernels [in, out], the Keras layouts, so they load without transposes.
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
    "vggish/fc1/fc1_1/weights": (6 * 4 * 512, 4096),
    "vggish/fc1/fc1_1/biases": (4096,),
    "vggish/fc1/fc1_2/weights": (4096, 4096),
    "vggish/fc1/fc1_2/biases": (4096,),
    "vggish/fc2/weights": (4096, params.EMBEDDING_SIZE),
    "vggish/fc2/biases": (params.EMBEDDING_SIZE,),
}


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class VGGish(keras.layers.Layer):
    """Log-mel examples [B, T, 96, 64] -> dict of per-example VGGish features.

    Outputs (each [B, T, C], in the compute dtype):
      - "fc2"   [B, T, 128]: the VGGish embedding, pre-activation (no ReLU), as the TF Hub module.
      - "conv4" [B, T, 512]: conv4_2 after ReLU summed over its 12x8 (time x mel) grid, the AudioCaps
        authors' conv4 feature (shared/docs/vggish.md section 5).
      - "conv3" [B, T, 256]: conv3_2 after ReLU summed over its 24x16 grid.

    `define_vggish_slim` rebuilt from Keras layers named after the slim scopes (conv1, pool1, ...,
    fc2): 3x3 'same' convs with ReLU, 2x2/2 max pools, channels_last flatten (NHWC row-major, the slim
    order), so the slim / TF Hub weights load as they are (`load_vggish_weights`). Each example is
    one 96x64x1 image; T may be dynamic.

    `outputs` selects the features to compute; only the sublayers they need are created. Conv
    features only skip the FC stack: 94% of the parameters (270 MB of float32 weights to hold and
    stream) but only ~8% of the ~0.86 G multiply-adds per example, which the convs dominate.

    Frozen by default (`trainable=False`): it is a pretrained feature extractor. Pass
    `trainable=True` to fine-tune it. Under `mixed_float16` the convs and matmuls run in float16;
    the grid sums are accumulated in float32 and cast back to the compute dtype.
    """

    def __init__(self, outputs=("fc2", "conv4", "conv3"), trainable=False, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        if isinstance(outputs, str):
            outputs = (outputs,)
        outputs = tuple(outputs)
        unknown = [name for name in outputs if name not in FEATURES]
        if not outputs or unknown or len(set(outputs)) != len(outputs):
            raise ValueError(f"VGGish outputs must be distinct names among {tuple(FEATURES)}; got {outputs}.")
        self.feature_names = outputs
        # Deepest feature asked for: how much of the network to create.
        self._depth = max(list(FEATURES).index(name) for name in outputs)

        def conv(filters, name):
            return keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=name, dtype=self.dtype_policy
            )

        def pool(name):
            return keras.layers.MaxPooling2D(2, 2, padding="same", name=name, dtype=self.dtype_policy)

        self.conv1 = conv(64, "conv1")
        self.pool1 = pool("pool1")
        self.conv2 = conv(128, "conv2")
        self.pool2 = pool("pool2")
        self.conv3_1 = conv(256, "conv3_1")
        self.conv3_2 = conv(256, "conv3_2")
        self._blocks = [[self.conv1, self.pool1, self.conv2, self.pool2, self.conv3_1, self.conv3_2]]
        if self._depth >= 1:
            self.pool3 = pool("pool3")
            self.conv4_1 = conv(512, "conv4_1")
            self.conv4_2 = conv(512, "conv4_2")
            self._blocks.append([self.pool3, self.conv4_1, self.conv4_2])
        if self._depth >= 2:
            self.pool4 = pool("pool4")
            self.flatten = keras.layers.Flatten(data_format="channels_last", name="flatten", dtype=self.dtype_policy)
            self.fc1_1 = keras.layers.Dense(4096, activation="relu", name="fc1_1", dtype=self.dtype_policy)
            self.fc1_2 = keras.layers.Dense(4096, activation="relu", name="fc1_2", dtype=self.dtype_policy)
            self.fc2 = keras.layers.Dense(params.EMBEDDING_SIZE, name="fc2", dtype=self.dtype_policy)  # no ReLU
            self._blocks.append([self.pool4, self.flatten, self.fc1_1, self.fc1_2, self.fc2])
        self._set_trainable(trainable)

    def build(self, input_shape=None):
        shape = (None, params.EXAMPLE_FRAMES, params.NUM_MEL_BANDS, 1)
        for block in self._blocks:
            for layer in block:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        # Variables are created trainable: freeze them too, or a keras.Model holding this frozen
        # layer would still list them as trainable weights.
        self._set_trainable(self.trainable)
        self.built = True

    def _set_trainable(self, value):
        # Calls the property setter (which recurses into sublayers and variables) directly: on the TF
        # backend `self.trainable = value` is skipped when `value is self.trainable` (Keras'
        # `KerasAutoTrackable.__setattr__` short circuit), so `trainable=False` would not reach them.
        keras.layers.Layer.trainable.fset(self, value)

    def call(self, examples):
        batch, steps = keras.ops.shape(examples)[0], keras.ops.shape(examples)[1]
        x = keras.ops.reshape(examples, (-1, params.EXAMPLE_FRAMES, params.NUM_MEL_BANDS, 1))
        features = {}
        for name, block in zip(FEATURES, self._blocks):
            for layer in block:
                x = layer(x)
            if name not in self.feature_names:
                continue
            if name == "fc2":
                feature = x
            else:  # sum the ReLU'd grid over time x mel, accumulating in float32
                feature = keras.ops.cast(keras.ops.sum(keras.ops.cast(x, "float32"), axis=(1, 2)), self.compute_dtype)
            features[name] = keras.ops.reshape(feature, (batch, steps, FEATURES[name]))
        return {name: features[name] for name in self.feature_names}

    def compute_output_shape(self, input_shape):
        return {name: (input_shape[0], input_shape[1], FEATURES[name]) for name in self.feature_names}

    def get_config(self):
        config = super().get_config()
        config.update({"outputs": list(self.feature_names)})
        return config
