"""Decode every clip once and write sharded TFRecords (the schema of `audiocaps_tf.data.records`).

    OUT/manifest.json                           options, per-split counts, shards, skipped clips, feature shapes
    OUT/tokenizer/                              caption vocabulary, built from the train captions only
    OUT/keywords.txt                            keyword vocabulary (attribute words), train captions only
    OUT/{split}-{index:05d}-of-{count:05d}.tfrecord

Shard i of a split holds the clips i*S .. (i+1)*S-1 of the split CSV (S = --shard-size), minus the clips
whose audio is missing or does not decode: those are skipped with a warning and listed in the manifest.
Clips are kept whole, whatever their length, up to --max-seconds (default 30 s): longer ones are cut to it,
with a warning, and listed in the manifest ("cut", with their length in seconds).
Audio is decoded by --workers processes; features are computed in this process, a batch at a time.

Resumable: a shard is written under a temporary name and renamed once complete, and the manifest is updated
after every shard. Running the same command again skips complete shards (decoding nothing for them) and
writes the rest; running it with other options into the same OUT is an error naming the options that differ.
Other --splits may be added to an OUT later: splits are independent, the options are not.

Exits non-zero when a split ends up with no clip at all.
"""

import concurrent.futures
import contextlib
import logging
import math
import multiprocessing
import os
import pathlib
import shutil
import sys

import numpy as np
import tqdm

import audiocaps_tf
from audiocaps_tf import params
from audiocaps_tf.data import attributes, decode_workers, prepared
from audiocaps_tf.data.layout import AUDIO_DIR, AUDIO_EXTENSIONS, SPLITS, AudioIndex, DataError, read_split, split_path
from audiocaps_tf.data.prepared import (  # the layout of OUT, re-exported
    DEFAULT_FEATURES,
    FEATURES,
    KEYWORDS_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    TOKENIZER_DIR,
    feature_shapes,
    read_manifest,
    shard_files,
    shard_name,
)
from audiocaps_tf.files import PARTIAL_SUFFIX, atomic_path, write_text_atomically
from audiocaps_tf.tokens.vocabulary import TOKENIZERS, build_vocabulary, load_vocabulary

__all__ = [
    "MANIFEST_FILE",
    "TOKENIZER_DIR",
    "KEYWORDS_FILE",
    "LOCK_FILE",
    "FEATURES",
    "DEFAULT_FEATURES",
    "DEFAULT_SHARD_SIZE",
    "DEFAULT_BATCH_SIZE",
    "OptionsMismatchError",
    "EmptySplitError",
    "prepare_dataset",
    "read_manifest",
    "shard_files",
    "shard_name",
    "feature_shapes",
]

HELP = "decode the audio once and write sharded TFRecords with captions, token ids, attributes and features"

DEFAULT_SHARD_SIZE = 256  # ~96 MB per shard with waveforms (320 kB int16 each), ~14 MB without
DEFAULT_BATCH_SIZE = 16  # clips per batch through the TF feature extractors

logger = logging.getLogger(__name__)


class OptionsMismatchError(DataError):
    """OUT holds data prepared with other options; the message names each option that differs."""


class DecodeWorkerError(RuntimeError):
    """An audio-decoding worker process died; the shards already complete are kept, and a rerun resumes."""


class EmptySplitError(DataError):
    """A split ended up with no clip (every clip skipped, or none in its CSV). `manifest` is the final manifest."""

    def __init__(self, message, manifest):
        super().__init__(message)
        self.manifest = manifest


# ---------------------------------------------------------------------------------------------------------------
# Preparing
# ---------------------------------------------------------------------------------------------------------------


def prepare_dataset(
    data_dir,
    out_dir,
    features=DEFAULT_FEATURES,
    splits=SPLITS,
    workers=None,
    vggish_weights=None,
    tokenizer="word",
    vocab_size=None,
    min_count=1,
    keywords=None,
    shard_size=DEFAULT_SHARD_SIZE,
    batch_size=DEFAULT_BATCH_SIZE,
    progress=True,
    on_shard_complete=None,
    max_seconds=params.MAX_CLIP_SECONDS,
    vocabulary_dirs=None,
):
    """Writes the TFRecord shards, vocabularies and manifest of `splits` into `out_dir`; returns the manifest.

    Args:
        data_dir: a directory in the AudioCaps layout (`layout.py`); train.csv is always read (vocabularies).
        out_dir: where everything is written: a new or empty directory, or one an earlier call wrote with
            the same options (then complete shards are kept and the rest is written).
        features: names among "waveform" (int16 PCM), "vggish" (fc2, conv4, conv3), "mfcc" and "log_mel"
            (VGGish's log-mel frames, no weights needed) (a list or a comma-separated string).
        splits: the splits to write.
        workers: audio-decoding processes ("spawn"); None: one per CPU; 0: decode in this process.
            The records do not depend on it. Spawned workers import the main script again, so a script must
            call this under `if __name__ == "__main__":` (else DecodeWorkerError), or pass 0.
        vggish_weights: `load_vggish_weights` source for "vggish" (default: the TF Hub handle).
        tokenizer, vocab_size, min_count: the caption vocabulary (`vocabulary.build_vocabulary`).
        keywords: size of the keyword vocabulary (`attributes.build_keyword_vocabulary`; default
            `attributes.DEFAULT_KEYWORDS`).
        shard_size: CSV clips per shard (fewer records when clips are skipped).
        batch_size: clips per batch through the feature extractors.
        max_seconds: clips longer than this are cut to it (reported); None: never cut.
        vocabulary_dirs: the data dirs whose train captions, in this order, build the caption and keyword
            vocabularies (default: `data_dir` alone). `fit` on several datasets passes all of them to each
            one's `prepare`, so that their records share one vocabulary.
        progress: show a tqdm bar per split.
        on_shard_complete: called as f(split, shard_entry) after each shard is renamed and recorded (tests
            use it to stop a run).

    Raises:
        DataError: a malformed CSV, an OUT that is not ours or is being written by another run.
        OptionsMismatchError: OUT was prepared with other options.
        EmptySplitError: some split ended up empty (raised once every split is written; carries the manifest).
        VGGishWeightsUnavailableError: "vggish" features without reachable weights.
    """
    data_dir, out_dir = pathlib.Path(data_dir), pathlib.Path(out_dir)
    features = prepared.canonical_features(features)
    splits = list(dict.fromkeys([splits] if isinstance(splits, str) else splits))
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise ValueError(f"splits must be among {', '.join(SPLITS)}; got {splits}")
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; expected one of {sorted(TOKENIZERS)}")
    if shard_size < 1 or batch_size < 1:
        raise ValueError("shard_size and batch_size must be >= 1")
    if max_seconds is not None:
        max_seconds = float(max_seconds)
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be positive (or None: never cut); got {max_seconds}")
    keywords = attributes.DEFAULT_KEYWORDS if keywords is None else int(keywords)
    if "vggish" in features:
        if vggish_weights is None:
            vggish_weights = params.VGGISH_HUB_HANDLE
        vggish_weights = os.fspath(vggish_weights)
        if not vggish_weights.startswith(("http://", "https://", "gs://")):
            vggish_weights = os.path.abspath(vggish_weights)
    elif vggish_weights is not None:
        raise ValueError("vggish_weights is only used with the 'vggish' feature")
    workers = decode_workers.default_workers() if workers is None else max(0, int(workers))
    sample_rate = params.SAMPLE_RATE

    # Everything that can fail on the inputs fails here, before OUT is touched.
    train_csv = split_path(data_dir, "train")
    train_clips = read_split(train_csv)
    clips = {split: train_clips if split == "train" else read_split(split_path(data_dir, split)) for split in splits}
    vocabulary_csvs = [split_path(d, "train") for d in (vocabulary_dirs or [data_dir])]
    train_captions = [caption for csv_path in vocabulary_csvs
                      for clip in (train_clips if csv_path == train_csv else read_split(csv_path))
                      for caption in clip.captions]
    if not train_captions:
        raise DataError(f"{', '.join(map(str, vocabulary_csvs))}: no captions to build the vocabulary from")
    options = {
        "features": features,
        "sample_rate": sample_rate,
        "max_seconds": max_seconds,
        "tokenizer": tokenizer,
        "vocab_size": vocab_size,
        "min_count": min_count,
        "keywords": keywords,
        "shard_size": shard_size,
        "vggish_weights": vggish_weights,
        "train_csv_sha256": prepared.file_sha256(train_csv),
        "version": audiocaps_tf.__version__,
    }
    if vocabulary_dirs:  # (absent otherwise: directories prepared before the option existed still match)
        options["vocabulary_train_csvs_sha256"] = [prepared.file_sha256(csv_path) for csv_path in vocabulary_csvs]
    csv_hashes = {split: prepared.file_sha256(split_path(data_dir, split)) for split in splits}

    created = not out_dir.exists()
    previous = None
    if (out_dir / MANIFEST_FILE).exists():
        previous = prepared.read_manifest(out_dir)
        _check_previous(previous, options, csv_hashes, out_dir)
    else:
        prepared.check_foreign_files(out_dir)
    extractor = None
    if previous is None or not all(_split_is_done(previous, split, out_dir) for split in splits):
        # Builds the frontends and loads the VGGish weights: a source that fails leaves OUT untouched.
        extractor = decode_workers.FeatureExtractor(features, vggish_weights)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with prepared.locked(out_dir):
            return _prepare_locked(
                data_dir, out_dir, options, clips, csv_hashes, train_captions, workers, batch_size, progress,
                on_shard_complete, extractor,
            )
    finally:
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # failed before writing anything: leave no trace


def _shard_is_done(shard, out_dir):
    path = out_dir / shard["file"]
    return path.is_file() and path.stat().st_size == shard["bytes"]


def _split_is_done(manifest, split, out_dir):
    entry = manifest["splits"].get(split)
    return bool(entry and entry["complete"] and all(_shard_is_done(shard, out_dir) for shard in entry["shards"]))


def _check_previous(manifest, options, csv_hashes, out_dir):
    differences = prepared.differences(manifest["options"], options)
    for split, digest in csv_hashes.items():
        previous = manifest["splits"].get(split)
        if previous is not None and previous["csv_sha256"] != digest:
            differences.append(f"{split}.csv changed since its shards were written")
    if differences:
        raise OptionsMismatchError(
            f"{out_dir} was prepared with other options; use a new --out, or the same options:\n  "
            + "\n  ".join(differences)
        )


def _prepare_locked(data_dir, out_dir, options, clips, csv_hashes, train_captions, workers, batch_size, progress,
                    on_shard_complete, extractor):
    manifest_path = out_dir / MANIFEST_FILE
    if manifest_path.exists():
        manifest = prepared.read_manifest(out_dir)
        _check_previous(manifest, options, csv_hashes, out_dir)  # again, now that OUT is locked
    else:
        manifest = {
            "format": prepared.MANIFEST_FORMAT,
            "version": audiocaps_tf.__version__,
            "options": options,
            "data_dir": str(data_dir.resolve()),
            "record_fields": prepared.record_fields(options["features"]),
            "feature_shapes": prepared.feature_shapes(options["features"]),  # time None: clips keep their length
            "waveform_dtype": "int16" if "waveform" in options["features"] else None,
            "vocabulary": None,
            "keywords": None,
            "splits": {},
            "complete": False,
        }
        prepared.save_manifest(out_dir, manifest)  # first: from now on, every file in OUT is known to be ours

    # Leftovers of a killed run (ours: OUT has our manifest).
    for path in out_dir.iterdir():
        if path.name.endswith(PARTIAL_SUFFIX) and prepared.is_ours(path.name):
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    vocabulary = _vocabulary(out_dir, options, train_captions)
    keyword_vocabulary = _keywords(out_dir, options, train_captions)
    manifest["vocabulary"] = {"path": TOKENIZER_DIR, "kind": vocabulary.kind, "size": vocabulary.size}
    manifest["keywords"] = {"path": KEYWORDS_FILE, "size": len(keyword_vocabulary)}
    prepared.save_manifest(out_dir, manifest)

    index = AudioIndex(data_dir)
    plans = {split: _plan(split, clips[split], manifest, out_dir, options["shard_size"], csv_hashes[split])
             for split in clips}
    pending_clips = sum(len(shard["clips"]) for plan in plans.values() for shard in plan)

    if pending_clips and extractor is None:  # a shard went missing since the check before the lock
        extractor = decode_workers.FeatureExtractor(options["features"], options["vggish_weights"])
    with contextlib.ExitStack() as stack:
        pool = None
        if pending_clips and workers > 0:
            pool = concurrent.futures.ProcessPoolExecutor(
                min(workers, pending_clips), mp_context=multiprocessing.get_context("spawn"), initializer=exec,
                initargs=(decode_workers.worker_setup_code(), {}),  # run in a namespace of its own
            )
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        try:
            for split, plan in plans.items():
                _write_split(split, plan, manifest, out_dir, index, vocabulary, keyword_vocabulary, extractor, pool,
                             batch_size + 2 * workers, batch_size, progress, on_shard_complete)
        except concurrent.futures.BrokenExecutor as error:  # BrokenProcessPool
            raise DecodeWorkerError(
                f"an audio-decoding worker process died ({str(error).rstrip('.')}). The workers are started with "
                "'spawn', which imports the main script again: from a script, call prepare_dataset under "
                "`if __name__ == \"__main__\":`. Else the machine may be out of memory: use fewer workers, or "
                f"workers=0 (--workers 0) to decode in this process. The complete shards in {out_dir} are kept; "
                "running again resumes."
            ) from error

    manifest["complete"] = all(entry["complete"] for entry in manifest["splits"].values())
    prepared.save_manifest(out_dir, manifest)
    empty = [split for split in clips if manifest["splits"][split]["clips"] == 0]
    if empty:
        details = ", ".join(
            f"{split} ({len(manifest['splits'][split]['skipped'])} of {manifest['splits'][split]['clips_in_csv']} "
            "clips skipped)" for split in empty
        )
        raise EmptySplitError(f"no clip was written for split(s) {details}; see {manifest_path}", manifest)
    return manifest


def _vocabulary(out_dir, options, train_captions):
    """Loads OUT/tokenizer/, or builds it from the train captions and saves it (through a temporary directory)."""
    directory = out_dir / TOKENIZER_DIR
    if directory.exists():
        return load_vocabulary(directory)
    vocabulary = build_vocabulary(train_captions, tokenizer=options["tokenizer"], min_count=options["min_count"],
                                  vocab_size=options["vocab_size"])
    with atomic_path(directory) as temporary:
        vocabulary.save(temporary)
    return vocabulary


def _keywords(out_dir, options, train_captions):
    """The keyword vocabulary: rebuilt (it is cheap) and checked against OUT/keywords.txt, or saved there."""
    words = attributes.build_keyword_vocabulary(train_captions, size=options["keywords"])
    path = out_dir / KEYWORDS_FILE
    if path.exists():
        saved = path.read_text(encoding="utf-8").split("\n")[:-1]
        if saved != words:
            raise OptionsMismatchError(f"{path} differs from the keywords built now from the same train captions "
                                       "(the attributes code changed?); use a new --out")
        return saved
    write_text_atomically(path, "".join(word + "\n" for word in words))
    return words


def _plan(split, split_clips, manifest, out_dir, shard_size, csv_sha256):
    """The shards of `split` still to write: [{index, name, start, stop, clips}], complete shards left out."""
    count = math.ceil(len(split_clips) / shard_size)
    entry = manifest["splits"].setdefault(split, {
        "csv": f"{split}.csv",
        "csv_sha256": csv_sha256,
        "clips_in_csv": len(split_clips),
        "clips": 0,
        "captions": 0,
        "shard_count": count,
        "shards": [],
        "skipped": [],
        "complete": False,
    })
    done = set()
    for shard in entry["shards"]:
        path = out_dir / shard["file"]
        if _shard_is_done(shard, out_dir):
            done.add(shard["index"])
        elif path.exists() or path.is_symlink():
            logger.warning("%s: size differs from the manifest's %d bytes; writing it again", path, shard["bytes"])
        else:
            logger.warning("%s is missing; writing it again", path)
    _record_shards(entry, {s["index"]: s for s in entry["shards"] if s["index"] in done},
                   [s for s in entry["skipped"] if s["shard"] in done])
    plan = []
    for i in range(count):
        if i not in done:
            start, stop = i * shard_size, min((i + 1) * shard_size, len(split_clips))
            plan.append({"index": i, "name": prepared.shard_name(split, i, count), "start": start, "stop": stop,
                         "clips": split_clips[start:stop]})
    return plan


def _record_shards(entry, shards, skipped):
    """Sets the split entry's shards, skipped clips and totals from {index: shard entry} and skipped entries."""
    entry["shards"] = [shards[i] for i in sorted(shards)]
    entry["skipped"] = sorted(skipped, key=lambda s: (s["shard"], s["position"]))
    entry["clips"] = sum(s["clips"] for s in entry["shards"])
    entry["captions"] = sum(s["captions"] for s in entry["shards"])
    entry["cut"] = [clip for s in entry["shards"] for clip in s.get("cut", [])]
    entry["complete"] = len(entry["shards"]) == entry["shard_count"]


def _write_split(split, plan, manifest, out_dir, index, vocabulary, keyword_vocabulary, extractor, pool, window,
                 batch_size, progress, on_shard_complete):
    entry = manifest["splits"][split]
    prepared.save_manifest(out_dir, manifest)
    if not plan:
        return
    items = [(shard["index"], clip, index.find(clip)) for shard in plan for clip in shard["clips"]]
    options = manifest["options"]
    stream = decode_workers.decoded(items, pool, window, options["sample_rate"], options["max_seconds"])
    total = entry["clips_in_csv"]
    bar = tqdm.tqdm(total=total, initial=total - len(items), unit="clip", desc=f"prepare {split}",
                    disable=not progress, dynamic_ncols=True)
    with bar:
        for shard in plan:
            shard_entry, skipped = _write_shard(
                split, shard, stream, out_dir, index, vocabulary, keyword_vocabulary, extractor, batch_size, bar
            )
            shards = {s["index"]: s for s in entry["shards"]}
            shards[shard["index"]] = shard_entry
            _record_shards(entry, shards, entry["skipped"] + skipped)
            prepared.save_manifest(out_dir, manifest)
            if on_shard_complete is not None:
                on_shard_complete(split, shard_entry)


def _write_shard(split, shard, stream, out_dir, index, vocabulary, keyword_vocabulary, extractor, batch_size, bar):
    """Consumes the shard's clips from `stream`, writes `name.partial`, renames it; returns (entry, skipped)."""
    import tensorflow as tf

    from audiocaps_tf.data.records import WAVEFORM_SCALE, clip_example, encode_waveform

    final = out_dir / shard["name"]
    skipped, cut, written, captions = [], [], 0, 0
    batch = []

    def flush(writer):
        nonlocal written, captions
        if not batch:
            return
        # The records store int16 PCM; features are computed from exactly what a reader decodes from them.
        waveforms = [np.frombuffer(encode_waveform(waveform), "<i2").astype(np.float32) / np.float32(WAVEFORM_SCALE)
                     for _, waveform in batch]
        for (clip, _), waveform, values in zip(batch, waveforms, extractor(waveforms)):
            if "waveform" in extractor.features:
                values = {"waveform": waveform, **values}
            caption_ids = [vocabulary.encode(caption) for caption in clip.captions]
            example = clip_example(clip, caption_ids, attributes.clip_attributes(clip, keyword_vocabulary), values,
                                   num_samples=waveform.size)
            writer.write(example)
            written += 1
            captions += len(clip.captions)
        batch.clear()

    with atomic_path(final) as temporary, tf.io.TFRecordWriter(str(temporary)) as writer:
        for position in range(shard["start"], shard["stop"]):
            (_, clip, path), decoded, reason = next(stream)
            if decoded is None:
                if path is None:
                    reason = (f"no audio file under {index.root} named {clip.key}, Y{clip.youtube_id}, "
                              f"{clip.youtube_id} or an audiocap_id, with extension {', '.join(AUDIO_EXTENSIONS)}")
                elif reason.startswith(f"{path}: "):
                    reason = reason[len(f"{path}: "):]
                logger.warning("%s: skipping clip %s (%s): %s", split, clip.key, path or "no audio file", reason)
                skipped.append({"key": clip.key, "path": None if path is None else str(path), "reason": reason,
                                "shard": shard["index"], "position": position})
            else:
                waveform, seconds = decoded
                if waveform.size < round(seconds * params.SAMPLE_RATE):
                    logger.warning("%s: clip %s (%s) is %.1f s long: cut to its first %g s (--max-seconds)", split,
                                   clip.key, path, seconds, waveform.size / params.SAMPLE_RATE)
                    cut.append({"key": clip.key, "seconds": round(seconds, 3)})
                batch.append((clip, waveform))
                if len(batch) == batch_size:
                    flush(writer)
            bar.update()
        flush(writer)
    entry = {"file": final.name, "index": shard["index"], "csv_clips": [shard["start"], shard["stop"]],
             "clips": written, "captions": captions, "cut": cut, "bytes": final.stat().st_size}
    return entry, skipped


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


def _comma_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def add_arguments(parser):
    parser.add_argument("--data-dir", required=True, type=pathlib.Path, metavar="DIR",
                        help=f"a directory in the AudioCaps layout (split CSVs, {AUDIO_DIR}/)")
    parser.add_argument("--out", required=True, type=pathlib.Path, metavar="OUT",
                        help="directory to write: new, empty, or an earlier `prepare` output to resume")
    parser.add_argument("--features", type=_comma_list, default=list(DEFAULT_FEATURES), metavar="LIST",
                        help=f"comma-separated among {', '.join(FEATURES)} (default: {','.join(DEFAULT_FEATURES)})")
    parser.add_argument("--splits", type=_comma_list, default=list(SPLITS), metavar="LIST",
                        help=f"comma-separated splits to write (default: {','.join(SPLITS)})")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="audio-decoding processes (default: one per CPU; 0 decodes in the main process)")
    parser.add_argument("--vggish-weights", default=None, metavar="SOURCE",
                        help="VGGish weights for --features vggish: a TF Hub handle, an extracted hub module "
                             f"directory or a TF1 checkpoint (default: {params.VGGISH_HUB_HANDLE})")
    parser.add_argument("--tokenizer", choices=sorted(TOKENIZERS), default="word",
                        help="caption tokenizer (default: word)")
    parser.add_argument("--vocab-size", type=int, default=None, metavar="N",
                        help="word: cap on the vocabulary size (default: every word); sentencepiece: its size "
                             "(default: 1000). Reserved tokens included")
    parser.add_argument("--min-count", type=int, default=1, metavar="N",
                        help="word tokenizer: keep words seen at least N times in train (default: 1)")
    parser.add_argument("--keywords", type=int, default=None, metavar="K",
                        help=f"keyword vocabulary size for attribute words (default: {attributes.DEFAULT_KEYWORDS})")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, metavar="N",
                        help=f"CSV clips per shard (default: {DEFAULT_SHARD_SIZE})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help=f"clips per batch through the feature extractors (default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--max-seconds", type=float, default=params.MAX_CLIP_SECONDS, metavar="S",
                        help="cut clips longer than S seconds to their first S, reported (default: "
                             f"{params.MAX_CLIP_SECONDS:g}; shorter and longer clips up to it are kept whole)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from tqdm.contrib.logging import logging_redirect_tqdm

    from audiocaps_tf.layers.vggish_weights import VGGishWeightsUnavailableError

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        with logging_redirect_tqdm():
            manifest = prepare_dataset(
                args.data_dir, args.out, features=args.features, splits=args.splits, workers=args.workers,
                vggish_weights=args.vggish_weights, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                min_count=args.min_count, keywords=args.keywords, shard_size=args.shard_size,
                batch_size=args.batch_size, progress=not args.no_progress, max_seconds=args.max_seconds,
            )
    except EmptySplitError as err:
        _print_summary(err.manifest, args.out)
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (DataError, DecodeWorkerError, ValueError, VGGishWeightsUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    _print_summary(manifest, args.out)
    return 0


def _print_summary(manifest, out_dir):
    for split, entry in manifest["splits"].items():
        cut = entry.get("cut", [])
        cut_text = f", {len(cut)} cut to {manifest['options']['max_seconds']:g} s" if cut else ""
        print(f"{split}: {entry['clips']} clips, {entry['captions']} captions in {len(entry['shards'])} shard(s); "
              f"{len(entry['skipped'])} skipped{cut_text}")
    vocabulary = manifest["vocabulary"]
    directory = pathlib.Path(out_dir) / vocabulary["path"]
    print(f"vocabulary: {vocabulary['size']} {vocabulary['kind']} tokens in {directory}")
    print(f"manifest: {pathlib.Path(out_dir) / MANIFEST_FILE}")
