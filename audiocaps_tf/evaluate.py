"""`python -m audiocaps_tf.evaluate {score,human,retrieval}`: caption metrics on AudioCaps CSVs.

    score      --predictions P.csv --references R.csv [--json OUT] [--per-clip OUT.csv] [--allow-missing]
    human      --references R.csv [--json OUT]       the paper's "Human" upper bound (leave-one-reference-out)
    retrieval  --data-dir DIR --features mfcc|vggish [--split test] [--json OUT]   the paper's 1NN baselines

P.csv has columns youtube_id, start_time, caption (others are ignored), one row per clip; an empty caption is
scored as empty. R.csv is an AudioCaps split CSV (audiocap_id, youtube_id, start_time, caption). Scores are x100,
printed in the column order of the paper's Table 2 (B-1..B-4, METEOR, CIDEr, ROUGE-L, SPICE) plus SPIDEr; SPICE and
SPIDEr need Stanford CoreNLP 3.6.0 (see audiocaps_tf.metrics; --spice-dir DIR or $AUDIOCAPS_SPICE_DIR) and are "-"
without it. Output files are never overwritten unless --overwrite.
"""

import argparse
import csv
import json
import pathlib
import sys

from audiocaps_tf import metrics
from audiocaps_tf.data.layout import DataError, csv_rows, parse_start_time, read_split

PREDICTION_COLUMNS = ("youtube_id", "start_time", "caption")
JSON_KEYS = metrics.METRICS + ("num_clips",)


# ----------------------------------------------------------------------------------------------------------------------
# Helpers shared by the commands (and by commands added later)


def clip_key(youtube_id, start_time):
    """The `{youtube_id}_{start_time}` name of a clip (Clip.key)."""
    return f"{youtube_id}_{start_time}"


def read_predictions(csv_path):
    """{clip key: (caption, line)} of a predictions CSV; DataError naming the file (and line) when malformed.

    Each clip may appear once; a missing or empty caption field is an empty caption only when the column exists.
    """
    predictions = {}
    for row, where, line in csv_rows(csv_path, PREDICTION_COLUMNS):
        for column in ("youtube_id", "start_time"):
            if not row[column].strip():
                raise DataError(f"{where}: empty {column}")
        key = clip_key(row["youtube_id"].strip(), parse_start_time(row["start_time"].strip(), where))
        if key in predictions:
            raise DataError(f"{where}: a second prediction for clip {key} (the first is on line "
                            f"{predictions[key][1]})")
        predictions[key] = (row["caption"].strip(), line)
    if not predictions:
        raise DataError(f"{csv_path}: no predictions")
    return predictions


def check_outputs(args, *names):
    """DataError when an output file named by `args.<name>` exists and --overwrite was not given."""
    for name in names:
        path = getattr(args, name, None)
        if path is not None and pathlib.Path(path).exists() and not args.overwrite:
            raise DataError(f"{path} exists; pass --overwrite to replace it")


def _open_output(path, overwrite):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return open(path, "w" if overwrite else "x", newline="", encoding="utf-8")
    except FileExistsError:
        raise DataError(f"{path} exists; pass --overwrite to replace it") from None


def write_json(path, data, overwrite=False):
    with _open_output(path, overwrite) as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def add_output_arguments(parser):
    parser.add_argument("--json", metavar="OUT", help="write the scores to this JSON file")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def add_spice_arguments(parser):
    parser.add_argument("--spice-dir", metavar="DIR", help="directory holding stanford-corenlp-3.6.0.jar and "
                        "stanford-corenlp-3.6.0-models.jar (default: $AUDIOCAPS_SPICE_DIR, then pycocoevalcap's "
                        "spice/lib)")
    parser.add_argument("--no-spice", action="store_true", help="skip SPICE and SPIDEr")


def _spice_options(args):
    return {"spice": False if args.no_spice else (True if args.spice_dir else None), "spice_dir": args.spice_dir}


def _print_scores(title, scores):
    print(title)
    print(metrics.format_table(scores))


# ----------------------------------------------------------------------------------------------------------------------
# score


SCORE_HELP = "score predicted captions against a split's references"


def add_score_arguments(parser):
    parser.add_argument("--predictions", required=True, metavar="P.csv",
                        help="youtube_id,start_time,caption; one row per clip")
    parser.add_argument("--references", required=True, metavar="R.csv", help="an AudioCaps split CSV")
    parser.add_argument("--per-clip", metavar="OUT.csv", help="write every clip's scores to this CSV")
    parser.add_argument("--allow-missing", action="store_true",
                        help="score only the clips that have a prediction instead of failing")
    add_output_arguments(parser)
    add_spice_arguments(parser)


def _examples(keys, lines=None, count=5):
    shown = [f"{k} (line {lines[k]})" if lines else k for k in keys[:count]]
    return ", ".join(shown) + (", ..." if len(keys) > count else "")


def match_predictions(predictions, clips, predictions_path, references_path, allow_missing=False):
    """({key: caption}, {key: [reference, ...]}, number of reference clips skipped) for scoring.

    DataError for predictions of clips not in the references, and for reference clips without a prediction
    unless allow_missing.
    """
    references = {clip.key: list(clip.captions) for clip in clips}
    lines = {key: line for key, (_, line) in predictions.items()}
    unknown = [k for k in predictions if k not in references]
    if unknown:
        raise DataError(f"{predictions_path}: {len(unknown)} prediction(s) for clips not in {references_path}: "
                        f"{_examples(unknown, lines)}")
    missing = [k for k in references if k not in predictions]
    if missing and not allow_missing:
        raise DataError(f"{predictions_path}: no prediction for {len(missing)} of the {len(references)} clips of "
                        f"{references_path}: {_examples(missing)} (--allow-missing scores only the predicted clips)")
    keys = [k for k in references if k in predictions]
    return {k: predictions[k][0] for k in keys}, {k: references[k] for k in keys}, len(missing)


def write_per_clip(path, clips, predictions, per_clip, overwrite=False):
    by_key = {clip.key: clip for clip in clips}
    with _open_output(path, overwrite) as f:
        writer = csv.writer(f)
        writer.writerow(["youtube_id", "start_time", "caption", *metrics.METRICS])
        for key, scores in per_clip.items():
            clip = by_key[key]
            writer.writerow([clip.youtube_id, clip.start_time, predictions[key],
                             *("" if scores[m] is None else f"{scores[m]:.4f}" for m in metrics.METRICS)])


def run_score(args):
    check_outputs(args, "json", "per_clip")
    predictions = read_predictions(args.predictions)
    clips = read_split(args.references)
    captions, references, skipped = match_predictions(predictions, clips, args.predictions, args.references,
                                                      args.allow_missing)
    if skipped:
        print(f"--allow-missing: skipped {skipped} of the {len(clips)} clips of {args.references} (no prediction); "
              f"scoring {len(captions)}", file=sys.stderr)
    scores, per_clip = metrics.score_captions(captions, references, per_clip=True, **_spice_options(args))
    result = {**scores, "num_clips": len(captions), "skipped": skipped}
    _print_scores(f"{len(captions)} clips of {args.references}" + (f" ({skipped} skipped)" if skipped else ""),
                  result)
    if args.json:
        write_json(args.json, result, args.overwrite)
    if args.per_clip:
        write_per_clip(args.per_clip, clips, captions, per_clip, args.overwrite)
    return 0


# ----------------------------------------------------------------------------------------------------------------------
# human


HUMAN_HELP = "the human upper bound: each reference scored against the clip's other references"


def add_human_arguments(parser):
    parser.add_argument("--references", required=True, metavar="R.csv", help="an AudioCaps split CSV")
    add_output_arguments(parser)
    add_spice_arguments(parser)


def run_human(args):
    check_outputs(args, "json")
    clips = read_split(args.references)
    result = metrics.human_upper_bound({clip.key: list(clip.captions) for clip in clips}, **_spice_options(args))
    title = (f"Human (leave one reference out, {result['turns']} turns): "
             f"{result['num_clips']} clips of {args.references}")
    if result["skipped"]:
        title += f"; {result['skipped']} clip(s) with fewer than 2 references skipped"
    _print_scores(title, result)
    if args.json:
        write_json(args.json, result, args.overwrite)
    return 0


# ----------------------------------------------------------------------------------------------------------------------
# retrieval


RETRIEVAL_HELP = "the 1NN baselines: each clip gets the caption of its nearest training clip (mean-pooled features)"


def add_retrieval_arguments(parser):
    parser.add_argument("--data-dir", required=True, metavar="DIR",
                        help="an AudioCaps data dir with audio, or a `prepare` output directory")
    parser.add_argument("--features", required=True, choices=["mfcc", "vggish"],
                        help="MFCC (paper section 5.1) or the VGGish fc2 embedding")
    parser.add_argument("--split", default="test", choices=["val", "test"], help="the split to caption (default test)")
    parser.add_argument("--vggish-weights", metavar="SOURCE", default=None,
                        help="VGGish weights when they must be computed: a TF Hub handle (default google/vggish/1), "
                        "an extracted hub module directory or vggish_model.ckpt")
    parser.add_argument("--predictions", metavar="OUT.csv", help="also write the retrieved captions (youtube_id, "
                        "start_time, caption)")
    add_output_arguments(parser)
    add_spice_arguments(parser)


def run_retrieval(args):
    from audiocaps_tf import params, retrieval  # TensorFlow only for this command
    from audiocaps_tf.data.pipeline import open_source
    from audiocaps_tf.tokens.vocabulary import WordVocabulary

    check_outputs(args, "json", "predictions")
    data_dir = pathlib.Path(args.data_dir)
    vocabulary = None
    if (data_dir / "train.csv").is_file():  # a raw data dir: its sources need a vocabulary to encode captions
        vocabulary = WordVocabulary.build([c for clip in read_split(data_dir / "train.csv") for c in clip.captions])
    train = open_source(data_dir, "train", vocabulary)
    query = open_source(data_dir, args.split, vocabulary)
    captions = retrieval.nearest_neighbour_captions(
        train, query, args.features, args.vggish_weights or params.VGGISH_HUB_HANDLE
    )
    references = {}
    for clip in query.clip_dataset([]):
        references[clip["key"].numpy().decode()] = [c.decode() for c in clip["captions"].numpy()]
    references = {key: references[key] for key in captions}
    scores = metrics.score_captions(captions, references, **_spice_options(args))
    result = {**scores, "num_clips": len(captions)}
    _print_scores(f"1NN-{args.features.upper() if args.features == 'mfcc' else 'VGGish'}: "
                  f"{len(captions)} {args.split} clips of {data_dir}", result)
    if args.json:
        write_json(args.json, result, args.overwrite)
    if args.predictions:
        with _open_output(args.predictions, args.overwrite) as f:
            writer = csv.writer(f)
            writer.writerow(PREDICTION_COLUMNS)
            for key, caption in captions.items():
                youtube_id, _, start_time = key.rpartition("_")
                writer.writerow([youtube_id, start_time, caption])
    return 0


# ----------------------------------------------------------------------------------------------------------------------
# The command line

# name: (help, add_arguments(parser), run(args) -> exit code). A new subcommand (e.g. "retrieval") adds an entry.
COMMANDS = {
    "score": (SCORE_HELP, add_score_arguments, run_score),
    "human": (HUMAN_HELP, add_human_arguments, run_human),
    "retrieval": (RETRIEVAL_HELP, add_retrieval_arguments, run_retrieval),
}

# Errors reported as one "error: ..." line (exit code 1) instead of a traceback.
EXPECTED_ERRORS = (DataError, metrics.MetricsError, ValueError, OSError)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m audiocaps_tf.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        command = subparsers.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    with metrics.spice_warnings_as_messages():
        try:
            return args.run(args)
        except EXPECTED_ERRORS as err:
            print(f"error: {err}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
