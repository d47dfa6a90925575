"""The AudioCaps layout every command reads: split CSVs grouped into clips, and their audio files.

    DIR/train.csv, DIR/val.csv, DIR/test.csv   audiocap_id, youtube_id, start_time, caption [, labels]
                                               [, audio_file]
    DIR/audio/**/<name>.<ext>                  name: {youtube_id}_{start_time}, Y{youtube_id}, {youtube_id}
                                               or {audiocap_id}; ext: wav, flac, ogg, mp3, m4a, opus, webm
    DIR/audio/<audio_file>                     a clip's file named directly (a path under DIR/audio/, any
                                               characters): datasets whose clips are not YouTube videos (Clotho)

Rows of one clip (same youtube_id and start_time) become one `Clip` with all its captions.
"""

import csv
import dataclasses
import os
import pathlib

SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")
LABELS_COLUMN = "labels"
LABEL_SEPARATOR = ";"
AUDIO_FILE_COLUMN = "audio_file"
AUDIO_DIR = "audio"
AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "mp3", "m4a", "opus", "webm")


class DataError(ValueError):
    """A data file that cannot be used as it is; the message names the file (and line)."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One recording (AudioCaps: 10 s of a YouTube video) with every caption written for it."""

    youtube_id: str
    start_time: int
    captions: tuple
    audiocap_ids: tuple
    labels: tuple = ()
    audio_file: str = ""  # a path under DIR/audio/ when the CSV names the file; "" to find it by name

    @property
    def key(self):
        """`{youtube_id}_{start_time}`: the clip's name in file names, TFRecords and predictions."""
        return f"{self.youtube_id}_{self.start_time}"


def split_path(data_dir, split):
    return pathlib.Path(data_dir) / f"{split}.csv"


def parse_start_time(value, where):
    """Whole seconds >= 0 from a CSV field; DataError naming `where` (file, line) otherwise."""
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{where}: start_time {value!r} is not a number of seconds") from None
    if number < 0 or number != int(number):
        raise DataError(f"{where}: start_time {value!r} must be a whole number of seconds >= 0")
    return int(number)


def csv_rows(csv_path, required_columns):
    """Yields (row dict, "FILE, line N", N) of a CSV that has `required_columns`; DataError naming the file (and
    line) for a missing file or column, or a row with the wrong number of fields."""
    csv_path = pathlib.Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: no such file")
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required_columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(
                f"{csv_path}: missing column(s) {', '.join(missing)}; expected {','.join(required_columns)}, "
                f"found {reader.fieldnames}"
            )
        for row in reader:
            where = f"{csv_path}, line {reader.line_num}"
            if None in row or any(row[c] is None for c in reader.fieldnames):
                raise DataError(f"{where}: expected {len(reader.fieldnames)} fields, found a different number")
            yield row, where, reader.line_num


def read_split(csv_path):
    """Reads one split CSV into clips, in the order their first row appears.

    Raises DataError naming the file and line of a malformed row (missing columns, an empty field,
    a start_time that is not whole seconds).
    """
    clips = {}
    for row, where, _ in csv_rows(csv_path, REQUIRED_COLUMNS):
        for column in REQUIRED_COLUMNS:
            if not row[column].strip():
                raise DataError(f"{where}: empty {column}")
        youtube_id = row["youtube_id"].strip()
        start_time = parse_start_time(row["start_time"].strip(), where)
        labels = tuple(label.strip() for label in (row.get(LABELS_COLUMN) or "").split(LABEL_SEPARATOR) if label.strip())
        audio_file = _audio_file(row.get(AUDIO_FILE_COLUMN) or "", where)
        clip = clips.get((youtube_id, start_time))
        if clip is None:
            clip = clips[(youtube_id, start_time)] = {"captions": [], "ids": [], "labels": labels,
                                                      "audio_file": audio_file}
        elif clip["audio_file"] != audio_file:
            raise DataError(f"{where}: audio_file {audio_file!r} differs from {clip['audio_file']!r} given for the "
                            f"same clip ({youtube_id}, {start_time}) above")
        clip["captions"].append(row["caption"].strip())
        clip["ids"].append(row["audiocap_id"].strip())
    return [
        Clip(youtube_id, start_time, tuple(c["captions"]), tuple(c["ids"]), c["labels"], c["audio_file"])
        for (youtube_id, start_time), c in clips.items()
    ]


def _audio_file(value, where):
    """The audio_file field as a relative POSIX path under DIR/audio/ ("" when not given); DataError naming
    `where` for an absolute path or one that leaves DIR/audio/."""
    value = value.strip()
    if not value:
        return ""
    path = pathlib.PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise DataError(f"{where}: audio_file {value!r} must be a path under {AUDIO_DIR}/ (relative, without ..)")
    return str(path)


def read_splits(data_dir, splits=SPLITS):
    """{split: [Clip]} for each split CSV of `data_dir`."""
    return {split: read_split(split_path(data_dir, split)) for split in splits}


class AudioIndex:
    """Finds each clip's audio file under DIR/audio/, whatever name an AudioCaps downloader gave it."""

    def __init__(self, data_dir):
        self.root = pathlib.Path(data_dir) / AUDIO_DIR
        self._by_stem = {}
        if self.root.is_dir():
            for folder, _, files in sorted(os.walk(self.root)):
                for name in sorted(files):
                    stem, _, extension = name.rpartition(".")
                    if stem and extension.lower() in AUDIO_EXTENSIONS:
                        self._by_stem.setdefault(stem, pathlib.Path(folder) / name)

    def __len__(self):
        return len(self._by_stem)

    def find(self, clip):
        """The clip's audio path, or None when no file of an accepted name exists. A clip whose CSV names its
        file (audio_file) has that file or none."""
        if clip.audio_file:
            path = self.root / clip.audio_file
            return path if path.is_file() else None
        names = [clip.key, f"Y{clip.youtube_id}", clip.youtube_id, *clip.audiocap_ids]
        for name in names:
            if name in self._by_stem:
                return self._by_stem[name]
        return None
