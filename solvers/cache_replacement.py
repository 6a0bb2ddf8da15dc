"""The optimum of a cluster cache's replacement (RetroInfer's GPU cache): Belady's MIN on the
same access trace, and a verifier of any cache schedule.

Seed paper: RetroInfer (arXiv 2505.02922 §5; digest §5.5). Step ``t`` requests a set ``R_t`` of
equal-size clusters; it misses those not resident after step ``t - 1``; afterwards the cache
may hold any ``capacity`` clusters among those it held and those just requested (a cluster
enters only when fetched). The objective is the total misses (minimised).

With unit sizes and costs, keeping after each step the ``capacity`` candidates whose next
request comes soonest (never-again ones last) is optimal: Belady's exchange argument (a schedule
that keeps a later-needed cluster instead of a sooner-needed one can swap them without a miss
more), and it may decline to admit. :func:`solve_cache_replacement` runs it in
``O(T (C + |R_t|) log C)`` for ``T`` steps and capacity ``C``; :func:`verify_cache_schedule`
checks a schedule (the sets resident after each step) against the rules and counts its misses,
so a policy's run (:func:`schedlab.sim.replay_cache`) and the optimum are judged by one rule.

>>> import numpy as np
>>> trace = [np.array([1, 2]), np.array([3]), np.array([1]), np.array([2])]
>>> r = solve_cache_replacement(trace, capacity=2)
>>> r.status, r.objective, [s.tolist() for s in r.schedule]
('OPTIMAL', 3.0, [[1, 2], [1, 2], [2], []])
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from schedlab.contract.retrieval import access_trace
from schedlab.errors import check_nonneg_int
from schedlab.solvers.result import SolveResult

__all__ = ["solve_cache_replacement", "verify_cache_schedule"]


def verify_cache_schedule(trace: Sequence[Any], capacity: int,
                          schedule: Sequence[Any]) -> int:
    """The misses of ``schedule`` (the clusters resident after each step) on ``trace``;
    ``ValueError`` naming the step and the rule when it holds more than ``capacity`` or holds a
    cluster it neither held nor fetched.

    >>> verify_cache_schedule([np.array([1])], 1, [np.array([2])])
    Traceback (most recent call last):
    ...
    ValueError: verify_cache_schedule: step 0 holds cluster 2, neither resident before nor \
requested
    """
    steps = access_trace(trace, "verify_cache_schedule")
    cap = check_nonneg_int(capacity, "capacity", "verify_cache_schedule")
    if len(schedule) != len(steps):
        raise ValueError(f"verify_cache_schedule: {len(schedule)} resident sets for "
                         f"{len(steps)} steps.")
    prev = np.zeros(0, dtype=np.int64)
    misses = 0
    for t, (req, held) in enumerate(zip(steps, schedule, strict=True)):
        h = np.unique(np.asarray(held, dtype=np.int64))
        if h.shape[0] > cap:
            raise ValueError(f"verify_cache_schedule: step {t} holds {h.shape[0]} clusters, "
                             f"capacity {cap}")
        stray = np.setdiff1d(h, np.union1d(prev, req))
        if stray.shape[0]:
            raise ValueError(f"verify_cache_schedule: step {t} holds cluster {int(stray[0])}, "
                             f"neither resident before nor requested")
        misses += int((~np.isin(req, prev)).sum())
        prev = h
    return misses


def solve_cache_replacement(trace: Sequence[Any], capacity: int) -> SolveResult:
    """Belady's MIN (module docstring): the fewest misses any replacement and admission policy
    can reach on ``trace`` with ``capacity`` clusters. Status ``OPTIMAL``, bound equal to the
    objective; ``schedule`` the resident sets; ``stats``: ``requests``, ``hit_rate``."""
    steps = access_trace(trace, "solve_cache_replacement")
    cap = check_nonneg_int(capacity, "capacity", "solve_cache_replacement")
    start = time.perf_counter()
    # the next request of every (step, cluster), scanning backwards
    never = len(steps)
    upcoming: dict[int, int] = {}
    next_use: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(steps)
    for t in range(len(steps) - 1, -1, -1):
        next_use[t] = np.array([upcoming.get(int(c), never) for c in steps[t]], dtype=np.int64)
        for c in steps[t].tolist():
            upcoming[c] = t
    resident: dict[int, int] = {}  # cluster -> its next request
    schedule = []
    misses = 0
    for t, req in enumerate(steps):
        misses += sum(1 for c in req.tolist() if c not in resident)
        for c, nxt in zip(req.tolist(), next_use[t].tolist(), strict=True):
            resident[c] = nxt
        if len(resident) > cap:
            keep = heapq.nsmallest(cap, resident.items(), key=lambda kv: (kv[1], kv[0]))
            resident = dict(keep)
        resident = {c: n for c, n in resident.items() if n < never}  # never again: no room
        snap = np.array(sorted(resident), dtype=np.int64)
        snap.flags.writeable = False
        schedule.append(snap)
    requests = int(sum(r.shape[0] for r in steps))
    return SolveResult(status="OPTIMAL", objective=float(misses), bound=float(misses),
                       wall_s=time.perf_counter() - start, schedule=schedule,
                       stats={"requests": requests,
                              "hit_rate": 1.0 - misses / requests if requests else 1.0})
