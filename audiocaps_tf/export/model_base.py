"""The TF Serving model base directory: integer version directories, written whole and never overwritten.

    MODEL_BASE/1/                 a SavedModel (saved_model.pb, variables/, assets.extra/)
    MODEL_BASE/2/
    MODEL_BASE/model-1.keras      the Keras model each version was exported from
    MODEL_BASE/model-2.keras
    MODEL_BASE/model.keras        the newest version's Keras model (a hard link to model-2.keras)

A version is written under a hidden staging name (`.export-2-<pid>`, which TF Serving ignores: it only loads
integer names) and renamed into place once complete and checked, so a server polling MODEL_BASE never loads half
a version.
"""

import filecmp
import os
import pathlib
import shutil

from audiocaps_tf.files import atomic_path

KERAS_MODEL_FILE = "model.keras"


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
    return version, final, model_base / f".export-{version}-{os.getpid()}"


def publish(staging, final):
    """Renames the complete staging directory to its version directory (atomic on one file system)."""
    try:
        os.rename(staging, final)
    except OSError as err:
        if pathlib.Path(final).exists():
            raise ModelBaseError(f"{final} appeared while exporting; the export is left in {staging}") from err
        raise


def discard(staging):
    """Removes a staging directory this export made (never a version directory)."""
    shutil.rmtree(staging, ignore_errors=True)


def save_keras_model(model, model_base, version):
    """Saves MODEL_BASE/model-<version>.keras and points MODEL_BASE/model.keras at it; returns both paths.

    `prepare` has checked that an existing model.keras is one of the exporter's model-<N>.keras files.
    """
    model_base = pathlib.Path(model_base)
    versioned = model_base / f"model-{version}.keras"
    with atomic_path(versioned, keep_suffix=True) as temporary:  # a killed export leaves no half-written file
        model.save(temporary)
    latest = model_base / KERAS_MODEL_FILE
    staging = model_base / f".{KERAS_MODEL_FILE}-{os.getpid()}"
    try:
        os.link(versioned, staging)
    except OSError:  # no hard links on this file system
        shutil.copyfile(versioned, staging)
    os.replace(staging, latest)
    return versioned, latest


def _is_exported_copy(path, model_base):
    for candidate in pathlib.Path(model_base).glob("model-*.keras"):
        if os.path.samefile(path, candidate) or filecmp.cmp(path, candidate, shallow=False):
            return True
    return False
