"""One helper every layer test uses: shapes, config round trip, save/load and mixed precision."""

import keras
import numpy as np
from keras import tree


def _shapes(outputs):
    return tree.map_structure(lambda x: tuple(x.shape), outputs)


def _numpy(outputs):
    return tree.map_structure(lambda x: keras.ops.convert_to_numpy(x), outputs)


def _symbolic_inputs(input_data):
    """keras.Input(s) shaped like `input_data`; the entries of a dict are named after their keys."""

    def symbolic(x, name=None):
        return keras.Input(shape=x.shape[1:], dtype=x.dtype, batch_size=x.shape[0], name=name)

    if isinstance(input_data, dict):
        return {
            key: symbolic(value, key) if hasattr(value, "shape") else tree.map_structure(symbolic, value)
            for key, value in input_data.items()
        }
    return tree.map_structure(symbolic, input_data)


def run_layer_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_output_dtype="float32",
    run_saving_test=True,
    run_mixed_precision_check=True,
    tmp_path=None,
    rtol=1e-6,
    atol=1e-6,
):
    """Checks `cls(**init_kwargs)(input_data)` the keras-hub way.

    `input_data` is an array or a dict of arrays (the layer's single argument);
    `expected_output_shape` a tuple or a dict of tuples matching the output structure.
    """
    layer = cls(**init_kwargs)
    outputs = layer(input_data)
    assert _shapes(outputs) == expected_output_shape, f"{cls.__name__} output shape"
    for output in tree.flatten(outputs):
        assert keras.backend.standardize_dtype(output.dtype) == expected_output_dtype

    # Config round trip.
    config = layer.get_config()
    revived = cls.from_config(config)
    assert revived.get_config() == config, f"{cls.__name__} config does not round-trip"

    # Symbolic build agrees with eager.
    spec = _symbolic_inputs(input_data)
    symbolic = layer.compute_output_spec(spec)
    for got, want in zip(tree.flatten(symbolic), tree.flatten(outputs)):
        assert all(a is None or a == b for a, b in zip(got.shape, want.shape)), f"{cls.__name__} symbolic shape"

    if run_saving_test:
        assert tmp_path is not None, "run_saving_test needs tmp_path"
        model = keras.Model(spec, cls(**init_kwargs)(spec))
        model.set_weights([w for w in layer.get_weights()] if layer.weights else [])
        expected = _numpy(model(input_data))
        path = str(tmp_path / f"{cls.__name__}.keras")
        model.save(path)
        reloaded = keras.models.load_model(path)  # safe_mode=True
        got = _numpy(reloaded(input_data))
        tree.map_structure(lambda a, b: np.testing.assert_allclose(a, b, rtol=rtol, atol=atol), got, expected)

    if run_mixed_precision_check:
        mixed = cls(**{**init_kwargs, "dtype": "mixed_float16"})
        mixed_outputs = mixed(input_data)
        for output in tree.flatten(mixed_outputs):
            assert keras.backend.standardize_dtype(output.dtype) == "float16", f"{cls.__name__} mixed precision"
            assert np.all(np.isfinite(keras.ops.convert_to_numpy(output)))
    return outputs
