"""The run directory of `python -m audiocaps_tf.fit`: what it holds, and when a run may (not) use it.

    RUN_DIR/config.json            every option of the run (written first: it marks the directory as a run)
    RUN_DIR/state.json             progress: status, every validation (step, epoch, loss, scores), the best one,
                                   the learning rate, early stopping; rewritten atomically after each validation
    RUN_DIR/tokenizer/             the caption vocabulary (`load_vocabulary`)
    RUN_DIR/best.keras             the model with the best validation CIDEr (`keras.models.load_model`), the one
                                   the test split is scored with
    RUN_DIR/checkpoints/           --average-checkpoints K: the K checkpoints it averages (`training/averaging.py`)
    RUN_DIR/averaged.keras         their average; if it validated at least as well as the best checkpoint, it is
                                   best.keras instead, and the best checkpoint is RUN_DIR/best_checkpoint.keras
    RUN_DIR/backup/                Keras BackupAndRestore checkpoint (weights, optimizer, epoch) while training
    RUN_DIR/logs/                  TensorBoard: train/ (losses), validation/ (scores, captions, attention maps)
    RUN_DIR/metrics.json           {"val": scores of the best model, "test": test scores}, and "averaging" (the
                                   choice and both validation scores) with --average-checkpoints
    RUN_DIR/test_predictions.csv   youtube_id,start_time,caption: one row per test clip
    RUN_DIR/data/                  features prepared from --data-dir (`prepare`), when that was the data
    RUN_DIR/workers/<index>/       --strategy multiworker, the workers that are not the chief: each one's
                                   config.json and state.json (and backup/ while training), which resuming needs

A directory is used when it does not exist, is empty, or holds an unfinished run (`state.json` status is not
"complete") whose config.json equals the new run's options (those in `RESUMABLE_CHANGES` may differ): that run
is resumed. An option missing from an older run's config.json counts as its default (`open_run_dir`'s
`defaults`: what the run did before the option existed). Anything else (a finished run, a run with other options,
files that are not a run) is refused: a run directory is never overwritten.
"""

import datetime
import json
import pathlib

import audiocaps_tf
from audiocaps_tf.files import write_text_atomically

__all__ = [
    "CONFIG_FILE",
    "STATE_FILE",
    "TOKENIZER_DIR",
    "WORKERS_DIR",
    "BEST_MODEL_FILE",
    "BEST_CHECKPOINT_FILE",
    "AVERAGED_MODEL_FILE",
    "CHECKPOINTS_DIR",
    "BACKUP_DIR",
    "LOGS_DIR",
    "METRICS_FILE",
    "PREDICTIONS_FILE",
    "DATA_DIR",
    "CONFIG_FORMAT",
    "RESUMABLE_CHANGES",
    "RunDirError",
    "default_run_dir",
    "open_run_dir",
    "read_config",
    "read_state",
    "write_state",
    "write_json_atomically",
    "write_text_atomically",
]

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
TOKENIZER_DIR = "tokenizer"
WORKERS_DIR = "workers"
BEST_MODEL_FILE = "best.keras"
BEST_CHECKPOINT_FILE = "best_checkpoint.keras"
AVERAGED_MODEL_FILE = "averaged.keras"
CHECKPOINTS_DIR = "checkpoints"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "test_predictions.csv"
DATA_DIR = "data"
CONFIG_FORMAT = "audiocaps_tf.fit/1"
# Options a resumed run may change: where it runs, and how the splits are decoded (the test split at the end).
RESUMABLE_CHANGES = ("strategy", "beam_size", "no_repeat_ngram_size")
# Bookkeeping entries of config.json that are not options.
_NOT_OPTIONS = ("format", "version", "created")


class RunDirError(RuntimeError):
    """The run directory cannot be used for this run; the message says why and what to do."""


def default_run_dir(model, root="runs", now=None):
    """`runs/<model>-<YYYYmmdd-HHMMSS>`."""
    now = now or datetime.datetime.now()
    return pathlib.Path(root) / f"{model}-{now:%Y%m%d-%H%M%S}"


def write_json_atomically(path, data):
    write_text_atomically(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def _read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunDirError(f"{path} cannot be read ({err}); choose a new --out") from None


def read_config(run_dir):
    """The options of the run in `run_dir` (its config.json as a dict)."""
    config = _read_json(pathlib.Path(run_dir) / CONFIG_FILE)
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        raise RunDirError(f"{pathlib.Path(run_dir) / CONFIG_FILE} was not written by `audiocaps_tf.fit`; "
                          "choose a new --out")
    return config


def read_state(run_dir):
    """state.json of the run (a dict), or a fresh state when there is none yet."""
    path = pathlib.Path(run_dir) / STATE_FILE
    if not path.exists():
        return {"status": "new", "history": [], "best": None, "stopped_early": False}
    return _read_json(path)


def write_state(run_dir, state):
    write_json_atomically(pathlib.Path(run_dir) / STATE_FILE, state)


def _options(config):
    return {k: v for k, v in config.items() if k not in _NOT_OPTIONS}


def _differences(saved, options, compared):
    lines = []
    for name in compared:
        before, now = saved.get(name, "<unset>"), options.get(name, "<unset>")
        if before != now:
            lines.append(f"{name}: {json.dumps(before)} in the run, {json.dumps(now)} now")
    return lines


def open_run_dir(run_dir, options, resume=False, given=None, defaults=None):
    """Creates or reopens `run_dir` for a run with `options`; returns (options of the run, resumed).

    Args:
        options: the new run's options (JSON-serialisable dict).
        resume: `--resume`: `run_dir` must hold an unfinished run; only the options named in `given` are
            compared with it, the others are taken from its config.json.
        given: names of the options the user set explicitly (used with `resume`).
        defaults: {option: value} for options an older run's config.json may lack (it ran with these values).

    A new run writes config.json at once. Raises RunDirError when the directory cannot be used (module doc).
    """
    run_dir = pathlib.Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run directory; choose a new --out")
    if config_path.is_file():
        saved = read_config(run_dir)
        state = read_state(run_dir)
        if state.get("status") == "complete":
            raise RunDirError(f"{run_dir} holds a finished run (see {run_dir / METRICS_FILE}); it is never "
                              "overwritten: choose a new --out")
        saved_options = {**{k: v for k, v in (defaults or {}).items() if k not in saved}, **_options(saved)}
        considered = set(given or ()) if resume else set(saved_options) | set(options)
        compared = sorted(considered - set(RESUMABLE_CHANGES))
        merged = {**saved_options, **{k: options[k] for k in RESUMABLE_CHANGES if k in considered and k in options}}
        differences = _differences(saved_options, options, compared)
        if differences:
            raise RunDirError(
                f"{run_dir} holds an unfinished run with other options; resume it with the same options (or "
                "`--resume --out " + str(run_dir) + "` alone), or choose a new --out:\n  " + "\n  ".join(differences)
            )
        return merged, True
    if resume:
        raise RunDirError(f"--resume: {run_dir} holds no run to resume ({CONFIG_FILE} is missing)")
    # (Workers of a multi-worker run on this machine may have made their WORKERS_DIR first.)
    if run_dir.exists() and any(entry.name != WORKERS_DIR for entry in run_dir.iterdir()):
        raise RunDirError(f"{run_dir} is not empty and holds no run ({CONFIG_FILE} is missing): refusing to write "
                          "into it; choose a new --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"format": CONFIG_FORMAT, "version": audiocaps_tf.__version__,
              "created": datetime.datetime.now().isoformat(timespec="seconds"), **options}
    write_json_atomically(config_path, config)
    return dict(options), False
