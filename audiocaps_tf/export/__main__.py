"""`python -m audiocaps_tf.export --model RUN_DIR|MODEL.keras --out MODEL_BASE`: a SavedModel for TF Serving.

    python -m audiocaps_tf.export --model runs/tempatt-mfcc-lstm-20260101-120000 --out models/audiocaps
    python -m audiocaps_tf.export --model best.keras --out models/audiocaps --version 7 --beam-size 3

Writes MODEL_BASE/<version>/ (the next free integer unless --version is given; an existing version is never
overwritten): a SavedModel whose `serving_default` signature takes WAV file bytes (`audio`, tf.string [batch]) and
whose `caption_waveform` signature takes `waveform` float32 [batch, samples] with `sample_rate` int32 [batch];
both answer `caption`, `score` and `tokens`, for the first 10 s of each clip (zero-padded when shorter), as
`caption --no-segments` does. The `caption_segments` signature takes WAV bytes up to --max-seconds long and answers
each file's segments as `caption` captions a long file (`start`, `end`, `caption`, `score` [batch, S] and
`segment_count` [batch]). Also writes MODEL_BASE/model.keras (the newest version's Keras model) and
model-<version>.keras. Before a version is published, its captions of a few warm-up clips are checked against the
Keras model's. Serve MODEL_BASE with TensorFlow Serving (see serving/README.md) or
`python -m audiocaps_tf.serving.dev_server`.
"""

import argparse
import os
import pathlib
import sys

from audiocaps_tf.arguments import non_negative_int, positive_float, positive_int


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m audiocaps_tf.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=pathlib.Path, metavar="RUN_DIR|MODEL.keras",
                        help="a `python -m audiocaps_tf.fit` run directory, or a saved .keras model")
    parser.add_argument("--out", required=True, type=pathlib.Path, metavar="MODEL_BASE",
                        help="the model base directory TF Serving watches (created if missing)")
    parser.add_argument("--version", type=positive_int, metavar="N",
                        help="version number (default: the next free one)")
    parser.add_argument("--beam-size", type=positive_int, metavar="K",
                        help="beam width of the served captions (default: the model's own, its beam_size "
                             "hyper-parameter; 1, greedy, for the paper's models)")
    parser.add_argument("--no-repeat-ngram-size", type=non_negative_int, metavar="N",
                        help="never repeat an N-gram within a caption (e.g. 3; 0: off, the paper's decoding; "
                             "default: the model's own, its no_repeat_ngram_size hyper-parameter)")
    parser.add_argument("--max-seconds", type=positive_float, default=600.0, metavar="SECONDS",
                        help="the longest WAV file the caption_segments signature takes (default 600)")
    return parser


def main(argv=None):
    """The command line; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)

    from audiocaps_tf.caption import load_model
    from audiocaps_tf.export import ExportError, ModelBaseError, export_model
    from audiocaps_tf.export.model_base import prepare

    try:
        prepare(args.out, args.version)  # fail on a taken version before loading anything
    except ModelBaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        model = load_model(args.model)
    except (OSError, ValueError, TypeError) as err:
        print(f"error: cannot load the model {args.model}: {err}", file=sys.stderr)
        return 1
    try:
        result = export_model(model, args.out, version=args.version, beam_size=args.beam_size,
                              no_repeat_ngram_size=args.no_repeat_ngram_size, max_seconds=args.max_seconds,
                              log=lambda message: print(message, file=sys.stderr, flush=True))
    except (ExportError, ModelBaseError, ValueError) as err:  # ValueError: an option the model cannot honour
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"exported version {result.version} to {result.path} (Keras model: {result.keras_path})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
