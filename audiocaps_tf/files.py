"""Writing a file so that a reader sees the old file or the new one, never half of one (a leaf: stdlib only).

    with atomic_path(path) as temporary:     write `temporary` (a file, or a directory) any way you like;
        soundfile.write(temporary, ...)      it is renamed onto `path` when the block ends, removed if it raises
    write_text_atomically(path, text)        the common case
    place_without_overwrite(source, target)  a finished file gets its name only if nothing has it yet
    with exclusive_lock(path):               one process at a time builds what `path` names (a shared cache)

The temporary name is `path` + ".partial" beside it (one file system, so the rename is atomic); commands that
resume (`prepare`, `data demo`) recognise and remove such leftovers of an interrupted run.
"""

import contextlib
import fcntl
import os
import pathlib
import shutil

__all__ = ["PARTIAL_SUFFIX", "atomic_path", "write_text_atomically", "write_bytes_atomically", "place_without_overwrite",
           "exclusive_lock"]

PARTIAL_SUFFIX = ".partial"


@contextlib.contextmanager
def atomic_path(path, durable=True, keep_suffix=False):
    """Yields the temporary path to write instead of `path`; see the module docstring. `durable`: fsync a file
    before the rename, so a crash right after cannot leave an empty file under the final name. `keep_suffix`:
    "model.partial.keras" rather than "model.keras.partial", for writers that check the suffix (Keras)."""
    path = pathlib.Path(path)
    if keep_suffix:
        temporary = path.with_name(path.stem + PARTIAL_SUFFIX + path.suffix)
    else:
        temporary = path.with_name(path.name + PARTIAL_SUFFIX)
    try:
        yield temporary
        if durable and temporary.is_file():
            with open(temporary, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()
        raise


def write_text_atomically(path, text, encoding="utf-8", durable=True):
    """Writes `text` (newlines as given) to `path` through `atomic_path`."""
    with atomic_path(path, durable=durable) as temporary:
        with open(temporary, "w", encoding=encoding, newline="") as f:
            f.write(text)


def write_bytes_atomically(path, data, durable=True):
    """Writes `data` to `path` through `atomic_path`."""
    with atomic_path(path, durable=durable) as temporary:
        temporary.write_bytes(data)


def place_without_overwrite(source, target):
    """Gives `source` the name `target` unless something is already there; True when it was placed.

    A hard link fails atomically when the target exists, so a file that appears meanwhile is never replaced;
    file systems without hard links fall back to a rename after a check.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    except OSError:
        if os.path.lexists(target):
            return False
        os.replace(source, target)
        return True
    os.unlink(source)
    return True


@contextlib.contextmanager
def exclusive_lock(path):
    """Holds an exclusive `flock` on the file `path` + ".lock" (created if missing) while the block runs: two
    processes building one cache entry (two training workers on one machine, say) take turns, and the second
    finds the first's result complete. The lock goes with the process, so a killed holder never blocks others."""
    lock_path = pathlib.Path(str(path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
