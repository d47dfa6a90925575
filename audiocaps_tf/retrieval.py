"""The paper's 1NN retrieval baselines (section 5.2) over data sources: a clip gets its nearest training clip's caption.

Built on `models.NearestNeighbourCaptioner` (what `fit --model 1nn-*` trains and exports), so `evaluate retrieval`
and a fitted 1NN model retrieve alike: time-mean-pooled MFCCs or VGGish fc2 embeddings, L2 distance. Features come
from prepared TFRecords when those hold them, otherwise the model's preprocessor computes them from the audio.
"""

import numpy as np
from tqdm.auto import tqdm

from audiocaps_tf import params
from audiocaps_tf.data.pipeline import TFRecordSource, evaluation_dataset
from audiocaps_tf.layers import load_vggish_weights
from audiocaps_tf.models import build_captioner

__all__ = ["RETRIEVAL_MODELS", "clip_pooled_features", "pooled_features", "index_training_clips",
           "nearest_neighbour_model", "nearest_neighbour_captions"]

# --features name -> the 1NN model of the registry.
RETRIEVAL_MODELS = {"mfcc": "1nn-mfcc", "vggish": "1nn-vggish"}
BATCH_SIZE = 16


def _model(feature, vocabulary, vggish_weights=None, sources=()):
    """The 1NN model of `feature`; VGGish weights are loaded only when a source lacks cached features."""
    if feature not in RETRIEVAL_MODELS:
        raise ValueError(f"unknown retrieval feature {feature!r}; choose from {', '.join(RETRIEVAL_MODELS)}")
    model = build_captioner(RETRIEVAL_MODELS[feature], vocabulary)
    if model.vggish is not None and any(_fields(model, source) == ("waveform",) for source in sources):
        load_vggish_weights(model.vggish, vggish_weights or params.VGGISH_HUB_HANDLE)
    return model


def _fields(model, source):
    """The model's cached fields when `source` is prepared TFRecords holding them, else "waveform"."""
    cached = isinstance(source, TFRecordSource) and all(
        field in (source.available_fields or ()) for field in model.required_fields)
    return tuple(model.required_fields) if cached else ("waveform",)


def clip_pooled_features(model, source, fields=None, field=None, batch_size=BATCH_SIZE, description=None):
    """(clip keys, float32 [N, C]): `model.pooled_features` of every clip of `source`, in its order, read as
    `fields` (default: cached when prepared, else "waveform"), with a progress bar when `description` is given."""
    fields = tuple(fields or _fields(model, source))
    keys, pooled = [], []
    with tqdm(desc=description, unit="clip", disable=description is None) as progress:
        for batch in evaluation_dataset(source, list(fields), batch_size=batch_size):
            pooled.append(np.asarray(model.pooled_features({name: batch[name] for name in fields}, field=field)))
            keys.extend(k.decode() for k in batch["key"].numpy())
            progress.update(len(batch["key"]))
    if not keys:
        raise ValueError(f"{source}: no clips")
    return keys, np.concatenate(pooled).astype(np.float32)


def pooled_features(source, feature, vggish_weights=None, description=None):
    """(clip keys, [clips, C] float32 time-mean-pooled features) of every clip of `source` (`feature`: mfcc or
    vggish)."""
    model = _model(feature, source.vocabulary, vggish_weights, [source])
    return clip_pooled_features(model, source, description=description or f"{feature} features")


def index_training_clips(model, train_source, fields=None, description=None):
    """Indexes every clip of `train_source` in the 1NN `model` with its first caption (the paper: "its text")."""
    keys, pooled = clip_pooled_features(model, train_source, fields, description=description)
    first = {}
    for clip in train_source.clip_dataset([]):
        captions = [c.decode() for c in clip["captions"].numpy() if c]
        first[clip["key"].numpy().decode()] = captions[0] if captions else ""
    return model.index(pooled, [first[key] for key in keys])


def nearest_neighbour_model(train_source, feature, vggish_weights=None, query_source=None):
    """The 1NN model of `feature`, its index holding every training clip with its first caption."""
    sources = [train_source] + ([query_source] if query_source is not None else [])
    model = _model(feature, train_source.vocabulary, vggish_weights, sources)
    return index_training_clips(model, train_source, description=f"train {feature}")


def nearest_neighbour_captions(train_source, query_source, feature, vggish_weights=None):
    """{query clip key: the first caption of its nearest training clip}."""
    model = nearest_neighbour_model(train_source, feature, vggish_weights, query_source)
    fields = _fields(model, query_source)
    captions = {}
    with tqdm(desc=f"query {feature}", unit="clip") as progress:
        for batch in evaluation_dataset(query_source, list(fields), batch_size=BATCH_SIZE):
            outputs = model.decode_function()({name: batch[name] for name in fields})
            keys = [k.decode() for k in batch["key"].numpy()]
            captions.update(zip(keys, model.captions_of(outputs)))
            progress.update(len(keys))
    return captions
