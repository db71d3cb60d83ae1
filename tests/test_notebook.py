"""notebooks/quickstart_t4.ipynb executes top to bottom (on CPU, the tiny offline suite put in
through its parameters cell), so the notebook users start from cannot rot."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart_t4.ipynb"


def _parameters(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged `parameters`"
    return tagged[0]


def test_the_quickstart_notebook_runs_on_the_tiny_suite(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = nb.cells[_parameters(nb)]
    defaults = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line}
    values = {
        "REPO_URL": repr(str(ROOT)), "INSTALL": "False", "SUITE": repr(str(ROOT / "tests" / "tiny_suite.yaml")),
        "ONLY": repr("method=lora"), "SHARD": repr("1/1"), "RESULTS": repr(str(tmp_path / "drive")),
        "DASHBOARD": "True",
    }  # fmt: skip
    assert defaults == set(values), "a parameter was added or renamed: substitute it here"
    cell.source = "\n".join(f"{k} = {v}" for k, v in values.items())
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert f"ftbench {version('ftbench')}" in text
    assert "1 runs: 0 over budget" in text  # the plan cell
    assert "suite tiny: 1 run now" in text
    assert "Leaderboard: suite tiny" in text
    assert "no port proxy here" in text  # not Colab: the show tables stand in for the dashboard
    assert (tmp_path / "drive" / "ftbench.duckdb").is_file()
