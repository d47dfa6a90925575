"""`build_captioner(name, vocabulary, ...)`: a registry name -> its preprocessor, encoder and decoder -> a model.

    from audiocaps_tf.models import build_captioner
    captioner = build_captioner("topdown-alignedatt", vocabulary, attribute_vocabulary=words, attributes="1nn")

The pieces come from `components.build_components`.
"""

from audiocaps_tf.models.audio_captioner import AudioCaptioner
from audiocaps_tf.models.components import build_components
from audiocaps_tf.models.nearest_neighbour import NearestNeighbourCaptioner
from audiocaps_tf.models.preprocessor import AudioPreprocessor
from audiocaps_tf.models.registry import get_spec, resolve_hyper_parameters
from audiocaps_tf.models.task import as_vocabulary

__all__ = ["build_captioner"]


def build_captioner(name, vocabulary, attribute_vocabulary=None, attributes=None, vggish_trainable=False,
                    **overrides):
    """The captioner of the model `name`, with the authors' hyper-parameters unless overridden.

    Args:
        name: one of MODEL_NAMES.
        vocabulary: the caption `Vocabulary` (or its `get_config()` dict); the model carries it.
        attribute_vocabulary: the attribute words (strings) of semantic models; required for them.
        attributes: "1nn" (default of semantic models) or "gt"; ignored by the other models.
        vggish_trainable: fine-tune VGGish when training end to end from waveforms (frozen by default).
        **overrides: hyper-parameters (`resolve_hyper_parameters`), e.g. units=8, embedding_dim=8 for tiny models;
            also name=, dtype= (e.g. "mixed_float16") for the Keras model. 1NN models take only
            max_caption_length and ignore the others.

    Returns an `AudioCaptioner`, or a `NearestNeighbourCaptioner` for the 1nn-* names.
    """
    spec = get_spec(name)
    model_kwargs = {key: overrides.pop(key) for key in ("name", "dtype") if key in overrides}
    hyper = resolve_hyper_parameters(overrides, name)
    vocabulary = as_vocabulary(vocabulary)
    dtype = model_kwargs.get("dtype")
    if spec.is_retrieval:
        preprocessor = AudioPreprocessor(spec.features, name="preprocessor", dtype=dtype)
        return NearestNeighbourCaptioner(preprocessor, vocabulary, model_name=name,
                                         max_caption_length=hyper["max_caption_length"], **model_kwargs)
    if spec.uses_attributes and attribute_vocabulary is None:
        raise ValueError(f"{name} needs an attribute_vocabulary (the attribute words)")
    components = build_components(spec, vocabulary.size, hyper, attribute_vocabulary, attributes or "1nn",
                                  vggish_trainable, dtype=dtype)
    return AudioCaptioner(**components, vocabulary=vocabulary, model_name=name,
                          max_caption_length=hyper["max_caption_length"], length_penalty=hyper["length_penalty"],
                          no_repeat_ngram_size=hyper["no_repeat_ngram_size"], beam_size=hyper["beam_size"],
                          hyper_parameters=hyper, **model_kwargs)
