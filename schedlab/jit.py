"""Compiled hot paths: :func:`njit`, numba's ``njit`` with the project's settings.

The simulator's per-event work and the built-in policies' per-decision work are a few dozen
array operations on short columns; as numpy calls each costs about a microsecond of call
overhead, whatever the length. Fusing such a sequence into one compiled loop makes it one call
(a compiled call from Python costs well under a microsecond). Kernels stay small, pure functions
of arrays and scalars, called from ordinary Python that keeps the validation and the public API.

Settings: ``cache=True`` (compiled code is kept on disk next to the module, or in numba's
user cache when the package folder is read-only, so a process pays compilation once per
machine), ``nogil=True`` (a kernel releases the GIL, for users who run simulations in threads)
and ``error_model="numpy"`` (float division by zero gives inf/nan as in numpy instead of
raising, and no per-division check).

Lazy loading: :func:`njit` returns a :class:`Kernel`; numba is imported on a kernel's first
compiled call (about 0.2 s, plus 0.3 s to load the cached kernels), not with the module, and
:func:`interpreted` runs kernels not yet compiled as plain Python.

Cache freshness: numba checks a cached kernel only against its own source file, but a kernel
compiles in the kernels it calls. So the first compiled call in each package folder compares a
stamp of every ``.py`` file in that folder (names, sizes, modification times) with the one
stored beside the cache, and drops the folder's cached kernels when it differs. Kernels may call
kernels of their own folder only.

Start-up: numba's first compile or cache load imports its array-math module, whose BLAS probe
imports ``scipy.linalg`` (about 0.12 s, as long as a whole small simulation) only to learn
whether scipy is installed. The first compiled call runs that import once with a probe that finds
scipy without importing it (:func:`_probe_blas_lazily`); numba's linear-algebra kernels still
import ``scipy.linalg`` when they compile.

Set the environment variable ``NUMBA_DISABLE_JIT=1`` to run every kernel as plain Python (for a
debugger or coverage); results are the same.

>>> import numpy as np
>>> @njit
... def total(a):
...     s = 0
...     for x in a:
...         s += x
...     return s
>>> int(total(np.arange(5)))
10
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

__all__ = ["Kernel", "announce_first_compile", "first_run_compiles", "interpreted", "njit"]

F = TypeVar("F", bound=Callable)

_STAMP_FILE = "schedlab-jit.stamp"
_checked: set[Path] = set()


def folder_stamp(folder: Path) -> str:
    """A digest of the names, sizes and modification times of the ``.py`` files in ``folder``."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        st = path.stat()
        h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _stamp_fresh(folder: Path, stamp: str) -> bool:
    """Whether the stamp stored beside ``folder``'s cache is ``stamp``."""
    try:
        return (folder / "__pycache__" / _STAMP_FILE).read_text() == stamp
    except OSError:
        return False


def _drop_stale_cache(folder: Path) -> None:
    """Once per process and folder: delete the folder's cached kernels if any of its source
    files changed since they were compiled (best effort: a read-only folder is left alone)."""
    if folder in _checked:
        return
    _checked.add(folder)
    cache = folder / "__pycache__"
    stamp = folder_stamp(folder)
    if _stamp_fresh(folder, stamp):
        return
    try:
        for pattern in ("*.nbi", "*.nbc"):
            for f in cache.glob(pattern):
                f.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        (cache / _STAMP_FILE).write_text(stamp)
    except OSError:
        pass


def first_run_compiles(packages: tuple[str, ...] = ("schedlab.sim", "schedlab.costmodel")) -> bool:
    """Whether the kernels of ``packages`` will compile in this process instead of loading from
    the disk cache (no fresh cache beside a writable source folder). Imports none of them; a
    read-only folder (numba then caches elsewhere) counts as compiled.
    """
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(next(iter(spec.submodule_search_locations)))
        if not os.access(folder, os.W_OK):
            continue
        if (not _stamp_fresh(folder, folder_stamp(folder))
                or not any((folder / "__pycache__").glob("*.nbi"))):
            return True
    return False


def announce_first_compile(who: str) -> None:
    """Print once on stderr, as ``who``, that this run compiles the kernels, if it will."""
    if first_run_compiles():
        print(f"{who}: first run here: compiling the simulator's kernels (once, up to a "
              "minute; cached for later runs)", file=sys.stderr, flush=True)


def _probe_blas_lazily() -> None:
    """Import ``numba.np.arraymath`` with a BLAS probe that does not import scipy.linalg (see
    the module docstring); left alone when it is imported already or numba's internals differ."""
    if "numba.np.arraymath" in sys.modules:
        return
    from numba.np import linalg

    real = getattr(linalg, "ensure_blas", None)
    if real is None:
        return

    def scipy_installed() -> None:
        if importlib.util.find_spec("scipy") is None:
            raise ImportError("scipy is required for linear algebra")

    linalg.ensure_blas = scipy_installed
    try:
        from numba.np import arraymath
    finally:
        linalg.ensure_blas = real
    if getattr(arraymath, "ensure_blas", None) is scipy_installed:
        arraymath.ensure_blas = real


#: Kernels not yet handed to numba, by source folder (numba is imported on the first call).
_PENDING: dict[Path, list[Kernel]] = {}
#: ``NUMBA_DISABLE_JIT=1``: every kernel runs as plain Python and numba is never imported.
_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
_interpret = False


@contextmanager
def interpreted(on: bool = True) -> Iterator[None]:
    """Run kernels not compiled yet in this process as plain Python inside the block (same
    results), so a one-shot run too small to repay loading the compiler never imports numba.
    Kernels already compiled stay compiled."""
    global _interpret
    before, _interpret = _interpret, bool(on)
    try:
        yield
    finally:
        _interpret = before


class Kernel:
    """A kernel that becomes a numba dispatcher on its first call outside :func:`interpreted`
    (numba is imported then, not when the module defining the kernel is). At that moment every
    pending kernel of the same folder is compiled-on-demand too, and the folder's modules see
    the dispatchers under the kernels' names, so compiled kernels call each other directly."""

    __slots__ = ("__name__", "__qualname__", "__wrapped__", "_dispatcher", "_folder", "py_func")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.py_func = self.__wrapped__ = fn
        self.__name__, self.__qualname__ = fn.__name__, fn.__qualname__
        self._dispatcher: Any = None
        source = fn.__code__.co_filename
        self._folder = Path(source).resolve().parent if os.path.isfile(source) else None

    def __call__(self, *args: Any) -> Any:
        d = self._dispatcher
        if d is not None:
            return d(*args)
        if _DISABLED or _interpret:
            return self.py_func(*args)
        _compile_folder(self)
        return self._dispatcher(*args)

    def __repr__(self) -> str:
        return f"<schedlab kernel {self.__qualname__}>"


def _compile_folder(kernel: Kernel) -> None:
    """Hand ``kernel`` and the pending kernels of its folder to numba (loading or compiling
    each lazily on its own first call), then point the folder's modules at the dispatchers."""
    import numba

    _probe_blas_lazily()
    folder = kernel._folder
    group = _PENDING.pop(folder, []) if folder is not None else []
    if kernel not in group:
        group.append(kernel)
    if folder is not None:
        _drop_stale_cache(folder)
    for k in group:
        k._dispatcher = numba.njit(cache=folder is not None, nogil=True,
                                   error_model="numpy")(k.py_func)
    replace = {id(k): k._dispatcher for k in group}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if folder is None or not path or Path(path).resolve().parent != folder:
            continue
        names = vars(module)
        for name, value in list(names.items()):
            if id(value) in replace:
                names[name] = replace[id(value)]


def njit(fn: F) -> F:
    """Mark ``fn`` as a kernel compiled by numba's nopython mode with the settings above, on its
    first call (:class:`Kernel`); no disk cache for a function defined outside a file, e.g. at a
    prompt or in a doctest."""
    kernel = Kernel(fn)
    if kernel._folder is not None:
        _PENDING.setdefault(kernel._folder, []).append(kernel)
    # a Kernel is called like ``fn`` (same arguments and results), so callers keep its signature
    return cast(F, kernel)
