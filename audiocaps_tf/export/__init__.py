"""Export a trained captioner as one TF Serving SavedModel: WAV bytes (or a waveform) in, a caption out.

    python -m audiocaps_tf.export --model RUN_DIR --out models/audiocaps

See `serving_graph` for the signatures, `model_base` for the directory layout and `warmup` for the warm-up
requests.
"""

from audiocaps_tf.export.exporter import ExportError, ExportResult, export_model
from audiocaps_tf.export.model_base import ModelBaseError
from audiocaps_tf.export.serving_graph import DEFAULT_SIGNATURE, WAVEFORM_SIGNATURE

__all__ = ["export_model", "ExportError", "ExportResult", "ModelBaseError", "DEFAULT_SIGNATURE", "WAVEFORM_SIGNATURE"]
