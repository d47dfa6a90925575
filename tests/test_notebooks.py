"""The Colab notebooks: their form (badge, one smoke-mode parameter, no outputs, no machine paths), and a headless
run of each in smoke mode, offline, as papermill would run it with `-p SMOKE_TEST True`."""

import json
import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLAB = ROOT / "colab"
NOTEBOOKS = ["01_quickstart.ipynb", "02_train_audiocaps.ipynb", "03_serving.ipynb"]
BADGE_URL = "https://colab.research.google.com/github/audiocaps-tf/audiocaps-tf/blob/main/colab/{name}"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
# Paths of one machine: this workplace, home directories, Colab's /content, Windows drives, the shared data.
MACHINE_PATHS = re.compile(r"(/work/|/tmp/|/home/|/root/|/Users/|/content/|[A-Za-z]:\\\\|\.\./shared|~/)")
CELL_TIMEOUT_SECONDS = 900


def read(name):
    return nbformat.read(COLAB / name, as_version=4)


def parameters_cells(notebook):
    return [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_form(name):
    notebook = read(name)
    nbformat.validate(notebook)
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    assert BADGE_URL.format(name=name) in first.source and BADGE_IMAGE in first.source, "Open in Colab badge"
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"

    cells = parameters_cells(notebook)
    assert len(cells) == 1, "exactly one cell tagged `parameters`"
    assignments = [line for line in cells[0].source.splitlines() if line.strip() and not line.startswith("#")]
    assert assignments and all(re.match(r"SMOKE_TEST = False\b", line) for line in assignments), assignments

    for index, cell in enumerate(notebook.cells):
        assert not MACHINE_PATHS.search(cell.source), f"cell {index} names a machine-specific path"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {index} keeps outputs"


def execute_in_smoke_mode(name, workdir):
    """The notebook executed in `workdir` with `SMOKE_TEST = True` injected after its parameters cell."""
    from nbclient import NotebookClient

    notebook = read(name)
    position = notebook.cells.index(parameters_cells(notebook)[0]) + 1
    injected = nbformat.v4.new_code_cell("SMOKE_TEST = True", metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(position, injected)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return notebook


def texts(notebook):
    """Every text the notebook printed or displayed (stream output and text/plain or text/html data)."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            for mime in ("text/plain", "text/html"):
                if mime in output.get("data", {}):
                    parts.append(output.data[mime])
    return "\n".join(parts)


@pytest.fixture
def offline_workdir(tmp_path, monkeypatch):
    """An empty working directory, and empty TF Hub and demo caches (the kernel inherits the environment)."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tfhub"))
    monkeypatch.setenv("AUDIOCAPS_TF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    return workdir


def test_quickstart_in_smoke_mode(offline_workdir):
    notebook = execute_in_smoke_mode("01_quickstart.ipynb", offline_workdir)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert any("image/png" in output.get("data", {}) for output in outputs), "no plot was drawn"
    assert "<audio" in texts(notebook), "no audio player"


def test_train_audiocaps_in_smoke_mode(offline_workdir):
    notebook = execute_in_smoke_mode("02_train_audiocaps.ipynb", offline_workdir)
    printed = texts(notebook)
    assert "smoke test" in printed.lower() and "internet" in printed.lower(), "skipped cells must say so"
    export_info = list(offline_workdir.rglob("assets.extra/audiocaps_tf_export.json"))
    assert len(export_info) == 1 and json.loads(export_info[0].read_text())


def test_serving_in_smoke_mode(offline_workdir):
    notebook = execute_in_smoke_mode("03_serving.ipynb", offline_workdir)
    printed = texts(notebook)
    assert "gRPC" in printed and "REST" in printed


def test_serving_notebook_config_copies_match_serving_folder():
    """Outside a checkout, 03_serving writes its own models.config and batching.config: the same settings."""
    source = "\n".join(cell.source for cell in read("03_serving.ipynb").cells if cell.cell_type == "code")

    def tokens(text):
        return re.sub(r"#.*", "", text).split()

    for variable, name in [("MODELS_CONFIG", "models.config"), ("BATCHING_CONFIG", "batching.config")]:
        copy = re.search(rf'{variable} = """\\\n(.*?)"""', source, re.S)
        assert copy, f"03_serving.ipynb has no {variable}"
        assert tokens(copy.group(1)) == tokens((ROOT / "serving" / name).read_text()), name
