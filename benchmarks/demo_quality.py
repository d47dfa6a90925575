"""Caption quality on the demo dataset: the default attention model against the 1NN-MFCC baseline.

Trains (or reads) two runs of `python -m audiocaps_tf.fit` on the same demo dataset, the default model
(tempatt-mfcc-lstm with the demo defaults, i.e. exactly `python -m audiocaps_tf.fit`) and 1nn-mfcc, and reports:

1. their test scores (metrics.json): the attention model should beat the retrieval baseline's CIDEr clearly;
2. event order. The demo's captions name sequential events in the order they happen ("A dog barks, then a car
   horn honks"). Measure: among the test clips whose specification (`demo.clip_specs`) is a sequence of exactly
   two events A then B of different sources, a generated caption *mentions both* when both sources' keyword
   patterns (`demo.SOURCES[name].keywords`, which match every phrase of that source and no other's) occur in it,
   and has them *in the right order* when A's first match starts before B's. Reported: the clips, how many
   captions mention both, and how many of those put them in the right order. A captioner that names the right
   two sources but cannot tell which came first gets the order right half of the time (chance = 50 % among the
   captions mentioning both); the one-sided binomial p-value of the observed count against 50 % is printed.
   The same measure over more pairs: every consecutive pair of sequential events, also in 3-event sequences
   and sequences over a background sound.

3. both again on held-out clips the runs never saw, to have more sequences than the 10 % test split holds:
   `--extra-clips N` (default 1000) more clips from the same generator (demo clip indices after the dataset's,
   drawn as test clips, with 5 reference captions each), synthesised here and captioned from their waveforms
   with `model.generate` (the models' own MFCC frontend), then scored and measured as above.

    python benchmarks/demo_quality.py [--out DIR] [--demo-clips N] [--epochs N] [--extra-clips N]
    python benchmarks/demo_quality.py --attention-run RUN_DIR --nn-run RUN_DIR    (score existing runs)

Writes nothing but the two run directories (default: runs/demo-quality-<time>/{attention,1nn}).
"""

import argparse
import csv
import datetime
import json
import math
import multiprocessing
import os
import pathlib
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import audiocaps_tf.models  # noqa: E402,F401  (registers the captioners for load_model)
from audiocaps_tf import fit  # noqa: E402
from audiocaps_tf.data import demo  # noqa: E402
from audiocaps_tf.metrics import format_table, score_captions  # noqa: E402


def train(model, out, demo_clips=None, epochs=None):
    """Runs fit for `model` on the demo into `out`; returns its wall time in seconds."""
    argv = ["--model", model, "--out", str(out)]
    if demo_clips is not None:
        argv += ["--demo-clips", str(demo_clips)]
    if epochs is not None and not model.startswith("1nn"):
        argv += ["--epochs", str(epochs)]
    started = time.monotonic()
    status = fit.main(argv)
    if status != 0:
        sys.exit(f"fit {model} failed with status {status}")
    return time.monotonic() - started


def read_predictions(run_dir):
    with open(pathlib.Path(run_dir) / "test_predictions.csv", newline="", encoding="utf-8") as f:
        return {f"{row['youtube_id']}_{row['start_time']}": row["caption"] for row in csv.DictReader(f)}


def first_mention(caption, source):
    match = re.search(demo.SOURCES[source].keywords, caption.lower())
    return None if match is None else match.start()


def sequential_pairs(specs, strict=True):
    """[(clip key, source A, source B)] of the clips of `specs`: with `strict`, those that are a sequence of exactly
    two events of different sources; otherwise every consecutive pair of different sources among the sequential
    (non-background) events of "sequence" and "background_sequence" clips (3-event sequences give 2 pairs)."""
    pairs = []
    for spec in specs:
        if spec.structure not in ("sequence", "background_sequence"):
            continue
        events = sorted((e for e in spec.events if not e.background), key=lambda event: event.onset)
        if strict and (spec.structure != "sequence" or len(events) != 2):
            continue
        pairs.extend((spec.key, a.source, b.source) for a, b in zip(events, events[1:]) if a.source != b.source)
    return pairs


def _as_read(spec):
    """The clip's audio as the runs read it: rendered, stored as 16-bit PCM, read back as float."""
    pcm = np.clip(np.round(demo.render(spec).astype(np.float64) * 32767), -32768, 32767)
    return (pcm / 32768).astype(np.float32)


def held_out(clips, seed, count, workers=2):
    """(specs, {key: waveform}, {key: 5 references}) of `count` demo clips after the dataset's `clips`."""
    specs = [demo.clip_spec(index, seed, "test") for index in range(clips, clips + count)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        waveforms = pool.map(_as_read, specs, chunksize=8)
    return (specs, {spec.key: w for spec, w in zip(specs, waveforms)},
            {spec.key: demo.describe(spec, 5) for spec in specs})


def order_measure(predictions, pairs):
    """(pairs, captions mentioning both sources of a pair, of those in the right order)."""
    both = right = 0
    for key, a, b in pairs:
        caption = predictions.get(key, "")
        pa, pb = first_mention(caption, a), first_mention(caption, b)
        if pa is not None and pb is not None:
            both += 1
            right += pa < pb
    return len(pairs), both, right


def binomial_p_value(successes, trials, p=0.5):
    """P(X >= successes) for X ~ Binomial(trials, p): one-sided, against chance."""
    return sum(math.comb(trials, k) * p**k * (1 - p) ** (trials - k) for k in range(successes, trials + 1))


def report(label, scores, predictions, specs):
    print(f"{label}, {scores['num_clips']} clips")
    print(format_table(scores))
    for name, pairs in (("two-event sequences", sequential_pairs(specs)),
                        ("all consecutive sequential events", sequential_pairs(specs, strict=False))):
        count, both, right = order_measure(predictions, pairs)
        share = f"{100 * right / both:.0f} %" if both else "-"
        p = f", p = {binomial_p_value(right, both):.2g} against 50 %" if both else ""
        print(f"  event order, {name}: {count} pairs; {both} captions mention both sources, {right} of them in the "
              f"right order ({share}{p})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, help="where the two runs go (default runs/demo-quality-<time>)")
    parser.add_argument("--attention-run", type=pathlib.Path, help="an existing run of the attention model")
    parser.add_argument("--nn-run", type=pathlib.Path, help="an existing 1nn-mfcc run on the same demo data")
    parser.add_argument("--demo-clips", type=int, help=f"demo size (default: fit's, {fit.DEMO_CLIPS})")
    parser.add_argument("--epochs", type=float, help=f"epochs of the attention model (default: fit's demo "
                                                     f"default, {fit.EPOCHS})")
    parser.add_argument("--extra-clips", type=int, default=1000, help="held-out clips to synthesise (default 1000)")
    args = parser.parse_args()

    root = args.out or pathlib.Path("runs") / f"demo-quality-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    runs = {"attention": args.attention_run, "1nn": args.nn_run}
    times = {}
    for name, model in (("attention", fit.DEFAULT_MODEL), ("1nn", "1nn-mfcc")):
        if runs[name] is None:
            runs[name] = root / name
            times[name] = train(model, runs[name], args.demo_clips, args.epochs)

    configs = {name: json.loads((run / "config.json").read_text()) for name, run in runs.items()}
    data = {name: config["data"] for name, config in configs.items()}
    if data["attention"] != data["1nn"] or data["attention"]["kind"] != "demo":
        sys.exit(f"both runs must be on the same demo dataset; got {data}")
    clips, seed = data["attention"]["clips"], data["attention"]["seed"]
    test_specs = [spec for spec in demo.clip_specs(clips, seed) if spec.split == "test"]
    extra = held_out(clips, seed, args.extra_clips) if args.extra_clips else None

    print(f"\ndemo dataset: {clips} clips, seed {seed}; held-out clips: {args.extra_clips} (indices {clips}..)")
    for name, run in runs.items():
        state = json.loads((run / "state.json").read_text())
        took = f", fit took {times[name]:.0f} s" if name in times else ""
        epochs = "" if name == "1nn" else f", best epoch {state['best']['epoch']:g} of {configs[name]['epochs']:g}"
        print(f"\n{configs[name]['model']} ({run}{epochs}{took})")
        report("test split", json.loads((run / "metrics.json").read_text())["test"], read_predictions(run),
               test_specs)
        if extra:
            specs, waveforms, references = extra
            model = keras.models.load_model(run / "best.keras")
            keys = [spec.key for spec in specs]
            captions = dict(zip(keys, model.generate([waveforms[key] for key in keys])))
            scores = score_captions(captions, references, spice=False)
            report("held-out clips", {**scores, "num_clips": len(keys)}, captions, specs)


if __name__ == "__main__":
    main()
