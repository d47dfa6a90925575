"""Trains and scores each recipe on the real-sound benchmark, 3 seeds, and prints mean and spread of the test scores
next to the 1NN-MFCC and random-training-caption baselines.

    python benchmarks/real_sounds/run.py DATA [--runs DIR] [--seeds 0 1 2] [--recipes NAME ...]

DATA is a directory `build.py` wrote. Each (recipe, seed) is one `python -m audiocaps_tf.fit --data-dir DATA` run
in RUNS/<recipe>-s<seed>; a run that already finished there is read, not repeated, so the command can be stopped
and started again. "repeat-3" is the share of test captions in which some 3-gram occurs twice ("a dog barks and a
dog barks"). Validation, and so model selection, uses recordings no training scene holds.
"""

import argparse
import csv
import json
import pathlib
import re
import statistics
import subprocess
import sys

import numpy as np

from audiocaps_tf.data.layout import read_splits
from audiocaps_tf.metrics import score_captions

_MASKS = ["--model-overrides", '{"time_masks": 2, "feature_masks": 2}']
# name -> the fit arguments. "(paper)": as the paper trains it, every option of ours off (what `fit` without --model
# trains on the demo dataset).
RECIPES = {
    "tempatt-mfcc-lstm (paper)": ["--model", "tempatt-mfcc-lstm"],
    "tempatt-mfcc-lstm + masks + no-repeat 3": ["--model", "tempatt-mfcc-lstm", "--no-repeat-ngram-size", "3",
                                                *_MASKS],
    "tempatt-mfcc-lstm + masks + mixup 0.5 + no-repeat 3": ["--model", "tempatt-mfcc-lstm", "--mixup", "0.5",
                                                            "--no-repeat-ngram-size", "3", *_MASKS],
    "tempatt-logmel-cnn-lstm + masks + no-repeat 3": ["--model", "tempatt-logmel-cnn-lstm",
                                                      "--no-repeat-ngram-size", "3", *_MASKS],
    "tempatt-mfcc-lstm-specaug (masks + no-repeat 3 + beam 3)": ["--model", "tempatt-mfcc-lstm-specaug"],
    # The same model as tempatt-mfcc-lstm-specaug with '{"decoder": "transformer"}' (the form the README's row was
    # measured in): fit's default for --data-dir.
    "tempatt-mfcc-transformer-specaug (no --model)": [],
    "tempatt-mfcc-lstm-specaug + per-clip CMVN": ["--model", "tempatt-mfcc-lstm-specaug", "--model-overrides",
                                                   '{"mfcc_standardize": true}'],
    "tempatt-mfcc-lstm-specaug + per-clip CMVN, Transformer decoder": [
        "--model", "tempatt-mfcc-lstm-specaug", "--model-overrides",
        '{"mfcc_standardize": true, "decoder": "transformer"}'],
}
BASELINE_1NN = "1nn-mfcc"
SHOWN = ("BLEU_4", "METEOR", "ROUGE_L", "CIDEr")


def repeated_trigram_share(captions):
    """Share (0-1) of captions in which some word 3-gram occurs more than once."""
    def repeats(caption):
        words = caption.split()
        grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
        return len(grams) != len(set(grams))
    return sum(repeats(c) for c in captions) / max(1, len(captions))


def _predictions(run_dir):
    with open(run_dir / "test_predictions.csv", newline="") as f:
        return {f"{row['youtube_id']}_{row['start_time']}": row["caption"] for row in csv.DictReader(f)}


def fit_run(data, run_dir, arguments, seed, log):
    """The test scores of one fit run (running it unless RUN_DIR already holds a finished one)."""
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.exists():
        command = [sys.executable, "-m", "audiocaps_tf.fit", "--data-dir", str(data), "--seed", str(seed),
                   "--out", str(run_dir), *arguments]
        if run_dir.exists():
            command.append("--resume")
        log(f"$ {' '.join(command)}  (log: {run_dir}.log)")
        with open(run_dir.with_name(run_dir.name + ".log"), "a") as out:
            subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)
    scores = dict(json.loads(metrics_file.read_text())["test"])
    scores["repeat-3"] = 100 * repeated_trigram_share(list(_predictions(run_dir).values()))
    # From the run's first file to its scores: data preparation, training and testing (and any pause between
    # a stop and its resume).
    scores["minutes"] = (metrics_file.stat().st_mtime - (run_dir / "config.json").stat().st_mtime) / 60
    return scores


def random_caption_scores(data, seed):
    """Scores of captioning every test clip with a random training caption."""
    clips = read_splits(data, ("train", "test"))
    train_captions = [c for clip in clips["train"] for c in clip.captions]
    rng = np.random.default_rng(seed)
    test = clips["test"]
    predictions = {clip.key: train_captions[int(rng.integers(len(train_captions)))] for clip in test}
    scores = score_captions(predictions, {clip.key: list(clip.captions) for clip in test}, spice=False)
    scores["repeat-3"] = 100 * repeated_trigram_share(list(predictions.values()))
    scores["minutes"] = 0.0
    return scores


def _cell(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def table(rows):
    """Markdown table: one row per (name, [scores per seed])."""
    columns = (*SHOWN, "repeat-3", "minutes")
    lines = ["| recipe | seeds | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for name, runs in rows:
        cells = [_cell([r.get(c) for r in runs]) for c in columns]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=pathlib.Path, help="a directory written by build.py")
    parser.add_argument("--runs", type=pathlib.Path, default=pathlib.Path("runs/real_sounds"),
                        help="where the fit runs go (default runs/real_sounds)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=list(RECIPES), metavar="NAME",
                        help=f"recipes to run (default all: {', '.join(RECIPES)})")
    args = parser.parse_args(argv)
    for split in ("train", "val", "test"):
        if not (args.data / f"{split}.csv").exists():
            parser.error(f"{args.data} has no {split}.csv: build it with benchmarks/real_sounds/build.py")
    args.runs.mkdir(parents=True, exist_ok=True)

    def log(text):
        print(text, file=sys.stderr, flush=True)

    def slug(name):
        return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")

    rows = [("1NN-MFCC", [fit_run(args.data, args.runs / BASELINE_1NN, ["--model", BASELINE_1NN], 0, log)]),
            ("random training caption", [random_caption_scores(args.data, seed) for seed in args.seeds])]
    for name in args.recipes:
        runs = [fit_run(args.data, args.runs / f"{slug(name)}-s{seed}", RECIPES[name], seed, log)
                for seed in args.seeds]
        rows.append((name, runs))
        log(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
