"""Models saved by version 0.1 (before the preprocessor / encoder / decoder split) load and caption the same.

tests/fixtures/legacy_0_1/ was written by tests/fixtures/make_legacy_fixtures.py with the checkout at fdcad0c:
every registry model (tiny, random weights) as a .keras file, a `fit` run directory, and their captions of two
real AudioCaps clips and a synthetic one, greedy and beam 3.
"""

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import audiocaps_tf  # noqa: F401
from audiocaps_tf.audio import load_audio
from audiocaps_tf.models import AudioCaptioner, NearestNeighbourCaptioner

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "legacy_0_1"
EXAMPLES = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "audiocaps" / "examples"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def synthetic_clip():
    """3 s of a 440 Hz tone over noise (16 kHz), as the fixture script made it."""
    t = np.arange(3 * 16000) / 16000.0
    rng = np.random.default_rng(7)
    return (0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.05 * rng.normal(size=t.shape)).astype(np.float32)


# Version 0.1 zero-padded every clip to 10 s and computed features over the padding too; today's frontends mask
# zeros at a clip's end. A value this small in their place gives the features zeros gave then (below the MFCC and
# log-mel floors), as audio: the clips the fixtures were captioned from.
VERSION_0_1_PADDING = 1e-20


@pytest.fixture(scope="module")
def clips():
    """The fixture's clips as version 0.1 fed them to its models: 10 s each, padded with audio as quiet as zeros."""
    clips = [load_audio(EXAMPLES / name, duration=None) for name in EXPECTED["clips"][:2]] + [synthetic_clip()]
    padded = np.full((len(clips), 160000), VERSION_0_1_PADDING, np.float32)
    for row, clip in enumerate(clips):
        padded[row, : min(clip.size, 160000)] = clip[:160000]
    return padded


@pytest.mark.parametrize("name", sorted(EXPECTED["models"]))
def test_a_version_0_1_model_loads_and_captions_the_same(name, clips, tmp_path):
    model = keras.models.load_model(FIXTURES / f"{name}.keras")
    kind = NearestNeighbourCaptioner if name.startswith("1nn-") else AudioCaptioner
    assert type(model) is kind and model.model_name == name
    assert model.generate(clips, beam_size=1, clip_seconds=None) == EXPECTED["models"][name]["greedy"]
    assert model.generate(clips, beam_size=3, clip_seconds=None) == EXPECTED["models"][name]["beam3"]
    # Saved again, it is written in today's layout (no version 0.1 aliases) and still captions the same.
    path = tmp_path / "again.keras"
    model.save(path)
    assert "preprocessor" in model.get_config()
    restored = keras.models.load_model(path)
    assert "_legacy_layers" not in restored.__dict__
    assert restored.generate(clips, beam_size=1) == EXPECTED["models"][name]["greedy"]


def test_a_version_0_1_run_directory_captions_the_same_from_the_command_line(tmp_path):
    clip = EXAMPLES / EXPECTED["clips"][0]
    completed = subprocess.run(
        [sys.executable, "-m", "audiocaps_tf.caption", str(clip), "--model", str(FIXTURES / "run")],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.splitlines() == [f"{clip}\t{EXPECTED['run']['greedy'][0]}"]


def test_a_version_0_1_run_directory_loads_with_load_model(clips):
    model = keras.models.load_model(FIXTURES / "run" / "best.keras")
    assert model.generate(clips, beam_size=3, clip_seconds=None) == EXPECTED["run"]["beam3"]
