"""Shared test fixtures: the real AudioCaps example clips from ../shared."""

import csv
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
EXAMPLES_DIR = SHARED / "audiocaps" / "examples"


def example_clips():
    """Paths of the 13 real AudioCaps test clips (22.05 kHz WAV)."""
    with open(EXAMPLES_DIR / "examples.csv", newline="") as f:
        return [EXAMPLES_DIR / row["file"] for row in csv.DictReader(f)]


@pytest.fixture(scope="session")
def example_paths():
    paths = example_clips()
    if not paths or not all(p.exists() for p in paths):
        pytest.fail(f"the AudioCaps example clips are missing from {EXAMPLES_DIR}")
    return paths
