"""`python -m audiocaps_tf.caption FILE [FILE ...] --model RUN_DIR|MODEL.keras`: captions of audio files of any length.

    python -m audiocaps_tf.caption dog.wav street.flac --model runs/tempatt-mfcc-lstm-20260101-120000
    python -m audiocaps_tf.caption walk.flac --model best.keras --format srt --out walk.srt
    python -m audiocaps_tf.caption recordings/*.wav --model best.keras --format vtt --out subtitles/

A file longer than the window (default 10 s, the training clips' length) is captioned window by window, a window
every --hop seconds (default: the window); the last window holds the rest of the file, zero-padded, and
neighbouring windows with the same caption become one segment. Files are read as a stream, never whole.

Output (--format): tsv prints `path<TAB>caption` for a file no longer than the window, as version 0.1 did, and
`path<TAB>start<TAB>end<TAB>caption` lines (seconds) for a longer one; json prints one object per segment
{"path", "start", "end", "caption", "score"} (--json is --format json); srt and vtt write subtitles that players
show next to the audio. --out FILE writes everything to FILE; --out DIR (an existing directory, or needed for srt/vtt
of several files) writes DIR/<file name>.<tsv|jsonl|srt|vtt>; existing files are kept unless --overwrite.
--no-segments captions the first window only, with a warning for a file that is longer.

A file that is digital silence (no sample reaches one 16-bit step, -90 dBFS) or shorter than MIN_SECONDS (1 s,
zero-padded to the window) still gets a caption, but with a warning on stderr, and its JSON records carry
"notices": ["silent"] / ["short"]: such captions describe the padding, not a sound.

Any format `audiocaps_tf.audio.load_audio` reads (WAV, FLAC, OGG, MP3; m4a and others with ffmpeg) at any sample
rate and channel count. A file that cannot be read is reported on stderr (`error: PATH: cause`; a file damaged
part-way keeps the segments before the damage) and the others are still captioned; the exit status is then 1.
`--model` is a `fit` run directory (its best.keras) or a saved `.keras` model.
"""

import argparse
import itertools
import os
import pathlib
import sys

from audiocaps_tf import params
from audiocaps_tf.arguments import non_negative_int, positive_float, positive_int
from audiocaps_tf.caption_formats import FORMATS, CaptionOutput, render

HELP = "caption audio files of any length with a trained model"
BATCH_SIZE = 16  # windows decoded at a time
MIN_SECONDS = 1.0  # shorter files get a "short" notice
SILENCE_PEAK = 1.0 / 32768  # a file whose every sample is below one 16-bit step is "silent"
PROGRESS_SECONDS = 60.0  # files longer than this get a progress bar on stderr


def add_arguments(parser):
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files to caption")
    parser.add_argument("--model", required=True, type=pathlib.Path, metavar="RUN_DIR|MODEL.keras",
                        help="a `python -m audiocaps_tf.fit` run directory, or a saved .keras model")
    parser.add_argument("--beam-size", type=positive_int, metavar="K",
                        help="beam width (1: greedy; default: the model's own, its beam_size hyper-parameter)")
    parser.add_argument("--no-repeat-ngram-size", type=non_negative_int, metavar="N",
                        help="never repeat an N-gram within a caption (e.g. 3; 0: off, the paper's decoding; "
                             "default: the model's own, its no_repeat_ngram_size hyper-parameter)")
    parser.add_argument("--window", type=positive_float, metavar="SECONDS",
                        help="seconds of audio per caption (default 10, the training clips' length)")
    parser.add_argument("--hop", type=positive_float, metavar="SECONDS",
                        help="seconds between window starts (default: the window; less overlaps the windows)")
    parser.add_argument("--no-segments", action="store_true",
                        help="caption only the first window of each file (warns when a file is longer)")
    parser.add_argument("--format", choices=FORMATS, help="output format (default tsv; see above)")
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument("--out", type=pathlib.Path, metavar="FILE|DIR",
                        help="write to FILE, or one file per input into DIR (default: stdout)")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist")


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


def _tagged_windows(paths, window, hop, max_windows):
    """(index in `paths`, value) for every file: its length in seconds, its windows, or the error that stopped it."""
    from audiocaps_tf.audio.loading import AudioError
    from audiocaps_tf.models.segments import source_windows

    for index, path in enumerate(paths):
        try:
            for value in source_windows(path, window, hop, max_windows=max_windows):
                yield index, value
        except (AudioError, OSError) as err:
            yield index, err


def _watch_peaks(items, peaks):
    """`items` unchanged, with each file's largest absolute sample recorded in `peaks` {index: peak} on the way."""
    import numpy as np

    from audiocaps_tf.audio.windows import Window

    for index, value in items:
        if isinstance(value, Window) and value.end > value.start:
            peak = float(np.max(np.abs(value.samples[: value.end - value.start])))
            peaks[index] = max(peaks.get(index, 0.0), peak)
        yield index, value


def notices_of(seconds, peak):
    """("silent", "short") as they apply to a file of `seconds` whose largest absolute sample is `peak`."""
    return tuple(name for name, holds in (("silent", peak < SILENCE_PEAK), ("short", seconds < MIN_SECONDS))
                 if holds)


def _warn(path, notices, seconds):
    if "silent" in notices:
        print(f"warning: {path} is digital silence (no sample reaches -90 dBFS): its caption describes silence",
              file=sys.stderr, flush=True)
    if "short" in notices:
        print(f"warning: {path} is {seconds:.2f} s long, under {MIN_SECONDS:g} s: it was zero-padded, and its "
              "caption says little about it", file=sys.stderr, flush=True)


def _report(path, err):
    message = str(err) if path in str(err) else f"{path}: {err}"  # AudioError names the file
    print(f"error: {message}", file=sys.stderr, flush=True)


def caption_files(model, paths, beam_size=None, output_format="tsv", no_repeat_ngram_size=None, window=None,
                  hop=None, segments=True, output=None):
    """Captions every file of `paths` into `output` (a `CaptionOutput`; None: stdout), errors on stderr; returns the
    number of files that failed."""
    import tqdm

    from audiocaps_tf.models.segments import Segment, caption_windows, merge_segments, window_lengths

    output = output or CaptionOutput(None, output_format, paths, overwrite=False)
    window_samples, hop_samples = window_lengths(window, hop)
    window_seconds = window_samples / params.SAMPLE_RATE
    peaks = {}
    items = _watch_peaks(_tagged_windows(paths, window_samples, hop_samples, None if segments else 1), peaks)
    failures = 0
    captioned = caption_windows(model, items, beam_size, no_repeat_ngram_size, BATCH_SIZE)
    for index, values in itertools.groupby(captioned, key=lambda pair: pair[0]):
        path = paths[index]
        seconds, found, error, bar = None, [], None, None
        for _, value in values:
            if isinstance(value, Segment):
                found.append(value)
                if bar is not None:
                    bar.update(min(value.end, seconds) - bar.n)
            elif isinstance(value, Exception):
                error = value
            else:
                seconds = value
                bar = tqdm.tqdm(total=round(seconds, 1), unit="s", desc=os.path.basename(path), file=sys.stderr,
                                leave=False, disable=seconds <= PROGRESS_SECONDS or not segments)
        if bar is not None:
            bar.close()
        notices = notices_of(seconds, peaks.get(index, 0.0)) if found and error is None else ()
        if found:
            single_window = not segments or seconds <= window_seconds
            output.add(path, render(output_format, path, list(merge_segments(found)), single_window, notices))
        _warn(path, notices, seconds)
        if error is not None:
            failures += 1
            _report(path, error)
        elif not segments and seconds > window_seconds:
            print(f"warning: {path} is {seconds:.1f} s long; only its first {window_seconds:g} s were captioned "
                  "(--no-segments)", file=sys.stderr, flush=True)
    return failures


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m audiocaps_tf.caption", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def _output_format(parser, args):
    if args.json and args.format not in (None, "json"):
        parser.error(f"--json and --format {args.format} contradict each other; give one")
    if args.no_segments and args.hop is not None:
        parser.error("--hop has no effect with --no-segments (only the first window is captioned)")
    return "json" if args.json else (args.format or "tsv")


def main(argv=None):
    """The command line; returns the exit status (1 when the model or any file failed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    output_format = _output_format(parser, args)
    paths = [str(path) for path in args.files]
    try:
        output = CaptionOutput(args.out, output_format, paths, args.overwrite)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        model = load_model(args.model)
    except (OSError, ValueError, TypeError) as err:
        print(f"error: cannot load the model {args.model}: {err}", file=sys.stderr)
        return 1
    try:
        failures = caption_files(model, paths, args.beam_size, output_format, args.no_repeat_ngram_size,
                                 args.window, args.hop, not args.no_segments, output)
    except ValueError as err:  # an option the model cannot honour (e.g. --no-repeat-ngram-size on a 1NN model)
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        output.close()
    if failures:
        print(f"error: {failures} of {len(paths)} file(s) could not be captioned", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
