"""`caption` says when a file is digital silence or shorter than a second (it still captions it): a warning on
stderr, and "notices" in its JSON records; a normal sound gets neither."""

import json

import numpy as np
import pytest
import soundfile

from model_test_case import save_tiny_demo_captioner
from audiocaps_tf import caption
from audiocaps_tf.data import demo

RATE = 16000


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_tiny_demo_captioner(tmp_path_factory.mktemp("model") / "tiny.keras", seed=4, max_caption_length=8)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sounds")
    files = {
        "silent": (np.zeros(10 * RATE), "PCM_16"),
        "short": (demo.render(demo.clip_spec(1))[: RATE // 100], "PCM_16"),  # 10 ms of a real sound
        "quiet": (np.full(10 * RATE, 2.0 / 32768), "PCM_16"),  # two 16-bit steps: quiet, not silence
        "normal": (demo.render(demo.clip_spec(2)), "PCM_16"),
        "silent-and-short": (np.zeros(RATE // 2), "FLOAT"),
    }
    paths = {}
    for name, (samples, subtype) in files.items():
        paths[name] = str(folder / f"{name}.wav")
        soundfile.write(paths[name], samples, RATE, subtype=subtype)
    return paths


def test_silent_and_short_files_are_captioned_with_a_notice(model_file, sounds, capsys):
    names = list(sounds)
    assert caption.main([*sounds.values(), "--model", str(model_file), "--json"]) == 0
    out, err = capsys.readouterr()
    records = {json.loads(line)["path"]: json.loads(line) for line in out.splitlines()}
    assert set(records) == set(sounds.values())  # every file still gets its caption
    notices = {name: records[sounds[name]].get("notices", []) for name in names}
    assert notices == {"silent": ["silent"], "short": ["short"], "quiet": [], "normal": [],
                       "silent-and-short": ["silent", "short"]}
    warned = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert sum(sounds["silent"] in line and "digital silence" in line for line in warned) == 1
    assert sum(sounds["short"] in line and "0.01 s long, under 1 s" in line for line in warned) == 1
    assert not any(sounds["normal"] in line or sounds["quiet"] in line for line in warned)
    assert len(warned) == 4


def test_the_tsv_line_stays_as_it_was_for_a_notice(model_file, sounds, capsys):
    assert caption.main([sounds["silent"], "--model", str(model_file)]) == 0
    out, err = capsys.readouterr()
    path, text = out.rstrip("\n").split("\t")
    assert path == sounds["silent"] and text and "digital silence" in err
