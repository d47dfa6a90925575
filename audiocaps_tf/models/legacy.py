"""Models saved by version 0.1 (one `AudioCaptioner` / `NearestNeighbourCaptioner` class with the registry name and
hyper-parameters in its config) load into today's preprocessor / encoder / decoder models, with their weights.

Version 0.1 kept the frontend, the semantic layers and the encoder side by side at the top of the model; Keras
stores weights by those attribute paths (and by class name for the layers it reaches through `model.layers`). A
model built from such a config gets, until it is saved again, the old paths as aliases of its new layers: the
attention flow, attribute index and context encoder under their old names, and VGGish and the semantic encoder in
its `layers` list. Keras tries every path of an object until one holds its weights, so both layouts load. Saving
the model (`get_config`, or any weights file) drops the aliases: files are always written in the current layout.
"""

import keras

from audiocaps_tf.models.components import build_components
from audiocaps_tf.models.preprocessor import AudioPreprocessor
from audiocaps_tf.models.registry import get_spec, resolve_hyper_parameters
from audiocaps_tf.models.task import as_vocabulary

__all__ = ["is_legacy_config", "from_legacy_config"]

_TOP_LEVEL_ALIASES = ("attention_flow", "attribute_index", "context_encoder")


def is_legacy_config(config):
    """Whether a captioner's config was written by version 0.1 (no serialized preprocessor)."""
    return "preprocessor" not in config and "model_name" in config


def from_legacy_config(cls, config):
    """The `cls` model (AudioCaptioner or NearestNeighbourCaptioner) of a version 0.1 config, with its aliases."""
    config = dict(config)
    spec = get_spec(config.pop("model_name"))
    vocabulary = as_vocabulary(config.pop("vocabulary"))
    model_kwargs = {key: config.pop(key) for key in ("name", "trainable", "dtype") if key in config}
    dtype = keras.dtype_policies.get(model_kwargs["dtype"]) if "dtype" in model_kwargs else None
    if spec.is_retrieval:
        preprocessor = AudioPreprocessor(spec.features, name="preprocessor", dtype=dtype)
        model = cls(preprocessor, vocabulary, captions=config.pop("captions", ()), model_name=spec.name,
                    max_caption_length=config.pop("max_caption_length"), **model_kwargs)
        aliases = {}
        layers = [model.vggish]
    else:
        attribute_vocabulary = config.pop("attribute_vocabulary", None)
        attributes = config.pop("attributes", None)
        vggish_trainable = config.pop("vggish_trainable", False)
        hyper = resolve_hyper_parameters(config)
        components = build_components(spec, vocabulary.size, hyper, attribute_vocabulary, attributes,
                                      vggish_trainable, dtype=dtype)
        model = cls(**components, vocabulary=vocabulary, model_name=spec.name,
                    max_caption_length=hyper["max_caption_length"], length_penalty=hyper["length_penalty"],
                    hyper_parameters=hyper, **model_kwargs)
        encoder = model.encoder
        aliases = {name: getattr(encoder, name) for name in _TOP_LEVEL_ALIASES if getattr(encoder, name, None)}
        layers = [model.vggish, getattr(encoder, "semantic_encoder", None)]
    model.__dict__.update(aliases)  # plain attributes: seen by Keras' saving walk, not tracked as new layers
    model.__dict__["_legacy_aliases"] = tuple(aliases)
    model.__dict__["_legacy_layers"] = [layer for layer in layers if layer is not None]
    return model
