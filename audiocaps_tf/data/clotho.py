"""Clotho v2.1 (Drossos et al., ICASSP 2020): its Zenodo release, checked, extracted and laid out for `--data-dir`.

    python -m audiocaps_tf.data download --dataset clotho --out DIR [--splits train,val,test] [--keep-archives]

Fetches from Zenodo record 4783391 (https://zenodo.org/records/4783391) the captions, metadata and audio of the
development, validation and evaluation sets, each file checked against its pinned MD5 sum (`http_download`:
interrupted transfers resume with HTTP ranges; a wrong sum is fetched again once). Writes:

    DIR/train.csv, val.csv, test.csv   development / validation / evaluation in the AudioCaps layout: one row per
                                       caption (5 per clip), youtube_id = the file name without ".wav",
                                       start_time 0, labels = the clip's Freesound keywords, audio_file =
                                       "development/<file name>" (names with spaces and any characters)
    DIR/audio/{development,validation,evaluation}/*.wav   44.1 kHz mono, 15-30 s, from the 7z archives (py7zr)
    DIR/clotho/                        the release's captions and metadata CSVs as published: the metadata gives
                                       each file's Freesound link, author and licence (attribution, CC licences)

A rerun fetches nothing that is there: a split whose every audio file is in place does not fetch its archive, and
a kept CSV is checked against its sum. Archives are extracted into DIR/audio/.extracting-<set>/ and moved into
place file by file (a file already there is never replaced), then removed unless `--keep-archives`. Clotho's
captions are licensed by Tampere University (see the record); the audio files carry their Freesound licences.
"""

import csv
import io
import os
import pathlib
import shutil

from audiocaps_tf.data.http_download import HttpDownloadError, fetch_verified
from audiocaps_tf.data.layout import AUDIO_DIR, AUDIO_FILE_COLUMN, LABELS_COLUMN, REQUIRED_COLUMNS, DataError
from audiocaps_tf.data.layout import read_split, split_path
from audiocaps_tf.files import write_text_atomically

__all__ = ["CLOTHO_URL", "CLOTHO_URL_ENV_VAR", "CLOTHO_SETS", "CLOTHO_MD5", "ClothoError", "download_clotho"]

CLOTHO_URL = "https://zenodo.org/records/4783391/files"
CLOTHO_URL_ENV_VAR = "AUDIOCAPS_TF_CLOTHO_URL"
CLOTHO_SETS = {"train": "development", "val": "validation", "test": "evaluation"}
ORIGINALS_DIR = "clotho"
CAPTION_COLUMNS = tuple(f"caption_{k}" for k in range(1, 6))

# The v2.1 record's files and their MD5 sums (as Zenodo lists them).
CLOTHO_MD5 = {
    "clotho_audio_development.7z": "c8b05bc7acdb13895bb3c6a29608667e",
    "clotho_captions_development.csv": "d4090b39ce9f2491908eebf4d5b09bae",
    "clotho_metadata_development.csv": "170d20935ecfdf161ce1bb154118cda5",
    "clotho_audio_validation.7z": "7dba730be08bada48bd15dc4e668df59",
    "clotho_captions_validation.csv": "5879e023032b22a2c930aaa0528bead4",
    "clotho_metadata_validation.csv": "2e010427c56b1ce6008b0f03f41048ce",
    "clotho_audio_evaluation.7z": "4569624ccadf96223f19cb59fe4f849f",
    "clotho_captions_evaluation.csv": "1b16b9e57cf7bdb7f13a13802aeb57e2",
    "clotho_metadata_evaluation.csv": "13946f054d4e1bf48079813aac61bf77",
}

PY7ZR_HINT = "extracting Clotho's 7z archives needs py7zr: pip install \"audiocaps-tf[clotho]\" (or pip install py7zr)"


class ClothoError(RuntimeError):
    """A Clotho download that cannot go on; the message names the file."""


def _read_text(path):
    """The release's CSVs are UTF-8; v2's metadata files are ISO-8859-1."""
    data = pathlib.Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


def _csv_dicts(path, required):
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    missing = [column for column in required if column not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {reader.fieldnames}")
    return list(reader)


def read_clotho_captions(captions_csv, metadata_csv):
    """[(file name, (5 captions), (keywords))] in the captions file's order; DataError naming the file."""
    keywords = {row["file_name"]: tuple(k.strip() for k in (row.get("keywords") or "").split(";") if k.strip())
                for row in _csv_dicts(metadata_csv, ("file_name",))}
    clips = []
    for line, row in enumerate(_csv_dicts(captions_csv, ("file_name",) + CAPTION_COLUMNS), start=2):
        captions = tuple((row[column] or "").strip() for column in CAPTION_COLUMNS)
        if not row["file_name"] or not all(captions):
            raise DataError(f"{captions_csv}, line {line}: an empty file_name or caption")
        clips.append((row["file_name"], captions, keywords.get(row["file_name"], ())))
    return clips


def layout_rows(clips, audio_set):
    """The AudioCaps-layout rows of one Clotho set: one per caption."""
    rows = []
    for index, (file_name, captions, keywords) in enumerate(clips):
        for k, caption in enumerate(captions, start=1):
            rows.append({"audiocap_id": f"{audio_set}-{index:05d}-{k}", "youtube_id": file_name.rsplit(".", 1)[0],
                         "start_time": "0", "caption": caption, LABELS_COLUMN: ";".join(keywords),
                         AUDIO_FILE_COLUMN: f"{audio_set}/{file_name}"})
    return rows


def _write_layout_csv(path, rows):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(REQUIRED_COLUMNS) + [LABELS_COLUMN, AUDIO_FILE_COLUMN],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(path, text.getvalue())


def extract_audio(archive, audio_dir, file_names):
    """Extracts the .wav files of `archive` into `audio_dir` (a file already there is kept); returns how many were
    placed. ClothoError naming the archive when it does not read as 7z or lacks some of `file_names`."""
    try:
        import py7zr
    except ImportError:
        raise ClothoError(PY7ZR_HINT) from None
    staging = audio_dir.parent / f".extracting-{audio_dir.name}"
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's leftovers
    try:
        with py7zr.SevenZipFile(archive, mode="r") as seven_zip:
            seven_zip.extractall(path=staging)
    except (py7zr.exceptions.ArchiveError, EOFError, OSError, ValueError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise ClothoError(f"{archive}: not a readable 7z archive ({type(err).__name__}: {err}); remove it and run "
                          f"again to fetch it again") from err
    audio_dir.mkdir(parents=True, exist_ok=True)
    placed = 0
    for folder, _, names in os.walk(staging):
        for name in names:
            if name.lower().endswith(".wav") and not (audio_dir / name).exists():
                os.replace(os.path.join(folder, name), audio_dir / name)
                placed += 1
    shutil.rmtree(staging, ignore_errors=True)
    missing = [name for name in file_names if not (audio_dir / name).is_file()]
    if missing:
        raise ClothoError(f"{archive}: {len(missing)} file(s) its captions name are not in it, e.g. {missing[0]!r}")
    return placed


def _fetch_audio(audio_dir, names, fetch_archive, keep_archives, log):
    """The set's audio files in `audio_dir`; the archive is fetched only when some file is not there."""
    if all((audio_dir / name).is_file() for name in names):
        log(f"{audio_dir}: all {len(names)} files there, archive not needed")
        return
    archive = fetch_archive()
    placed = extract_audio(archive, audio_dir, names)
    log(f"{audio_dir}: {placed} file(s) extracted from {archive.name}")
    if not keep_archives:
        archive.unlink()


def download_clotho(data_dir, splits=tuple(CLOTHO_SETS), base_url=None, keep_archives=False, audio=True, md5=None,
                    log=print):
    """Fetches, checks and lays out the Clotho sets of `splits` in `data_dir`; returns {split: number of clips}.

    `base_url`: where the record's files are (default ${AUDIOCAPS_TF_CLOTHO_URL}, else Zenodo); `md5`: the sums to
    check against (default CLOTHO_MD5); `audio=False`: the CSVs only. Raises ClothoError (or DataError for a
    malformed CSV) naming the file.
    """
    data_dir = pathlib.Path(data_dir)
    base_url = (base_url or os.environ.get(CLOTHO_URL_ENV_VAR) or CLOTHO_URL).rstrip("/")
    md5 = CLOTHO_MD5 if md5 is None else md5
    originals = data_dir / ORIGINALS_DIR

    def fetch(name, folder):
        try:
            status = fetch_verified(f"{base_url}/{name}", folder / name, md5[name])
        except HttpDownloadError as err:
            raise ClothoError(str(err)) from err
        log(f"{folder / name}: {'checked, kept' if status == 'kept' else 'downloaded and checked'}")
        return folder / name

    counts = {}
    for split in splits:
        audio_set = CLOTHO_SETS[split]
        clips = read_clotho_captions(fetch(f"clotho_captions_{audio_set}.csv", originals),
                                     fetch(f"clotho_metadata_{audio_set}.csv", originals))
        if audio:
            _fetch_audio(data_dir / AUDIO_DIR / audio_set, [file_name for file_name, _, _ in clips],
                         lambda: fetch(f"clotho_audio_{audio_set}.7z", originals / "archives"), keep_archives, log)
        target = split_path(data_dir, split)
        rows = layout_rows(clips, audio_set)
        if target.exists():
            if len(read_split(target)) != len(clips):
                raise ClothoError(f"{target} exists and does not hold the {len(clips)} clips of Clotho's "
                                  f"{audio_set} set; it is never overwritten: move it away and run again")
            log(f"{target}: kept the existing file")
        else:
            _write_layout_csv(target, rows)
            log(f"{target}: {len(clips)} clips, {len(rows)} captions")
        counts[split] = len(clips)
    return counts
