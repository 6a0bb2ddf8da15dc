"""The optimal baseline of intra-query parallel graph search (AverSearch, arXiv 2504.20461;
issue 18): the sequential search's expansion DAG scheduled on ``T`` workers, its work-span bound
and its minimum makespan (P|prec|Cmax) by CP-SAT: :class:`ExpansionDag`, :class:`DagSchedule`,
:func:`verify_dag_schedule`, :func:`work_span_bound`, :func:`list_schedule` and
:func:`solve_dag_schedule_cpsat`.

A sequential best-first search (:func:`schedlab.policies.anns.beam_search`) expands vertices
``0..n-1`` in order; expansion ``i`` computes ``found[i]`` distances and was discovered by the
distance computations of expansion ``parents[i] < i`` (-1 for the entry, expansion 0). A parallel
search can at best run the same expansions with only these dependencies: node ``i`` lasts
``durations_s[i]`` (:meth:`ExpansionDag.from_trace`: ``expansion_s + found[i] * distance_s``),
starts when its parent has finished, and each of the ``workers`` identical workers runs one node
at a time without preemption. Every parallel policy's latency is judged against two numbers:

- :func:`work_span_bound`, ``max(sum(durations) / T, longest root-to-leaf path)``, which no
  schedule beats;
- the minimum makespan, from :func:`solve_dag_schedule_cpsat` for small DAGs (a few dozen
  nodes), between that bound and the list schedule.

:func:`list_schedule` is Graham's list scheduling (highest bottom level first): never above
``sum / T + (1 - 1/T) * critical path``, within ``2 - 1/T`` of the optimum, the solver's warm
start, and fast on 10,000-node DAGs.

The CP-SAT model (:func:`solve_dag_schedule_cpsat`), in labelled stages:

1. **Ticks.** Durations become integer ticks of ``resolution_s`` seconds, rounded **up**
   (``D_i = max(1, ceil(d_i / resolution_s))``), so every tick schedule is feasible in seconds. By
   default the tick is the coarsest one of which every duration is a whole multiple (to 1e-9),
   if the shortest duration is at most 1000 ticks: exact, and a trace's DAG has one when
   ``expansion_s`` and ``distance_s`` are commensurate (``1e-6`` and ``2e-7``: ticks of
   ``2e-7``). Otherwise it is ``min(durations) / 1000``, each duration rounded up by under 0.1%.
   The tick matters: the solver's bound is about the energetic bound rounded up to a whole tick,
   so a coarse exact tick proves optima a fine one leaves open.
2. **Variables.** A start ``s_i`` per node in ``[head_i, U - tail_i]`` (``head_i``: its
   ancestors' ticks; ``tail_i``: its longest path to a leaf; ``U``: the list schedule's
   makespan in ticks), a fixed-size interval per node, the makespan ``z`` in ``[L, U]`` (``L``
   the work-span bound in ticks).
3. **Constraints.** ``s_i >= s_parent + D_parent``; ``AddCumulative`` of unit demands with
   capacity ``T`` (non-preemptive unit-demand jobs on ``T`` identical workers: a start vector
   within the capacity is colourable onto the workers, greedily in start order); ``z >= s_i +
   D_i`` for every leaf. Symmetry: of two leaves with one parent and one duration, the lower
   index starts first. The cumulative's overload checker and CP-SAT's objective lower-bound
   search are switched on: with CP-SAT's defaults a 22-node digits trace on 2 workers was still
   open after 20 s; with them it is proven in milliseconds.
4. **Objective.** Minimise ``z``, the list schedule (or the caller's) as the hint.
5. **Answer.** The solver's starts, coloured onto workers, are re-timed (left-shifted) with the
   true durations, which only moves starts earlier; ``objective`` is the verified makespan in
   seconds of the best of that schedule, the list schedule and the caller's. Rounding a
   duration up by at most ``eps`` of itself (``stats["rounding"]``, 0 for an exact tick)
   lengthens a schedule by at most ``eps`` of its makespan (a chain of nodes that follow one
   another lasts at most the makespan), so the tick optimum is at most ``(1 + eps)`` times the
   true one: ``bound = max(work_span_bound, B * resolution_s / (1 + eps))``, capped at the
   objective, where ``B`` is CP-SAT's bound in ticks. ``OPTIMAL`` means optimal in ticks (or
   the bound meets the objective): the true optimum is within a factor ``1 + eps`` of the
   objective.

>>> dag = ExpansionDag.from_trace([-1, 0, 1, 1, 1, 0], [0, 3, 3, 2, 0, 4], workers=2,
...                               expansion_s=1.0, distance_s=0.5)
>>> dag.durations_s.tolist()
[1.0, 2.5, 2.5, 2.0, 1.0, 3.0]
>>> work_span_bound(dag), list_schedule(dag).makespan_s
(6.0, 7.0)
>>> r = solve_dag_schedule_cpsat(dag, time_limit_s=5)
>>> r.status, round(r.objective, 6), verify_dag_schedule(dag, r.schedule).valid
('OPTIMAL', 6.5, True)
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from schedlab.errors import (
    check_array,
    check_instance,
    check_nonneg_float,
    check_positive_float,
    check_positive_int,
)
from schedlab.solvers.iteration_verify import ScheduleInvalid
from schedlab.solvers.result import SolveResult, check_solve_arguments, run_cpsat

__all__ = [
    "ExpansionDag",
    "DagSchedule",
    "DagScheduleCheck",
    "verify_dag_schedule",
    "work_span_bound",
    "list_schedule",
    "solve_dag_schedule_cpsat",
]

_WHERE = "ExpansionDag"
#: Relative tolerance of :func:`verify_dag_schedule`, of the schedule's largest time.
_TOL = 1e-9
#: Most ticks of the shortest duration under the default resolution (stage 1).
_TICKS = 1000
#: Most ticks the model's horizon may span (a ``resolution_s`` finer than this is refused).
_MAX_TICKS = 2**40


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpansionDag:
    """The expansion DAG of one sequential search, to schedule on ``workers`` workers.

    ``durations_s``: seconds of each expansion (finite, > 0); ``parents``: the expansion whose
    distances discovered each one, -1 at index 0 (the entry) and ``0 <= parents[i] < i``
    elsewhere; ``workers``: identical workers (int >= 1). Arrays are stored as read-only copies.

    >>> dag = ExpansionDag(durations_s=[1.0, 2.0, 0.5], parents=[-1, 0, 0], workers=2)
    >>> dag.n, dag.parents.flags.writeable
    (3, False)
    >>> ExpansionDag(durations_s=[1.0, 2.0, 0.5], parents=[-1, 0, 2], workers=2)
    Traceback (most recent call last):
    ...
    ValueError: The 'parents' parameter of ExpansionDag must hold an earlier node at every index
    i > 0 (0 <= parents[i] < i). Got 2 at index 2.
    """

    durations_s: np.ndarray
    parents: np.ndarray
    workers: int

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        d = check_array(self.durations_s, "durations_s", _WHERE)
        if d.size == 0:
            raise ValueError(f"The 'durations_s' parameter of {_WHERE} must hold at least one "
                             "node. Got an empty array.")
        if (d <= 0).any():
            i = int(np.flatnonzero(d <= 0)[0])
            raise ValueError(f"The 'durations_s' parameter of {_WHERE} must be > 0; element {i} "
                             f"is {d[i].item()!r}.")
        set_(self, "durations_s", d)
        p = check_array(self.parents, "parents", _WHERE, dtype=np.int64, integer=True,
                        length=d.size)
        if p[0] != -1:
            raise ValueError(f"The 'parents' parameter of {_WHERE} must be -1 at index 0 (the "
                             f"entry). Got {int(p[0])} at index 0.")
        bad = (p[1:] < 0) | (p[1:] >= np.arange(1, d.size))
        if bad.any():
            i = int(np.flatnonzero(bad)[0]) + 1
            raise ValueError(f"The 'parents' parameter of {_WHERE} must hold an earlier node at "
                             f"every index i > 0 (0 <= parents[i] < i). Got {int(p[i])} at "
                             f"index {i}.")
        set_(self, "parents", p)
        set_(self, "workers", check_positive_int(self.workers, "workers", _WHERE))

    @property
    def n(self) -> int:
        """Nodes (expansions)."""
        return int(self.durations_s.shape[0])

    @classmethod
    def from_trace(cls, parents: ArrayLike, found: ArrayLike, *, workers: int,
                   expansion_s: float, distance_s: float) -> ExpansionDag:
        """The DAG of a search trace (``SearchTrace.parents`` and ``.found``): node ``i``
        lasts ``expansion_s + found[i] * distance_s`` (``expansion_s > 0``, ``distance_s >=
        0``, ``found`` ints >= 0).

        >>> ExpansionDag.from_trace([-1, 0], [4, 0], workers=1, expansion_s=1e-6,
        ...                         distance_s=5e-7).durations_s.tolist()
        [3e-06, 1e-06]
        """
        where = "ExpansionDag.from_trace"
        f = check_array(found, "found", where, dtype=np.int64, integer=True, min_value=0,
                        length=np.size(parents))
        e = check_positive_float(expansion_s, "expansion_s", where)
        c = check_nonneg_float(distance_s, "distance_s", where)
        return cls(durations_s=e + f * c, parents=np.asarray(parents), workers=workers)


@dataclass(frozen=True, slots=True, kw_only=True)
class DagSchedule:
    """When and where each node runs: ``start_s`` and ``end_s`` (seconds, finite) and
    ``worker`` (int), one per node. Any values of matching lengths are accepted here;
    :func:`verify_dag_schedule` judges them against a DAG.

    >>> DagSchedule(start_s=[0.0, 1.0], end_s=[1.0, 3.0], worker=[0, 0]).makespan_s
    3.0
    """

    start_s: np.ndarray
    end_s: np.ndarray
    worker: np.ndarray

    def __post_init__(self) -> None:
        where = "DagSchedule"
        set_ = object.__setattr__
        start = check_array(self.start_s, "start_s", where)
        set_(self, "start_s", start)
        set_(self, "end_s", check_array(self.end_s, "end_s", where, length=start.size))
        set_(self, "worker", check_array(self.worker, "worker", where, dtype=np.int64,
                                         integer=True, length=start.size))

    @property
    def makespan_s(self) -> float:
        """The last end (0 for an empty schedule)."""
        return float(self.end_s.max()) if self.end_s.size else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DagScheduleCheck:
    """What :func:`verify_dag_schedule` found: the violations (empty when ``valid``) and the
    makespan of the starts as given with the DAG's durations (``nan`` when the schedule does not
    have one entry per node).

    >>> dag = ExpansionDag(durations_s=[1.0, 2.0], parents=[-1, 0], workers=2)
    >>> c = verify_dag_schedule(dag, DagSchedule(start_s=[0.0, 0.5], end_s=[1.0, 2.5],
    ...                                          worker=[0, 1]))
    >>> c.valid, c.makespan_s, c.violations
    (False, 2.5, ['node 1 starts at 0.5 s, before its parent 0 ends at 1 s'])
    """

    violations: list[str]
    makespan_s: float

    @property
    def valid(self) -> bool:
        """No violation."""
        return not self.violations

    def raise_if_invalid(self) -> DagScheduleCheck:
        """Return ``self``, or raise :class:`~schedlab.solvers.ScheduleInvalid` listing the first
        violations."""
        if self.violations:
            lines = [f"  {v}" for v in self.violations[:10]]
            if len(self.violations) > 10:
                lines.append(f"  ... and {len(self.violations) - 10} more")
            raise ScheduleInvalid("DAG schedule breaks the problem's rules:\n" + "\n".join(lines))
        return self


def verify_dag_schedule(dag: ExpansionDag, schedule: DagSchedule) -> DagScheduleCheck:
    """Check ``schedule`` against ``dag``: one entry per node; each node ends ``durations_s``
    after it starts, starts at or after 0 and at or after its parent's end, on a worker in
    ``[0, workers)``; no two nodes overlap on one worker. Times compare with a tolerance of
    ``1e-9`` of the schedule's largest time. A broken schedule is reported, never raised.

    >>> dag = ExpansionDag(durations_s=[1.0, 1.0, 1.0], parents=[-1, 0, 0], workers=2)
    >>> verify_dag_schedule(dag, DagSchedule(start_s=[0.0, 1.0, 1.5], end_s=[1.0, 2.0, 2.5],
    ...                                      worker=[0, 1, 1])).violations
    ['nodes 1 and 2 overlap on worker 1: 2 starts at 1.5 s, before 1 ends at 2 s']
    """
    where = "verify_dag_schedule"
    check_instance(dag, ExpansionDag, "dag", where)
    check_instance(schedule, DagSchedule, "schedule", where)
    n, T = dag.n, dag.workers
    if schedule.start_s.size != n:
        return DagScheduleCheck(violations=[f"the schedule has {schedule.start_s.size} nodes; "
                                            f"the DAG has {n}"], makespan_s=math.nan)
    start, d, w = schedule.start_s, dag.durations_s, schedule.worker
    end = start + d
    tol = _TOL * float(max(np.abs(start).max(), np.abs(schedule.end_s).max(), end.max()))
    bad: list[str] = []
    for i in np.flatnonzero(np.abs(schedule.end_s - end) > tol).tolist():
        bad.append(f"node {i} ends at {schedule.end_s[i]:.9g} s, not its start {start[i]:.9g} s "
                   f"plus its duration {d[i]:.9g} s")
    for i in np.flatnonzero(start < -tol).tolist():
        bad.append(f"node {i} starts at {start[i]:.9g} s, before 0")
    placed = (w >= 0) & (w < T)
    for i in np.flatnonzero(~placed).tolist():
        bad.append(f"node {i} is on worker {int(w[i])}, not in [0, {T})")
    p = dag.parents[1:]
    early = start[1:] < end[p] - tol
    for i in (np.flatnonzero(early) + 1).tolist():
        q = int(dag.parents[i])
        bad.append(f"node {i} starts at {start[i]:.9g} s, before its parent {q} ends at "
                   f"{end[q]:.9g} s")
    nodes = np.flatnonzero(placed)
    order = nodes[np.lexsort((start[nodes], w[nodes]))]
    a, b = order[:-1], order[1:]
    for x, y in zip(*(v[(w[a] == w[b]) & (start[b] < end[a] - tol)].tolist() for v in (a, b)),
                    strict=True):
        bad.append(f"nodes {x} and {y} overlap on worker {int(w[x])}: {y} starts at "
                   f"{start[y]:.9g} s, before {x} ends at {end[x]:.9g} s")
    return DagScheduleCheck(violations=bad, makespan_s=float(end.max()))


def _earliest_finish(d: Sequence[float], parents: list[int]) -> list[float]:
    """Each node's end with unlimited workers (its root path's durations), one forward pass."""
    ef = list(d)
    for i in range(1, len(ef)):
        ef[i] += ef[parents[i]]
    return ef


def work_span_bound(dag: ExpansionDag) -> float:
    """``max(sum(durations_s) / workers, critical path)``: no schedule of ``dag`` ends earlier.

    >>> work_span_bound(ExpansionDag(durations_s=[1.0, 2.0, 2.0], parents=[-1, 0, 0], workers=2))
    3.0
    """
    check_instance(dag, ExpansionDag, "dag", "work_span_bound")
    span = max(_earliest_finish(dag.durations_s.tolist(), dag.parents.tolist()))
    return max(float(dag.durations_s.sum()) / dag.workers, span)


def _list(d: list[float], parents: list[int], workers: int) -> tuple[list[float], list[int]]:
    """Graham's list scheduling of the tree ``parents`` with durations ``d``: whenever a worker
    is idle and a node is ready, start the ready node of highest bottom level (ties: lowest
    index) on the idle worker of lowest index. Returns ``(start, worker)``."""
    n = len(d)
    bottom = list(d)
    children: list[list[int]] = [[] for _ in range(n)]
    for i in range(n - 1, 0, -1):
        p = parents[i]
        bottom[p] = max(bottom[p], d[p] + bottom[i])
        children[p].append(i)
    start, worker = [0.0] * n, [0] * n
    ready = [(-bottom[0], 0)]
    idle = list(range(workers))
    running: list[tuple[float, int, int]] = []  # (end, worker, node)
    now = 0.0
    while ready or running:
        while ready and idle:
            _, i = heapq.heappop(ready)
            w = heapq.heappop(idle)
            start[i], worker[i] = now, w
            heapq.heappush(running, (now + d[i], w, i))
        now = running[0][0]
        while running and running[0][0] == now:
            _, w, i = heapq.heappop(running)
            heapq.heappush(idle, w)
            for c in children[i]:
                heapq.heappush(ready, (-bottom[c], c))
    return start, worker


def _schedule(d: np.ndarray, start: Sequence[float], worker: Sequence[int]) -> DagSchedule:
    s = np.asarray(start, dtype=np.float64)
    return DagSchedule(start_s=s, end_s=s + d, worker=np.asarray(worker, dtype=np.int64))


def list_schedule(dag: ExpansionDag) -> DagSchedule:
    """Graham's list schedule of ``dag``, event by event: whenever a worker is idle and a node is
    ready (its parent done), the ready node with the longest path to a leaf (its bottom level;
    ties: lowest index) starts on the idle worker of lowest index. Its makespan is at most
    ``sum(durations_s) / T + (1 - 1/T) * critical path``, so within ``2 - 1/T`` of the optimum;
    ``O(n log n)``.

    >>> dag = ExpansionDag(durations_s=[1.0, 1.0, 3.0, 1.0], parents=[-1, 0, 0, 1], workers=2)
    >>> s = list_schedule(dag)
    >>> s.start_s.tolist(), s.worker.tolist(), s.makespan_s
    ([0.0, 1.0, 1.0, 2.0], [0, 1, 0, 1], 4.0)
    """
    check_instance(dag, ExpansionDag, "dag", "list_schedule")
    start, worker = _list(dag.durations_s.tolist(), dag.parents.tolist(), dag.workers)
    return _schedule(dag.durations_s, start, worker)


def _retime(d: Sequence[float], parents: list[int], worker: list[int],
            order: list[int]) -> list[float]:
    """Left-shift: each node, in ``order`` (a start order of a valid schedule), starts at its
    parent's end or its worker's previous node's end, whichever is later."""
    end = [0.0] * len(d)
    start = [0.0] * len(d)
    free: dict[int, float] = {}
    for i in order:
        s = max(end[parents[i]] if i else 0.0, free.get(worker[i], 0.0))
        start[i], end[i] = s, s + d[i]
        free[worker[i]] = end[i]
    return start


def _colour(start: list[int], ticks: list[int], workers: int) -> tuple[list[int], list[int]]:
    """Workers for integer starts within the capacity ``workers`` (greedy interval colouring
    in start order; a freed worker of lowest index first). Returns ``(worker, order)``."""
    order = sorted(range(len(start)), key=lambda i: (start[i], i))
    idle = list(range(workers))
    busy: list[tuple[int, int]] = []  # (end, worker)
    worker = [0] * len(start)
    for i in order:
        while busy and busy[0][0] <= start[i]:
            heapq.heappush(idle, heapq.heappop(busy)[1])
        worker[i] = heapq.heappop(idle)  # the cumulative keeps one free
        heapq.heappush(busy, (start[i] + ticks[i], worker[i]))
    return worker, order


def _start_order(start: ArrayLike) -> list[int]:
    return np.lexsort((np.arange(np.size(start)), np.asarray(start))).tolist()


def _default_resolution(d: np.ndarray) -> float:
    """Stage 1's tick: the coarsest one of which every duration is a whole multiple (to 1e-9),
    with the shortest at most ``_TICKS`` ticks; else ``min(d) / _TICKS``."""
    low = float(d.min())
    q = [Fraction(x / low).limit_denominator(_TICKS) for x in d.tolist()]
    if all(abs(float(f) * low - x) <= 1e-9 * x for f, x in zip(q, d.tolist(), strict=True)):
        den = math.lcm(*(f.denominator for f in q))
        g = math.gcd(*(f.numerator * (den // f.denominator) for f in q))
        if den // g <= _TICKS:
            return low * g / den
    return max(low / _TICKS, float(d.sum()) / (_MAX_TICKS // 2))


def solve_dag_schedule_cpsat(
    dag: ExpansionDag,
    *,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
    hint: DagSchedule | bool | None = True,
    resolution_s: float | None = None,
) -> SolveResult:
    """The minimum-makespan schedule of ``dag`` with CP-SAT (model in the module docstring),
    within ``time_limit_s`` (the whole call) on ``num_workers`` threads.

    ``hint``: ``True`` or ``None`` starts from :func:`list_schedule`, ``False`` gives
    CP-SAT no hint (the list schedule still caps the makespan), a :class:`DagSchedule` (it must
    pass :func:`verify_dag_schedule`) starts from the better, in ticks, of it and the list
    schedule. ``resolution_s``: seconds per tick (default: stage 1). A solution always comes
    back: ``OPTIMAL`` (proven in ticks, or the bound meets the objective) or ``FEASIBLE``.
    ``objective`` is the makespan of ``schedule`` (a :class:`DagSchedule`) in seconds,
    ``bound`` a proven lower bound in seconds, never below :func:`work_span_bound`. ``stats``:
    ``n_nodes``, ``n_variables``, ``n_constraints``, ``branches``, ``solver_wall_s``,
    ``resolution_s``, ``rounding`` (``eps``), ``makespan_ticks`` and ``bound_ticks`` (of the
    tick model), ``hint_makespan_s`` (the list schedule's) and ``cpsat_status`` (``"not
    run"`` when the starting schedule meets the work-span bound in ticks).

    >>> dag = ExpansionDag(durations_s=[1.0, 2.0, 2.0, 2.0], parents=[-1, 0, 0, 0], workers=4)
    >>> r = solve_dag_schedule_cpsat(dag)      # the list schedule meets the critical path
    >>> r.status, r.objective, r.bound, r.stats["cpsat_status"]
    ('OPTIMAL', 3.0, 3.0, 'not run')
    """
    t0 = time.perf_counter()
    where = "solve_dag_schedule_cpsat"
    time_limit_s, num_workers = check_solve_arguments(
        where, dag, ExpansionDag, time_limit_s, num_workers, hint, DagSchedule,
        verify_dag_schedule)
    n, T = dag.n, dag.workers
    d, parents = dag.durations_s, dag.parents.tolist()
    lb_s = work_span_bound(dag)
    if resolution_s is None:
        res = _default_resolution(d)
    else:
        res = check_positive_float(resolution_s, "resolution_s", where)
    ticks_f = np.maximum(np.ceil(d / res - 1e-9), 1.0)
    if float(ticks_f.sum()) > _MAX_TICKS:
        raise ValueError(f"The 'resolution_s' parameter of {where} must keep the DAG within "
                         f"{_MAX_TICKS} ticks. Got {res!r}, which needs {ticks_f.sum():.3g}.")
    ticks = ticks_f.astype(np.int64).tolist()
    eps = float(np.maximum(ticks_f * res / d - 1.0, 0.0).max())

    # Candidates in seconds (the list schedule, the caller's) and their tick re-timings.
    listed = list_schedule(dag)
    best = [listed] + ([hint] if isinstance(hint, DagSchedule) else [])
    hints = [_retime(ticks, parents, s.worker.tolist(), _start_order(s.start_s)) for s in best]
    spans = [max(h[i] + ticks[i] for i in range(n)) for h in hints]
    ub = int(min(spans))
    ef = _earliest_finish(ticks, parents)
    lb = max(math.ceil(sum(ticks) / T), int(max(ef)))
    stats: dict[str, Any] = {
        "n_nodes": n, "n_variables": 0, "n_constraints": 0, "branches": 0, "solver_wall_s": 0.0,
        "resolution_s": res, "rounding": eps, "makespan_ticks": ub, "bound_ticks": lb,
        "hint_makespan_s": listed.makespan_s, "cpsat_status": "not run",
    }
    bound_ticks = lb
    if lb < ub:  # else the hint is optimal in ticks
        from ortools.sat.python import cp_model

        # Stage 2: variables.
        bottom = list(ticks)
        for i in range(n - 1, 0, -1):
            bottom[parents[i]] = max(bottom[parents[i]], ticks[parents[i]] + bottom[i])
        model = cp_model.CpModel()
        s = [model.new_int_var(int(ef[i] - ticks[i]), ub - bottom[i], f"s{i}") for i in range(n)]
        z = model.new_int_var(lb, ub, "z")
        # Stage 3: precedence, capacity, makespan, symmetry.
        is_leaf = [True] * n
        for i in range(1, n):
            model.add(s[i] >= s[parents[i]] + ticks[parents[i]])
            is_leaf[parents[i]] = False
        intervals = [model.new_fixed_size_interval_var(s[i], ticks[i], f"i{i}") for i in range(n)]
        model.add_cumulative(intervals, [1] * n, T)
        twin: dict[tuple[int, int], int] = {}
        for i in range(n):
            if is_leaf[i]:
                model.add(z >= s[i] + ticks[i])
                key = (parents[i], ticks[i])
                if key in twin:
                    model.add(s[twin[key]] <= s[i])
                twin[key] = i
        # Stage 4: objective and hint.
        model.minimize(z)
        if hint is not False:
            h = hints[int(np.argmin(spans))]
            for i in range(n):
                model.add_hint(s[i], int(h[i]))
            model.add_hint(z, ub)
        stats.update(n_variables=len(model.proto.variables),
                     n_constraints=len(model.proto.constraints))
        # the cumulative's overload checker proves small trace DAGs in milliseconds (without it
        # a 22-node DAG on 2 workers stayed unproven after 20 s)
        solver, code = run_cpsat(model, time_left_s=time_limit_s - (time.perf_counter() - t0),
                                 num_workers=num_workers,
                                 use_overload_checker_in_cumulative=True,
                                 use_objective_lb_search=True)
        stats.update(branches=int(solver.num_branches), solver_wall_s=float(solver.wall_time),
                     cpsat_status=solver.status_name(code))
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            # Stage 5: colour the starts onto workers, re-time with the true durations.
            c_start = [int(solver.value(v)) for v in s]
            worker, order = _colour(c_start, ticks, T)
            best.append(_schedule(d, _retime(d.tolist(), parents, worker, order), worker))
            c_ticks = max(c_start[i] + ticks[i] for i in range(n))
            ub = min(ub, c_ticks)
            bound_ticks = max(bound_ticks, math.ceil(solver.best_objective_bound - 1e-6))
    schedule = min(best, key=lambda x: x.makespan_s)
    verify_dag_schedule(dag, schedule).raise_if_invalid()
    objective = schedule.makespan_s
    bound_ticks = min(bound_ticks, ub)
    bound = min(max(lb_s, bound_ticks * res / (1 + eps)), objective)
    status = "OPTIMAL" if bound_ticks >= ub or bound >= objective else "FEASIBLE"
    stats.update(makespan_ticks=ub, bound_ticks=bound_ticks)
    return SolveResult(status=status, objective=objective, bound=bound,
                       wall_s=time.perf_counter() - t0, schedule=schedule, stats=stats)
