"""How fast `python -m audiocaps_tf.data demo` builds its dataset: clips/s and the time for 1000 clips.

Builds the demo dataset in a temporary directory (deleted afterwards) with `make_demo_dataset`, the code path
of the command, and also times the synthesis of one event in this process (no pool, no file), per source.
Wall time depends on what else runs on the machine, so the CPU time of this process and its workers is
reported too: CPU seconds per clip divided by the number of cores is the wall time on an idle machine.

    python benchmarks/demo_dataset_speed.py [--clips 1000] [--workers N] [--seed 0]
"""

import argparse
import collections
import os
import pathlib
import resource
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from audiocaps_tf.data import demo  # noqa: E402


def synthesis_ms_per_source(num_specs=100, seed=0):
    """Mean milliseconds to render one event of each source, over the events of `num_specs` clips."""
    total, count = collections.Counter(), collections.Counter()
    for spec in demo.clip_specs(num_specs, seed):
        for k, event in enumerate(spec.events):
            start = time.perf_counter()
            demo.render_event(event, np.random.default_rng([seed, k]))
            total[event.source] += time.perf_counter() - start
            count[event.source] += 1
    return {name: 1000 * total[name] / count[name] for name in sorted(total, key=lambda n: -total[n] / count[n])}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None, help="default: one per CPU")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    workers = args.workers or os.cpu_count()

    def cpu_seconds():
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    with tempfile.TemporaryDirectory() as tmp:
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        out = demo.make_demo_dataset(pathlib.Path(tmp) / "demo", args.clips, args.seed, workers=workers)
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        megabytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6

    rate = args.clips / seconds
    print(f"demo dataset: {args.clips} clips in {seconds:.1f} s with {workers} worker(s) on {os.cpu_count()} CPU(s): "
          f"{rate:.1f} clips/s, {megabytes:.0f} MB")
    print(f"time for 1000 clips: {1000 / rate:.1f} s (target: under 60 s on 2 cores)")
    cores = min(workers, os.cpu_count())
    print(f"CPU time: {1000 * cpu / args.clips:.1f} ms per clip; 1000 clips on {cores} idle core(s): "
          f"{cpu / args.clips * 1000 / cores:.1f} s")
    per_source = synthesis_ms_per_source(seed=args.seed)
    print("synthesis of one event, ms (one process):")
    for name, ms in per_source.items():
        print(f"  {name:14s} {ms:6.1f}")


if __name__ == "__main__":
    main()
