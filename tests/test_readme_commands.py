"""Every shell command of the README's quick start, captioning and command-line sections parses with its command's
argument parser and, unless it needs the internet or a running server, runs: in order, in an empty folder, with
smoke-sized data and models where the real run would take minutes. Every command's `--help` documents every option."""

import argparse
import importlib
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from conftest import EXAMPLES_DIR

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECTIONS = ("Quick start", "Caption a sound file", "Command line")
COMMANDS = [  # every command-line entry point of the package
    "audiocaps_tf.fit",
    "audiocaps_tf.caption",
    "audiocaps_tf.data",
    "audiocaps_tf.evaluate",
    "audiocaps_tf.export",
    "audiocaps_tf.serving.client",
    "audiocaps_tf.serving.dev_server",
]
# Not run here: installing (CI does it first), the tests themselves, and what needs the network or a server on the
# README's fixed ports (tests/test_serving.py runs the same export, dev_server and client commands on free ports).
NOT_RUN = ("pip install", "python -m pytest", "audiocaps_tf.serving.", "# needs the internet")
SMOKE_CLIPS = 40
SMOKE_MODEL = ["--batch-size", "8", "--workers", "1", "--epochs", "1",
               "--model-overrides", json.dumps({"units": 8, "embedding_dim": 8})]


def readme_commands(sections=None):
    """(section, command line with its comment) of every line of the ```bash blocks of `sections` (None: all)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bodies = dict(part.split("\n", 1) for part in readme.split("\n## ")[1:])
    commands = []
    for section in sections or bodies:
        assert section in bodies, f"the README has no section '{section}'"
        for block in re.findall(r"```bash\n(.*?)```", bodies[section], re.S):
            for line in block.replace("\\\n", " ").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    commands.append((section, line.strip()))
    return commands


def module_and_arguments(command):
    """('audiocaps_tf.x', [arguments]) of a `python -m audiocaps_tf.x ...` line, else None."""
    words = shlex.split(command, comments=True)
    if words[-1:] == ["&"]:  # started in the background
        words = words[:-1]
    if words[:2] == ["python", "-m"] and words[2].startswith("audiocaps_tf"):
        return words[2], words[3:]
    return None


def parser_of(module):
    """The argument parser of `python -m module` (a package's is in its __main__)."""
    imported = importlib.import_module(module)
    if not hasattr(imported, "build_parser"):
        imported = importlib.import_module(f"{module}.__main__")
    return imported.build_parser()


def subparsers_of(parser):
    return [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]


def all_parsers(parser):
    yield parser
    for action in subparsers_of(parser):
        for sub in action.choices.values():
            yield from all_parsers(sub)


@pytest.mark.parametrize("module", COMMANDS)
def test_help_documents_every_option(module):
    for parser in all_parsers(parser_of(module)):
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help.strip(), f"{parser.prog}: {name} has no help text"
            for option in action.option_strings:
                assert option in text, f"{parser.prog} --help does not show {option}"
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: python -m {module}")


def test_readme_commands_parse_and_the_command_line_section_shows_every_command():
    for section, command in readme_commands():
        parsed = module_and_arguments(command)
        if parsed is None:
            continue  # pip, pytest, docker, curl, ...
        module, arguments = parsed
        assert module in COMMANDS, f"{section}: `{command}` is no command of the package"
        try:
            parser_of(module).parse_args(arguments)
        except SystemExit:
            pytest.fail(f"{section}: `{command}` does not parse (see the usage message above)")
    for section in SECTIONS:
        for _, command in readme_commands([section]):
            assert module_and_arguments(command) or command.startswith(("pip install", "python -m pytest")), command
    shown = {module_and_arguments(command)[0] for _, command in readme_commands(["Command line"])}
    assert shown == set(COMMANDS), f"the README's command-line section does not show {set(COMMANDS) - shown}"


def smoke_sized(module, arguments):
    """`arguments` with the data and model cut to a smoke test's size (the last value of an option wins)."""
    if module == "audiocaps_tf.data" and arguments[:1] == ["demo"]:
        clips = int(arguments[arguments.index("--clips") + 1]) if "--clips" in arguments else SMOKE_CLIPS
        return [*arguments, "--clips", str(min(clips, SMOKE_CLIPS))]
    if module == "audiocaps_tf.fit":
        demo = not {"--data-dir", "--tfrecords"} & set(arguments)
        return [*arguments, *SMOKE_MODEL, *(["--demo-clips", str(SMOKE_CLIPS)] if demo else [])]
    return arguments


def test_readme_commands_run(tmp_path):
    """The commands in the README's order, as a new user types them in one folder (with a clip.wav and a longer
    walk.flac at hand)."""
    workdir = tmp_path / "user"
    workdir.mkdir()
    if EXAMPLES_DIR.is_dir():
        shutil.copy(EXAMPLES_DIR / "bygBWUkpaC8_270.wav", workdir / "clip.wav")
        sounds = sorted(EXAMPLES_DIR.glob("*.wav"))[:3]
    else:  # without ../shared: demo clips stand in
        from audiocaps_tf.data import make_demo_dataset

        demo = make_demo_dataset(tmp_path / "stand-in", num_clips=10, workers=0, progress=False)
        sounds = sorted((pathlib.Path(demo) / "audio").rglob("*.wav"))[:3]
        shutil.copy(sounds[0], workdir / "clip.wav")
    # ... and a recording longer than one window (walk.flac, 30 s at 22.05 kHz stereo).
    parts = [soundfile.read(path, dtype="float32", always_2d=True) for path in sounds]
    soundfile.write(workdir / "walk.flac", np.concatenate([np.repeat(p[:, :1], 2, axis=1) for p, _ in parts]),
                    parts[0][1])
    env = {**os.environ, "AUDIOCAPS_TF_CACHE": str(tmp_path / "cache"), "TFHUB_CACHE_DIR": str(tmp_path / "tfhub")}
    ran = []
    for section, command in readme_commands(SECTIONS):
        if any(marker in command for marker in NOT_RUN):
            continue
        module, arguments = module_and_arguments(command)
        line = shlex.join([sys.executable, "-m", module, *smoke_sized(module, arguments)])
        # Through bash, as typed: globs such as new-clips/audio/*.wav expand.
        line = re.sub(r"'([^' ]*\*[^' ]*)'", r"\1", line)
        result = subprocess.run(["bash", "-c", line], cwd=workdir, env=env, capture_output=True, text=True,
                                timeout=900)
        assert result.returncode == 0, f"{section}: `{command}` failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        ran.append(command)
    ran_modules = {module_and_arguments(command)[0] for command in ran}
    assert {"audiocaps_tf.fit", "audiocaps_tf.caption", "audiocaps_tf.data", "audiocaps_tf.evaluate",
            "audiocaps_tf.export"} <= ran_modules, ran
