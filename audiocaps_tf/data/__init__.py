"""AudioCaps data: the layout, attribute words, the demo dataset, download, TFRecords and input pipelines.

    layout.py       the directory layout every command reads (split CSVs, audio/), clips, DataError
    attributes.py   attribute words (labels or caption keywords) and the 1NN search over pooled features
    records.py      the TFRecord schema of prepared clips
    prepare.py      `data prepare`: clips decoded once into TFRecords with the chosen features
    prepared.py     what a `prepare` output directory holds: names, manifest, feature shapes, its lock
    decode_workers.py  the decode processes and the feature extractor `prepare` runs
    pipeline.py     tf.data pipelines over prepared TFRecords or raw audio, for training and evaluation
    download.py     `data download`: the AudioCaps CSVs and audio from YouTube
    youtube_clips.py   one clip's yt-dlp + ffmpeg run, its checks and retries' verdicts
    stats.py        `data stats`: the paper's Table 1
    demo/           `data demo`: the synthetic demo dataset

The names below are imported when first used (PEP 562), so importing one module of `data` never loads the demo
synthesiser, `prepare` or the download code with it. Caption text and tokenizers are in `audiocaps_tf.tokens`.
"""

import importlib

_EXPORTS = {
    "SPLITS": "layout",
    "AudioIndex": "layout",
    "Clip": "layout",
    "DataError": "layout",
    "read_split": "layout",
    "read_splits": "layout",
    "evaluation_dataset": "pipeline",
    "open_source": "pipeline",
    "training_dataset": "pipeline",
    "prepare_dataset": "prepare",
    "read_manifest": "prepare",
    "make_demo_dataset": "demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
