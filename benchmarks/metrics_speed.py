"""Seconds to score the AudioCaps test split (975 clips x 5 references) with audiocaps_tf.metrics; budget 60 s.

Three timings, each from a fresh start of the Java programs unless said otherwise:
  cold   score_captions: prediction = each clip's first reference, references = all five (METEOR startup included)
  warm   the same call again, reusing the METEOR process kept by the first
  human  human_upper_bound: the five leave-one-out turns (the paper's Human row)
SPICE is left out (spice=False): it needs Stanford CoreNLP 3.6.0, see audiocaps_tf/metrics.py.

    python benchmarks/metrics_speed.py [--references ../shared/audiocaps/test.csv] [--budget 60]
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from audiocaps_tf import metrics  # noqa: E402
from audiocaps_tf.data.layout import read_split  # noqa: E402

DEFAULT_REFERENCES = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "audiocaps" / "test.csv"


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--references", type=pathlib.Path, default=DEFAULT_REFERENCES)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds allowed for the cold run")
    args = parser.parse_args(argv)

    clips = read_split(args.references)
    references = {clip.key: list(clip.captions) for clip in clips}
    predictions = {clip.key: clip.captions[0] for clip in clips}
    print(f"{len(clips)} clips, {sum(len(r) for r in references.values())} references, {os.cpu_count()} CPU(s)")

    metrics.close_java()
    cold, scores = timed(lambda: metrics.score_captions(predictions, references, spice=False))
    print(f"cold  score_captions: {cold:6.1f} s")
    warm, _ = timed(lambda: metrics.score_captions(predictions, references, spice=False))
    print(f"warm  score_captions: {warm:6.1f} s")
    metrics.close_java()
    human_time, human = timed(lambda: metrics.human_upper_bound(references, spice=False))
    print(f"human (5 turns, cold): {human_time:5.1f} s")
    metrics.close_java()
    print(metrics.format_table(human))

    ok = cold <= args.budget and human_time <= args.budget
    print(f"{'OK' if ok else 'TOO SLOW'}: budget {args.budget:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
