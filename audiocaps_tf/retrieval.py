"""The paper's 1NN retrieval baselines (section 5.2): a clip gets the caption of its nearest training clip.

Features are time-mean-pooled MFCCs or VGGish fc2 embeddings, compared by L2 distance. They come from
prepared TFRecords when those hold them, otherwise they are computed from the clips' audio.
"""

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from audiocaps_tf.data.attributes import nearest_training_clips
from audiocaps_tf.data.pipeline import TFRecordSource
from audiocaps_tf.layers import LogMelFrontend, MFCCFrontend, VGGish, load_vggish_weights

# --features name -> the record field holding it when prepared.
RETRIEVAL_FEATURES = {"mfcc": "mfcc", "vggish": "vggish_fc2"}
BATCH_SIZE = 16


def _feature_extractor(feature, vggish_weights):
    """waveform [B, N] -> time-pooled features [B, C], from the frontends (and VGGish fc2)."""
    if feature == "mfcc":
        frontend = MFCCFrontend()
        return lambda waveform: keras.ops.mean(frontend(waveform), axis=1)
    log_mel = LogMelFrontend()
    vggish = load_vggish_weights(VGGish(outputs=("fc2",)), vggish_weights)
    return lambda waveform: keras.ops.mean(vggish(log_mel(waveform))["fc2"], axis=1)


def pooled_features(source, feature, vggish_weights=None, description=None):
    """(clip keys, [clips, C] float32 time-mean-pooled features) of every clip of `source`."""
    if feature not in RETRIEVAL_FEATURES:
        raise ValueError(f"unknown retrieval feature {feature!r}; choose from {', '.join(RETRIEVAL_FEATURES)}")
    field = RETRIEVAL_FEATURES[feature]
    cached = isinstance(source, TFRecordSource) and field in (source.available_fields or ())
    if cached:
        clips = source.clip_dataset([field]).map(lambda clip: (clip["key"], tf.reduce_mean(clip[field], axis=0)))
    else:
        extract = tf.function(_feature_extractor(feature, vggish_weights))
        clips = source.clip_dataset(["waveform"]).map(lambda clip: (clip["key"], clip["waveform"]))
    keys, pooled = [], []
    with tqdm(desc=description or f"{feature} features", unit="clip") as progress:
        for batch_keys, batch in clips.batch(BATCH_SIZE):
            pooled.append(np.asarray(batch if cached else extract(batch)))
            keys.extend(key.decode() for key in batch_keys.numpy())
            progress.update(len(batch_keys))
    if not keys:
        raise ValueError(f"{source}: no clips to compute {feature} features from")
    return keys, np.concatenate(pooled).astype(np.float32)


def nearest_neighbour_captions(train_source, query_source, feature, vggish_weights=None):
    """{query clip key: the first caption of its nearest training clip}."""
    train_keys, train_features = pooled_features(train_source, feature, vggish_weights, f"train {feature}")
    query_keys, query_features = pooled_features(query_source, feature, vggish_weights, f"query {feature}")
    captions = {}
    for clip in train_source.clip_dataset([]):
        captions[clip["key"].numpy().decode()] = clip["captions"].numpy()[0].decode()
    nearest = nearest_training_clips(query_features, train_features)
    return {key: captions[train_keys[index]] for key, index in zip(query_keys, nearest)}
