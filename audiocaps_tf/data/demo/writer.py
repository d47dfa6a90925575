"""The demo dataset on disk: the resumable writer `make_demo_dataset` and the `data demo` command line."""

import csv
import json
import multiprocessing
import os
import pathlib
import sys

import numpy as np
import soundfile
import tqdm

from audiocaps_tf.data.demo.dsp import SR
from audiocaps_tf.data.demo.grammar import describe
from audiocaps_tf.data.demo.scenes import clip_specs, render
from audiocaps_tf.data.layout import AUDIO_DIR, LABEL_SEPARATOR, SPLITS, read_splits, split_path
from audiocaps_tf.files import PARTIAL_SUFFIX, atomic_path, write_text_atomically
from audiocaps_tf.params import CLIP_SECONDS

HELP = "synthesise a captioned demo dataset in the AudioCaps layout (no download)"

DEFAULT_CLIPS = 600
GENERATOR_VERSION = 1  # bump when a change alters the audio or captions written for a seed
PARAMETERS_FILE = "demo.json"


class DemoError(RuntimeError):
    """The demo dataset cannot be written where asked (e.g. the directory holds something else)."""


def write_wav(path, waveform):
    """16-bit PCM WAV, written to a temporary name and renamed: a file that exists is complete."""
    pcm = np.clip(np.round(np.asarray(waveform, np.float64) * 32767), -32768, 32767).astype(np.int16)
    with atomic_path(path, durable=False) as temporary:  # thousands of small files: no fsync each
        soundfile.write(temporary, pcm, SR, subtype="PCM_16", format="WAV")


def _synthesise(task):  # runs in the worker processes: keep it at module level (pickled by name)
    spec, path = task
    write_wav(path, render(spec))
    return spec.index


# ---------------------------------------------------------------------------------------------------------------
# The dataset on disk
# ---------------------------------------------------------------------------------------------------------------


def _parameters(num_clips, seed):
    return {"generator": "audiocaps_tf.data.demo", "version": GENERATOR_VERSION, "clips": num_clips, "seed": seed,
            "sample_rate": SR, "clip_seconds": CLIP_SECONDS}


def _parameters_text(parameters, complete):
    return json.dumps({**parameters, "complete": complete}, indent=2, sort_keys=True) + "\n"


def _complete(out_dir, specs):
    return (all(split_path(out_dir, split).is_file() for split in SPLITS)
            and all((out_dir / AUDIO_DIR / f"{spec.key}.wav").is_file() for spec in specs))


def _check_directory(out_dir, parameters):
    """Raises DemoError unless `out_dir` is new, empty or a demo dataset made with `parameters`.
    Returns the parameters file's contents, or None."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"{out_dir} is a file, not a directory")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return None
    marker = out_dir / PARAMETERS_FILE
    if not marker.is_file():
        raise DemoError(f"{out_dir} is not empty and holds no demo dataset ({PARAMETERS_FILE} is missing): refusing "
                        "to write into it; choose a new or empty directory")
    try:
        previous = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DemoError(f"{marker} cannot be read ({err}): refusing to write into {out_dir}") from None
    recorded = {k: previous.get(k) for k in parameters}
    if recorded != parameters:
        different = ", ".join(f"{k}={recorded[k]!r} (asked {parameters[k]!r})"
                              for k in parameters if recorded[k] != parameters[k])
        raise DemoError(f"{out_dir} holds a demo dataset made with other parameters: {different}; "
                        "choose another directory or delete this one")
    return previous


def make_demo_dataset(out_dir, num_clips=DEFAULT_CLIPS, seed=0, workers=None, progress=True):
    """Writes the demo dataset for (`num_clips`, `seed`) to `out_dir` and returns its path.

    Does nothing when `out_dir` already holds it complete; finishes it when an earlier run was interrupted;
    raises DemoError when `out_dir` holds anything else. Clips are synthesised by `workers` processes
    (default: one per CPU) and the CSVs are written only once every audio file is. `progress` shows a
    progress bar and messages on stderr.
    """
    out_dir = pathlib.Path(out_dir)
    num_clips, seed = int(num_clips), int(seed)
    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    parameters = _parameters(num_clips, seed)
    previous = _check_directory(out_dir, parameters)
    specs = clip_specs(num_clips, seed)
    if previous is not None and previous.get("complete") and _complete(out_dir, specs):
        if progress:
            print(f"{out_dir} already holds the demo dataset ({num_clips} clips, seed {seed}): nothing to do",
                  file=sys.stderr)
        return out_dir

    audio_dir = out_dir / AUDIO_DIR
    audio_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out_dir / PARAMETERS_FILE, _parameters_text(parameters, complete=False))
    tasks = [(spec, audio_dir / f"{spec.key}.wav") for spec in specs]
    tasks = [(spec, path) for spec, path in tasks if not path.is_file()]  # an interrupted run resumes
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    bar = tqdm.tqdm(total=len(tasks), unit="clip", desc="demo audio", disable=not progress or not tasks)
    try:
        if workers == 1 or len(tasks) < 8:
            for task in tasks:
                _synthesise(task)
                bar.update()
        else:
            methods = multiprocessing.get_all_start_methods()
            # fork: workers start at once and need not import TensorFlow again; they only run NumPy.
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            with context.Pool(min(workers, len(tasks))) as pool:
                for _ in pool.imap_unordered(_synthesise, tasks, chunksize=4):
                    bar.update()
    finally:
        bar.close()
    for leftover in audio_dir.glob("*" + PARTIAL_SUFFIX):  # from workers killed by an earlier interruption
        leftover.unlink()

    for split in SPLITS:
        rows = []
        for spec in specs:
            if spec.split != split:
                continue
            labels = LABEL_SEPARATOR.join(spec.labels)
            for j, caption in enumerate(describe(spec)):
                rows.append([spec.index * 5 + j + 1, spec.youtube_id, spec.start_time, caption, labels])
        _write_csv(split_path(out_dir, split), rows)
    write_text_atomically(out_dir / PARAMETERS_FILE, _parameters_text(parameters, complete=True))
    return out_dir


def _write_csv(path, rows):
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["audiocap_id", "youtube_id", "start_time", "caption", "labels"])
        writer.writerows(rows)


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


def add_arguments(parser):
    parser.add_argument("--out", required=True, type=pathlib.Path, metavar="DIR",
                        help="directory to write (new, empty, or an earlier demo dataset with the same parameters)")
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS, metavar="N",
                        help=f"number of clips (default {DEFAULT_CLIPS}: about 80/10/10 train/val/test)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes synthesising audio (default: one per CPU)")


def run(args):
    try:
        out_dir = make_demo_dataset(args.out, num_clips=args.clips, seed=args.seed, workers=args.workers)
    except (DemoError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    splits = read_splits(out_dir)
    counts = ", ".join(f"{split} {len(clips)} clips" for split, clips in splits.items())
    print(f"demo dataset in {out_dir}: {counts}")
    return 0

