"""`export_model`: a trained captioner -> MODEL_BASE/<version>/, a SavedModel TF Serving serves as it is."""

import dataclasses
import json
import pathlib

import tensorflow as tf

import keras

from audiocaps_tf import __version__, params
from audiocaps_tf.export import model_base as model_base_dir
from audiocaps_tf.export.segments_graph import DEFAULT_MAX_SECONDS, SEGMENT_OUTPUT_NAMES, SEGMENTS_SIGNATURE
from audiocaps_tf.export.serving_graph import INPUT_SIGNATURES, OUTPUT_NAMES, CaptionSignatures
from audiocaps_tf.export.warmup import WARMUP_FILE, check_warmup, warmup_logs, write_warmup
from audiocaps_tf.models.task import Captioner

EXPORT_INFO_FILE = "audiocaps_tf_export.json"  # in assets.extra/, beside the warm-up requests
# The TF Serving release the exports are meant for (its Docker image is tensorflow/serving:<this>.0): the one built
# on TensorFlow 2.21, the newest version the package supports and the one it is tested with. TF Serving runs
# SavedModels written by its own TF version or older (newer exports can use ops or attributes it lacks), so it runs
# exports made with any supported TensorFlow.
TARGET_TF_SERVING = "2.21"


class ExportError(ValueError):
    """The model cannot be exported, or the SavedModel does not caption as the Keras model does."""


@dataclasses.dataclass
class ExportResult:
    version: int
    path: pathlib.Path  # MODEL_BASE/<version>
    keras_path: pathlib.Path  # MODEL_BASE/model.keras
    warmup_requests: int


def _check_exportable(model):
    if not isinstance(model, Captioner):
        raise ExportError(f"not an audiocaps_tf captioner: {type(model).__name__}")
    try:
        model.check_ready()
    except ValueError as err:
        raise ExportError(f"{err} before exporting (fit does)") from None


def export_info(model, version, beam_size, max_length, no_repeat_ngram_size=0, max_seconds=DEFAULT_MAX_SECONDS):
    """What the export holds and how it was made (assets.extra/audiocaps_tf_export.json)."""
    return {
        "version": version,
        "model_name": model.model_name,
        "beam_size": beam_size,
        "no_repeat_ngram_size": no_repeat_ngram_size,
        "max_caption_length": int(max_length or model.max_caption_length),
        "clip_policy": f"mono, {params.SAMPLE_RATE} Hz, cut or zero-padded at the end to {params.CLIP_SECONDS} s",
        "segments_policy": f"{SEGMENTS_SIGNATURE}: files up to {max_seconds:g} s, {params.CLIP_SECONDS} s windows "
                           "one after another, the last zero-padded, neighbours with one caption merged",
        "max_seconds": max_seconds,
        "signatures": {
            name: {"inputs": {spec.name: [spec.dtype.name, spec.shape.as_list()] for spec in specs},
                   "outputs": list(SEGMENT_OUTPUT_NAMES if name == SEGMENTS_SIGNATURE else OUTPUT_NAMES)}
            for name, specs in INPUT_SIGNATURES.items()
        },
        "target_tf_serving": TARGET_TF_SERVING,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "audiocaps_tf": __version__,
    }


def export_model(model, model_base, version=None, beam_size=None, max_length=None, no_repeat_ngram_size=None,
                 log=lambda message: None, max_seconds=DEFAULT_MAX_SECONDS):
    """Writes `model` (an `AudioCaptioner` or `NearestNeighbourCaptioner`) as MODEL_BASE/<version>/.

    version: None takes the next free integer; an existing version is never overwritten. beam_size 1 is greedy
    decoding; no_repeat_ngram_size n > 0: no caption holds an n-gram twice (0: the paper's decoding). None, for
    either: the model's own setting, as `generate` and `python -m audiocaps_tf.caption` default to (recorded
    resolved in the metadata). max_seconds: the longest file the `caption_segments` signature takes. The SavedModel gets the signatures of `serving_graph`, warm-up requests, and
    `audiocaps_tf_export.json` in assets.extra/; before it is published
    its captions of the warm-up clips are checked against the Keras model's `generate`. The Keras model goes into
    the version (assets.extra/model.keras) before it is published; MODEL_BASE/model-<version>.keras and
    MODEL_BASE/model.keras link to it. `log` receives progress messages.
    """
    _check_exportable(model)
    beam_size, no_repeat_ngram_size = model.resolve_beam(beam_size), model.resolve_no_repeat(no_repeat_ngram_size)
    version, final, staging = model_base_dir.prepare(model_base, version)
    try:
        log(f"writing the SavedModel of {model.model_name} (beam size {beam_size})")
        signatures = CaptionSignatures(model, beam_size=beam_size, max_length=max_length,
                                       no_repeat_ngram_size=no_repeat_ngram_size, max_seconds=max_seconds)
        signatures.archive().write_out(str(staging), verbose=False)
        extra = staging / "assets.extra"
        extra.mkdir()
        log("captioning the warm-up clips with the Keras model")
        logs = warmup_logs(model, beam_size=beam_size, max_length=max_length,
                           no_repeat_ngram_size=no_repeat_ngram_size)
        write_warmup(extra / WARMUP_FILE, logs)
        info = export_info(model, version, beam_size, max_length, no_repeat_ngram_size, max_seconds)
        (extra / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")

        log("checking the SavedModel's captions of the warm-up clips against the Keras model")
        problems = check_warmup(tf.saved_model.load(str(staging)), logs)
        if problems:
            raise ExportError("the SavedModel does not caption as the Keras model:\n  " + "\n  ".join(problems))
        log("saving the Keras model into the version")
        model_base_dir.save_keras_model(model, staging)
        model_base_dir.publish(staging, final)
    except BaseException:
        model_base_dir.discard(staging)
        raise
    model_base_dir.link_keras_models(model_base)
    return ExportResult(version, final, pathlib.Path(model_base) / model_base_dir.KERAS_MODEL_FILE, len(logs))
