"""The paper's captioning models (Tables 2 and 3) by name, as whole Keras models.

    from audiocaps_tf.models import MODEL_NAMES, build_captioner
    captioner = build_captioner("topdown-alignedatt", vocabulary, attribute_vocabulary=words, attributes="1nn")

`AudioCaptioner` (generative models) and `NearestNeighbourCaptioner` (1NN retrieval) both carry their frontend and
tokenizer, caption raw audio with `generate(waveforms)` and reload whole with `keras.models.load_model(path)` once
`audiocaps_tf` is imported.
"""

from audiocaps_tf.models.registry import (
    ATTRIBUTE_SOURCES,
    DEFAULT_HYPER_PARAMETERS,
    EXCLUDED_ROWS,
    MODEL_NAMES,
    MODELS,
    ModelSpec,
    build_captioner,
    get_spec,
    resolve_hyper_parameters,
)
from audiocaps_tf.models.nearest_neighbour import NearestNeighbourCaptioner, NearestNeighbourIndex
from audiocaps_tf.models.captioner import AudioCaptioner

__all__ = [
    "ATTRIBUTE_SOURCES",
    "DEFAULT_HYPER_PARAMETERS",
    "EXCLUDED_ROWS",
    "MODEL_NAMES",
    "MODELS",
    "ModelSpec",
    "AudioCaptioner",
    "NearestNeighbourCaptioner",
    "NearestNeighbourIndex",
    "build_captioner",
    "get_spec",
    "resolve_hyper_parameters",
]
