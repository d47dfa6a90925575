"""Exports that are killed or race: a published version always holds its Keras model, the next export repairs the
links a killed one did not make and removes the staging directories of dead exports, and a lost race says what
really happened."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import keras
import pytest

from audiocaps_tf.export import model_base as model_base_dir
from test_dev_server import PROCESS_TIMEOUT

# An export killed with SIGKILL the moment its version directory appears (after the rename, before anything else).
KILLED_EXPORT = textwrap.dedent("""
    import os, signal, sys
    import keras
    from audiocaps_tf.export import export_model, model_base
    from audiocaps_tf.models import build_captioner
    from audiocaps_tf.tokens.vocabulary import build_vocabulary

    keras.utils.set_random_seed(1)
    model = build_captioner("tempatt-mfcc-lstm", build_vocabulary(["a dog barks", "birds sing then a dog barks"]),
                            units=8, embedding_dim=8)
    publish = model_base.publish

    def publish_then_die(staging, final):
        publish(staging, final)
        os.kill(os.getpid(), signal.SIGKILL)

    model_base.publish = publish_then_die
    export_model(model, sys.argv[1])
""")


def test_an_export_killed_as_its_version_appears_leaves_a_loadable_keras_model(tmp_path):
    models = tmp_path / "models"
    finished = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(models)], capture_output=True, text=True,
                              timeout=PROCESS_TIMEOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert finished.returncode == -signal.SIGKILL, finished.stderr[-3000:]
    inside = models / "1" / "assets.extra" / "model.keras"
    assert inside.stat().st_size > 0
    restored = keras.models.load_model(inside)
    assert restored.model_name == "tempatt-mfcc-lstm"
    assert not (models / "model-1.keras").exists()  # the links are what the kill cut short

    version, final, staging = model_base_dir.prepare(models)  # the next export
    assert version == 2 and not staging.exists()
    assert os.path.samefile(models / "model-1.keras", inside)
    assert os.path.samefile(models / "model.keras", inside)
    assert keras.models.load_model(models / "model.keras").get_config() == restored.get_config()


def _version_with_keras(models, version, content):
    inside = models / str(version) / "assets.extra" / "model.keras"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(content)
    return inside


def test_the_next_export_removes_staging_directories_of_dead_exports_only(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = models / f".export-3-{int(gone.stdout)}"
    alive = models / f".export-4-{os.getppid()}"  # a running process: an export in progress
    for path in (dead, alive):
        (path / "variables").mkdir(parents=True)
    model_base_dir.prepare(models)
    assert not dead.exists() and alive.is_dir()


def test_links_follow_the_newest_version_and_keep_a_model_keras_that_is_not_ours(tmp_path):
    models = tmp_path / "models"
    first = _version_with_keras(models, 1, b"one")
    second = _version_with_keras(models, 2, b"two")
    assert model_base_dir.link_keras_models(models) == models / "model-2.keras"
    assert os.path.samefile(models / "model-1.keras", first) and os.path.samefile(models / "model.keras", second)
    foreign = tmp_path / "foreign"
    _version_with_keras(foreign, 1, b"one")
    (foreign / "model.keras").write_bytes(b"mine")
    model_base_dir.link_keras_models(foreign)
    assert (foreign / "model.keras").read_bytes() == b"mine"


def test_a_lost_race_says_the_export_was_discarded(tmp_path):
    models = tmp_path / "models"
    version, final, staging = model_base_dir.prepare(models)
    staging.mkdir()
    final.mkdir()  # another export published this version meanwhile
    (final / "saved_model.pb").write_bytes(b"theirs")
    with pytest.raises(model_base_dir.ModelBaseError, match="published by another export") as raised:
        model_base_dir.publish(staging, final)
    assert "left in" not in str(raised.value) and str(staging) not in str(raised.value)
    assert (pathlib.Path(final) / "saved_model.pb").read_bytes() == b"theirs"
