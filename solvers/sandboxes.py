"""Optimal baselines of serverless sandboxes (TrEnv, digest §2.8), on the same records as the
policies (:class:`~schedlab.contract.serverless.Invocations`,
:class:`~schedlab.contract.serverless.Functions`), and the verifier of any run.

- :func:`peak_concurrency` and :func:`assign_sandboxes`: the fewest sandboxes that serve a set
  of intervals when any idle sandbox can serve any function (TrEnv's function-agnostic pool)
  is their peak concurrency (interval-graph colouring), reached by greedy reuse of any free
  sandbox; per-function keep-alive needs the sum of per-function peaks.
- :func:`solve_reuse`: the cheapest reuse schedule of a small trace, exact by min-cost flow
  (networkx): every invocation either creates a sandbox (its create cost) or takes over the
  sandbox of one that finished before it arrived (free for the same function, the repurpose
  cost for another; not at all without ``repurpose``). With each invocation held from the
  time a run began it for its run on local DRAM (never longer than the run's hold), the
  optimum's start cost bounds that run's total start time from below.
- :func:`latency_floor`: every invocation's end-to-end time is at least its local run.
- :func:`memory_floor`: the memory of a platform that shares each function's image (one copy
  while any of its invocations runs) and holds only each live invocation's written pages and
  sandbox, nothing idle: given a run's begin times, below that run's memory at every moment
  when its instances share their images (TrEnv's templates).
- :func:`verify_serverless_run`: the rules any run keeps (served once or rejected with a
  reason, ``e2e = queue + start + exec`` with every term >= 0, one invocation per sandbox at a
  time, the cap respected); ``ServerlessRun.verify`` calls it.

>>> import numpy as np
>>> from schedlab.contract.serverless import Invocations
>>> from schedlab.datasets.serverless import trenv_functions
>>> fns = trenv_functions(("DH", "JS"))
>>> tr = Invocations(arrival_s=[0.0, 0.01, 1.0, 1.0], function=[0, 1, 1, 0], n_functions=2)
>>> peak_concurrency(tr.arrival_s, tr.arrival_s + fns.exec_s[tr.function])
2
>>> r = solve_reuse(tr, fns)
>>> r.status, r.stats["creations"], r.stats["reuses"]
('OPTIMAL', 2, 2)
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.contract.serverless import Functions, Invocations
from schedlab.costmodel.serverless import SandboxCosts, cost_tables
from schedlab.errors import check_instance, check_positive_int
from schedlab.solvers.result import SolveResult

__all__ = ["InvalidRun", "ReuseSchedule", "assign_sandboxes", "latency_floor", "memory_floor",
           "peak_concurrency", "solve_reuse", "verify_reuse", "verify_serverless_run"]

_EPS = 1e-9


def _intervals(begin: Any, end: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(begin, dtype=np.float64)
    e = np.asarray(end, dtype=np.float64)
    if b.shape != e.shape or b.ndim != 1:
        raise ValueError(f"{where}: begin and end must be 1-D of one length. Got {b.shape} and "
                         f"{e.shape}.")
    bad = ~np.isfinite(b) | ~np.isfinite(e) | (e < b)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{where}: interval {i} must be finite with end >= begin. Got "
                         f"[{b[i]!r}, {e[i]!r}].")
    return b, e


def peak_concurrency(begin: Any, end: Any) -> int:
    """The sandboxes intervals ``[begin, end)`` need at once: an end at ``t`` frees its
    sandbox for a begin at ``t``, and an interval of no length still holds one for an instant
    (one more than those begun before ``t`` and alive after it).

    >>> peak_concurrency([0, 1, 1], [1, 2, 3]), peak_concurrency([2, 2], [2, 2])
    (2, 1)
    """
    b, e = _intervals(begin, end, "peak_concurrency")
    pos = e > b
    bp, ep = b[pos], e[pos]
    times = np.concatenate([ep, bp])
    delta = np.concatenate([-np.ones(ep.shape[0]), np.ones(bp.shape[0])])
    order = np.lexsort((delta, times))  # at one time, ends first
    peak = int(np.cumsum(delta[order]).max(initial=0))
    z = b[~pos]
    if z.shape[0]:
        live = np.searchsorted(np.sort(bp), z, "left") - np.searchsorted(np.sort(ep), z, "right")
        peak = max(peak, int(live.max()) + 1)
    return peak


def assign_sandboxes(begin: Any, end: Any) -> np.ndarray:
    """A sandbox per interval, reusing any free one (the lowest numbered) before creating, in
    order of begin (at one time, intervals of no length first): exactly
    :func:`peak_concurrency` sandboxes, the optimum of interval colouring.

    >>> assign_sandboxes([0, 1, 1, 2], [1, 2, 3, 4]).tolist()
    [0, 0, 1, 0]
    """
    b, e = _intervals(begin, end, "assign_sandboxes")
    out = np.empty(b.shape[0], dtype=np.int64)
    busy: list[tuple[float, int]] = []
    free: list[int] = []
    count = 0
    for i in np.lexsort((e > b, b)).tolist():
        while busy and busy[0][0] <= b[i]:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            out[i] = heapq.heappop(free)
        else:
            out[i] = count
            count += 1
        heapq.heappush(busy, (float(e[i]), int(out[i])))
    return out


def latency_floor(trace: Invocations, functions: Functions) -> np.ndarray:
    """Each invocation's end-to-end floor: its run on local DRAM, warm (digest §2.8)."""
    check_instance(trace, Invocations, "trace", "latency_floor")
    return functions.exec_s[trace.function]


def memory_floor(trace: Invocations, functions: Functions, *, begin_s: Any = None,
                 costs: SandboxCosts | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The memory floor over time (digest §2.8): each invocation live from its begin
    (``begin_s``, its arrival by default) for its local run, holding its written pages, its
    fresh allocations (``heap_mb``) and a sandbox (``costs.sandbox_mb``), and each function's
    image once while any of its invocations is live. Returns the times and the MB from each
    time on (at one time, ends first).

    >>> from schedlab.datasets.serverless import trenv_functions
    >>> fns = trenv_functions(("JS",))
    >>> tr = Invocations(arrival_s=[0.0, 0.05], function=[0, 0], n_functions=1)
    >>> t, mb = memory_floor(tr, fns)
    >>> t.tolist(), mb.round(1).tolist()     # 94.9 MB image once, 3.2 + 2 MB per invocation
    ([0.0, 0.05, 0.09, 0.14], [100.1, 105.3, 100.1, 0.0])
    """
    check_instance(trace, Invocations, "trace", "memory_floor")
    check_instance(functions, Functions, "functions", "memory_floor")
    sb = (SandboxCosts() if costs is None else costs).sandbox_mb
    b = _begins(trace, begin_s, "memory_floor")
    f = trace.function
    e = b + functions.exec_s[f]
    times = np.concatenate([e, b])
    sign = np.concatenate([-np.ones(len(trace), dtype=np.int64),
                           np.ones(len(trace), dtype=np.int64)])
    order = np.lexsort((sign, times))
    own = (functions.written_mb + functions.heap_mb + sb).tolist()
    image = functions.image_mb.tolist()
    live = [0] * len(functions)
    level = 0.0
    out_t: list[float] = []
    out_mb: list[float] = []
    fun = np.concatenate([f, f]).tolist()
    for k, t, d in zip(order.tolist(), times[order].tolist(), sign[order].tolist(),
                       strict=True):
        g = fun[k]
        if d > 0:
            level += own[g] + (image[g] if live[g] == 0 else 0.0)
            live[g] += 1
        else:
            live[g] -= 1
            level -= own[g] + (image[g] if live[g] == 0 else 0.0)
        if out_t and out_t[-1] == t:
            out_mb[-1] = level
        else:
            out_t.append(t)
            out_mb.append(level)
    return np.array(out_t), np.maximum(np.array(out_mb), 0.0)


@dataclass(frozen=True, slots=True)
class ReuseSchedule:
    """Who hands each invocation its sandbox: ``predecessor[i]`` (an invocation that finished
    before ``i`` arrived, each handing over at most once) or -1 for a new sandbox."""

    predecessor: np.ndarray


class InvalidRun(ValueError):
    """A run or a schedule breaks a rule; ``rule`` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def _step_costs(functions: Functions, costs: SandboxCosts | None, restore: str,
                backend: str) -> tuple[np.ndarray, np.ndarray]:
    tables = cost_tables(SandboxCosts() if costs is None else costs, functions)
    key = (restore, backend)
    if ("create", *key) not in tables.start_s:
        raise ValueError(f"Unknown restore {restore!r} on backend {backend!r}.")
    create = tables.start_s[("create", *key)]
    repurpose = tables.start_s.get(("repurpose", *key), np.full(len(functions), math.inf))
    return create, repurpose


def _begins(trace: Invocations, begin_s: Any, where: str) -> np.ndarray:
    if begin_s is None:
        return trace.arrival_s
    b = np.asarray(begin_s, dtype=np.float64)
    if b.shape != trace.arrival_s.shape or not np.isfinite(b).all() or \
            (b < trace.arrival_s - _EPS).any():
        raise ValueError(f"{where}: begin_s must give every invocation a finite begin at or "
                         "after its arrival.")
    return b


def verify_reuse(trace: Invocations, functions: Functions, schedule: ReuseSchedule, *,
                 costs: SandboxCosts | None = None, restore: str = "template",
                 backend: str = "cxl", repurpose: bool = True, begin_s: Any = None) -> float:
    """The start cost (seconds, summed) of ``schedule`` on ``trace``, each invocation held
    from its begin (``begin_s``, its arrival by default) for its local run; ``InvalidRun``
    naming the rule when a sandbox is handed over before it is free, twice, or to another
    function without ``repurpose``."""
    pred = np.asarray(schedule.predecessor, dtype=np.int64)
    n = len(trace)
    if pred.shape != (n,):
        raise InvalidRun("shape", f"one predecessor per invocation ({n}), got {pred.shape}")
    create, rep = _step_costs(functions, costs, restore, backend)
    a, f = _begins(trace, begin_s, "verify_reuse"), trace.function
    end = a + functions.exec_s[f]
    used = pred[pred >= 0]
    if used.shape[0] and (used.max() >= n or np.unique(used).shape[0] != used.shape[0]):
        raise InvalidRun("handed twice", "a sandbox is handed over twice (or by no invocation)")
    total = 0.0
    for i in range(n):
        j = int(pred[i])
        if j < 0:
            total += float(create[f[i]])
            continue
        if end[j] > a[i] + _EPS:
            raise InvalidRun("busy", f"invocation {i} at {a[i]:g} s takes the sandbox of {j}, "
                                     f"busy until {end[j]:g} s")
        if f[j] != f[i]:
            if not repurpose:
                raise InvalidRun("no repurpose", f"invocation {i} takes a sandbox of another "
                                                 "function, but repurposing is off")
            total += float(rep[f[i]])
    return total


def solve_reuse(trace: Invocations, functions: Functions, *, costs: SandboxCosts | None = None,
                restore: str = "template", backend: str = "cxl", repurpose: bool = True,
                begin_s: Any = None, max_invocations: int = 400) -> SolveResult:
    """The cheapest reuse schedule of ``trace`` (at most ``max_invocations``: the flow has an
    arc per pair), exact by min-cost flow: start costs of ``restore`` on ``backend`` from
    :func:`~schedlab.costmodel.serverless.cost_tables` (the network's contention left out),
    rounded to the microsecond; each invocation held from its begin (``begin_s``: pass a run's
    ``arrival_s + queue_s`` to bound that run, whose holds are never shorter) for its local
    run. ``stats``: creations, reuses (same function), repurposes."""
    import networkx as nx

    t0 = time.perf_counter()
    check_instance(trace, Invocations, "trace", "solve_reuse")
    check_instance(functions, Functions, "functions", "solve_reuse")
    cap = check_positive_int(max_invocations, "max_invocations", "solve_reuse")
    n = len(trace)
    if n > cap:
        raise ValueError(f"solve_reuse takes at most max_invocations={cap} invocations (its "
                         f"flow has an arc per pair). Got {n}.")
    create, rep = _step_costs(functions, costs, restore, backend)
    a, f = _begins(trace, begin_s, "solve_reuse"), trace.function
    end = a + functions.exec_s[f]
    us = 1e6
    g = nx.DiGraph()
    g.add_node("s", demand=-n)
    g.add_node("t", demand=n)
    for i in range(n):
        g.add_edge("s", ("out", i), capacity=1, weight=0)
        g.add_edge("s", ("in", i), capacity=1, weight=round(float(create[f[i]]) * us))
        g.add_edge(("in", i), "t", capacity=1, weight=0)
        for j in np.flatnonzero(end <= a[i] + _EPS).tolist():
            if j == i:
                continue
            if f[j] == f[i]:
                g.add_edge(("out", j), ("in", i), capacity=1, weight=0)
            elif repurpose and math.isfinite(rep[f[i]]):
                g.add_edge(("out", j), ("in", i), capacity=1, weight=round(float(rep[f[i]]) * us))
    flow: Mapping[Any, Mapping[Any, int]] = nx.min_cost_flow(g)
    pred = np.full(n, -1, dtype=np.int64)
    for j in range(n):
        for node, x in flow[("out", j)].items():
            if x:
                pred[node[1]] = j
    schedule = ReuseSchedule(predecessor=pred)
    cost = verify_reuse(trace, functions, schedule, costs=costs, restore=restore,
                        backend=backend, repurpose=repurpose, begin_s=a)
    reused = pred >= 0
    same = int((reused & (f[np.maximum(pred, 0)] == f)).sum())
    return SolveResult(status="OPTIMAL", objective=cost, bound=cost,
                       wall_s=time.perf_counter() - t0, schedule=schedule,
                       stats={"creations": int((~reused).sum()), "reuses": same,
                              "repurposes": int(reused.sum()) - same, "arcs": g.number_of_edges()})


def verify_serverless_run(trace: Invocations, functions: Functions, *, path: Any, sandbox: Any,
                          queue_s: Any, start_s: Any, exec_s: Any, rejected: Mapping[int, str],
                          cap_mb: float = math.inf, charged_mb: Any = ()) -> None:
    """Check a run of ``trace`` (per invocation its ``path`` code, -1 rejected, ``sandbox``
    and the three latency terms; the ``rejected`` reasons; the charged memory over time):
    ``InvalidRun`` naming the first rule broken (invariants 1, 2 and 6 of the digest)."""
    n = len(trace)
    p = np.asarray(path)
    sb = np.asarray(sandbox)
    q, s, x = (np.asarray(v, dtype=np.float64) for v in (queue_s, start_s, exec_s))
    if not all(v.shape == (n,) for v in (p, sb, q, s, x)):
        raise InvalidRun("shape", f"every column needs one entry per invocation ({n})")
    served = p >= 0
    listed = np.zeros(n, dtype=bool)
    for i, reason in rejected.items():
        if not 0 <= i < n or not isinstance(reason, str) or not reason:
            raise InvalidRun("rejection", f"invocation {i!r} is rejected without a reason")
        listed[i] = True
    both = served == listed
    if both.any():
        i = int(np.argmax(both))
        state = "served and rejected" if served[i] else "neither served nor rejected"
        raise InvalidRun("served once", f"invocation {i} is {state}")
    terms = np.stack([q[served], s[served], x[served]])
    if terms.size and (~np.isfinite(terms) | (terms < -_EPS)).any():
        i = int(np.flatnonzero(served)[np.argmax((~np.isfinite(terms) | (terms < -_EPS)).any(0))])
        raise InvalidRun("e2e terms", f"invocation {i} has queue {float(q[i])!r}, start "
                                      f"{float(s[i])!r}, exec {float(x[i])!r}: each must be "
                                      "finite and >= 0")
    if (x[served] + _EPS < functions.exec_s[trace.function[served]]).any():
        i = int(np.flatnonzero(served & (x + _EPS < functions.exec_s[trace.function]))[0])
        raise InvalidRun("latency floor", f"invocation {i} ran {x[i]:g} s, under its local run")
    idx = np.flatnonzero(served)
    if idx.shape[0] and sb[idx].min() < 0:
        i = int(idx[np.argmin(sb[idx])])
        raise InvalidRun("sandbox", f"invocation {i} is served in no sandbox ({int(sb[i])})")
    begin = trace.arrival_s[idx] + q[idx]
    end = begin + s[idx] + x[idx]
    order = np.lexsort((begin, sb[idx]))
    same = sb[idx][order][1:] == sb[idx][order][:-1]
    clash = same & (begin[order][1:] < end[order][:-1] - 1e-7)
    if clash.any():
        k = int(np.argmax(clash))
        i, j = int(idx[order][k]), int(idx[order][k + 1])
        raise InvalidRun("one invocation per sandbox", f"invocations {i} and {j} overlap in "
                                                       f"sandbox {int(sb[i])}")
    c = np.asarray(charged_mb, dtype=np.float64)
    if c.size and c.max() > cap_mb + 1e-6:
        raise InvalidRun("memory cap", f"{c.max():g} MB charged, above the cap of {cap_mb:g}")
