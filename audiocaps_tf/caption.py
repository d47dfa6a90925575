"""`python -m audiocaps_tf.caption FILE [FILE ...] --model RUN_DIR|MODEL.keras`: a caption for every audio file.

    python -m audiocaps_tf.caption dog.wav street.flac --model runs/tempatt-mfcc-lstm-20260101-120000
    python -m audiocaps_tf.caption *.wav --model best.keras --beam-size 3 --json

Prints one line per file, in the order given: `path<TAB>caption`, or with --json a JSON object per line
(`{"path": ..., "caption": ...}`). Any format `audiocaps_tf.audio.load_audio` reads (WAV, FLAC, OGG, MP3; m4a and
others with ffmpeg) at any sample rate and channel count; each file is cut or zero-padded to 10 s, as in training.
A file that cannot be read is reported on stderr (`error: PATH: cause`) and the others are still captioned; the
exit status is then 1. `--model` is a `fit` run directory (its best.keras) or a saved `.keras` model.
"""

import argparse
import json
import os
import pathlib
import sys

from audiocaps_tf.arguments import non_negative_int, positive_int

HELP = "caption audio files with a trained model"
BATCH_SIZE = 16  # files decoded and captioned at a time


def add_arguments(parser):
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files to caption")
    parser.add_argument("--model", required=True, type=pathlib.Path, metavar="RUN_DIR|MODEL.keras",
                        help="a `python -m audiocaps_tf.fit` run directory, or a saved .keras model")
    parser.add_argument("--beam-size", type=positive_int, metavar="K",
                        help="beam width (1: greedy; default: the model's own, its beam_size hyper-parameter)")
    parser.add_argument("--no-repeat-ngram-size", type=non_negative_int, metavar="N",
                        help="never repeat an N-gram within a caption (e.g. 3; 0: off, the paper's decoding; "
                             "default: the model's own, its no_repeat_ngram_size hyper-parameter)")
    parser.add_argument("--json", action="store_true", help="print JSON lines {\"path\", \"caption\"}")


def model_path(path):
    """The .keras file of `--model`: the path itself, or RUN_DIR/best.keras."""
    path = pathlib.Path(path)
    if path.is_dir():
        from audiocaps_tf.training.run_dir import BEST_MODEL_FILE

        candidate = path / BEST_MODEL_FILE
        if not candidate.is_file():
            raise FileNotFoundError(f"{path} holds no {BEST_MODEL_FILE} (is it a finished `fit` run directory?)")
        return candidate
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file or run directory")
    return path


def load_model(path):
    """The captioner saved at `path` (a run directory or a .keras file)."""
    import keras

    import audiocaps_tf  # noqa: F401  (registers the layers)
    import audiocaps_tf.models  # noqa: F401  (registers the captioners)

    return keras.models.load_model(model_path(path))


def _print(path, caption, as_json):
    if as_json:
        print(json.dumps({"path": path, "caption": caption}, ensure_ascii=False), flush=True)
    else:
        print(f"{path}\t{caption}", flush=True)


def caption_files(model, paths, beam_size=None, as_json=False, no_repeat_ngram_size=None):
    """Prints a caption for each readable file of `paths` (errors on stderr); returns the number of failures."""
    from audiocaps_tf.audio.loading import AudioError, load_audio

    failures = 0
    for start in range(0, len(paths), BATCH_SIZE):
        chunk = paths[start:start + BATCH_SIZE]
        loaded = []
        for path in chunk:
            try:
                loaded.append((path, load_audio(path)))
            except (AudioError, OSError) as err:
                failures += 1
                message = str(err) if path in str(err) else f"{path}: {err}"  # AudioError names the file
                print(f"error: {message}", file=sys.stderr, flush=True)
        if not loaded:
            continue
        captions = model.generate([waveform for _, waveform in loaded], beam_size=beam_size,
                                  no_repeat_ngram_size=no_repeat_ngram_size)
        for (path, _), caption in zip(loaded, captions):
            _print(path, caption, as_json)
    return failures


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m audiocaps_tf.caption", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def main(argv=None):
    """The command line; returns the exit status (1 when the model or any file failed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        model = load_model(args.model)
    except (OSError, ValueError, TypeError) as err:
        print(f"error: cannot load the model {args.model}: {err}", file=sys.stderr)
        return 1
    try:
        failures = caption_files(model, [str(path) for path in args.files], args.beam_size, args.json,
                                 args.no_repeat_ngram_size)
    except ValueError as err:  # an option the model cannot honour (e.g. --no-repeat-ngram-size on a 1NN model)
        print(f"error: {err}", file=sys.stderr)
        return 1
    if failures:
        print(f"error: {failures} of {len(args.files)} file(s) could not be captioned", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
