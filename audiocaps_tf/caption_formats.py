"""Where and how `caption` and `serving.client` write segments: TSV, JSON lines, SubRip (.srt) or WebVTT (.vtt).

    tsv   path<TAB>caption for a file no longer than one window (the format of version 0.1), else one line per
          segment: path<TAB>start<TAB>end<TAB>caption (seconds, 3 decimals)
    json  one object per segment: {"path", "start", "end", "caption", "score"}
    srt   numbered cues "HH:MM:SS,mmm --> HH:MM:SS,mmm"; a player shows them as subtitles next to the audio
    vtt   "WEBVTT", then cues "HH:MM:SS.mmm --> HH:MM:SS.mmm"
"""

import json
import os
import pathlib
import sys

__all__ = ["FORMATS", "EXTENSIONS", "render", "CaptionOutput"]

FORMATS = ("tsv", "json", "srt", "vtt")
EXTENSIONS = {"tsv": ".tsv", "json": ".jsonl", "srt": ".srt", "vtt": ".vtt"}


def _timestamp(seconds, separator):
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{fraction:03d}"


def render(output_format, path, segments, single_window=False, notices=()):
    """The text of one file's segments in `output_format`; `single_window`: the file fits in one window (TSV then
    keeps the two-column line of version 0.1). `notices` ("silent", "short"): JSON records carry them as
    "notices" (the other formats leave them to the warnings on stderr)."""
    if output_format == "tsv":
        if single_window and len(segments) == 1:
            return f"{path}\t{segments[0].caption}\n"
        return "".join(f"{path}\t{s.start:.3f}\t{s.end:.3f}\t{s.caption}\n" for s in segments)
    if output_format == "json":
        marked = {"notices": list(notices)} if notices else {}
        return "".join(json.dumps({"path": path, "start": round(s.start, 3), "end": round(s.end, 3),
                                   "caption": s.caption, "score": round(s.score, 4), **marked},
                                  ensure_ascii=False) + "\n"
                       for s in segments)
    if output_format == "srt":
        return "".join(f"{number}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.caption}\n\n"
                       for number, s in enumerate(segments, 1))
    if output_format == "vtt":
        return "WEBVTT\n\n" + "".join(f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.caption}\n\n"
                                      for s in segments)
    raise ValueError(f"unknown output format {output_format!r}; one of {', '.join(FORMATS)}")


class CaptionOutput:
    """Where the text of each file goes: stdout, one file, or one file per input in a directory; files are written
    under a temporary name and renamed when complete, so an interrupted run never leaves half a file."""

    def __init__(self, out, output_format, paths, overwrite):
        self.output_format = output_format
        self.directory = None
        self.single = None
        if out is None:
            if output_format in ("srt", "vtt") and len(paths) > 1:
                raise ValueError(f"{output_format} output of several files needs --out DIR (one file per input)")
        elif out.is_dir() or (output_format in ("srt", "vtt") and len(paths) > 1):
            self.directory = out
            targets = [out / (pathlib.Path(path).stem + EXTENSIONS[output_format]) for path in paths]
            repeated = sorted({t.name for t in targets if targets.count(t) > 1})
            if repeated:
                raise ValueError(f"several inputs would write {out / repeated[0]}; caption them in separate runs")
            self._check_new(targets, overwrite)
            self.targets = dict(zip(paths, targets))
        else:
            self._check_new([out], overwrite)
            self.single = out
        self._single_text = []

    @staticmethod
    def _check_new(targets, overwrite):
        existing = [t for t in targets if t.exists()]
        if existing and not overwrite:
            raise ValueError(f"{existing[0]} exists; pass --overwrite to replace it")

    @staticmethod
    def _write(target, text):
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)

    def add(self, path, text):
        if self.directory is not None:
            self._write(self.targets[path], text)
        elif self.single is not None:
            self._single_text.append(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    def close(self):
        if self.single is not None:
            self._write(self.single, "".join(self._single_text))
