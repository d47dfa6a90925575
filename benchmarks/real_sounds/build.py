"""Builds the real-sound benchmark: 10-s scenes of real recordings in the AudioCaps layout, split by recording.

    python benchmarks/real_sounds/build.py OUT [--cache DIR] [--seed 0] [--train 1000 --val 200 --test 200]

Fetches the pinned Debian packages (`sources.py`, about 1.1 GB, with `apt-get download`; run `apt-get update`
once first), picks the catalogued recordings (`catalogue.py`), joins cuts of one take, deals each class's
recordings to train / val / test (`inventory.py`), and writes OUT (`python -m audiocaps_tf.fit --data-dir OUT`
reads it):

    OUT/{train,val,test}.csv     audiocap_id, youtube_id, start_time, caption, labels; 1 caption per train scene,
                                 5 per val and test scene
    OUT/audio/<name>_0.{wav,flac}  16-48 kHz, mono or stereo
    OUT/recordings.csv           recording id, class, split, files: which take is on which side
    OUT/scenes.jsonl             every scene's events (class, recording, onset, duration, level)
    OUT/SOURCES.md               packages, versions, sha256 sums and licences

OUT must not exist: nothing is overwritten. The same seed gives the same files.
"""

import argparse
import csv
import dataclasses
import json
import pathlib

import tqdm

import inventory
import render
import scenes
from audiocaps_tf.files import atomic_path
from sources import PACKAGES, fetch_packages

CAPTIONS_PER_SCENE = {"train": 1, "val": 5, "test": 5}
DEFAULT_CACHE = pathlib.Path("~/.cache/audiocaps_tf/real_sounds").expanduser()


def check_split(drawn, splits):
    """Asserts that no val or test scene holds a recording of the train side (the point of the benchmark)."""
    train = {rid for sides in splits.values() for rid in sides["train"]}
    for scene in drawn:
        if scene.split != "train":
            heard = scene.recordings & train
            assert not heard, f"{scene.name} ({scene.split}) contains training recordings {sorted(heard)}"


def _write_csvs(out, drawn, seed):
    audiocap_id = 0
    rows = {split: [] for split in CAPTIONS_PER_SCENE}
    for scene in drawn:
        labels = ";".join(e.cls for e in scene.events)
        for caption in scenes.captions(scene, CAPTIONS_PER_SCENE[scene.split], seed):
            audiocap_id += 1
            rows[scene.split].append([audiocap_id, scene.name, 0, caption, labels])
    for split, split_rows in rows.items():
        with open(out / f"{split}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["audiocap_id", "youtube_id", "start_time", "caption", "labels"])
            writer.writerows(split_rows)


def _write_recordings(out, classes, splits):
    with open(out / "recordings.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["recording", "class", "split", "files"])
        for cls, sides in splits.items():
            for split, ids in sides.items():
                for rid in ids:
                    writer.writerow([rid, cls, split, ";".join(name for name, _ in classes[cls][rid])])


def _write_sources(out):
    lines = ["# Sources of the real-sound benchmark", "", "| package | version | sha256 | licence |", "|---|---|---|---|"]
    lines += [f"| {p.name} | {p.version} | {p.sha256} | {p.licence} |" for p in PACKAGES.values()]
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n")


def build(out, cache, seed, counts, log=print):
    out = pathlib.Path(out)
    if out.exists():
        raise SystemExit(f"{out} exists; choose a new directory (nothing is overwritten)")
    fetch_packages(cache, log=log)
    classes = inventory.group_recordings(inventory.find_files(cache), log=log)
    splits = inventory.split_recordings(classes, seed)
    for line in inventory.describe(classes, splits):
        log(line)
    drawn = [scenes.draw_scene(split, i, seed, {c: sides[split] for c, sides in splits.items()})
             for split, count in counts.items() for i in range(count)]
    check_split(drawn, splits)
    bank = render.AudioBank({rid: files for recordings in classes.values() for rid, files in recordings.items()})
    with atomic_path(out) as partial:
        (partial / "audio").mkdir(parents=True)
        with open(partial / "scenes.jsonl", "w") as f:
            for scene in tqdm.tqdm(drawn, desc="scenes", unit="scene"):
                rate, channels, extension, subtype = render.output_format(scene, seed)
                mix = render.render_scene(scene, bank, seed)
                render.write_scene(partial / "audio" / f"{scene.name}_0.{extension}", mix, rate, channels, subtype)
                record = {"name": scene.name, "split": scene.split, "kind": scene.kind, "rate": rate,
                          "channels": channels, "events": [dataclasses.asdict(e) for e in scene.events]}
                f.write(json.dumps(record) + "\n")
        _write_csvs(partial, drawn, seed)
        _write_recordings(partial, classes, splits)
        _write_sources(partial)
    log(f"wrote {len(drawn)} scenes to {out}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=pathlib.Path, help="new directory for the benchmark")
    parser.add_argument("--cache", type=pathlib.Path, default=DEFAULT_CACHE,
                        help=f"downloaded and unpacked packages (default {DEFAULT_CACHE})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the scenes (default 0)")
    for split, default in (("train", 1000), ("val", 200), ("test", 200)):
        parser.add_argument(f"--{split}", type=int, default=default, metavar="N",
                            help=f"{split} scenes (default {default})")
    args = parser.parse_args(argv)
    build(args.out, args.cache, args.seed, {"train": args.train, "val": args.val, "test": args.test})


if __name__ == "__main__":
    main()
