"""The notebooks in ``notebooks/`` run top to bottom at their default (small) sizes.

Each is executed in a fresh kernel in a temporary working directory; a cell that raises fails the
test. Skipped where ``nbclient``, ``nbformat`` or ``ipykernel`` is not installed (``pip install
-e .[dev]`` installs them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_MISSING = [m for m in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(m) is None]


def test_notebooks_exist() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"policy-vs-optimum.ipynb", "prediction-error.ipynb", "costmodel.ipynb",
            "reproductions.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    if _MISSING:
        pytest.skip(f"notebook tests need {', '.join(_MISSING)} (pip install -e .[dev])")
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
