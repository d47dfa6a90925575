"""Print the paper's Table 1 for a data directory: clips, captions, words per caption and labels per clip.

Counts come from the split CSVs alone (no audio needed). Words are the tokens of the normalised captions
(paper section 3.3: punctuation removed, numbers as words); vocab_size is the default train word vocabulary
without its 4 reserved tokens.
"""

import json
import pathlib
import statistics

from audiocaps_tf.tokens.captions import normalize_caption, tokenize
from audiocaps_tf.data.layout import SPLITS, DataError, read_split, split_path
from audiocaps_tf.tokens.vocabulary import RESERVED_TOKENS, WordVocabulary

HELP = "print the paper's Table 1 statistics of a data directory"


def split_statistics(clips):
    """Table 1's columns for one split's clips; labels_per_clip_mean is None when no clip has labels."""
    words = [len(tokenize(normalize_caption(caption))) for clip in clips for caption in clip.captions]
    labelled = [len(clip.labels) for clip in clips if clip.labels]
    return {
        "clips": len(clips),
        "captions": len(words),
        "words_per_caption_mean": statistics.fmean(words) if words else None,
        "words_per_caption_median": statistics.median(words) if words else None,
        "labels_per_clip_mean": statistics.fmean(len(clip.labels) for clip in clips) if labelled else None,
    }


def dataset_statistics(data_dir):
    """{split: statistics} for every split CSV present, plus vocab_size from the train split."""
    splits = {split: read_split(split_path(data_dir, split)) for split in SPLITS if split_path(data_dir, split).exists()}
    if not splits:
        raise DataError(f"{data_dir}: no {', '.join(s + '.csv' for s in SPLITS)} found")
    result = {split: split_statistics(clips) for split, clips in splits.items()}
    vocab_size = None
    if "train" in splits:
        captions = [caption for clip in splits["train"] for caption in clip.captions]
        vocab_size = WordVocabulary.build(captions).size - len(RESERVED_TOKENS)
    result["vocab_size"] = vocab_size
    return result


def format_table(stats):
    def number(value, pattern):
        return "-" if value is None else format(value, pattern)

    lines = [f"{'split':<6} {'# clips':>8} {'# captions':>10} {'# words/caption':>16} {'# labels/clip':>14}"]
    for split in SPLITS:
        if split in stats:
            s = stats[split]
            words = f"{number(s['words_per_caption_mean'], '.2f')} ({number(s['words_per_caption_median'], 'g')})"
            lines.append(
                f"{split:<6} {s['clips']:>8,} {s['captions']:>10,} {words:>16} "
                f"{number(s['labels_per_clip_mean'], '.2f'):>14}"
            )
    lines.append(f"vocabulary (train words, without reserved tokens): {number(stats['vocab_size'], ',')}")
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument("--data-dir", required=True, type=pathlib.Path, help="a directory in the AudioCaps layout")
    parser.add_argument("--json", type=pathlib.Path, help="also write the statistics to this JSON file (new file)")
    parser.add_argument("--overwrite", action="store_true", help="allow --json to replace an existing file")


def run(args):
    if args.json is not None and args.json.exists() and not args.overwrite:
        raise SystemExit(f"error: {args.json} exists; pass --overwrite to replace it")
    try:
        stats = dataset_statistics(args.data_dir)
    except DataError as err:
        raise SystemExit(f"error: {err}") from None
    print(format_table(stats))
    if args.json is not None:
        args.json.write_text(json.dumps(stats, indent=2) + "\n")
    return 0
