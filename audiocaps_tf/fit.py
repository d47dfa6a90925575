"""`python -m audiocaps_tf.fit`: train a captioning model, keep the best by validation CIDEr, score the test split.

    python -m audiocaps_tf.fit                         the demo: synthesises (once, cached) a small captioned
                                                       dataset, trains tempatt-mfcc-lstm on it, scores its test
                                                       split and saves the model (a few minutes on 2 CPU cores)
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
is decoded with --beam-size (default 1: greedy, as the authors).

Outputs (RUN_DIR, default runs/<model>-<YYYYmmdd-HHMMSS>): config.json, tokenizer/, best.keras, metrics.json
({"val": ..., "test": ...}), test_predictions.csv (youtube_id,start_time,caption), logs/ (TensorBoard: losses,
scores, sample captions, attention maps) and state.json (every validation). See `training/run_dir.py`.

Resuming: a run killed mid-training continues from its last finished validation period (a Keras BackupAndRestore
checkpoint in RUN_DIR/backup, written after every period, and state.json) when the same command is run again, or
with `--resume --out RUN_DIR` alone. A RUN_DIR holding anything else (another run, a finished run, other files) is
refused: runs are never overwritten.

Distribution: --batch-size is per replica; --strategy mirrored trains on every GPU (or every logical CPU device)
with the global batch scaled by the number of replicas; multiworker reads the cluster from TF_CONFIG (see
`training/strategy.py`).

1NN models (1nn-mfcc, 1nn-vggish) are not trained: their "training" indexes the train clips' pooled features and
captions; they are then scored like the others. VGGish models load pretrained VGGish weights from
--vggish-weights (default: the TF Hub handle; a directory holding the extracted module, or the TF1 checkpoint).
Semantic models (topdown-semtempatt, topdown-alignedatt) use --attributes 1nn (default: every clip gets the
attribute words of its nearest training clip, as at inference) or gt (the clips' own labels or caption keywords).
"""

import argparse
import json
import math
import os
import pathlib
import shutil
import sys
import time
import warnings

HELP = "train a captioning model (default: the demo) and score its test split"

DEFAULT_MODEL = "tempatt-mfcc-lstm"
# The demo run: sized to finish in about 5 minutes on 2 CPU cores (measured: 5 min 6 s from an empty cache, demo
# synthesis and feature preparation included; 4 min 22 s once they are cached).
DEMO_CLIPS = 1000
DEMO_SEED = 0
EPOCHS = 40
BATCH_SIZE = 128  # the authors'
MIN_STEPS_PER_EPOCH = 25  # the default batch is halved (down to 8) until an epoch has this many steps
LEARNING_RATE = 1e-3
MIN_LEARNING_RATE = 1e-4
CLIP_NORM = 0.4
LABEL_SMOOTHING = 0.02
ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}
VALIDATION_FREQUENCY = 1.0
PATIENCE = 8
LR_PATIENCE = 3
EVAL_BATCH_SIZE = 64
SAMPLE_CLIPS = 4  # validation clips whose captions and attention maps go to TensorBoard

# Command-line options (argparse dest) -> the config.json option they set.
_OPTION_OF_ARGUMENT = {
    "model": "model", "model_overrides": "model_overrides", "data_dir": "data", "tfrecords": "data",
    "demo_clips": "data", "demo_seed": "data", "epochs": "epochs", "batch_size": "batch_size",
    "lr": "learning_rate", "min_lr": "min_learning_rate", "clip_norm": "clip_norm",
    "label_smoothing": "label_smoothing", "validation_frequency": "validation_frequency", "patience": "patience",
    "lr_patience": "lr_patience", "beam_size": "beam_size", "strategy": "strategy", "seed": "seed",
    "attributes": "attributes", "vggish_weights": "vggish_weights", "vggish_trainable": "vggish_trainable",
}


class FitError(RuntimeError):
    """A run that cannot start or go on; the message says why."""


# ---------------------------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------------------------


def add_arguments(parser):
    from audiocaps_tf.models.registry import ATTRIBUTE_SOURCES, MODEL_NAMES
    from audiocaps_tf.training.strategy import STRATEGIES

    parser.add_argument("--model", choices=MODEL_NAMES, metavar="NAME",
                        help=f"model to train (default {DEFAULT_MODEL}); one of: {', '.join(MODEL_NAMES)}")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data-dir", type=pathlib.Path, metavar="DIR",
                      help="AudioCaps-layout directory with audio; its features are prepared into RUN_DIR/data")
    data.add_argument("--tfrecords", type=pathlib.Path, metavar="DIR",
                      help="directory written by `python -m audiocaps_tf.data prepare`")
    parser.add_argument("--out", type=pathlib.Path, metavar="RUN_DIR",
                        help="run directory (default runs/<model>-<YYYYmmdd-HHMMSS>); never overwritten")
    parser.add_argument("--resume", action="store_true",
                        help="continue the unfinished run in --out with its own options (options given again "
                             "must match, except --strategy and --beam-size)")
    parser.add_argument("--epochs", type=float, metavar="N", help=f"epochs of the training data (default {EPOCHS})")
    parser.add_argument("--batch-size", type=int, metavar="B",
                        help=f"captions per batch and replica (default: {BATCH_SIZE}, the authors', halved for small "
                             f"training sets until an epoch has {MIN_STEPS_PER_EPOCH} steps: 32 for the demo)")
    parser.add_argument("--lr", type=float, metavar="LR", help=f"initial learning rate (default {LEARNING_RATE:g})")
    parser.add_argument("--min-lr", type=float, metavar="LR",
                        help=f"floor of the plateau decay (default {MIN_LEARNING_RATE:g})")
    parser.add_argument("--beam-size", type=int, metavar="K", help="beam width for the test split (default 1)")
    parser.add_argument("--strategy", choices=STRATEGIES, help="tf.distribute strategy (default auto)")
    parser.add_argument("--seed", type=int, metavar="S", help="random seed (default 0)")
    parser.add_argument("--validation-frequency", type=float, metavar="EPOCHS",
                        help="epochs between validations, e.g. 0.3 as the authors (default 1)")
    parser.add_argument("--patience", type=int, metavar="N",
                        help=f"stop after N validations without a better CIDEr (default {PATIENCE}; 0: never)")
    parser.add_argument("--lr-patience", type=int, metavar="N",
                        help=f"halve the learning rate after N validations without improvement (default "
                             f"{LR_PATIENCE}; 0: never)")
    parser.add_argument("--attributes", choices=ATTRIBUTE_SOURCES,
                        help="attribute words of semantic models: 1nn (default) or gt")
    parser.add_argument("--vggish-weights", metavar="SOURCE",
                        help="VGGish weights: TF Hub handle (default), extracted module dir or TF1 checkpoint")
    parser.add_argument("--vggish-trainable", action="store_true", default=None,
                        help="fine-tune VGGish end to end from waveforms (VGGish models)")
    parser.add_argument("--demo-clips", type=int, metavar="N", help=f"clips of the demo dataset (default {DEMO_CLIPS})")
    parser.add_argument("--demo-seed", type=int, metavar="S", help=f"seed of the demo dataset (default {DEMO_SEED})")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="processes decoding or synthesising audio while preparing data (default: one per CPU)")
    advanced = parser.add_argument_group("advanced")
    advanced.add_argument("--model-overrides", metavar="JSON",
                          help='model hyper-parameters as JSON, e.g. \'{"units": 8, "embedding_dim": 8}\'')
    advanced.add_argument("--label-smoothing", type=float, help=f"(default {LABEL_SMOOTHING})")
    advanced.add_argument("--clip-norm", type=float, help=f"global gradient-norm clipping (default {CLIP_NORM})")


def _model_overrides(text):
    if text is None:
        return None
    try:
        overrides = json.loads(text)
    except ValueError as err:
        raise FitError(f"--model-overrides is not JSON: {err}") from None
    if not isinstance(overrides, dict):
        raise FitError("--model-overrides must be a JSON object, e.g. '{\"units\": 8}'")
    return overrides


def _data_option(args):
    if (args.data_dir or args.tfrecords) and (args.demo_clips is not None or args.demo_seed is not None):
        raise FitError("--demo-clips and --demo-seed describe the demo dataset; they do not go with --data-dir or "
                       "--tfrecords")
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            raise FitError(f"--data-dir {args.data_dir}: no such directory")
        return {"kind": "data_dir", "path": str(args.data_dir.resolve())}
    if args.tfrecords is not None:
        if not args.tfrecords.is_dir():
            raise FitError(f"--tfrecords {args.tfrecords}: no such directory")
        return {"kind": "tfrecords", "path": str(args.tfrecords.resolve())}
    return {"kind": "demo", "clips": args.demo_clips or DEMO_CLIPS,
            "seed": DEMO_SEED if args.demo_seed is None else args.demo_seed}


def _vggish_source(value):
    from audiocaps_tf import params

    if value is None:
        return params.VGGISH_HUB_HANDLE
    if value.startswith(("http://", "https://", "gs://")):
        return value
    return str(pathlib.Path(value).resolve())


def resolve_options(args):
    """(options of a new run from `args` with the defaults filled in, names of the options given explicitly)."""
    from audiocaps_tf.models.registry import get_spec, resolve_hyper_parameters

    given = {_OPTION_OF_ARGUMENT[name] for name, value in vars(args).items()
             if name in _OPTION_OF_ARGUMENT and value is not None}
    model = args.model or DEFAULT_MODEL
    spec = get_spec(model)
    data = _data_option(args)

    def pick(value, default):
        return default if value is None else value

    options = {
        "model": model,
        "model_overrides": _model_overrides(args.model_overrides) or {},
        "data": data,
        "epochs": pick(args.epochs, EPOCHS),
        "batch_size": args.batch_size,  # None: `default_batch_size` of the training set
        "learning_rate": pick(args.lr, LEARNING_RATE),
        "min_learning_rate": pick(args.min_lr, MIN_LEARNING_RATE),
        "clip_norm": pick(args.clip_norm, CLIP_NORM),
        "label_smoothing": pick(args.label_smoothing, LABEL_SMOOTHING),
        "validation_frequency": pick(args.validation_frequency, VALIDATION_FREQUENCY),
        "patience": pick(args.patience, PATIENCE),
        "lr_patience": pick(args.lr_patience, LR_PATIENCE),
        "beam_size": pick(args.beam_size, 1),
        "strategy": pick(args.strategy, "auto"),
        "seed": pick(args.seed, 0),
        "attributes": pick(args.attributes, "1nn") if spec.uses_attributes else None,
        "vggish_weights": _vggish_source(args.vggish_weights) if spec.uses_vggish else None,
        "vggish_trainable": bool(args.vggish_trainable) if spec.uses_vggish else False,
    }
    if float(options["epochs"]).is_integer():
        options["epochs"] = int(options["epochs"])
    for name in ("epochs", "batch_size", "learning_rate", "validation_frequency", "beam_size"):
        if options[name] is not None and not options[name] > 0:
            raise FitError(f"--{name.replace('_', '-')} must be positive, got {options[name]}")
    if options["patience"] < 0 or options["lr_patience"] < 0:
        raise FitError("--patience and --lr-patience must be >= 0")
    try:
        resolve_hyper_parameters(options["model_overrides"])
    except TypeError as err:
        raise FitError(f"--model-overrides: {err}") from None
    if data["kind"] == "demo" and data["clips"] < 10:
        raise FitError("--demo-clips must be at least 10 (train, val and test need clips)")
    return options, given


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------


def default_batch_size(pairs):
    """The authors' batch (128), halved while an epoch of `pairs` training pairs would have fewer than
    MIN_STEPS_PER_EPOCH steps, down to 8: small sets get enough updates per epoch."""
    batch = BATCH_SIZE
    while batch > 8 and pairs / batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return batch


def _fields(spec, options):
    if options["vggish_trainable"]:
        return ("waveform",)  # the model computes its VGGish features (and their gradients) itself
    return tuple(spec.features)


def _save_model(model, path):
    """`model.save(path)` through a temporary file, as an inference model (no optimizer or loss in the file, so
    `keras.models.load_model` needs nothing but `import audiocaps_tf`)."""
    path = pathlib.Path(path)
    temporary = path.with_name(path.stem + ".partial.keras")
    compiled = model.compiled
    model.compiled = False
    try:
        model.save(temporary)
    finally:
        model.compiled = compiled
    os.replace(temporary, path)


def has_tensorboard():
    """Whether the `tensorboard` package (which tf.summary writes through) is installed."""
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def _verbose():
    return 1 if sys.stdout.isatty() else 2


def _print_scores(title, scores):
    from audiocaps_tf import metrics

    print(title)
    print(metrics.format_table(scores))


def longest_caption(source):
    """The most ids of one caption (with <eos>) in a TFRecord source: reads the caption lengths only."""
    import tensorflow as tf

    spec = {"caption_lengths": tf.io.VarLenFeature(tf.int64)}

    def longest(serialized):
        return tf.reduce_max(tf.io.parse_single_example(serialized, spec)["caption_lengths"].values)

    lengths = tf.data.TFRecordDataset(source.files).map(longest, num_parallel_calls=tf.data.AUTOTUNE)
    return int(lengths.reduce(tf.constant(0, tf.int64), tf.maximum))


def training_inputs(fields, attributes_as, caption_width):
    """Training batches as the model reads them (see `evaluation.model_inputs`), plus "caption_in"; captions
    padded to a fixed `caption_width`.

    The fixed width gives the training step static caption shapes, so it is traced once for every batch;
    batches of a few dozen captions are padded to nearly the longest caption anyway.
    """
    import tensorflow as tf

    from audiocaps_tf.training.evaluation import model_inputs

    def fixed(ids):
        ids = ids[:, :caption_width]
        ids = tf.pad(ids, [[0, 0], [0, caption_width - tf.shape(ids)[1]]])
        return tf.ensure_shape(ids, [None, caption_width])

    def select(inputs, targets):
        return dict(model_inputs(inputs, fields, attributes_as), caption_in=fixed(inputs["caption_in"])), fixed(targets)

    return select


def _write_test_summaries(log_dir, scores, rows):
    if not has_tensorboard():
        return
    import tensorflow as tf

    from audiocaps_tf.training.callbacks import captions_markdown

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default(step=0):
        for name, value in scores.items():
            if value is not None and name != "num_clips" and math.isfinite(value):
                tf.summary.scalar(f"test_{name}", value)
        tf.summary.text("test_captions", captions_markdown(rows[:SAMPLE_CLIPS]))
    writer.flush()


def _finish(run_dir, state, model, test_source, fields, options):
    """Decodes the test split with the best model and writes metrics.json and test_predictions.csv."""
    from audiocaps_tf.data.pipeline import evaluation_dataset
    from audiocaps_tf.training import evaluation
    from audiocaps_tf.training import run_dir as run_dir_lib

    beam = options["beam_size"]
    val_scores = state["best"]["val"]
    print(f"captioning the test split ({'greedy' if beam == 1 else f'beam {beam}'}) ...", flush=True)
    dataset = evaluation_dataset(test_source, fields, batch_size=EVAL_BATCH_SIZE)
    rows, _ = evaluation.caption_split(model, dataset, fields, beam_size=beam)
    test_scores = evaluation.score_rows(rows, spice=None)
    run_dir_lib.write_text_atomically(run_dir / run_dir_lib.PREDICTIONS_FILE, evaluation.predictions_csv(rows))
    run_dir_lib.write_json_atomically(run_dir / run_dir_lib.METRICS_FILE, {"val": val_scores, "test": test_scores})
    _write_test_summaries(run_dir / run_dir_lib.LOGS_DIR / "test", test_scores, rows)
    state["status"] = "complete"
    state["test"] = test_scores
    run_dir_lib.write_state(run_dir, state)
    best = state.get("best") or {}
    print()
    _print_scores(f"validation (best, epoch {best.get('epoch', 0):g}, greedy):", val_scores)
    _print_scores(f"test ({len(rows)} clips, {'greedy' if beam == 1 else f'beam {beam}'}):", test_scores)
    print(f"\nmodel: {run_dir / run_dir_lib.BEST_MODEL_FILE}\nscores: {run_dir / run_dir_lib.METRICS_FILE}\n"
          f"captions: {run_dir / run_dir_lib.PREDICTIONS_FILE}\nTensorBoard: tensorboard --logdir "
          f"{run_dir / run_dir_lib.LOGS_DIR}")
    return test_scores


def _fit_retrieval(run_dir, state, spec, options, vocabulary, sources, fields):
    """1NN models: index the train clips' pooled features and first captions, then score val and test."""
    import keras
    import tensorflow as tf

    from audiocaps_tf.data.pipeline import evaluation_dataset
    from audiocaps_tf.models import build_captioner
    from audiocaps_tf.training import evaluation
    from audiocaps_tf.training import run_dir as run_dir_lib
    from audiocaps_tf.training.callbacks import captions_markdown
    from audiocaps_tf.training.data import clip_table, pooled_features

    best_path = run_dir / run_dir_lib.BEST_MODEL_FILE
    if state.get("status") == "testing" and best_path.is_file():  # killed while scoring the test split
        return _finish(run_dir, state, keras.models.load_model(best_path), sources["test"], fields, options)
    model = build_captioner(spec.name, vocabulary, **options["model_overrides"])
    _load_vggish(model, options)
    keys, pooled = pooled_features(model, sources["train"], fields)
    table = clip_table(sources["train"])
    first_caption = dict(zip(table["key"], (captions[0] if captions else "" for captions in table["captions"])))
    model.index(pooled, [first_caption[key] for key in keys])
    print(f"indexed {len(keys)} training clips", flush=True)
    dataset = evaluation_dataset(sources["val"], fields, batch_size=EVAL_BATCH_SIZE)
    rows, samples = evaluation.caption_split(model, dataset, fields, beam_size=1, samples=SAMPLE_CLIPS)
    scores = evaluation.score_rows(rows, spice=False)
    _save_model(model, best_path)
    entry = {"period": 1, "epoch": 0, "step": 0, "loss": None, "learning_rate": None, "val": scores}
    state.update(status="testing", history=[entry], best=entry)
    run_dir_lib.write_state(run_dir, state)
    if has_tensorboard():
        writer = tf.summary.create_file_writer(str(run_dir / run_dir_lib.LOGS_DIR / "validation"))
        with writer.as_default(step=0):
            for name, value in scores.items():
                if value is not None and name != "num_clips" and math.isfinite(value):
                    tf.summary.scalar(f"epoch_{name}", value)
            tf.summary.text("captions", captions_markdown(samples))
        writer.flush()
    return _finish(run_dir, state, model, sources["test"], fields, options)


def _load_vggish(model, options):
    vggish = getattr(model, "vggish", None)
    if vggish is None:
        return
    from audiocaps_tf.layers import load_vggish_weights

    print(f"loading VGGish weights from {options['vggish_weights']}", flush=True)
    load_vggish_weights(vggish, options["vggish_weights"])


def _attribute_vocabulary(tables):
    """The attribute words of the training clips, most frequent first."""
    import collections

    counts = collections.Counter(word for words in tables["train"]["attributes"] for word in words)
    vocabulary = sorted(counts, key=lambda word: (-counts[word], word))
    if not vocabulary:
        raise FitError("the training clips have no attribute words (no labels column and no caption keywords)")
    return vocabulary


def _set_up_attributes(model, sources, tables, fields, attributes):
    """Semantic models: the model's attribute index (train pooled fc2 -> attribute words, for inference on raw
    audio), and with `attributes` "1nn" every split's clips given their nearest training clip's attribute words
    (a training clip not its own). Returns the sources to read."""
    from audiocaps_tf.data.attributes import nearest_neighbour_attributes
    from audiocaps_tf.training.data import AttributeOverride, pooled_features

    train_keys, train_fc2 = pooled_features(model, sources["train"], fields, field="vggish_fc2")
    own = dict(zip(tables["train"]["key"], tables["train"]["attributes"]))
    train_lists = [own[key] for key in train_keys]
    model.set_attribute_index(train_fc2, train_lists)
    if attributes != "1nn":
        return sources
    overridden = {}
    for split, source in sources.items():
        keys, pooled = (train_keys, train_fc2) if split == "train" else pooled_features(
            model, source, fields, field="vggish_fc2")
        nearest = nearest_neighbour_attributes(pooled, train_fc2, train_lists, exclude_self=split == "train")
        overridden[split] = AttributeOverride(source, dict(zip(keys, nearest)))
    return overridden


def _backed_up_periods(backup_dir):
    """Periods the BackupAndRestore checkpoint in `backup_dir` holds (0 without one)."""
    try:
        return int(json.loads((backup_dir / "training_metadata.json").read_text()).get("epoch", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def _open_run(args):
    """(run directory, options, state, strategy) of the run `args` ask for; creates or reopens the directory."""
    from audiocaps_tf.training import run_dir as run_dir_lib
    from audiocaps_tf.training.strategy import describe, is_chief, make_strategy, worker_index

    options, given = resolve_options(args)
    if args.resume and args.out is None:
        raise FitError("--resume needs --out RUN_DIR (the run to continue)")
    run_dir = pathlib.Path(args.out if args.out is not None else run_dir_lib.default_run_dir(options["model"]))
    args.out = run_dir  # for the message of an interruption

    # The strategy first: a multi-worker non-chief task keeps its own state under RUN_DIR/workers/<index>.
    strategy_name = options["strategy"]
    if args.resume and "strategy" not in given and (run_dir / run_dir_lib.CONFIG_FILE).is_file():
        strategy_name = run_dir_lib.read_config(run_dir).get("strategy", "auto")
    strategy = make_strategy(strategy_name)
    if not is_chief(strategy):
        run_dir = run_dir / "workers" / str(worker_index())
    options, resumed = run_dir_lib.open_run_dir(run_dir, options, resume=args.resume, given=given)
    print(f"{'resuming' if resumed else 'new'} run of {options['model']} in {run_dir}; {describe(strategy)}",
          flush=True)
    return run_dir, options, run_dir_lib.read_state(run_dir), strategy


def _open_data(run_dir, options, fields, workers):
    """({split: TFRecordSource}, caption vocabulary) of the run's data, prepared first when needed."""
    from audiocaps_tf.data.pipeline import TFRecordSource
    from audiocaps_tf.training import run_dir as run_dir_lib
    from audiocaps_tf.training.data import prepared_directory

    path = prepared_directory(options["data"], fields, run_dir, vggish_weights=options["vggish_weights"],
                              workers=workers)
    sources = {split: TFRecordSource(path, split) for split in ("train", "val", "test")}
    for source in sources.values():
        try:
            source.resolve_fields(fields)
        except ValueError as err:
            raise FitError(f"{err}: {options['model']} reads {', '.join(fields)}") from None
    vocabulary = sources["train"].vocabulary
    if not (run_dir / run_dir_lib.TOKENIZER_DIR).exists():
        vocabulary.save(run_dir / run_dir_lib.TOKENIZER_DIR)
    return sources, vocabulary


def run(args, callbacks=None):
    """Runs `fit` for parsed `args`; returns the exit status. `callbacks` are appended to Keras' (tests)."""
    import keras

    import audiocaps_tf  # noqa: F401  (registers the layers)
    from audiocaps_tf.data.pipeline import caption_count, evaluation_dataset, steps_per_epoch
    from audiocaps_tf.models import build_captioner
    from audiocaps_tf.models.registry import get_spec, resolve_hyper_parameters
    from audiocaps_tf.training import evaluation
    from audiocaps_tf.training import run_dir as run_dir_lib
    from audiocaps_tf.training.callbacks import ValidationCallback
    from audiocaps_tf.training.data import clip_table, training_stream
    from audiocaps_tf.training.losses import MaskedSmoothedCrossEntropy
    from audiocaps_tf.training.strategy import is_chief

    run_dir, options, state, strategy = _open_run(args)
    spec = get_spec(options["model"])
    fields = _fields(spec, options)
    sources, vocabulary = _open_data(run_dir, options, fields, args.workers)
    if spec.is_retrieval:
        _fit_retrieval(run_dir, state, spec, options, vocabulary, sources, fields)
        return 0

    keras.utils.set_random_seed(options["seed"])
    hyper = resolve_hyper_parameters(options["model_overrides"])
    tables = {split: clip_table(source) for split, source in sources.items()} if spec.uses_attributes else None
    caption_width = min(hyper["max_caption_length"], longest_caption(sources["train"]))
    batch_size = options["batch_size"] or default_batch_size(caption_count(sources["train"]))
    global_batch = batch_size * strategy.num_replicas_in_sync
    full_epoch_steps = steps_per_epoch(sources["train"], global_batch)
    steps_per_period = max(1, round(full_epoch_steps * options["validation_frequency"]))
    periods = max(1, math.ceil(options["epochs"] * full_epoch_steps / steps_per_period - 1e-9))
    backup_dir = run_dir / run_dir_lib.BACKUP_DIR

    with strategy.scope():
        model = build_captioner(spec.name, vocabulary,
                                attribute_vocabulary=_attribute_vocabulary(tables) if tables else None,
                                attributes=options["attributes"], vggish_trainable=options["vggish_trainable"],
                                **options["model_overrides"])
        _load_vggish(model, options)
        if spec.uses_attributes:
            sources = _set_up_attributes(model, sources, tables, fields, options["attributes"])
        model.compile(
            optimizer=keras.optimizers.Adam(options["learning_rate"], global_clipnorm=options["clip_norm"], **ADAM),
            loss=MaskedSmoothedCrossEntropy(options["label_smoothing"]),
        )
        # A resumed run's data starts at the data epoch its backup is in.
        first_epoch = _backed_up_periods(backup_dir) * steps_per_period // full_epoch_steps
        train_dataset = training_stream(
            sources["train"], fields, global_batch, seed=options["seed"], first_epoch=first_epoch,
            epochs=math.ceil(periods * steps_per_period / full_epoch_steps) - first_epoch,
            max_caption_length=hyper["max_caption_length"],
        ).map(training_inputs(fields, evaluation.attribute_key(model), caption_width))

    val_dataset = evaluation_dataset(sources["val"], fields, batch_size=EVAL_BATCH_SIZE)

    def validate(current):
        rows, samples = evaluation.caption_split(current, val_dataset, fields, samples=SAMPLE_CLIPS)
        return evaluation.score_rows(rows, spice=False), samples

    best_path = run_dir / run_dir_lib.BEST_MODEL_FILE
    log_dir = run_dir / run_dir_lib.LOGS_DIR
    tensorboard = has_tensorboard()
    if not tensorboard:
        print("warning: the tensorboard package is not installed: no TensorBoard logs (pip install tensorboard)",
              file=sys.stderr)
    if state.get("status") not in ("testing", "complete") and not state.get("stopped_early"):
        state.update(replicas=strategy.num_replicas_in_sync, batch_size=batch_size, global_batch=global_batch,
                     caption_width=caption_width)
        run_dir_lib.write_state(run_dir, state)
        keras_callbacks = [
            ValidationCallback(  # before the backup: a period's state is on disk before its backup
                run_dir, validate, lambda current: _save_model(current, best_path), steps_per_period,
                epochs_per_period=steps_per_period / full_epoch_steps, patience=options["patience"] or None,
                lr_patience=options["lr_patience"] or None, min_learning_rate=options["min_learning_rate"],
                log_dir=log_dir / "validation" if tensorboard else None, is_chief=is_chief(strategy),
            ),
            # Kept at the end of training (deleted below once state.json says so): a run killed in between
            # must not start again from scratch.
            keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True, delete_checkpoint=False),
            *([keras.callbacks.TensorBoard(str(log_dir), update_freq=max(1, steps_per_period // 10))]
              if tensorboard else []),
            *(callbacks or []),
        ]
        print(f"training: {periods} period(s) of {steps_per_period} step(s) (global batch {global_batch}, "
              f"{full_epoch_steps} steps per epoch), validation after each", flush=True)
        started = time.monotonic()
        with warnings.catch_warnings():
            # Keras warns that its `shuffle` does not apply to a tf.data.Dataset (the pipeline shuffles).
            warnings.filterwarnings("ignore", message=".*shuffle=True.*")
            model.fit(train_dataset, epochs=periods, steps_per_epoch=steps_per_period, callbacks=keras_callbacks,
                      verbose=_verbose())
        state = run_dir_lib.read_state(run_dir)
        state["train_seconds"] = state.get("train_seconds", 0.0) + (time.monotonic() - started)
        state["status"] = "testing"
        run_dir_lib.write_state(run_dir, state)
    shutil.rmtree(backup_dir, ignore_errors=True)
    if not is_chief(strategy):
        return 0
    if not best_path.is_file():
        raise FitError(f"{best_path} was not written: no validation produced a CIDEr score")
    _finish(run_dir, state, keras.models.load_model(best_path), sources["test"], fields, options)
    return 0


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
    from audiocaps_tf.training.run_dir import RunDirError
    from audiocaps_tf.training.strategy import StrategyError

    try:
        with spice_warnings_as_messages():
            return run(args, callbacks=callbacks)
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
