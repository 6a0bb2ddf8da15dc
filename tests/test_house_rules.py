"""Every rule of the house (ARCHITECTURE.md) as a test: imports point down the layers, the contract
is a leaf, the simulator reaches the policies only through the registry, policies are numpy rules
(no compiled code), the optimum never leans on the heuristics it judges, nothing but the command
line imports the seeds, and ``import schedlab`` stays light.

The layers, bottom up (a module may import its own group and the groups below it):

0. ``schedlab._version``, ``schedlab.errors``, ``schedlab.plotting`` (matplotlib only),
   ``schedlab.progress`` (tqdm only);
1. the rest of the leaf: ``schedlab.records``, ``schedlab.jit``, ``schedlab.contract`` (numpy
   only);
2. ``schedlab.costmodel``, ``schedlab.datasets``;
3. ``schedlab.policies``, ``schedlab.predictors``, ``schedlab.solvers`` (no one of them imports
   another);
4. ``schedlab.sim`` (the policies only through their registry);
5. ``schedlab.testing``, ``schedlab.sweeps`` (a sweep runs any function; the command line's
   ``schedlab sweep`` and the seeds may use it);
6. ``schedlab.seeds``;
7. ``schedlab.commands``, ``schedlab.cli`` and the package's lazy ``__init__``.

Every import statement counts, at module level or inside a function (a lazy import is still a
dependency). Imports are read from the source with ``ast``: nothing is imported to check them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Installed name of each source folder (``package-dir`` in pyproject.toml).
FOLDERS = {
    "schedlab": ROOT / "schedlab",
    "schedlab.costmodel": ROOT / "costmodel",
    "schedlab.datasets": ROOT / "datasets",
    "schedlab.policies": ROOT / "policies",
    "schedlab.predictors": ROOT / "predictors",
    "schedlab.solvers": ROOT / "solvers",
    "schedlab.seeds": ROOT / "seeds",
}
LAYERS = [
    ("schedlab._version", "schedlab.errors", "schedlab.plotting", "schedlab.progress"),
    ("schedlab.records", "schedlab.jit", "schedlab.contract"),
    ("schedlab.costmodel", "schedlab.datasets"),
    ("schedlab.policies", "schedlab.predictors", "schedlab.solvers"),
    ("schedlab.sim",),
    ("schedlab.testing", "schedlab.sweeps"),
    ("schedlab.seeds",),
    ("schedlab.commands", "schedlab.cli", "schedlab"),
]
#: Modules of the simulator's through which it may reach the policies (the registry).
REGISTRY = ("schedlab.policies", "schedlab.policies.registry")


def _modules() -> dict[str, Path]:
    """Installed module name -> source file, for every module of the package."""
    out = {}
    for prefix, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if prefix == "schedlab" and parts and parts[0] in {
                    f.rsplit(".", 1)[-1] for f in FOLDERS if f != "schedlab"}:
                continue  # not a real subfolder of schedlab/ (a mapped one)
            out[".".join([prefix, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[str]:
    """The schedlab modules (and numba) that ``path`` imports, resolved to absolute names."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found += [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                      for a in node.names]
    return [m for m in found if m.startswith(("schedlab", "numba"))]


def _group(module: str) -> tuple[int, str]:
    """``(layer, group)`` of a module: the most specific group that contains it."""
    best = (-1, "")
    for layer, groups in enumerate(LAYERS):
        for g in groups:
            if (module == g or module.startswith(g + ".")) and len(g) > len(best[1]):
                best = (layer, g)
    return best


def _violations(name: str, targets: list[str]) -> list[str]:
    """The imports of ``name`` that break the layering (see the module docstring)."""
    layer, group = _group(name)
    bad = []
    for target in targets:
        if target.startswith("numba"):
            continue
        t_layer, t_group = _group(target)
        if t_group == group:
            continue
        if t_layer >= layer:
            bad.append(f"{target} (layer {t_layer}, above or beside {group}'s {layer})")
        elif group == "schedlab.sim" and t_group == "schedlab.policies" and target not in REGISTRY:
            bad.append(f"{target} (the simulator reaches policies only through the registry)")
    return bad


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down_the_layers(name: str) -> None:
    assert _group(name)[0] >= 0, f"{name} belongs to no layer of the house"
    bad = _violations(name, _imports(name, MODULES[name]))
    assert not bad, f"{name} imports {bad}"


def test_the_layering_check_catches_what_it_must() -> None:
    assert _violations("schedlab.sim.instance", ["schedlab.policies.fcfs"])
    assert not _violations("schedlab.sim.simulator", ["schedlab.policies"])
    assert _violations("schedlab.contract.views", ["schedlab.sim.state"])
    assert _violations("schedlab.costmodel.ops", ["schedlab.datasets"])
    assert _violations("schedlab.policies.fcfs", ["schedlab.sim"])
    assert not _violations("schedlab.policies.fcfs", ["schedlab.contract", "schedlab.errors"])


def test_the_contract_is_a_leaf_with_numpy_only() -> None:
    for name, path in MODULES.items():
        if name.startswith("schedlab.contract"):
            bad = [m for m in _imports(name, path) if not m.startswith("schedlab.contract")]
            assert not bad, f"{name} imports {bad}"


def test_policies_are_numpy_rules_without_compiled_code() -> None:
    for name, path in MODULES.items():
        if name.startswith("schedlab.policies"):
            bad = [m for m in _imports(name, path) if m.startswith(("numba", "schedlab.jit"))]
            assert not bad, f"{name} imports {bad}: compiled kernels belong to the engine"
            assert "@njit" not in path.read_text(), f"{name} compiles a kernel"


def test_layer_two_groups_do_not_import_each_other() -> None:
    """The optimum must not lean on the heuristic it judges; policies take predictions as
    arrays, never a predictor."""
    groups = LAYERS[2]
    for name, path in MODULES.items():
        own = _group(name)[1]
        if own in groups:
            bad = [m for m in _imports(name, path) if _group(m)[1] in groups and
                   _group(m)[1] != own]
            assert not bad, f"{name} imports {bad}"


def test_only_the_command_line_imports_the_seeds() -> None:
    for name, path in MODULES.items():
        if name.startswith(("schedlab.seeds", "schedlab.commands")) or name == "schedlab.cli":
            continue  # the command line: its commands, and its help naming the seed papers
        bad = [m for m in _imports(name, path) if m.startswith("schedlab.seeds")]
        assert not bad, f"{name} imports {bad}"


def test_the_house_is_complete() -> None:
    """Every source folder is mapped and every module found belongs to a layer (a new folder
    must be placed in the house before it can hold code)."""
    assert {"schedlab.contract", "schedlab.sim", "schedlab.policies.registry"} <= set(MODULES)
    assert all(_group(m)[0] >= 0 for m in MODULES)


def _loaded(imports: str, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has loaded after ``import <imports>``."""
    code = f"import sys, {imports}; print(','.join(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_importing_schedlab_loads_no_heavy_library() -> None:
    assert _loaded("schedlab", ("pandas", "ortools", "lightgbm", "matplotlib", "sklearn",
                                "scipy", "numba", "schedlab.policies", "schedlab.sim")) == []


def test_importing_the_contract_or_the_policies_loads_no_compiler() -> None:
    assert _loaded("schedlab.contract, schedlab.policies",
                   ("numba", "schedlab.sim", "schedlab.jit")) == []


def test_importing_solvers_loads_no_solver_library() -> None:
    assert _loaded("schedlab.solvers", ("ortools", "scipy.optimize")) == []


def test_log_axes_go_through_the_plot_conventions() -> None:
    """Every log axis is set by :func:`schedlab.plotting.log_axis` (plain-number tick labels),
    never by matplotlib's defaults (``10^-1`` labels)."""
    raw = ("set_yscale(", "set_xscale(", ".loglog(", ".semilogx(", ".semilogy(")
    for name, path in MODULES.items():
        if name == "schedlab.plotting":
            continue
        text = path.read_text()
        bad = [call for call in raw if call in text]
        assert not bad, f"{name} calls {bad}; use schedlab.plotting.log_axis"


def test_importing_the_simulator_loads_no_compiler() -> None:
    """numba (0.2 s to import, 0.3 s more to load cached kernels) loads on a kernel's first
    compiled call, not when the simulator or the cost model is imported."""
    assert _loaded("schedlab.sim, schedlab.costmodel, schedlab.datasets",
                   ("numba", "llvmlite", "schedlab.costmodel.calibration")) == []
