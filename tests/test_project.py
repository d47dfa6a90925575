"""The README's quick start is what CI runs, and the layout is what the README says."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _quick_start_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S) for line in block.splitlines()]


def test_ci_runs_the_readme_install_and_test_commands():
    commands = _quick_start_commands()
    assert len(commands) >= 2, "the quick start needs an install and a test command"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    install, test = commands[0], commands[-1]
    assert install.startswith("pip install") and install in ci_lines
    assert "pytest" in test and test in ci_lines


def test_layout():
    for folder in ["audiocaps_tf/layers", "audiocaps_tf/audio", "serving", "colab", "tests", "benchmarks"]:
        assert (ROOT / folder).is_dir(), folder
    assert not (ROOT / "layers").exists(), "layers live in audiocaps_tf/layers, not a top-level package"
