"""The run of `python -m audiocaps_tf.fit` for a `FitConfig` (`run`): what it does is fit's docstring, what it writes
`training/run_dir.py`.

    run(config, given=..., out=..., resume=..., workers=..., callbacks=...)
        opens (or reopens) the run directory and the data, trains with validation after every period (1NN models:
        indexes the train clips' pooled features and captions instead), with --average-checkpoints averages the
        kept checkpoints (`training/averaging.py`), then scores the test split with the best model
"""

import collections
import dataclasses
import importlib.util
import json
import math
import pathlib
import shutil
import sys
import time
import warnings

import keras
import tensorflow as tf

import audiocaps_tf  # noqa: F401  (registers the layers)
from audiocaps_tf import metrics
from audiocaps_tf.files import atomic_path
from audiocaps_tf.data.pipeline import TFRecordSource, caption_count, evaluation_dataset, steps_per_epoch
from audiocaps_tf.layers import load_vggish_weights
from audiocaps_tf.models import build_captioner
from audiocaps_tf.models.registry import get_spec, resolve_hyper_parameters
from audiocaps_tf.retrieval import clip_pooled_features, index_training_clips
from audiocaps_tf.training import averaging, evaluation
from audiocaps_tf.training.datasets import combined_scores, dataset_scores
from audiocaps_tf.training import run_dir as run_dir_lib
from audiocaps_tf.training.callbacks import ValidationCallback, captions_markdown
from audiocaps_tf.training.config import ADAM, FitConfig, FitError, default_batch_size
from audiocaps_tf.training.data import AttributeOverride, clip_table, prepared_directory, training_stream
from audiocaps_tf.training.losses import MaskedSmoothedCrossEntropy
from audiocaps_tf.training.strategy import describe, is_chief, make_strategy, worker_index
from audiocaps_tf.training.worker_loop import WorkerLostError, fit_across_workers

__all__ = ["run", "run_directory", "has_tensorboard", "longest_caption", "training_inputs", "EVAL_BATCH_SIZE",
           "SAMPLE_CLIPS"]

EVAL_BATCH_SIZE = 64
SAMPLE_CLIPS = 4  # validation clips whose captions and attention maps go to TensorBoard


def has_tensorboard():
    """Whether the `tensorboard` package (which tf.summary writes through) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def longest_caption(source):
    """The most ids of one caption (with <eos>) in a TFRecord source: reads the caption lengths only."""
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

    def fixed(ids):
        ids = ids[:, :caption_width]
        ids = tf.pad(ids, [[0, 0], [0, caption_width - tf.shape(ids)[1]]])
        return tf.ensure_shape(ids, [None, caption_width])

    def select(inputs, targets):
        return (dict(evaluation.model_inputs(inputs, fields, attributes_as), caption_in=fixed(inputs["caption_in"])),
                fixed(targets))

    return select


def save_model(model, path):
    """`model.save(path)` through a temporary file, as an inference model (no optimizer or loss in the file, so
    `keras.models.load_model` needs nothing but `import audiocaps_tf`)."""
    compiled = model.compiled
    model.compiled = False
    try:
        with atomic_path(path, keep_suffix=True) as temporary:
            model.save(temporary)
    finally:
        model.compiled = compiled


def load_vggish(model, config):
    vggish = getattr(model, "vggish", None)
    if vggish is None:
        return
    print(f"loading VGGish weights from {config.vggish_weights}", flush=True)
    load_vggish_weights(vggish, config.vggish_weights)


def write_scalars(scores, prefix):
    """The finite scores as TensorBoard scalars `<prefix><name>` (inside a writer's `as_default`)."""
    for name, value in scores.items():
        if value is not None and not name.endswith("num_clips") and math.isfinite(value):
            tf.summary.scalar(f"{prefix}{name}", value)


def _print_scores(title, scores):
    print(title)
    print(metrics.format_table(scores))


def _write_test_summaries(log_dir, scores, rows):
    if not has_tensorboard():
        return
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default(step=0):
        write_scalars(scores, "test_")
        tf.summary.text("test_captions", captions_markdown(rows[:SAMPLE_CLIPS]))
    writer.flush()


def _decoding_name(beam_size=1, no_repeat_ngram_size=0):
    """How a split is decoded, for the log: "greedy", "beam 3", "greedy, no repeated 3-gram"."""
    name = "greedy" if beam_size == 1 else f"beam {beam_size}"
    return name + (f", no repeated {no_repeat_ngram_size}-gram" if no_repeat_ngram_size else "")


def score_sets(model, sources, fields, beam_size=1, no_repeat_ngram_size=None, samples=0, spice=False):
    """(scores, {dataset: rows}, samples) of a split: `sources` is {dataset name: source} ({None: source} for one
    dataset); the scores are `datasets.combined_scores` (`spice` as `evaluation.score_rows` takes it), the
    samples the first dataset's."""
    rows, scores, first_samples = {}, {}, None
    for name, source in sources.items():
        dataset = evaluation_dataset(source, fields, batch_size=EVAL_BATCH_SIZE)
        rows[name], shown = evaluation.caption_split(model, dataset, fields, beam_size=beam_size, samples=samples,
                                                     no_repeat_ngram_size=no_repeat_ngram_size)
        first_samples = shown if first_samples is None else first_samples
        scores[name] = evaluation.score_rows(rows[name], spice=spice)
    return combined_scores(scores), rows, first_samples


def _predictions_file(name):
    """test_predictions.csv, or test_predictions_<dataset>.csv for each of several datasets."""
    if name is None:
        return run_dir_lib.PREDICTIONS_FILE
    stem, suffix = run_dir_lib.PREDICTIONS_FILE.rsplit(".", 1)
    return f"{stem}_{name}.{suffix}"


def _print_dataset_scores(title, scores, names):
    _print_scores(title + ("" if names == [None] else " (mean over the datasets)"), scores)
    for name in names:
        if name is not None:
            _print_scores(f"  {name}:", dataset_scores(scores, name))


def finish(run_dir, state, model, test_sources, fields, config):
    """Decodes the test split(s) with the final model and writes metrics.json and test_predictions.csv (one per
    dataset for several); `test_sources` is {dataset name or None: source}."""
    beam, no_repeat = model.resolve_beam(config.beam_size), model.resolve_no_repeat(config.no_repeat_ngram_size)
    averaged = state.get("averaging")
    used_average = bool(averaged) and averaged["used"] == "averaged"
    val_scores = averaged["val_averaged"] if used_average else state["best"]["val"]
    print(f"captioning the test split ({_decoding_name(beam, no_repeat)}) ...", flush=True)
    test_scores, rows, _ = score_sets(model, test_sources, fields, beam_size=beam, no_repeat_ngram_size=no_repeat,
                                      spice=None)
    for name, dataset_rows in rows.items():
        run_dir_lib.write_text_atomically(run_dir / _predictions_file(name), evaluation.predictions_csv(dataset_rows))
    run_dir_lib.write_json_atomically(run_dir / run_dir_lib.METRICS_FILE,
                                      {"val": val_scores, "test": test_scores,
                                       **({"averaging": averaged} if averaged else {})})
    all_rows = [row for dataset_rows in rows.values() for row in dataset_rows]
    _write_test_summaries(run_dir / run_dir_lib.LOGS_DIR / "test", test_scores, all_rows)
    state["status"] = "complete"
    state["test"] = test_scores
    run_dir_lib.write_state(run_dir, state)
    best = state.get("best") or {}
    validated = (f"average of periods {', '.join(map(str, averaged['periods']))}" if used_average else
                 f"best, epoch {best.get('epoch', 0):g}")
    print()
    names = list(test_sources)
    _print_dataset_scores(f"validation ({validated}, {_decoding_name(1, no_repeat)}):", val_scores, names)
    _print_dataset_scores(f"test ({len(all_rows)} clips, {_decoding_name(beam, no_repeat)}):", test_scores, names)
    print(f"\nmodel: {run_dir / run_dir_lib.BEST_MODEL_FILE}\nscores: {run_dir / run_dir_lib.METRICS_FILE}\n"
          f"captions: {', '.join(str(run_dir / _predictions_file(name)) for name in names)}\nTensorBoard: "
          f"tensorboard --logdir {run_dir / run_dir_lib.LOGS_DIR}")
    return test_scores


def _fit_retrieval(run_dir, state, spec, config, vocabulary, sources, fields):
    """1NN models: index the train clips' pooled features and first captions, then score val and test."""
    best_path = run_dir / run_dir_lib.BEST_MODEL_FILE
    if state.get("status") == "testing" and best_path.is_file():  # killed while scoring the test split
        return finish(run_dir, state, keras.models.load_model(best_path), sources["test"], fields, config)
    model = build_captioner(spec.name, vocabulary, **config.model_overrides)
    load_vggish(model, config)
    index_training_clips(model, sources["train"], fields)
    print(f"indexed {model.caption_index.size} training clips", flush=True)
    scores, _, samples = score_sets(model, sources["val"], fields, samples=SAMPLE_CLIPS)
    save_model(model, best_path)
    entry = {"period": 1, "epoch": 0, "step": 0, "loss": None, "learning_rate": None, "val": scores}
    state.update(status="testing", history=[entry], best=entry)
    run_dir_lib.write_state(run_dir, state)
    if has_tensorboard():
        writer = tf.summary.create_file_writer(str(run_dir / run_dir_lib.LOGS_DIR / "validation"))
        with writer.as_default(step=0):
            write_scalars(scores, "epoch_")
            tf.summary.text("captions", captions_markdown(samples))
        writer.flush()
    return finish(run_dir, state, model, sources["test"], fields, config)


def _attribute_vocabulary(tables):
    """The attribute words of the training clips, most frequent first."""
    counts = collections.Counter(word for words in tables["train"]["attributes"] for word in words)
    vocabulary = sorted(counts, key=lambda word: (-counts[word], word))
    if not vocabulary:
        raise FitError("the training clips have no attribute words (no labels column and no caption keywords)")
    return vocabulary


def _set_up_attributes(model, sources, tables, fields):
    """Semantic models: `model.set_up_attributes` with the splits' pooled fc2 features; returns the sources to read
    (with the 1NN variant, each split's clips carry the attribute words the model gave them)."""
    needed = sources if model.attributes == "1nn" else {"train": sources["train"]}
    pooled = {split: clip_pooled_features(model, source, fields, field="vggish_fc2", batch_size=EVAL_BATCH_SIZE)
              for split, source in needed.items()}
    train_keys, train_fc2 = pooled["train"]
    own = dict(zip(tables["train"]["key"], tables["train"]["attributes"]))
    words = model.set_up_attributes(train_fc2, [own[key] for key in train_keys],
                                    {split: features for split, (_, features) in pooled.items()})
    return {split: AttributeOverride(source, dict(zip(pooled[split][0], words[split]))) if split in words else source
            for split, source in sources.items()}


def _backed_up_periods(backup_dir):
    """Periods the BackupAndRestore checkpoint in `backup_dir` holds (0 without one)."""
    try:
        return int(json.loads((backup_dir / "training_metadata.json").read_text()).get("epoch", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def _fields(spec, config):
    if config.vggish_trainable:
        return ("waveform",)  # the model computes its VGGish features (and their gradients) itself
    return tuple(spec.features)


def _verbose():
    return 1 if sys.stdout.isatty() else 2


def run_directory(config, out=None, resume=False):
    """The run directory: `out`, or for a new run runs/<model>-<YYYYmmdd-HHMMSS>; `resume` needs `out`."""
    if resume and out is None:
        raise FitError("--resume needs --out RUN_DIR (the run to continue)")
    return pathlib.Path(out if out is not None else run_dir_lib.default_run_dir(config.model))


def _open_run(config, given, out, resume):
    """(run directory, FitConfig of the run, state, strategy); creates or reopens the directory."""
    if out is None and config.strategy == "multiworker":
        raise FitError("--strategy multiworker needs --out RUN_DIR, the same on every worker (a default name "
                       "has the time each worker started)")
    run_dir = run_directory(config, out, resume)
    # The strategy first: a multi-worker non-chief task keeps its own state under RUN_DIR/workers/<index>.
    strategy_name = config.strategy
    if resume and "strategy" not in given and (run_dir / run_dir_lib.CONFIG_FILE).is_file():
        strategy_name = run_dir_lib.read_config(run_dir).get("strategy", "auto")
    strategy = make_strategy(strategy_name)
    if not is_chief(strategy):
        run_dir = run_dir / run_dir_lib.WORKERS_DIR / str(worker_index())
    # What a run did before an option existed: the option's default (`FitConfig`'s new options are off by default).
    defaults = {field.name: field.default for field in dataclasses.fields(FitConfig)
                if FitConfig.option_of(field) == field.name and field.default is not dataclasses.MISSING}
    options, resumed = run_dir_lib.open_run_dir(run_dir, config.to_json(), resume=resume, given=given,
                                                defaults=defaults)
    config = FitConfig.from_json(options)
    print(f"{'resuming' if resumed else 'new'} run of {config.model} in {run_dir}; {describe(strategy)}", flush=True)
    return run_dir, config, run_dir_lib.read_state(run_dir), strategy


def _open_data(run_dir, config, fields, workers, save_tokenizer=True):
    """({"train": TFRecordSource, "val": {dataset: source}, "test": {dataset: source}}, caption vocabulary) of the
    run's data, prepared first when needed. One dataset is named None; several, by their directories' names, and
    their train splits are read as one source."""
    paths = prepared_directory(config.data, fields, run_dir, vggish_weights=config.vggish_weights, workers=workers,
                               max_seconds=config.clip_seconds_limit)
    paths = paths if isinstance(paths, dict) else {None: paths}
    sources = {"train": TFRecordSource(list(paths.values()), "train")}
    for split in ("val", "test"):
        sources[split] = {name: TFRecordSource(path, split) for name, path in paths.items()}
    for source in [sources["train"], *sources["val"].values(), *sources["test"].values()]:
        try:
            source.resolve_fields(fields)
        except ValueError as err:
            raise FitError(f"{err}: {config.model} reads {', '.join(fields)}") from None
    vocabulary = sources["train"].vocabulary
    if save_tokenizer and not (run_dir / run_dir_lib.TOKENIZER_DIR).exists():
        vocabulary.save(run_dir / run_dir_lib.TOKENIZER_DIR)
    return sources, vocabulary


def run(config, given=None, out=None, resume=False, workers=None, callbacks=None):
    """Runs `fit` for the FitConfig `config`; returns the exit status.

    Args:
        given: names of the config.json options the user set explicitly (`FitConfig.from_args`); with `resume`
            only those are compared with the run's, and --strategy is the run's unless given.
        out: the run directory (`run_directory`). resume: continue the unfinished run in `out` with its options.
        workers: processes preparing data (None: one per CPU). callbacks: appended to Keras' (tests).
    """
    given = set(given or ())
    run_dir, config, state, strategy = _open_run(config, given, out, resume)
    spec = get_spec(config.model)
    fields = _fields(spec, config)
    sources, vocabulary = _open_data(run_dir, config, fields, workers, save_tokenizer=is_chief(strategy))
    if spec.is_retrieval:
        if not is_chief(strategy):  # a 1NN index is built by one process: the chief
            print(f"{config.model} trains nothing: the chief worker builds its index; this worker is done")
            return 0
        _fit_retrieval(run_dir, state, spec, config, vocabulary, sources, fields)
        return 0

    keras.utils.set_random_seed(config.seed)
    hyper = resolve_hyper_parameters(config.model_overrides, config.model)
    flat = {"train": sources["train"], "val": sources["val"].get(None), "test": sources["test"].get(None)}
    tables = {split: clip_table(source) for split, source in flat.items()} if spec.uses_attributes else None
    # Mixup joins two captions and a connective word (`data.mixup`): up to twice the longest caption's ids.
    caption_width = min(hyper["max_caption_length"], longest_caption(sources["train"]) * (2 if config.mixup else 1))
    batch_size = config.batch_size or default_batch_size(caption_count(sources["train"]))
    global_batch = batch_size * strategy.num_replicas_in_sync
    full_epoch_steps = steps_per_epoch(sources["train"], global_batch)
    steps_per_period = max(1, round(full_epoch_steps * config.validation_frequency))
    periods = max(1, math.ceil(config.epochs * full_epoch_steps / steps_per_period - 1e-9))
    backup_dir = run_dir / run_dir_lib.BACKUP_DIR

    with strategy.scope():
        model = build_captioner(spec.name, vocabulary,
                                attribute_vocabulary=_attribute_vocabulary(tables) if tables else None,
                                attributes=config.attributes, vggish_trainable=config.vggish_trainable,
                                **config.model_overrides)
        load_vggish(model, config)
        if spec.uses_attributes:
            flat = _set_up_attributes(model, flat, tables, fields)
            sources = {"train": flat["train"], "val": {None: flat["val"]}, "test": {None: flat["test"]}}
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clip_norm, **ADAM),
            loss=MaskedSmoothedCrossEntropy(config.label_smoothing),
        )
        # A resumed run's data starts at the data epoch its backup is in.
        first_epoch = _backed_up_periods(backup_dir) * steps_per_period // full_epoch_steps
        train_dataset = training_stream(
            sources["train"], fields, global_batch, seed=config.seed, first_epoch=first_epoch,
            epochs=math.ceil(periods * steps_per_period / full_epoch_steps) - first_epoch,
            max_caption_length=hyper["max_caption_length"], mixup=config.mixup, vocabulary=vocabulary,
        ).map(training_inputs(fields, evaluation.attribute_key(model), caption_width))

    def validate(current):
        scores, _, samples = score_sets(current, sources["val"], fields, samples=SAMPLE_CLIPS,
                                        no_repeat_ngram_size=config.no_repeat_ngram_size)
        return scores, samples

    best_path = run_dir / run_dir_lib.BEST_MODEL_FILE
    log_dir = run_dir / run_dir_lib.LOGS_DIR
    tensorboard = has_tensorboard() and is_chief(strategy)  # other workers keep only what resuming needs
    if not tensorboard and is_chief(strategy):
        print("warning: the tensorboard package is not installed: no TensorBoard logs (pip install tensorboard)",
              file=sys.stderr)
    if state.get("status") not in ("testing", "complete") and not state.get("stopped_early"):
        state.update(replicas=strategy.num_replicas_in_sync, batch_size=batch_size, global_batch=global_batch,
                     caption_width=caption_width)
        run_dir_lib.write_state(run_dir, state)
        keras_callbacks = [
            ValidationCallback(  # before the backup: a period's state is on disk before its backup
                run_dir, validate, lambda current: save_model(current, best_path), steps_per_period,
                epochs_per_period=steps_per_period / full_epoch_steps, patience=config.patience or None,
                lr_patience=config.lr_patience or None, min_learning_rate=config.min_learning_rate,
                log_dir=log_dir / "validation" if tensorboard else None, is_chief=is_chief(strategy),
            ),
            # After the validation (it reads state.json's history), before the backup (module doc of averaging).
            *([averaging.CheckpointKeeper(run_dir, config.average_checkpoints, config.average_checkpoints_of)]
              if config.average_checkpoints and is_chief(strategy) else []),
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
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                try:
                    fit_across_workers(model, train_dataset, periods, steps_per_period, keras_callbacks, _verbose())
                except WorkerLostError as err:
                    raise FitError(str(err)) from None
            else:
                model.fit(train_dataset, epochs=periods, steps_per_epoch=steps_per_period,
                          callbacks=keras_callbacks, verbose=_verbose())
        state = run_dir_lib.read_state(run_dir)
        state["train_seconds"] = state.get("train_seconds", 0.0) + (time.monotonic() - started)
        state["status"] = "testing"
        run_dir_lib.write_state(run_dir, state)
    shutil.rmtree(backup_dir, ignore_errors=True)
    if not is_chief(strategy):
        return 0
    if not best_path.is_file() and not state.get("averaging"):  # (a promoted average may be mid-move)
        raise FitError(f"{best_path} was not written: no validation produced a CIDEr score")
    if config.average_checkpoints:
        averaging.choose_final_model(run_dir, state, config.average_checkpoints, config.average_checkpoints_of,
                                     validate, save_model)
    finish(run_dir, state, keras.models.load_model(best_path), sources["test"], fields, config)
    return 0
