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

import os
from collections.abc import Callable
from typing import TypeVar

import numba

__all__ = ["njit"]

F = TypeVar("F", bound=Callable)


def njit(fn: F) -> F:
    """Compile ``fn`` in numba's nopython mode with the settings above (no disk cache for a
    function defined outside a file, e.g. at a prompt or in a doctest)."""
    cache = os.path.isfile(fn.__code__.co_filename)
    return numba.njit(cache=cache, nogil=True, error_model="numpy")(fn)
