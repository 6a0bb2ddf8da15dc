"""schedlab.jit: a cached kernel is recompiled when a kernel it calls (same folder) changes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from schedlab.jit import folder_stamp


def _write(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))


def _run(pkg_parent: Path) -> str:
    code = "from kpkg.b import g; print(g(1))"
    env = {**os.environ, "PYTHONPATH": str(pkg_parent)}
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_editing_a_called_kernel_invalidates_the_caller(tmp_path: Path) -> None:
    pkg = tmp_path / "kpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _write(pkg / "a.py", """
        from schedlab.jit import njit

        @njit
        def f(x):
            return x + 1
    """)
    _write(pkg / "b.py", """
        from schedlab.jit import njit
        from kpkg.a import f

        @njit
        def g(x):
            return f(x) * 10
    """)
    assert _run(tmp_path) == "20"
    assert list((pkg / "__pycache__").glob("b.g-*.nbc")), "the caller was cached"
    time.sleep(0.01)
    _write(pkg / "a.py", """
        from schedlab.jit import njit

        @njit
        def f(x):
            return x + 2
    """)
    assert _run(tmp_path) == "30"  # numba alone would load b.g's stale cache and print 20


def test_folder_stamp_follows_the_sources(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    before = folder_stamp(tmp_path)
    (tmp_path / "notes.txt").write_text("not source")
    assert folder_stamp(tmp_path) == before
    (tmp_path / "m.py").write_text("x = 22\n")
    assert folder_stamp(tmp_path) != before


def test_a_simulation_does_not_import_scipy_linalg_and_numba_blas_still_works() -> None:
    """numba's BLAS probe runs without importing scipy.linalg (start-up time); numba's own
    linear algebra still finds scipy when it compiles."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import numba
        from schedlab import Workload
        from schedlab.sim import InstanceSpec, simulate
        from schedlab.costmodel.base import ConstantIterationCost
        w = Workload(arrival_s=[0.0, 0.1], input_tokens=[4, 5], output_tokens=[3, 2])
        res = simulate(w, InstanceSpec(cost=ConstantIterationCost(slot_s=0.01)), "fcfs")
        assert (res.status == "completed").all()
        from numba.np import arraymath, linalg
        print("linalg" if "scipy.linalg" in sys.modules else "lean", arraymath._HAVE_BLAS,
              arraymath.ensure_blas is linalg.ensure_blas)

        @numba.njit
        def dot(a, b):
            return np.dot(a, b)

        print(float(dot(np.ones(3), np.arange(3.0))))
    """)
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["lean", "True", "True", "3.0"]
