"""The captioners: keras-hub's preprocessor / encoder / decoder / task split, and the paper's models by name.

    features.py (package root)  the feature table: record fields, sizes, frontends
    preprocessor.py   `AudioPreprocessor`: waveform -> features (MFCC, log-mel, or log-mel + VGGish)
    encoders/         one class per encoder family, each returning memories, masks and an initial state
    (layers/)         `CaptionDecoder` (the decoder interface) and `LuongDecoder`; `NearestNeighbourIndex`
    task.py           `Captioner`: the task base (generate, decode cache, detokenisation, features)
    audio_captioner.py  `AudioCaptioner`: preprocessor -> encoder -> decoder
    nearest_neighbour.py  `NearestNeighbourCaptioner`: the 1NN baselines
    registry.py       the paper's models (and ours, `paper=False`) as data: name -> `ModelSpec`
    components.py     a spec's preprocessor, encoder and decoder
    builder.py        `build_captioner(name, vocabulary, ...)`
    legacy.py         models saved by version 0.1 load with their weights

    from audiocaps_tf.models import MODEL_NAMES, build_captioner
    captioner = build_captioner("topdown-alignedatt", vocabulary, attribute_vocabulary=words, attributes="1nn")

Every captioner carries its preprocessor and tokenizer, captions raw audio with `generate(waveforms)` and reloads
whole with `keras.models.load_model(path)` once `audiocaps_tf` is imported.
"""

from audiocaps_tf.models.registry import (
    ATTRIBUTE_SOURCES,
    DEFAULT_HYPER_PARAMETERS,
    EXCLUDED_ROWS,
    MODEL_NAMES,
    MODELS,
    PAPER_MODEL_NAMES,
    ModelSpec,
    get_spec,
    resolve_hyper_parameters,
)
from audiocaps_tf.models.preprocessor import AudioPreprocessor
from audiocaps_tf.models.task import Captioner
from audiocaps_tf.models.audio_captioner import AudioCaptioner
from audiocaps_tf.models.nearest_neighbour import NearestNeighbourCaptioner
from audiocaps_tf.models.builder import build_captioner
from audiocaps_tf.layers.nearest_neighbour_index import NearestNeighbourIndex

__all__ = [
    "ATTRIBUTE_SOURCES",
    "DEFAULT_HYPER_PARAMETERS",
    "EXCLUDED_ROWS",
    "MODEL_NAMES",
    "MODELS",
    "PAPER_MODEL_NAMES",
    "ModelSpec",
    "AudioCaptioner",
    "AudioPreprocessor",
    "Captioner",
    "NearestNeighbourCaptioner",
    "NearestNeighbourIndex",
    "build_captioner",
    "get_spec",
    "resolve_hyper_parameters",
]
