"""The notebooks in notebooks/: committed without outputs, and executed through a real Jupyter kernel.

Each notebook runs top to bottom in its small-data mode (KERASTRAIN_NOTEBOOK_SMALL=1),
with its run folders under this test's tmp_path. A new notebook is picked up by
the glob; the checks below hold for every notebook, plus a few for the known ones.
"""

import json

import nbformat
import pytest

from conftest import REPO, SERVERS

NOTEBOOK_FOLDER = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_FOLDER.glob("*.ipynb"))
# Seconds one cell may run: the slowest cell is the parameter-server launcher job.
CELL_TIMEOUT = 300


def read(path):
    return nbformat.read(path, as_version=4)


def test_the_notebook_folder_has_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_FOLDER}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_notebook_has_no_outputs_and_reads_the_small_data_switch(path):
    notebook = read(path)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown", "a notebook opens with a markdown introduction"
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for index, cell in enumerate(code_cells):
        assert cell.outputs == [], f"code cell {index} has outputs: clear them before committing"
        assert cell.execution_count is None, f"code cell {index} has an execution count"
    assert "KERASTRAIN_NOTEBOOK_SMALL" in code_cells[0].source
    assert "KERASTRAIN_NOTEBOOK_OUTPUT" in code_cells[0].source
    assert any("KERASTRAIN_NOTEBOOK_SMALL" in cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def run_configs(output):
    """The config.json of every run folder under `output`, keyed by folder (relative)."""
    return {
        str(path.parent.relative_to(output)): json.loads(path.read_text())
        for path in sorted(output.rglob("config.json"))
    }


def check_quickstart(notebook, output, runs):
    (folder,) = runs
    assert (output / folder / "model.keras").is_file()
    assert len(displayed_images(notebook)) >= 2  # the history and the confusion matrix


def check_parameter_server(notebook, output, runs):
    assert len(runs) == 2, sorted(runs)
    for folder, stored in runs.items():
        assert stored["config"]["strategy"] == "parameter_server"
        assert stored["environment"]["cluster"] == {"worker": 2, "ps": 1}, folder
    local_cluster = sorted(stored["config"]["local_cluster"] for stored in runs.values())
    assert local_cluster == ["", "workers=2,ps=1"]  # one TF_CONFIG job, one in-process cluster
    text = all_text(notebook)
    assert "[launcher] chief exited with status 0; all tasks stopped" in text


def check_optimizer_study(notebook, output, runs):
    recipes_trained = {"textcnn" if "kernel_sizes" in stored["config"] else "mlp" for stored in runs.values()}
    assert recipes_trained == {"mlp", "textcnn"}
    optimizers = {stored["config"]["optimizer"] for stored in runs.values()}
    assert len(optimizers) >= 2
    assert len(displayed_images(notebook)) >= 4  # optimizers, decay, batch norm, dropout, TextCNN


def check_precision(notebook, output, runs):
    requested = sorted(stored["config"]["precision"] for stored in runs.values())
    assert requested == ["auto", "float32", "mixed_bfloat16"]
    for stored in runs.values():
        if stored["config"]["precision"] != "auto":
            assert stored["environment"]["precision"] == stored["config"]["precision"]


SPECIFIC_CHECKS = {
    "quickstart": check_quickstart,
    "parameter_server": check_parameter_server,
    "optimizer_study": check_optimizer_study,
    "precision": check_precision,
}


def displayed_images(notebook):
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]


def all_text(notebook):
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.slow
@SERVERS  # kernels and local clusters listen on ports
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_in_small_data_mode(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # The kernel inherits this environment.
    monkeypatch.setenv("KERASTRAIN_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("KERASTRAIN_NOTEBOOK_OUTPUT", str(tmp_path))
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    notebook = read(path)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=notebook.metadata.get("kernelspec", {}).get("name", "python3"),
        # Jupyter runs a notebook in its own folder; so does this test.
        resources={"metadata": {"path": str(NOTEBOOK_FOLDER)}},
    )
    client.execute()  # Raises CellExecutionError, with the cell and traceback, if a cell fails.

    output = tmp_path / path.stem
    runs = run_configs(output)
    assert runs, f"{path.name} wrote no run folder under {output}"
    for folder in runs:
        assert (output / folder / "metrics.json").is_file(), f"{folder} did not finish"
    assert displayed_images(notebook), f"{path.name} displayed no figure"
    check = SPECIFIC_CHECKS.get(path.stem)
    if check:
        check(notebook, output, runs)
