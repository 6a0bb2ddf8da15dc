"""The serverless-sandbox contract (TrEnv): the functions and the invocation trace a platform
serves (:class:`Functions`, :class:`Invocations`), what a sandbox policy sees when an invocation
finds no warm instance of its function (:class:`SandboxView`) and answers
(:class:`SandboxStart`), and the rules every answer keeps (:func:`validate_start`): written once
for the policies, the simulator, the optimum and the tests.

TrEnv (Huang et al., SOSP'24, "TrEnv: Transparently Share Serverless Execution Environments
Across Different Functions and Nodes"; the agent extension is arXiv 2509.09525) splits a
container into a *repurposable sandbox* (network namespace, rootfs, cgroup) and the processes
restored into it from a shared *memory template*. A platform decides, for every invocation
that finds no idle instance of its own function:

- ``path``: ``"create"`` a new sandbox, or ``"repurpose"`` the least recently used idle
  sandbox of any function (TrEnv §4: cleanse it, over-mount the new function's rootfs, move the
  cgroup);
- ``restore``: how the function's processes come up: ``"cold"`` (start and initialise, faasd),
  ``"criu"`` (copy a CRIU image), ``"vm-lazy"`` (REAP+: a Firecracker snapshot, the recorded
  working set fetched at restore), ``"vm-prefetch"`` (FaaSnap+: prefetch overlapped with the
  run), ``"template"`` (TrEnv: attach the mm-template, pages shared copy-on-write);
- ``backend``: where a template's pages live, ``"cxl"`` or ``"rdma"`` (``"local"`` for every
  other restore);
- ``keep_alive_s``: how long the instance stays warm once idle (``inf``: until repurposed or
  evicted);
- ``release``: what becomes of its sandbox then: ``"destroy"``, or ``"pool"`` (TrEnv's B1:
  kill the processes, purge the writes, keep the sandbox clean for any function).

A warm hit (an idle instance of the same function) needs no decision: every system of the
paper serves it the same way (§6.1).

>>> import numpy as np
>>> fns = Functions(names=("a", "b"), image_mb=[50.0, 90.0], limit_mb=[64.0, 100.0],
...                 threads=[14, 14], cpus=[1, 1], exec_s=[0.02, 0.09], touched_mb=[8.0, 16.0],
...                 ro_frac=[0.5, 0.8])
>>> fns.written_mb.round(3).tolist()
[4.0, 3.2]
>>> view = SandboxView(function=1, now_s=3.0, functions=fns, idle=[2, 0], pooled=0, memory_mb=128.0,
...                    cap_mb=1024.0, starting=0)
>>> validate_start(view, SandboxStart(path="repurpose", restore="vm-lazy"))
Traceback (most recent call last):
...
schedlab.contract.serverless.InvalidStart: vm into sandbox: a VM snapshot restores a whole VM ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BACKENDS",
    "PATHS",
    "RELEASES",
    "RESTORES",
    "Functions",
    "InvalidStart",
    "Invocations",
    "SandboxStart",
    "SandboxView",
    "validate_start",
]

#: How a sandbox is found for an invocation without a warm instance.
PATHS = ("create", "repurpose")
#: How the function's processes come up in the sandbox.
RESTORES = ("cold", "criu", "vm-lazy", "vm-prefetch", "template")
#: Where a restore's pages live: local DRAM, or a template's shared pool.
BACKENDS = ("local", "cxl", "rdma")
#: What becomes of an instance's sandbox when its keep-alive ends or it is evicted: destroyed,
#: or cleansed into the function-agnostic pool (TrEnv's B1).
RELEASES = ("destroy", "pool")
#: Restores that bring up a whole VM (they cannot join an existing container sandbox).
VM_RESTORES = ("vm-lazy", "vm-prefetch")


def _column(values: Any, name: str, n: int | None, *, integer: bool = False,
            low: float = 0.0, high: float = math.inf, open_low: bool = False) -> np.ndarray:
    raw = np.asarray(values)
    if raw.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional. Got shape {raw.shape}.")
    if raw.dtype.kind not in "iufb" or raw.dtype.kind == "b":
        raise ValueError(f"{name} must hold numbers. Got {raw[:3].tolist()}.")
    arr = np.array(raw, dtype=np.float64)
    bad = ~np.isfinite(arr) | (arr < low) | (arr > high) | ((arr == low) & open_low)
    if integer:
        bad |= arr != np.round(arr)
    if bad.any():
        i = int(np.argmax(bad))
        kind = "an integer" if integer else "a number"
        bound = f"({low:g}" if open_low else f"[{low:g}"
        raise ValueError(f"{name}[{i}] must be {kind} in {bound}, {high:g}]. "
                         f"Got {raw[i].item()!r}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have one entry per function ({n}). Got {arr.shape[0]}.")
    out = arr.astype(np.int64) if integer else arr
    out.flags.writeable = False
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Functions:
    """The functions a platform serves, one row each (TrEnv Table 2 for the paper's eleven):

    - ``names``: unique names;
    - ``image_mb``: the memory image after initialisation (what CRIU copies, what a template
      shares);
    - ``limit_mb``: the memory limit charged against the platform's memory cap (faasd counts
      limits, not resident pages);
    - ``threads``, ``cpus``: threads to restore, CPUs of the cgroup;
    - ``exec_s``: the warm run on local DRAM;
    - ``touched_mb``: pages the run touches (at most the image); ``ro_frac``: the share of them
      only read (24-90% in §2.2), so ``written_mb = touched_mb * (1 - ro_frac)`` are copied on
      write under a template;
    - ``heap_mb``: memory a run allocates afresh (buffers, activations), private under every
      restore; zeros by default (the paper gives none).
    """

    names: tuple[str, ...]
    image_mb: np.ndarray
    limit_mb: np.ndarray
    threads: np.ndarray
    cpus: np.ndarray
    exec_s: np.ndarray
    touched_mb: np.ndarray
    ro_frac: np.ndarray
    heap_mb: np.ndarray | None = None

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if not names or not all(isinstance(s, str) and s for s in names):
            raise ValueError(f"Functions.names must be non-empty strings. Got {names!r}.")
        if len(set(names)) != len(names):
            raise ValueError(f"Functions.names must be unique. Got {names!r}.")
        object.__setattr__(self, "names", names)
        n = len(names)
        set_ = object.__setattr__
        set_(self, "image_mb", _column(self.image_mb, "Functions.image_mb", n, open_low=True))
        set_(self, "limit_mb", _column(self.limit_mb, "Functions.limit_mb", n, open_low=True))
        set_(self, "threads", _column(self.threads, "Functions.threads", n, integer=True, low=1))
        set_(self, "cpus", _column(self.cpus, "Functions.cpus", n, integer=True, low=1))
        set_(self, "exec_s", _column(self.exec_s, "Functions.exec_s", n))
        set_(self, "touched_mb", _column(self.touched_mb, "Functions.touched_mb", n))
        set_(self, "ro_frac", _column(self.ro_frac, "Functions.ro_frac", n, high=1.0))
        set_(self, "heap_mb", _column(np.zeros(n) if self.heap_mb is None else self.heap_mb,
                                      "Functions.heap_mb", n))
        over = self.touched_mb > self.image_mb
        if over.any():
            i = int(np.argmax(over))
            raise ValueError(f"Functions.touched_mb[{i}] must be at most image_mb "
                             f"({self.image_mb[i]:g}). Got {self.touched_mb[i]:g}.")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def written_mb(self) -> np.ndarray:
        """Pages each run writes (copy-on-write under a template): ``touched * (1 - ro)``."""
        return self.touched_mb * (1.0 - self.ro_frac)

    def index(self, name: str) -> int:
        """The row of the function called ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"Unknown function {name!r}. "
                             f"Known: {', '.join(self.names)}.") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocations:
    """A trace: each invocation's ``arrival_s`` (non-decreasing) and ``function`` (a row of
    :class:`Functions`); ``n_functions`` bounds the rows.

    >>> Invocations(arrival_s=[0.0, 0.5], function=[0, 3], n_functions=2)
    Traceback (most recent call last):
    ...
    ValueError: Invocations.function[1] must be an integer in [0, 1]. Got 3.
    """

    arrival_s: np.ndarray
    function: np.ndarray
    n_functions: int

    def __post_init__(self) -> None:
        k = self.n_functions
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"Invocations.n_functions must be an int >= 1. Got {k!r}.")
        t = _column(self.arrival_s, "Invocations.arrival_s", None)
        f = _column(self.function, "Invocations.function", None, integer=True, high=k - 1)
        if t.shape != f.shape:
            raise ValueError(f"Invocations.arrival_s and function must have one length. Got "
                             f"{t.shape[0]} and {f.shape[0]}.")
        down = np.flatnonzero(np.diff(t) < 0)
        if down.shape[0]:
            i = int(down[0]) + 1
            raise ValueError(f"Invocations.arrival_s must not decrease. Got {t[i]:g} after "
                             f"{t[i - 1]:g} at invocation {i}.")
        object.__setattr__(self, "arrival_s", t)
        object.__setattr__(self, "function", f)
        object.__setattr__(self, "n_functions", int(k))

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxView:
    """What a sandbox policy sees when an invocation of ``function`` arrives at ``now_s`` and
    finds no idle instance of it: the ``functions``, the idle instances per function
    (``idle``) and the clean sandboxes of the function-agnostic pool (``pooled``): any of them
    can be repurposed, the least recently used first; the memory the
    platform has charged (``memory_mb``, the sum of live instances' limits) against its
    ``cap_mb``, and the sandboxes being started right now (``starting``: network setup slows
    down with concurrent starts, Table 1)."""

    function: int
    now_s: float
    functions: Functions
    idle: np.ndarray
    pooled: int
    memory_mb: float
    cap_mb: float
    starting: int

    def __post_init__(self) -> None:
        _check_functions(self.functions)
        n = len(self.functions)
        f = self.function
        if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or not 0 <= f < n:
            raise ValueError(f"SandboxView.function must be a row in [0, {n - 1}]. Got {f!r}.")
        object.__setattr__(self, "idle", _column(self.idle, "SandboxView.idle", n,
                                                 integer=True))
        for name in ("now_s", "memory_mb"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or \
                    not math.isfinite(v) or v < 0:
                raise ValueError(f"SandboxView.{name} must be a finite number >= 0. Got {v!r}.")
        c = self.cap_mb
        if isinstance(c, bool) or not isinstance(c, (int, float, np.number)) or \
                math.isnan(c) or c <= 0:
            raise ValueError(f"SandboxView.cap_mb must be a number > 0 (inf: no cap). Got {c!r}.")
        for name in ("pooled", "starting"):
            s = getattr(self, name)
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
                raise ValueError(f"SandboxView.{name} must be an int >= 0. Got {s!r}.")

    @property
    def idle_total(self) -> int:
        """Idle sandboxes a repurpose can take: instances of every function and the pool's."""
        return int(self.idle.sum()) + int(self.pooled)


def _check_functions(functions: object) -> None:
    """Raise ``ValueError`` unless ``functions`` is a :class:`Functions` table."""
    if not isinstance(functions, Functions):
        raise ValueError(f"functions must be a Functions table. Got {type(functions).__name__}.")


@dataclass(frozen=True, slots=True)
class SandboxStart:
    """A sandbox policy's answer: the ``path`` (:data:`PATHS`), the ``restore``
    (:data:`RESTORES`), the template ``backend`` (:data:`BACKENDS`), the instance's
    ``keep_alive_s`` once idle, its sandbox's ``release`` then (:data:`RELEASES`), and the
    ``reason`` in words."""

    path: str = "create"
    restore: str = "cold"
    backend: str = "local"
    keep_alive_s: float = 600.0
    release: str = "destroy"
    reason: str = ""


class InvalidStart(ValueError):
    """A sandbox start breaks a rule of the contract; ``rule`` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def validate_start(view: SandboxView, start: SandboxStart) -> None:
    """The rules of a start, checked by the simulator and by ``check_sandbox_policy`` alike:
    known path, restore, backend and release; a repurpose needs an idle sandbox and a container
    restore (a VM snapshot restores a whole VM), and only a container is cleansed into the pool;
    a template lives on ``cxl`` or ``rdma``, every other
    restore on ``local``; a keep-alive is a number >= 0 (``inf`` allowed).

    >>> fns = Functions(names=("a",), image_mb=[50.0], limit_mb=[64.0], threads=[1], cpus=[1],
    ...                 exec_s=[0.1], touched_mb=[8.0], ro_frac=[0.5])
    >>> v = SandboxView(function=0, now_s=0.0, functions=fns, idle=[0], pooled=0,
    ...                 memory_mb=0.0, cap_mb=512.0, starting=0)
    >>> validate_start(v, SandboxStart(path="repurpose", restore="template", backend="cxl"))
    Traceback (most recent call last):
    ...
    schedlab.contract.serverless.InvalidStart: no idle sandbox: a repurpose needs one, there are 0
    """
    if not isinstance(start, SandboxStart):
        raise InvalidStart("malformed answer", f"expected a SandboxStart, got "
                                               f"{type(start).__name__}")
    for field, known in (("path", PATHS), ("restore", RESTORES), ("backend", BACKENDS),
                         ("release", RELEASES)):
        value = getattr(start, field)
        if value not in known:
            raise InvalidStart(f"unknown {field}", f"{value!r} is not one of {known}")
    if start.path == "repurpose":
        if view.idle_total == 0:
            raise InvalidStart("no idle sandbox", "a repurpose needs one, there are 0")
        if start.restore in VM_RESTORES:
            raise InvalidStart("vm into sandbox", f"a VM snapshot restores a whole VM "
                                                  f"({start.restore!r}), it cannot be "
                                                  "repurposed into a container sandbox")
    if start.release == "pool" and start.restore in VM_RESTORES:
        raise InvalidStart("vm into pool", f"a VM ({start.restore!r}) cannot be cleansed into "
                                           "the container pool")
    if (start.restore == "template") != (start.backend != "local"):
        raise InvalidStart("backend", f"a template lives on 'cxl' or 'rdma', every other "
                                      f"restore on 'local'; got {start.restore!r} on "
                                      f"{start.backend!r}")
    k = start.keep_alive_s
    if isinstance(k, bool) or not isinstance(k, (int, float, np.number)) or math.isnan(k) \
            or k < 0:
        raise InvalidStart("keep-alive", f"keep_alive_s must be a number >= 0, got {k!r}")
