"""The optimum must not lean on what it judges: solvers/ imports neither the simulator nor the
policies (ARCHITECTURE.md, rules of the house)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOLVERS = Path(__file__).resolve().parents[2] / "solvers"
FORBIDDEN = ("schedlab.sim", "schedlab.policies", "schedlab.seeds", "schedlab.commands")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(SOLVERS.glob("*.py")), ids=lambda p: p.name)
def test_solvers_do_not_import_sim_or_policies(path):
    bad = [m for m in _imports(path) if m.startswith(FORBIDDEN)]
    assert not bad, f"{path.name} imports {bad}"


def test_importing_solvers_loads_no_solver_library():
    import subprocess
    import sys

    code = (
        "import sys, schedlab.solvers; "
        "print(any(m.startswith(('ortools', 'scipy.optimize')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
