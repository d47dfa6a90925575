"""`python -m audiocaps_tf.fit`: train a captioning model, keep the best by validation CIDEr, score the test split.

    python -m audiocaps_tf.fit                         the demo: synthesises (once, cached) a small captioned
                                                       dataset, trains tempatt-mfcc-lstm on it, scores its test
                                                       split and saves the model (a few minutes on 2 CPU cores)
    python -m audiocaps_tf.fit --data-dir DIR          your data: trains tempatt-mfcc-transformer-specaug, the
                                                       recipe that generalised best to recordings it never heard
                                                       (the README's Models section)
    python -m audiocaps_tf.fit --model NAME [--data-dir DIR | --tfrecords DIR] [--out RUN_DIR]
        [--epochs N] [--batch-size B] [--lr LR] [--beam-size K] [--strategy auto|mirrored|multiworker|one-device]
        [--seed S] [--resume]

Data: `--data-dir` is a directory in the AudioCaps layout (train/val/test CSVs and audio/); the features the model
needs are prepared once into RUN_DIR/data. `--tfrecords` is a directory `python -m audiocaps_tf.data prepare` wrote.
Neither: the demo dataset, cached under $AUDIOCAPS_TF_CACHE (default ~/.cache/audiocaps_tf). The caption vocabulary
is the prepared directory's tokenizer.

Training follows the authors' code: Adam (beta 0.9 / 0.999, eps 1e-8), learning rate 1e-3 halved after
--lr-patience validations without improvement down to 1e-4, gradients clipped to global norm 0.4, label smoothing
0.02 (<pad> ignored), Glorot (Xavier) initialisation, batch 128 (halved for small training sets until an epoch has
25 steps: 32 for the demo's 800 training captions), greedy decoding of the validation
split every --validation-frequency epochs (the authors: 0.3) scored with the evaluation metrics; the model with the
best validation CIDEr is kept, and training stops after --patience validations without improvement. The test split
is decoded with --beam-size (default: the model's own beam_size hyper-parameter, 1 (greedy, as the authors) for the
paper's models; the -specaug recipes' is 3). `--no-repeat-ngram-size N` keeps any N-gram from
appearing twice in a caption, in validation and test decoding (default: the model's own no_repeat_ngram_size
hyper-parameter, 0 (off, as the authors) for the paper's models).

Checkpoint averaging (`--average-checkpoints K`, default 0: off): the K validated checkpoints with the best CIDEr
(or the last K, `--average-checkpoints-of last`) are kept in RUN_DIR/checkpoints and their weights averaged after
training; the average is validated and becomes best.keras (the best checkpoint then is best_checkpoint.keras) if
its validation CIDEr is at least the best checkpoint's, else it is kept as averaged.keras. metrics.json's
"averaging" says which model was tested, with both validation scores (`training/averaging.py`).

Outputs (RUN_DIR, default runs/<model>-<YYYYmmdd-HHMMSS>): config.json, tokenizer/, best.keras, metrics.json
({"val": ..., "test": ...}), test_predictions.csv (youtube_id,start_time,caption), logs/ (TensorBoard: losses,
scores, sample captions, attention maps) and state.json (every validation). See `training/run_dir.py`.

Resuming: a run killed mid-training continues from its last finished validation period (a Keras BackupAndRestore
checkpoint in RUN_DIR/backup, written after every period, and state.json) when the same command is run again, or
with `--resume --out RUN_DIR` alone. A RUN_DIR holding anything else (another run, a finished run, other files) is
refused: runs are never overwritten.

Distribution: --batch-size is per replica; --strategy mirrored trains on every GPU (or every logical CPU device)
with the global batch scaled by the number of replicas; multiworker (every worker with the same --out) reads
the cluster from TF_CONFIG (see `training/strategy.py`).

1NN models (1nn-mfcc, 1nn-vggish) are not trained: their "training" indexes the train clips' pooled features and
captions; they are then scored like the others. VGGish models load pretrained VGGish weights from
--vggish-weights (default: the TF Hub handle; a directory holding the extracted module, or the TF1 checkpoint).
Semantic models (topdown-semtempatt, topdown-alignedatt) use --attributes 1nn (default: every clip gets the
attribute words of its nearest training clip, as at inference) or gt (the clips' own labels or caption keywords).
"""

import argparse
import os
import sys

from audiocaps_tf.training.config import (  # noqa: F401  (fit's options and their defaults, as they always were)
    ADAM,
    BATCH_SIZE,
    CLIP_NORM,
    DEFAULT_DATA_MODEL,
    DEFAULT_MODEL,
    DEMO_CLIPS,
    DEMO_SEED,
    EPOCHS,
    LABEL_SMOOTHING,
    LEARNING_RATE,
    LR_PATIENCE,
    MIN_LEARNING_RATE,
    MIN_STEPS_PER_EPOCH,
    PATIENCE,
    VALIDATION_FREQUENCY,
    FitConfig,
    FitError,
    add_arguments,
    default_batch_size,
)

HELP = "train a captioning model (default: the demo) and score its test split"

# Names of `training/trainer.py` also reachable as `fit.<name>`; imported on first use (the trainer imports
# TensorFlow and the models, which `--help` does not need).
_TRAINER_NAMES = ("has_tensorboard", "longest_caption", "training_inputs", "EVAL_BATCH_SIZE", "SAMPLE_CLIPS")


def __getattr__(name):
    if name in _TRAINER_NAMES:
        from audiocaps_tf.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m audiocaps_tf.fit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def main(argv=None, callbacks=None):
    """The command line; returns the exit status. `callbacks`: extra Keras callbacks, run after the backup (tests)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)

    from audiocaps_tf.data.demo import DemoError
    from audiocaps_tf.data.layout import DataError
    from audiocaps_tf.layers.vggish_weights import VGGishWeightsUnavailableError
    from audiocaps_tf.metrics import MetricsError, spice_warnings_as_messages
    from audiocaps_tf.training import trainer
    from audiocaps_tf.training.run_dir import RunDirError
    from audiocaps_tf.training.strategy import StrategyError

    try:
        with spice_warnings_as_messages():
            config, given = FitConfig.from_args(args)
            args.out = trainer.run_directory(config, args.out, resume=args.resume)  # for an interruption's message
            return trainer.run(config, given=given, out=args.out, resume=args.resume, workers=args.workers,
                               callbacks=callbacks)
    except (FitError, RunDirError, StrategyError, DataError, DemoError, VGGishWeightsUnavailableError, MetricsError,
            FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: `python -m audiocaps_tf.fit --resume --out {args.out}` continues the run",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
