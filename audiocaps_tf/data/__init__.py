"""AudioCaps data: the layout, captions and vocabulary, the demo dataset, download, TFRecords and input pipelines."""

from audiocaps_tf.data.layout import SPLITS, AudioIndex, Clip, DataError, read_split, read_splits

__all__ = ["SPLITS", "AudioIndex", "Clip", "DataError", "read_split", "read_splits"]
