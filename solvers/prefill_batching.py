"""The optimum of LoongServe's prefill batching (Wu et al., SOSP'24, arXiv 2404.09526, §5.3):
which waiting requests prefill together, on which elastic instances, minimising the sum of their
normalised input latencies ``sum_b T(k_b, S_b, Q_b) * sum_{r in b} 1 / l_r`` (all batches start
now, ``T`` the analytic prefill model of §5.5 on the batch's ``k_b`` instances, ``S_b`` and
``Q_b`` its sums of ``l`` and ``l^2``), each batch's tokens within its instances' free slots.

LoongServe's dynamic programme (:func:`schedlab.policies.loongserve.batch_prefills`) searches only
*contiguous* batches: requests sorted by length against instances sorted by free slots, each
batch a run of both. This module judges it on the same :class:`PrefillBatchingProblem`:

- :func:`verify_prefill_batching` checks any answer and computes its objective;
- :func:`brute_force_prefill_batching` enumerates either the DP's own search space
  (``contiguous=True``: the DP must match it exactly) or every partition of the requests with
  every assignment of instances (``contiguous=False``: the true optimum, tiny inputs only);
- :func:`solve_prefill_batching_cpsat` is a CP-SAT set-partitioning model of the joint batch
  and instance assignment (one literal per candidate batch and instance count, one per instance
  and batch; the batch costs precomputed exactly), with time limit, status, bound and gap.

>>> p = PrefillBatchingProblem(lengths=[8_000, 100, 120], instance_free=[10_000, 10_000],
...     prefill_rows={1: (0.01, 1e-4, 1e-8), 2: (0.012, 5e-5, 5e-9)})
>>> r = solve_prefill_batching_cpsat(p, time_limit_s=5)
>>> r.status, [(b.tolist(), len(e)) for b, e in r.schedule]   # requests, instances each
('OPTIMAL', [([0], 1), ([1, 2], 1)])
>>> abs(r.objective - brute_force_prefill_batching(p, contiguous=False)[1]) < 1e-12
True
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from schedlab.errors import check_array
from schedlab.solvers.result import SolveResult, check_solve_arguments, run_cpsat

__all__ = [
    "PrefillBatchingCheck",
    "PrefillBatchingProblem",
    "brute_force_prefill_batching",
    "solve_prefill_batching_cpsat",
    "verify_prefill_batching",
]

Batches = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, slots=True)
class PrefillBatchingProblem:
    """Requests of ``lengths`` tokens to prefill on instances with ``instance_free`` slots,
    ``prefill_rows`` the analytic model ``k -> (A_k, B_k, C_k)`` seconds (``T = A + B S + C Q``);
    ``instance_used`` (default: minus the free slots) orders the instances as LoongServe does
    (used ascending)."""

    lengths: np.ndarray
    instance_free: np.ndarray
    prefill_rows: Mapping[int, tuple[float, float, float]]
    instance_used: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        w = "PrefillBatchingProblem"
        object.__setattr__(self, "lengths", check_array(self.lengths, "lengths", w,
                                                        dtype=np.int64, ndim=1, min_value=1,
                                                        integer=True))
        object.__setattr__(self, "instance_free", check_array(
            self.instance_free, "instance_free", w, dtype=np.int64, ndim=1, min_value=0,
            integer=True))
        if self.instance_used is not None:
            object.__setattr__(self, "instance_used", check_array(
                self.instance_used, "instance_used", w, dtype=np.int64, ndim=1,
                length=self.instance_free.shape[0], integer=True))
        rows = dict(self.prefill_rows)
        missing = [k for k in range(1, self.instance_free.shape[0] + 1) if k not in rows]
        if missing:
            raise ValueError(f"The 'prefill_rows' parameter of {w} must have a row for every "
                             f"instance count 1..{self.instance_free.shape[0]}; missing "
                             f"{missing}.")
        object.__setattr__(self, "prefill_rows", rows)

    def prefill_time(self, k: int, s: ArrayLike, q: ArrayLike) -> Any:
        """``A_k + B_k s + C_k q`` (vectorised): the model the DP and the checks share."""
        a, b, c = self.prefill_rows[k]
        return a + b * np.asarray(s, dtype=np.float64) + c * np.asarray(q, dtype=np.float64)

    def batch_cost(self, requests: np.ndarray, k: int) -> float:
        """One batch's ``T(k, S, Q) * sum 1/l``."""
        ls = self.lengths[requests].astype(np.float64)
        return float(self.prefill_time(k, ls.sum(), (ls * ls).sum())) * float((1.0 / ls).sum())


@dataclass(frozen=True, slots=True)
class PrefillBatchingCheck:
    """:func:`verify_prefill_batching`'s answer: ``valid``, the ``violations`` and the
    ``objective`` (``nan`` when invalid)."""

    valid: bool
    violations: tuple[str, ...]
    objective: float


def verify_prefill_batching(problem: PrefillBatchingProblem, batches: Batches) -> \
        PrefillBatchingCheck:
    """Check ``batches`` (``[(request indices, instance indices)]``): every request in exactly
    one batch, no instance in two, every batch non-empty and within its instances' free slots.

    >>> p = PrefillBatchingProblem(lengths=[5, 5], instance_free=[6, 6],
    ...     prefill_rows={1: (0, 1, 0), 2: (0, 0.5, 0)})
    >>> verify_prefill_batching(p, [(np.array([0, 1]), np.array([0]))]).violations
    ('batch 0 needs 10 slots; its instances [0] have 6 free',)
    """
    n, m = problem.lengths.shape[0], problem.instance_free.shape[0]
    bad: list[str] = []
    seen_r = np.zeros(n, dtype=np.int64)
    seen_e = np.zeros(m, dtype=np.int64)
    total = 0.0
    for j, (r, e) in enumerate(batches):
        r, e = np.asarray(r, dtype=np.int64), np.asarray(e, dtype=np.int64)
        if r.shape[0] == 0 or e.shape[0] == 0:
            bad.append(f"batch {j} is empty")
            continue
        if r.min() < 0 or r.max() >= n or e.min() < 0 or e.max() >= m:
            bad.append(f"batch {j} names a request outside 0..{n - 1} or an instance outside "
                       f"0..{m - 1}")
            continue
        np.add.at(seen_r, r, 1)
        np.add.at(seen_e, e, 1)
        need, free = int(problem.lengths[r].sum()), int(problem.instance_free[e].sum())
        if need > free:
            bad.append(f"batch {j} needs {need} slots; its instances {e.tolist()} have "
                       f"{free} free")
        total += problem.batch_cost(r, int(e.shape[0]))
    if (seen_r != 1).any():
        bad.append(f"requests {np.flatnonzero(seen_r != 1).tolist()} are not in exactly one "
                   "batch")
    if (seen_e > 1).any():
        bad.append(f"instances {np.flatnonzero(seen_e > 1).tolist()} are in two batches")
    return PrefillBatchingCheck(valid=not bad, violations=tuple(bad),
                                objective=math.nan if bad else total)


def _partitions(items: list[int]) -> Any:
    """Every set partition of ``items`` (Bell-number many)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1:]]
        yield [[first], *part]


def brute_force_prefill_batching(problem: PrefillBatchingProblem, *,
                                 contiguous: bool = True) -> tuple[Batches, float]:
    """The best batching by enumeration: ``contiguous=True`` over LoongServe's DP search space
    (runs of the requests sorted by length, longest first, on runs of the instances sorted by
    used slots, every instance up to the last batch's used); ``contiguous=False`` over every
    partition of the requests and every assignment of instances to its parts (at most 7
    requests and 5 instances). ``([], inf)`` when nothing is feasible.

    >>> p = PrefillBatchingProblem(lengths=[5, 5], instance_free=[6, 6],
    ...     prefill_rows={1: (0, 1, 0), 2: (0, 0.5, 0)})
    >>> brute_force_prefill_batching(p)[1]
    2.0
    """
    ls, free = problem.lengths, problem.instance_free
    n, m = ls.shape[0], free.shape[0]
    best: tuple[Batches, float] = ([], math.inf)
    if contiguous:
        used = -free if problem.instance_used is None else problem.instance_used
        ro = np.argsort(-ls, kind="stable")
        eo = np.argsort(used, kind="stable")
        for b in range(1, min(n, m) + 1):
            for rc in itertools.combinations(range(1, n), b - 1):
                rcut = [0, *rc, n]
                for last in range(b, m + 1):
                    for ic in itertools.combinations(range(1, last), b - 1):
                        icut = [0, *ic, last]
                        cand = [(np.sort(ro[rcut[x]:rcut[x + 1]]), eo[icut[x]:icut[x + 1]])
                                for x in range(b)]
                        best = _better(problem, cand, best)
        return best
    if n > 7 or m > 5:
        raise ValueError("brute_force_prefill_batching(contiguous=False) enumerates every "
                         f"partition: at most 7 requests and 5 instances. Got {n} and {m}.")
    for part in _partitions(list(range(n))):
        b = len(part)
        if b > m:
            continue
        for owner in itertools.product(range(b + 1), repeat=m):  # b: unused
            cand = [(np.array(sorted(part[x])), np.array([e for e in range(m) if owner[e] == x]))
                    for x in range(b)]
            if all(e.shape[0] for _, e in cand):
                best = _better(problem, cand, best)
    return best


def _better(problem: PrefillBatchingProblem, cand: Batches,
            best: tuple[Batches, float]) -> tuple[Batches, float]:
    if any(int(problem.lengths[r].sum()) > int(problem.instance_free[e].sum()) for r, e in cand):
        return best
    val = sum(problem.batch_cost(r, int(e.shape[0])) for r, e in cand)
    return (cand, val) if val < best[1] else best


#: Objective units per second x (1 / token) in the CP-SAT model (the batch costs, about 1e-6 to
#: 1e-1, become integers to within 1e-12).
_SCALE = 1e12


def solve_prefill_batching_cpsat(problem: PrefillBatchingProblem, *, time_limit_s: float = 10.0,
                                 num_workers: int = 2) -> SolveResult:
    """The joint batch and instance assignment as CP-SAT set partitioning, for small problems
    (every non-empty subset of the requests is a candidate batch: at most 12 requests).

    Literals ``w[s, k]``: subset ``s`` is a batch on ``k`` instances (its cost
    ``T(k, S_s, Q_s) * sum_s 1/l`` precomputed, scaled by 1e12 and rounded); ``y[e, s]``:
    instance ``e`` serves subset ``s``. Every request is in exactly one chosen subset, every
    instance serves at most one, a chosen subset has exactly its ``k`` instances, whose free
    slots hold its tokens. Minimise the scaled cost. The answer's ``objective`` is the exact
    float objective of the schedule found; ``bound`` CP-SAT's bound unscaled.
    """
    from ortools.sat.python import cp_model

    where = "solve_prefill_batching_cpsat"
    limit, workers = check_solve_arguments(where, problem, PrefillBatchingProblem, time_limit_s,
                                           num_workers, None, list, lambda p, s: None)
    ls, free = problem.lengths, problem.instance_free
    n, m = ls.shape[0], free.shape[0]
    if n > 12:
        raise ValueError(f"{where} enumerates every subset of the requests: at most 12. Got {n}.")
    t0 = time.perf_counter()
    subsets = [np.array([r for r in range(n) if mask >> r & 1]) for mask in range(1, 1 << n)]
    model = cp_model.CpModel()
    w: dict[tuple[int, int], Any] = {}
    y: dict[tuple[int, int], Any] = {}
    cover: list[list[Any]] = [[] for _ in range(n)]
    objective = []
    for s, members in enumerate(subsets):
        need = int(ls[members].sum())
        if need > int(free.sum()):
            continue
        lits = []
        for k in range(1, m + 1):
            if need > int(np.sort(free)[::-1][:k].sum()):
                continue  # not even the k freest instances hold it
            lit = model.new_bool_var(f"w_{s}_{k}")
            w[s, k] = lit
            lits.append((k, lit))
            objective.append(round(problem.batch_cost(members, k) * _SCALE) * lit)
        if not lits:
            continue
        chosen = model.new_bool_var(f"chosen_{s}")
        model.add(sum(lit for _, lit in lits) == chosen)
        for r in members.tolist():
            cover[r].append(chosen)
        inst = [model.new_bool_var(f"y_{e}_{s}") for e in range(m)]
        for e, lit in enumerate(inst):
            y[e, s] = lit
        model.add(sum(inst) == sum(k * lit for k, lit in lits))
        model.add(sum(int(free[e]) * inst[e] for e in range(m)) >= need * chosen)
    if any(not c for c in cover):
        return SolveResult(status="INFEASIBLE", objective=None, bound=math.inf,
                           wall_s=time.perf_counter() - t0, schedule=None)
    for r in range(n):
        model.add_exactly_one(cover[r])
    for e in range(m):
        model.add_at_most_one([lit for (e2, _), lit in y.items() if e2 == e])
    model.minimize(sum(objective))
    solver, code = run_cpsat(model, time_left_s=limit - (time.perf_counter() - t0),
                             num_workers=workers)
    status = {cp_model.OPTIMAL: "OPTIMAL", cp_model.FEASIBLE: "FEASIBLE",
              cp_model.INFEASIBLE: "INFEASIBLE"}.get(code, "UNKNOWN")
    wall = time.perf_counter() - t0
    if status not in ("OPTIMAL", "FEASIBLE"):
        return SolveResult(status=status, objective=None, bound=math.inf, wall_s=wall,
                           schedule=None)
    batches: Batches = []
    for (s, _), lit in w.items():
        if solver.value(lit):
            chosen_inst = np.array([e for e in range(m) if solver.value(y[e, s])],
                                   dtype=np.int64)
            batches.append((subsets[s], chosen_inst))
    batches.sort(key=lambda b: int(b[0][0]))
    check = verify_prefill_batching(problem, batches)
    if not check.valid:  # pragma: no cover - the model's constraints are the check's rules
        raise AssertionError(f"{where} found an invalid batching: {check.violations}")
    return SolveResult(status=status, objective=check.objective,
                       bound=min(solver.best_objective_bound / _SCALE, check.objective),
                       wall_s=wall, schedule=batches,
                       stats={"candidate_batches": len(w), "branches": solver.num_branches})
