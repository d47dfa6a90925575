"""The TF Serving model base directory: integer version directories, written whole and never overwritten.

    MODEL_BASE/1/                 a SavedModel (saved_model.pb, variables/, assets.extra/), and in
                                  assets.extra/model.keras the Keras model it was exported from
    MODEL_BASE/2/
    MODEL_BASE/model-1.keras      hard links to each version's assets.extra/model.keras (copies where the file
    MODEL_BASE/model-2.keras      system has no hard links)
    MODEL_BASE/model.keras        the newest version's Keras model (a hard link to model-2.keras)

A version is written whole, its Keras model included, under a hidden staging name (`.export-2-<pid>`, which TF
Serving ignores: it only loads integer names) and renamed into place once complete and checked, so a server
polling MODEL_BASE never loads half a version, and a published version always has its Keras model. An export
killed after that rename leaves the links to the next export (`link_keras_models` repairs them); staging
directories of exports whose process is gone are removed by the next export.
"""

import filecmp
import os
import pathlib
import shutil

from audiocaps_tf.files import atomic_path

KERAS_MODEL_FILE = "model.keras"
STAGING_PREFIX = ".export-"
VERSION_KERAS_FILE = pathlib.PurePath("assets.extra") / KERAS_MODEL_FILE  # inside a version directory


class ModelBaseError(ValueError):
    """MODEL_BASE cannot take the export (the version exists, it is not a directory, ...)."""


def versions(model_base):
    """The integer version numbers in MODEL_BASE, ascending (every integer-named directory counts)."""
    model_base = pathlib.Path(model_base)
    if not model_base.is_dir():
        return []
    return sorted(int(p.name) for p in model_base.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_base):
    """One more than the newest version in MODEL_BASE (1 for a new model base)."""
    existing = versions(model_base)
    return existing[-1] + 1 if existing else 1


def prepare(model_base, version=None):
    """Creates MODEL_BASE if needed; returns (version, final dir, staging dir).

    Refuses an existing version (or its model-<version>.keras) and a model.keras the exporter did not write, before
    anything is written.
    """
    model_base = pathlib.Path(model_base)
    if model_base.exists() and not model_base.is_dir():
        raise ModelBaseError(f"{model_base} exists and is not a directory")
    model_base.mkdir(parents=True, exist_ok=True)
    if version is None:
        version = next_version(model_base)
    version = int(version)
    if version < 1:
        raise ModelBaseError(f"versions are positive integers; got {version}")
    final = model_base / str(version)
    if final.exists():
        raise ModelBaseError(
            f"{final} exists; versions are never overwritten (the next free one is {next_version(model_base)})"
        )
    latest = model_base / KERAS_MODEL_FILE
    if latest.exists() and not _is_exported_copy(latest, model_base):
        raise ModelBaseError(f"{latest} was not written by the exporter; move it away (it is never overwritten)")
    if (model_base / f"model-{version}.keras").exists():
        raise ModelBaseError(f"{model_base / f'model-{version}.keras'} exists; it is never overwritten")
    remove_dead_staging(model_base)
    link_keras_models(model_base)
    return version, final, model_base / f"{STAGING_PREFIX}{version}-{os.getpid()}"


def _process_is_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_dead_staging(model_base):
    """Removes the `.export-<version>-<pid>` directories of exports whose process no longer runs; returns them."""
    removed = []
    for path in pathlib.Path(model_base).glob(f"{STAGING_PREFIX}*"):
        pid = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _process_is_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def publish(staging, final):
    """Renames the complete staging directory to its version directory (atomic on one file system)."""
    try:
        os.rename(staging, final)
    except OSError as err:
        if pathlib.Path(final).exists():
            raise ModelBaseError(f"{final} was published by another export while this one ran; this export is "
                                 f"discarded (nothing of it is kept): run it again for the next version") from err
        raise


def discard(staging):
    """Removes a staging directory this export made (never a version directory)."""
    shutil.rmtree(staging, ignore_errors=True)


def save_keras_model(model, version_dir):
    """Saves `model` as `version_dir`/assets.extra/model.keras (the staging directory, before it is published),
    through a temporary file and fsync'd, so a version never holds a partial Keras file."""
    path = pathlib.Path(version_dir) / VERSION_KERAS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, keep_suffix=True) as temporary:
        model.save(temporary)
    return path


def _link_or_copy(source, target):
    """`target` becomes `source`'s file (hard link, else a copy), through a temporary name: never half a file."""
    temporary = target.with_name(f".{target.name}-{os.getpid()}")
    try:
        os.link(source, temporary)
    except OSError:  # no hard links on this file system
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


def link_keras_models(model_base):
    """MODEL_BASE/model-<N>.keras for every version N holding its Keras model, where missing, and model.keras to
    the newest such version's; returns the newest version's model-<N>.keras (None when there is none)."""
    model_base = pathlib.Path(model_base)
    newest = None
    for version in versions(model_base):
        inside = model_base / str(version) / VERSION_KERAS_FILE
        versioned = model_base / f"model-{version}.keras"
        if inside.is_file():
            if not versioned.exists():
                _link_or_copy(inside, versioned)
            newest = versioned
        elif versioned.is_file():  # exported before versions held their Keras model
            newest = versioned
    latest = model_base / KERAS_MODEL_FILE
    if newest is not None and not (latest.exists() and os.path.samefile(latest, newest)):
        if not latest.exists() or _is_exported_copy(latest, model_base):
            _link_or_copy(newest, latest)
    return newest


def _is_exported_copy(path, model_base):
    for candidate in pathlib.Path(model_base).glob("model-*.keras"):
        if os.path.samefile(path, candidate) or filecmp.cmp(path, candidate, shallow=False):
            return True
    return False
