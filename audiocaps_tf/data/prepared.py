"""The layout of a `prepare` output directory: its names, the fields and shapes of the features it holds, the
manifest, and the lock that keeps two runs from writing one directory at once (see `prepare` for the whole).
"""

import contextlib
import hashlib
import json
import os
import pathlib
import re

from audiocaps_tf import params
from audiocaps_tf.data.layout import DataError
from audiocaps_tf.features import PREPARE_FEATURES
from audiocaps_tf.files import PARTIAL_SUFFIX, write_text_atomically

MANIFEST_FILE = "manifest.json"
TOKENIZER_DIR = "tokenizer"
KEYWORDS_FILE = "keywords.txt"
LOCK_FILE = ".prepare.lock"
MANIFEST_FORMAT = "audiocaps_tf.prepare/1"

FEATURES = tuple(PREPARE_FEATURES)  # the `--features` names, in the order fields are listed
DEFAULT_FEATURES = ("waveform", "mfcc")  # neither needs a download

_SHARD_PATTERN = re.compile(r"^(?P<split>\w+)-\d{5}-of-\d{5}\.tfrecord(\.partial)?$")


# ---------------------------------------------------------------------------------------------------------------
# Names and shapes
# ---------------------------------------------------------------------------------------------------------------


def shard_name(split, index, count):
    """File name of shard `index` (0-based) of the `count` shards of `split`."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def feature_shapes(features, num_samples=None):
    """{record field: shape} of every field the `features` write, for a clip of `num_samples` samples (16 kHz);
    None: the time dimension is None (clips have their own lengths)."""
    from audiocaps_tf.layers.log_mel_frontend import num_log_mel_examples
    from audiocaps_tf.layers.mfcc_frontend import num_mfcc_frames
    from audiocaps_tf.layers.vggish import FEATURES as VGGISH_CHANNELS

    def steps(count):
        return None if num_samples is None else count(num_samples)

    shapes = {}
    for feature in canonical_features(features):
        if feature == "waveform":
            shapes["waveform"] = [num_samples]
        elif feature == "mfcc":
            shapes["mfcc"] = [steps(num_mfcc_frames), params.MFCC_NUM_COEFFICIENTS]
        elif feature == "vggish":
            for name in ("fc2", "conv4", "conv3"):
                shapes[f"vggish_{name}"] = [steps(num_log_mel_examples), VGGISH_CHANNELS[name]]
        elif feature == "log_mel":  # the frames of VGGish's whole examples (`models.preprocessor`)
            shapes["log_mel"] = [steps(lambda n: num_log_mel_examples(n) * params.EXAMPLE_FRAMES),
                                 params.NUM_MEL_BANDS]
    return shapes


def canonical_features(features):
    """The `--features` names, validated, deduplicated and in `FEATURES` order (so the order given never matters)."""
    if isinstance(features, str):
        features = [f for f in features.split(",") if f.strip()]
    names = [f.strip() for f in features]
    unknown = sorted(set(names) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown feature(s) {', '.join(unknown)}; choose among {', '.join(FEATURES)}")
    if not names:
        raise ValueError(f"no features requested; choose among {', '.join(FEATURES)}")
    return [f for f in FEATURES if f in names]


def record_fields(features):
    return [field for feature in canonical_features(features) for field in PREPARE_FEATURES[feature]]


# ---------------------------------------------------------------------------------------------------------------
# The manifest
# ---------------------------------------------------------------------------------------------------------------


def read_manifest(out_dir):
    """The manifest `prepare_dataset` wrote into `out_dir` (a dict); DataError when there is none."""
    path = pathlib.Path(out_dir) / MANIFEST_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such file; {out_dir} was not written by `prepare`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable manifest ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path}: not a manifest of `prepare` (format {MANIFEST_FORMAT!r} expected)")
    return manifest


def shard_files(out_dir, split):
    """Paths of the shards of `split`, in order; DataError unless the split was prepared completely."""
    manifest = read_manifest(out_dir)
    entry = manifest["splits"].get(split)
    if entry is None:
        raise DataError(f"{out_dir}: split {split!r} was not prepared (prepared: {', '.join(manifest['splits'])})")
    if not entry["complete"]:
        raise DataError(f"{out_dir}: split {split!r} is incomplete; run `prepare` again to finish it")
    return [pathlib.Path(out_dir) / shard["file"] for shard in entry["shards"]]


def save_manifest(out_dir, manifest):
    write_text_atomically(out_dir / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def differences(previous, current):
    """Human-readable lines for each option whose value differs."""
    lines = []
    for name in sorted(set(previous) | set(current)):
        before, now = previous.get(name, "<unset>"), current.get(name, "<unset>")
        if before != now:
            if name == "train_csv_sha256":
                lines.append("train_csv_sha256: train.csv (the vocabulary's source) changed since OUT was written")
            else:
                lines.append(f"{name}: {json.dumps(before)} in OUT, {json.dumps(now)} now")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# The output directory
# ---------------------------------------------------------------------------------------------------------------


def is_ours(name):
    """Whether a name in OUT is one `prepare` writes (so an OUT without a manifest must not hold it)."""
    base = name[: -len(PARTIAL_SUFFIX)] if name.endswith(PARTIAL_SUFFIX) else name
    return base in (MANIFEST_FILE, TOKENIZER_DIR, KEYWORDS_FILE, LOCK_FILE) or bool(_SHARD_PATTERN.match(name))


@contextlib.contextmanager
def locked(out_dir):
    """Holds OUT/.prepare.lock (holding this process id) so two runs never write the same OUT at once."""
    path = out_dir / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _process_exists(pid):
                raise DataError(f"{out_dir} is being written by another `prepare` (process {pid}); "
                                f"if that is wrong, delete {path}") from None
            path.unlink(missing_ok=True)  # left by a run that was killed
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        break
    else:
        raise DataError(f"cannot take the lock {path}")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_foreign_files(out_dir):
    """Without a manifest, OUT may hold the user's files but none of the names `prepare` writes."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DataError(f"{out_dir} exists and is not a directory")
    clashes = sorted(p.name for p in out_dir.iterdir() if is_ours(p.name))
    if clashes:
        raise DataError(
            f"{out_dir} has no {MANIFEST_FILE} but holds {', '.join(clashes[:5])}"
            f"{' ...' if len(clashes) > 5 else ''}: not a directory `prepare` wrote; choose an empty or new --out"
        )
