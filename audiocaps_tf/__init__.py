"""audiocaps-tf: write a sentence describing any everyday sound (AudioCaps, NAACL 2019), in Keras 3."""

import keras

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "audiocaps_tf needs the TensorFlow backend of Keras 3 (its frontends and serving graph use core TF ops); "
        f"KERAS_BACKEND is '{keras.backend.backend()}'. Unset it or set KERAS_BACKEND=tensorflow."
    )

from audiocaps_tf import layers, models  # noqa: E402,F401  (registers the serializable layers and models)

__version__ = "0.1.0.dev0"
