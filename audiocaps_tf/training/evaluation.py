"""Captioning a split with a model and scoring it: what validation, the test split and the benchmarks share.

    rows, samples = caption_split(model, dataset, fields, beam_size=1, samples=4, no_repeat_ngram_size=None)
    scores = score_rows(rows)                  # {"BLEU_1": ..., "CIDEr": ..., "SPICE": None, ..., "num_clips": n}

`dataset` is an `evaluation_dataset` (one row per clip with every reference). `rows` are dicts with key,
youtube_id, start_time, caption (the model's) and references; `samples` the first clips again with their decoder
attention ([L, T_i] per memory, cut to the caption's length) for TensorBoard.
"""

import csv
import io

import numpy as np
import tensorflow as tf

from audiocaps_tf import metrics

__all__ = ["attribute_key", "model_inputs", "decode", "caption_split", "score_rows", "predictions_csv", "EVALUATION_KEYS"]

EVALUATION_KEYS = metrics.METRICS + ("num_clips",)


def attribute_key(model):
    """The input name under which a model reads the clips' attribute words: "attributes" (the clip's own, the GT
    variant), "neighbour_attributes" (those of its nearest training clip, the 1NN variant), or None (no
    semantic attention)."""
    if not getattr(model, "uses_attributes", False):
        return None
    return "neighbour_attributes" if getattr(model, "attributes", None) == "1nn" else "attributes"


def model_inputs(batch, fields, attributes_as=None):
    """The entries of a pipeline batch a model reads: its feature fields, and the batch's "attributes" under the
    name `attributes_as` (see `attribute_key`; None: left out)."""
    inputs = {field: batch[field] for field in fields}
    if attributes_as is not None:
        inputs[attributes_as] = batch["attributes"]
    return inputs


def decode(model, inputs, beam_size=1, no_repeat_ngram_size=None):
    """`model.decode(inputs, beam_size, no_repeat_ngram_size=...)` as NumPy arrays, through the model's cached
    `tf.function` of it (traced once per input structure, shapes relaxed)."""
    function = model.decode_function(beam_size, no_repeat_ngram_size=no_repeat_ngram_size)
    return tf.nest.map_structure(np.asarray, function(inputs))


def _strings(values):
    return [v.decode("utf-8") for v in np.asarray(values).reshape(-1)]


def caption_split(model, dataset, fields, beam_size=1, samples=0, no_repeat_ngram_size=None):
    """(rows, samples) of captioning every clip of `dataset` (see the module docstring); no_repeat_ngram_size
    n > 0: no caption holds the same n-gram twice (`audiocaps_tf.decoding`)."""
    attributes_as = attribute_key(model)
    rows, kept = [], []
    for batch in dataset:
        outputs = decode(model, model_inputs(batch, fields, attributes_as), beam_size, no_repeat_ngram_size)
        tokens = np.asarray(outputs["tokens"])
        captions = model.captions_of(outputs)
        lengths = np.asarray(outputs.get("lengths", [len(t) for t in tokens]))
        attention = outputs.get("attention")
        if isinstance(attention, dict):
            attention = list(attention.values())
        keys = _strings(batch["key"])
        youtube_ids = _strings(batch["youtube_id"])
        start_times = np.asarray(batch["start_time"]).reshape(-1)
        references = [[r.decode("utf-8") for r in clip if r] for clip in np.asarray(batch["captions"])]
        for j, key in enumerate(keys):
            row = {"key": key, "youtube_id": youtube_ids[j], "start_time": int(start_times[j]),
                   "caption": captions[j], "references": references[j]}
            rows.append(row)
            if len(kept) < samples:
                length = max(1, int(lengths[j]))
                maps = [np.asarray(a[j])[:length] for a in attention] if attention else []
                kept.append({**row, "attention": maps})
    return rows, kept


def score_rows(rows, spice=False):
    """Caption metrics (x100) of `rows` against their references, plus "num_clips"."""
    predictions = {row["key"]: row["caption"] for row in rows}
    references = {row["key"]: row["references"] for row in rows}
    scores = metrics.score_captions(predictions, references, spice=spice)
    return {**{name: scores.get(name) for name in metrics.METRICS}, "num_clips": len(rows)}


def predictions_csv(rows):
    """The text of a predictions CSV (youtube_id,start_time,caption), one row per clip in `rows`' order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["youtube_id", "start_time", "caption"])
    for row in rows:
        writer.writerow([row["youtube_id"], row["start_time"], row["caption"]])
    return out.getvalue()
