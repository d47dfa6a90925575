"""AudioCaps data: the layout, captions and vocabulary, the demo dataset, download, TFRecords and input pipelines."""

from audiocaps_tf.data.captions import normalize_caption, tokenize
from audiocaps_tf.data.demo import make_demo_dataset
from audiocaps_tf.data.layout import SPLITS, AudioIndex, Clip, DataError, read_split, read_splits
from audiocaps_tf.data.pipeline import evaluation_dataset, open_source, training_dataset
from audiocaps_tf.data.prepare import prepare_dataset, read_manifest
from audiocaps_tf.data.vocabulary import build_vocabulary, load_vocabulary

__all__ = [
    "SPLITS",
    "AudioIndex",
    "Clip",
    "DataError",
    "build_vocabulary",
    "evaluation_dataset",
    "load_vocabulary",
    "make_demo_dataset",
    "normalize_caption",
    "open_source",
    "prepare_dataset",
    "read_manifest",
    "read_split",
    "read_splits",
    "tokenize",
    "training_dataset",
]
