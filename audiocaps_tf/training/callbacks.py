"""Keras callbacks of `fit`: validation by greedy decoding, best-model saving, learning-rate decay, early stopping.

`ValidationCallback` runs at the end of every Keras epoch of `fit` (a *validation period*: one epoch of the data,
or a fraction of one with `--validation-frequency`). It

1. captions the validation split (greedy decoding) and scores it with the evaluation metrics (no SPICE);
2. adds the scores to Keras' logs as `val_<metric>`, where History and a `keras.callbacks.TensorBoard` placed
   after it see them (TensorBoard writes them as `epoch_<metric>` scalars under `logs/validation`), and writes
   sample captions (a Markdown table), the learning rate and the decoder's attention maps (one image per
   sample clip and memory) to TensorBoard under `log_dir`;
3. saves the model to RUN_DIR/best.keras when the validation CIDEr is the best so far;
4. halves the learning rate (down to `min_learning_rate`) after `lr_patience` validations without improvement
   since the best (or the last decay), and stops training after `patience` validations without improvement;
5. writes all of it to RUN_DIR/state.json.

Resuming: the callback must come *before* `keras.callbacks.BackupAndRestore` in the callback list, so that the
state of a period is on disk before that period's backup is. A run killed between the two repeats the period;
its first `on_epoch_begin` then drops the history entries of periods the backup does not hold, so every entry
describes a model the run went through. The best score and the early-stopping counters live in state.json,
not in the callback, so they survive the restart (Keras' own EarlyStopping keeps them in memory only).
"""

import keras
import numpy as np
import tensorflow as tf

from audiocaps_tf.training import run_dir as run_dir_lib

__all__ = ["MONITOR", "ValidationCallback", "attention_image", "captions_markdown"]

MONITOR = "CIDEr"


def attention_image(weights, scale=4):
    """A [1, H, W, 1] float image of attention weights [L, T] (caption steps down, memory steps across), each
    row scaled to its maximum, rows repeated `scale` times so short captions stay visible."""
    weights = np.asarray(weights, np.float32)
    if weights.ndim != 2 or weights.size == 0:
        weights = np.zeros([1, 1], np.float32)
    peak = weights.max(axis=1, keepdims=True)
    image = np.where(peak > 0, weights / np.where(peak > 0, peak, 1.0), 0.0)
    image = np.repeat(image, scale, axis=0)
    return image[None, :, :, None]


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def captions_markdown(samples):
    """A Markdown table: clip, generated caption, first reference."""
    lines = ["| clip | generated | reference |", "|---|---|---|"]
    for sample in samples:
        reference = sample["references"][0] if sample["references"] else ""
        lines.append(f"| {_cell(sample['key'])} | {_cell(sample['caption'])} | {_cell(reference)} |")
    return "\n".join(lines)


class ValidationCallback(keras.callbacks.Callback):
    """See the module docstring.

    Args:
        run_dir: the run directory (state.json is read and written there).
        validate: `validate(model) -> (scores, samples)`: scores {metric: value} of the validation split,
            samples as `evaluation.caption_split` returns them.
        save_best: `save_best(model)` writes RUN_DIR/best.keras.
        steps_per_period: training steps per Keras epoch (for the step count in state.json).
        epochs_per_period: data epochs per Keras epoch (1.0, or the --validation-frequency fraction).
        patience: validations without a better CIDEr before training stops (None: never).
        lr_patience, lr_factor, min_learning_rate: learning-rate decay on plateau (lr_patience None: off).
        log_dir: TensorBoard directory for the validation summaries (None: no TensorBoard output).
        is_chief: False on multi-worker non-chief tasks (they validate too, but write nothing but their state).
    """

    def __init__(self, run_dir, validate, save_best, steps_per_period, epochs_per_period=1.0, patience=None,
                 lr_patience=None, lr_factor=0.5, min_learning_rate=0.0, log_dir=None, is_chief=True):
        super().__init__()
        self.run_dir = run_dir
        self.validate = validate
        self.save_best = save_best
        self.steps_per_period = int(steps_per_period)
        self.epochs_per_period = float(epochs_per_period)
        self.patience = patience
        self.lr_patience = lr_patience
        self.lr_factor = float(lr_factor)
        self.min_learning_rate = float(min_learning_rate)
        self.log_dir = log_dir
        self.is_chief = is_chief
        self.state = run_dir_lib.read_state(run_dir)
        self._writer = None
        self._started = False

    # --- state -------------------------------------------------------------------------------------------
    def _save_state(self):
        run_dir_lib.write_state(self.run_dir, self.state)

    @property
    def history(self):
        return self.state.setdefault("history", [])

    def _validations_since(self, period):
        return sum(1 for entry in self.history if entry["period"] > period)

    def _learning_rate(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    # --- Keras hooks ---------------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self.state["status"] = "training"
        self._started = False
        if self.log_dir is not None and self.is_chief and self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_begin(self, epoch, logs=None):
        if self._started:
            return
        self._started = True
        # The first period of this fit call: anything recorded from `epoch` on belongs to a period the backup
        # does not hold (the run was killed after writing the state and before the backup).
        kept = [entry for entry in self.history if entry["period"] <= epoch]
        if len(kept) != len(self.history):
            self.state["history"] = kept
            self._save_state()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        period = epoch + 1
        scores, samples = self.validate(self.model)
        learning_rate = self._learning_rate()
        entry = {
            "period": period,
            "epoch": round(period * self.epochs_per_period, 6),
            "step": period * self.steps_per_period,
            "loss": None if logs.get("loss") is None else float(logs["loss"]),
            "learning_rate": learning_rate,
            "val": scores,
        }
        self.state["history"] = [e for e in self.history if e["period"] < period] + [entry]
        logs.update({f"val_{name}": value for name, value in scores.items()
                     if value is not None and not name.endswith("num_clips")})

        best = self.state.get("best")
        value = scores.get(MONITOR)
        improved = value is not None and (best is None or value > best["val"][MONITOR])
        if improved:
            if self.is_chief:
                self.save_best(self.model)
            self.state["best"] = entry
            best = entry
        waited = self._validations_since(best["period"]) if best else len(self.history)

        if self.lr_patience and learning_rate is not None and not improved:
            since = max(best["period"] if best else 0, self.state.get("lr_decayed_at", 0))
            if self._validations_since(since) >= self.lr_patience and learning_rate > self.min_learning_rate:
                new_rate = max(learning_rate * self.lr_factor, self.min_learning_rate)
                self.model.optimizer.learning_rate = new_rate
                self.state["lr_decayed_at"] = period
                print(f"\nvalidation {MONITOR} has not improved for {waited} validation(s): "
                      f"learning rate {learning_rate:g} -> {new_rate:g}", flush=True)
        if self.patience is not None and waited >= self.patience:
            self.model.stop_training = True
            self.state["stopped_early"] = True
            print(f"\nearly stopping: validation {MONITOR} has not improved for {waited} validation(s) "
                  f"(best {best['val'][MONITOR]:.2f} at epoch {best['epoch']:g})" if best else
                  f"\nearly stopping after {waited} validation(s) without a score", flush=True)

        self._summaries(epoch, scores, samples, learning_rate)
        self._save_state()
        shown = " - ".join(f"val_{name}: {scores[name]:.2f}" for name in ("BLEU_4", "METEOR", "CIDEr")
                           if scores.get(name) is not None)
        print(f"\nvalidation at epoch {entry['epoch']:g}: {shown}" + (" (best so far)" if improved else ""),
              flush=True)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    # --- TensorBoard ---------------------------------------------------------------------------------------
    def _summaries(self, epoch, scores, samples, learning_rate):
        if self._writer is None:
            return
        with self._writer.as_default(step=epoch):
            if learning_rate is not None:
                tf.summary.scalar("learning_rate", learning_rate)
            if samples:
                tf.summary.text("captions", captions_markdown(samples))
            for k, sample in enumerate(samples):
                for i, weights in enumerate(sample.get("attention") or []):
                    tf.summary.image(f"attention/memory{i}/clip{k}", attention_image(weights),
                                     description=f"{sample['key']}: {sample['caption']}")
        self._writer.flush()
