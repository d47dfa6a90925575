"""Checkpoint averaging of `fit --average-checkpoints K`: keep K validated checkpoints, average their weights, and
make the average the final model when it validates at least as well as the best single checkpoint.

    CheckpointKeeper(run_dir, count, of)   a callback: RUN_DIR/checkpoints/period-NNNN.npz after every validation,
                                           pruned to the K that `kept_periods` names
    kept_periods(history, count, of)       "best": the K periods with the best validation CIDEr; "last": the last K
    average_checkpoints(model, paths)      sets the averaged variables of `model` to their mean over the files
    choose_final_model(...)                after training: averages, validates, records and places the final model

The average of checkpoints w_1 .. w_K is, variable by variable, w = (w_1 + ... + w_K) / K (in float64, then
the variable's dtype). Averaged variables (`averaged_indices`): the float variables that training moves, i.e. the
trainable ones and the moving statistics of BatchNormalization layers. Everything else (frozen VGGish weights, the
semantic models' attribute index, integer state; the vocabulary is config) keeps the best checkpoint's values: the
average starts from RUN_DIR/best.keras. A checkpoint file holds only the averaged variables, as float arrays keyed by their index in
`model.weights` (an .npz archive: `numpy.load` reads it), so frozen VGGish weights are not written K times.

Pruning and resuming: the checkpoint of a period is written before that period's BackupAndRestore backup, and
files are pruned only when a period begins or training ends, that is once state.json's history matches the
backup. A run killed mid-period repeats that period and overwrites its checkpoint; the K kept ones survive. While a
period trains, K + 1 files may exist. Only files named period-<N>.npz (and their .partial leftovers) are ever
removed.

The final model (`choose_final_model`): with at least two kept checkpoints, their average is saved as
RUN_DIR/averaged.keras and validated like every checkpoint. If its validation CIDEr is at least the best single
checkpoint's, it becomes RUN_DIR/best.keras (the model `caption --model RUN_DIR` and `export` use) and the best
single checkpoint is kept as RUN_DIR/best_checkpoint.keras; otherwise best.keras stays and averaged.keras is left
for inspection. The choice and both validation scores go to state.json (and metrics.json) as "averaging".
"""

import os
import re

import keras
import numpy as np

from audiocaps_tf.files import PARTIAL_SUFFIX, atomic_path, place_without_overwrite
from audiocaps_tf.training import run_dir as run_dir_lib
from audiocaps_tf.training.callbacks import MONITOR
from audiocaps_tf.training.config import FitError

__all__ = ["CheckpointKeeper", "averaged_indices", "average_checkpoints", "checkpoint_path",
           "choose_final_model", "kept_periods", "prune_checkpoints", "save_checkpoint"]

_CHECKPOINT = re.compile(r"period-(\d+)\.npz(" + re.escape(PARTIAL_SUFFIX) + r")?")


def checkpoint_path(run_dir, period):
    """RUN_DIR/checkpoints/period-NNNN.npz: the averaged variables after validation period `period`."""
    return run_dir / run_dir_lib.CHECKPOINTS_DIR / f"period-{int(period):04d}.npz"


def averaged_indices(model):
    """Indices in `model.weights` of the variables averaging averages (module docstring)."""
    # `_flatten_layers`: every layer inside the model, nested ones too (Keras has no public walk).
    moving = {id(variable) for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)
              for variable in (layer.moving_mean, layer.moving_variance) if variable is not None}
    trainable = {id(variable) for variable in model.trainable_weights}
    return [i for i, variable in enumerate(model.weights)
            if (id(variable) in trainable or id(variable) in moving) and keras.backend.is_float_dtype(variable.dtype)]


def save_checkpoint(model, path):
    """Writes the averaged variables of `model` to `path` (an .npz archive), atomically."""
    weights = model.weights
    arrays = {str(i): keras.ops.convert_to_numpy(weights[i]) for i in averaged_indices(model)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as f:
            np.savez(f, **arrays)


def kept_periods(history, count, of):
    """The periods (ascending) of state.json `history` whose checkpoints averaging keeps: "best": the `count` with
    the highest validation CIDEr (ties: the earlier; unscored periods never), "last": the last `count`."""
    if of == "last":
        periods = [entry["period"] for entry in history][-count:]
    else:
        scored = [entry for entry in history if entry["val"].get(MONITOR) is not None]
        ranked = sorted(scored, key=lambda entry: (-entry["val"][MONITOR], entry["period"]))
        periods = [entry["period"] for entry in ranked[:count]]
    return sorted(periods)


def prune_checkpoints(run_dir, keep):
    """Removes the checkpoint files of RUN_DIR/checkpoints whose period is not in `keep`, and .partial leftovers;
    any other file there is left alone."""
    directory = run_dir / run_dir_lib.CHECKPOINTS_DIR
    if not directory.is_dir():
        return
    keep = {int(period) for period in keep}
    for path in directory.iterdir():
        match = _CHECKPOINT.fullmatch(path.name)
        if match and (match.group(2) or int(match.group(1)) not in keep):
            path.unlink(missing_ok=True)


def average_checkpoints(model, paths):
    """Sets every averaged variable of `model` to the mean of its values in the checkpoint files `paths` (computed
    in float64); the other variables keep their values. A FitError if a file does not fit the model."""
    weights = model.weights
    indices = averaged_indices(model)
    archives = [np.load(path) for path in paths]  # read one array at a time
    try:
        for path, archive in zip(paths, archives):
            if set(archive.files) != {str(i) for i in indices}:
                raise FitError(f"{path} does not hold the averaged weights of this {type(model).__name__}")
        for i in indices:
            values = [archive[str(i)] for archive in archives]
            if any(value.shape != tuple(weights[i].shape) for value in values):
                raise FitError(f"{weights[i].path}: the checkpoints' shapes {[v.shape for v in values]} are not "
                                 f"the model's {tuple(weights[i].shape)}")
            weights[i].assign(np.mean(values, axis=0, dtype=np.float64).astype(values[0].dtype))
    finally:
        for archive in archives:
            archive.close()


class CheckpointKeeper(keras.callbacks.Callback):
    """Keeps the checkpoints averaging needs (module docstring). Place it after `ValidationCallback` (it reads the
    history that callback writes to state.json) and before `keras.callbacks.BackupAndRestore`."""

    def __init__(self, run_dir, count, of="best"):
        super().__init__()
        self.run_dir = run_dir
        self.count = int(count)
        self.of = of

    def _prune(self):
        history = run_dir_lib.read_state(self.run_dir).get("history", [])
        prune_checkpoints(self.run_dir, kept_periods(history, self.count, self.of))

    def on_epoch_begin(self, epoch, logs=None):
        self._prune()

    def on_epoch_end(self, epoch, logs=None):
        save_checkpoint(self.model, checkpoint_path(self.run_dir, epoch + 1))

    def on_train_end(self, logs=None):
        self._prune()


def _promote_averaged(run_dir):
    """averaged.keras -> best.keras, the best single checkpoint's best.keras -> best_checkpoint.keras; each step
    can be repeated after an interruption, and nothing that is not this run's is replaced."""
    averaged = run_dir / run_dir_lib.AVERAGED_MODEL_FILE
    best = run_dir / run_dir_lib.BEST_MODEL_FILE
    single = run_dir / run_dir_lib.BEST_CHECKPOINT_FILE
    if not averaged.is_file():
        return  # done already
    if best.is_file():
        if single.exists():
            if not os.path.samefile(best, single):  # not the link an interrupted move leaves
                raise FitError(f"{single} exists: not replacing it with {best}")
            best.unlink()
        elif not place_without_overwrite(best, single):
            raise FitError(f"{single} appeared meanwhile: not replacing it with {best}")
    os.replace(averaged, best)


def _periods_text(periods):
    return ", ".join(str(period) for period in periods)


def choose_final_model(run_dir, state, count, of, validate, save_model):
    """After training: averages the kept checkpoints, validates the average and makes RUN_DIR/best.keras the
    final model (module docstring); returns the "averaging" record it adds to `state` (and state.json).

    Args:
        validate: `validate(model) -> (scores, samples)`, the validation of the checkpoints.
        save_model: `save_model(model, path)` writes a .keras file atomically.
    A run resumed after this step (killed while testing) reuses the record.
    """
    record = state.get("averaging")
    if record is None:
        periods = kept_periods(state["history"], count, of)
        prune_checkpoints(run_dir, periods)
        best = state["best"]
        record = {"checkpoints": count, "of": of, "periods": periods, "best_period": best["period"],
                  "used": "best", "val_best": best["val"], "val_averaged": None}
        if len(periods) >= 2:
            missing = [str(checkpoint_path(run_dir, p)) for p in periods if not checkpoint_path(run_dir, p).is_file()]
            if missing:
                raise FitError(f"--average-checkpoints: the checkpoints {', '.join(missing)} are missing")
            print(f"averaging the weights of the {of} {len(periods)} checkpoint(s) (periods {_periods_text(periods)})"
                  " ...", flush=True)
            model = keras.models.load_model(run_dir / run_dir_lib.BEST_MODEL_FILE)
            average_checkpoints(model, [checkpoint_path(run_dir, p) for p in periods])
            save_model(model, run_dir / run_dir_lib.AVERAGED_MODEL_FILE)
            scores, _ = validate(model)
            averaged, single = scores.get(MONITOR), best["val"][MONITOR]
            record.update(val_averaged=scores,
                          used="averaged" if averaged is not None and averaged >= single else "best")
        state["averaging"] = record
        run_dir_lib.write_state(run_dir, state)
    if record["used"] == "averaged":
        _promote_averaged(run_dir)
    print(_decision(run_dir, record), flush=True)
    return record


def _decision(run_dir, record):
    """The log line of the choice."""
    single = record["val_best"][MONITOR]
    if record["val_averaged"] is None:
        return (f"checkpoint averaging: {len(record['periods'])} checkpoint(s) kept, nothing to average: testing "
                f"the best checkpoint (period {record['best_period']}, validation {MONITOR} {single:.2f})")
    averaged = record["val_averaged"].get(MONITOR)
    shown = "none" if averaged is None else f"{averaged:.2f}"
    compared = (f"validation {MONITOR} {shown} averaged (periods {_periods_text(record['periods'])}) vs "
                f"{single:.2f} for the best checkpoint (period {record['best_period']})")
    if record["used"] == "averaged":
        return (f"checkpoint averaging: {compared}: testing the averaged model, now "
                f"{run_dir / run_dir_lib.BEST_MODEL_FILE} (the best checkpoint: "
                f"{run_dir / run_dir_lib.BEST_CHECKPOINT_FILE})")
    return (f"checkpoint averaging: {compared}: testing the best checkpoint "
            f"({run_dir / run_dir_lib.BEST_MODEL_FILE}; the average: {run_dir / run_dir_lib.AVERAGED_MODEL_FILE})")
