"""Admission and placement in a disaggregated cluster, optimally, for a window of requests
(Mooncake digest §2.5a): :class:`PlacementProblem`, :class:`PlacementSchedule`,
:func:`verify_placement` and :func:`solve_placement_cpsat`.

The problem, on a millisecond grid (every duration rounded up, so a schedule valid here is valid
in seconds too): request ``r`` arrives at ``arrival_ms[r]``; on prefill instance ``p`` its prefill
takes ``prefill_ms[r, p]`` with the prefix cached there, or ``pulled_ms[r, p]`` when it first pulls
the pool's best prefix (the transfer included; -1 where there is nothing to pull). Each prefill
instance runs one prefill at a time, from ``prefill_free_ms[p]`` on. An accepted request must
finish its prefill within ``slo_ttft_ms`` of its arrival, then decodes on one decode instance
``d`` for ``decode_ms[r]`` from the end of its prefill, adding ``decode_demand_us[r]`` to that
instance's step time and ``kv_tokens[r]`` to its KV: at every moment the requests decoding on
``d`` keep its step time within ``decode_budget_us[d]`` (the TBT SLO minus the step's fixed part
and the load already there) and their KV within ``decode_kv_tokens[d]``. A rejected request uses
nothing. The objective is the number of rejected requests (minimised).

This is a relaxation of the running system in two ways, stated so the comparison is fair: the
prefix caches are frozen at the window's start (no request's prefill fills a cache for a later
one), and a request decodes for a fixed time whatever the batch.

>>> import numpy as np
>>> p = PlacementProblem(arrival_ms=[0, 0, 10], prefill_ms=[[100], [100], [100]],
...     pulled_ms=[[-1], [-1], [-1]], decode_ms=[1000, 1000, 1000], decode_demand_us=[5, 5, 5],
...     decode_budget_us=[10], kv_tokens=[1, 1, 1], decode_kv_tokens=[10], slo_ttft_ms=250)
>>> r = solve_placement_cpsat(p, time_limit_s=5)
>>> r.status, r.objective, verify_placement(p, r.schedule).ok
('OPTIMAL', 1.0, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.errors import check_array, check_instance, check_positive_float, check_positive_int
from schedlab.solvers.iteration_verify import ScheduleInvalid, Violation
from schedlab.solvers.result import SolveResult, run_cpsat

__all__ = [
    "PlacementCheck",
    "PlacementProblem",
    "PlacementSchedule",
    "decode_overloads",
    "random_placement_problem",
    "solve_placement_cpsat",
    "verify_placement",
]

_WHERE = "PlacementProblem"


def _ints(value: Any, name: str, ndim: int = 1, min_value: int = 0) -> np.ndarray:
    a = check_array(value, name, _WHERE, dtype=np.int64, ndim=ndim, integer=True,
                    min_value=min_value)
    a = np.array(a, dtype=np.int64)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementProblem:
    """A window of requests to admit and place (see the module docstring); integer columns in
    milliseconds, microseconds of step time and tokens. ``prefix_tokens[r, p]``: the cached
    prefix of ``r`` on ``p`` (zeros by default), for heuristics that read it (Mooncake's
    balance threshold); the optimum reads the durations only."""

    arrival_ms: np.ndarray
    prefill_ms: np.ndarray
    pulled_ms: np.ndarray
    decode_ms: np.ndarray
    decode_demand_us: np.ndarray
    decode_budget_us: np.ndarray
    kv_tokens: np.ndarray
    decode_kv_tokens: np.ndarray
    slo_ttft_ms: int
    # None in the constructor: zeros (set in __post_init__, so always an array afterwards)
    prefill_free_ms: np.ndarray = None  # type: ignore[assignment]
    prefix_tokens: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "arrival_ms", _ints(self.arrival_ms, "arrival_ms"))
        n = self.n
        set_(self, "prefill_ms", _ints(self.prefill_ms, "prefill_ms", ndim=2, min_value=1))
        set_(self, "pulled_ms", _ints(self.pulled_ms, "pulled_ms", ndim=2, min_value=-1))
        for name in ("decode_ms", "decode_demand_us", "kv_tokens"):
            set_(self, name, _ints(getattr(self, name), name))
        for name in ("decode_budget_us", "decode_kv_tokens"):
            set_(self, name, _ints(getattr(self, name), name))
        p = self.prefill_ms.shape[1] if self.prefill_ms.ndim == 2 else 0
        free = np.zeros(p, np.int64) if self.prefill_free_ms is None else self.prefill_free_ms
        set_(self, "prefill_free_ms", _ints(free, "prefill_free_ms"))
        check_positive_int(self.slo_ttft_ms, "slo_ttft_ms", _WHERE)
        pre = np.zeros((n, p), np.int64) if self.prefix_tokens is None else self.prefix_tokens
        set_(self, "prefix_tokens", _ints(pre, "prefix_tokens", ndim=2))
        shapes = {"prefill_ms": (n, p), "pulled_ms": (n, p), "prefix_tokens": (n, p),
                  "decode_ms": (n,),
                  "decode_demand_us": (n,), "kv_tokens": (n,), "prefill_free_ms": (p,),
                  "decode_kv_tokens": self.decode_budget_us.shape}
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"The {name!r} parameter of {_WHERE} must have shape {shape}. "
                                 f"Got {getattr(self, name).shape}.")
        if p < 1 or self.n_decode < 1:
            raise ValueError(f"A {_WHERE} needs at least one prefill and one decode instance.")
        if n > 1 and (np.diff(self.arrival_ms) < 0).any():
            raise ValueError(f"The 'arrival_ms' parameter of {_WHERE} must not decrease.")

    @property
    def n(self) -> int:
        """Requests in the window."""
        return int(self.arrival_ms.shape[0])

    @property
    def n_prefill(self) -> int:
        return int(self.prefill_ms.shape[1])

    @property
    def n_decode(self) -> int:
        return int(self.decode_budget_us.shape[0])

    def duration_ms(self, r: int, p: int, pulled: bool) -> int:
        """Prefill time of ``r`` on ``p`` (pulling the best prefix or not)."""
        return int(self.pulled_ms[r, p] if pulled else self.prefill_ms[r, p])


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementSchedule:
    """Who was accepted, and for each accepted request its prefill instance, whether it pulled
    the best prefix, its prefill start (ms) and its decode instance (-1 for the rejected)."""

    accepted: np.ndarray
    prefill: np.ndarray
    pulled: np.ndarray
    start_ms: np.ndarray
    decode: np.ndarray

    @property
    def rejected(self) -> int:
        return int((~np.asarray(self.accepted, dtype=bool)).sum())


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementCheck:
    """What :func:`verify_placement` found: the violations and the rejected requests."""

    violations: tuple[Violation, ...]
    rejected: int

    @property
    def ok(self) -> bool:
        return not self.violations

    def raise_if_invalid(self) -> PlacementCheck:
        """Return ``self``, or raise :class:`ScheduleInvalid` listing the violations."""
        if self.violations:
            raise ScheduleInvalid("Placement schedule breaks the problem's rules:\n" + "\n".join(
                f"  [{v.kind}] {v.message}" for v in self.violations[:10]))
        return self


def verify_placement(problem: PlacementProblem, schedule: PlacementSchedule) -> PlacementCheck:
    """Check any schedule against every rule of ``problem`` (one violation kind each:
    ``malformed``, ``arrival``, ``ttft``, ``prefill-overlap``, ``no-prefix-to-pull``,
    ``decode-step``, ``decode-kv``).

    >>> p = PlacementProblem(arrival_ms=[0, 0], prefill_ms=[[100], [100]],
    ...     pulled_ms=[[-1], [-1]], decode_ms=[50, 50], decode_demand_us=[5, 5],
    ...     decode_budget_us=[10], kv_tokens=[1, 1], decode_kv_tokens=[10], slo_ttft_ms=250)
    >>> s = PlacementSchedule(accepted=np.array([True, True]), prefill=np.array([0, 0]),
    ...     pulled=np.array([False, False]), start_ms=np.array([0, 50]), decode=np.array([0, 0]))
    >>> [v.kind for v in verify_placement(p, s).violations]
    ['prefill-overlap']
    """
    check_instance(problem, PlacementProblem, "problem", "verify_placement")
    check_instance(schedule, PlacementSchedule, "schedule", "verify_placement")
    pr = problem
    v: list[Violation] = []

    def bad(kind: str, r: int, msg: str) -> None:
        v.append(Violation(kind=kind, slot=-1, request=r, message=msg))

    acc = np.asarray(schedule.accepted, dtype=bool)
    cols = [np.asarray(getattr(schedule, f)) for f in ("prefill", "pulled", "start_ms", "decode")]
    if acc.shape != (pr.n,) or any(c.shape != (pr.n,) for c in cols):
        bad("malformed", -1, f"every column needs {pr.n} entries")
        return PlacementCheck(violations=tuple(v), rejected=pr.n)
    pre, pul, start, dec = (cols[0].astype(np.int64), cols[1].astype(bool),
                            cols[2].astype(np.int64), cols[3].astype(np.int64))
    end = np.zeros(pr.n, dtype=np.int64)
    for r in np.flatnonzero(acc).tolist():
        p, d = int(pre[r]), int(dec[r])
        if not (0 <= p < pr.n_prefill and 0 <= d < pr.n_decode):
            bad("malformed", r, f"request {r}: prefill {p} / decode {d} out of range")
            continue
        if pul[r] and pr.pulled_ms[r, p] < 0:
            bad("no-prefix-to-pull", r, f"request {r} pulls a prefix instance {p} cannot use")
            continue
        end[r] = start[r] + pr.duration_ms(r, p, bool(pul[r]))
        if start[r] < max(pr.arrival_ms[r], pr.prefill_free_ms[p]):
            bad("arrival", r, f"request {r} starts at {start[r]} ms, before it arrives "
                f"({pr.arrival_ms[r]}) or instance {p} is free ({pr.prefill_free_ms[p]})")
        if end[r] - pr.arrival_ms[r] > pr.slo_ttft_ms:
            bad("ttft", r, f"request {r}: TTFT {end[r] - pr.arrival_ms[r]} ms over "
                f"{pr.slo_ttft_ms}")
    if v:
        return PlacementCheck(violations=tuple(v), rejected=int((~acc).sum()))
    for p in range(pr.n_prefill):
        rs = np.flatnonzero(acc & (pre == p))
        rs = rs[np.argsort(start[rs], kind="stable")]
        for a, b in zip(rs[:-1].tolist(), rs[1:].tolist(), strict=True):
            if start[b] < end[a]:
                bad("prefill-overlap", b, f"requests {a} and {b} overlap on prefill instance {p}")
    for d in range(pr.n_decode):
        rs = np.flatnonzero(acc & (dec == d))
        for t, step, kv in decode_overloads(pr, d, rs, end[rs]):
            if step > pr.decode_budget_us[d]:
                bad("decode-step", -1, f"decode instance {d} at {t} ms: step load {step} us "
                    f"over {pr.decode_budget_us[d]}")
            if kv > pr.decode_kv_tokens[d]:
                bad("decode-kv", -1, f"decode instance {d} at {t} ms: {kv} KV tokens over "
                    f"{pr.decode_kv_tokens[d]}")
    return PlacementCheck(violations=tuple(v), rejected=int((~acc).sum()))


def decode_overloads(problem: PlacementProblem, d: int, requests: np.ndarray,
                     joins_ms: np.ndarray) -> list[tuple[int, int, int]]:
    """The moments decode instance ``d`` breaks its step budget or its KV with ``requests``
    decoding there from ``joins_ms`` (for ``decode_ms`` each): ``(ms, step load in us, KV
    tokens)`` just after each join, the only moments the load can rise. The one decode rule,
    for :func:`verify_placement` and for heuristics placing on the record.

    >>> p = PlacementProblem(arrival_ms=[0, 0], prefill_ms=[[1], [1]], pulled_ms=[[-1], [-1]],
    ...     decode_ms=[100, 100], decode_demand_us=[6, 6], decode_budget_us=[10], kv_tokens=[1, 1],
    ...     decode_kv_tokens=[10], slo_ttft_ms=50)
    >>> decode_overloads(p, 0, np.array([0, 1]), np.array([0, 50]))
    [(50, 12, 2)]
    """
    pr = problem
    s = np.asarray(joins_ms, dtype=np.int64)
    e = s + pr.decode_ms[requests]
    demand, kv = pr.decode_demand_us[requests], pr.kv_tokens[requests]
    out = []
    for t in np.unique(s).tolist():
        live = (s <= t) & (e > t)
        step, held = int(demand[live].sum()), int(kv[live].sum())
        if step > pr.decode_budget_us[d] or held > pr.decode_kv_tokens[d]:
            out.append((t, step, held))
    return out


def random_placement_problem(
    n: int, rng: np.random.Generator, *, n_prefill: int = 2, n_decode: int = 2,
    load: float = 2.0,
) -> PlacementProblem:
    """A random overloaded window: ``n`` requests arriving over about ``n * 400 / load`` ms at
    ``n_prefill`` prefill instances whose prefills take 200-1,500 ms (a cached or pulled prefix
    saves up to 60%), decoding for 2-6 s on ``n_decode`` instances that fit about four at a
    time; ``load`` scales the arrival rate.

    >>> p = random_placement_problem(8, np.random.default_rng(0))
    >>> p.n, p.n_prefill, p.n_decode
    (8, 2, 2)
    """
    check_positive_int(n, "n", "random_placement_problem")
    gaps = rng.exponential(400.0 / load, n)
    arrival = np.cumsum(np.round(gaps)).astype(np.int64) - round(gaps[0])
    full = rng.integers(200, 1500, n)
    prefix = rng.integers(0, 4, (n, n_prefill)) * 1024
    best = prefix.max(axis=1, keepdims=True)
    saved = lambda tokens: 1.0 - 0.6 * tokens / 4096  # noqa: E731
    prefill = np.maximum(np.ceil(full[:, None] * saved(prefix)), 1).astype(np.int64)
    pulled = np.where(prefix < best, np.ceil(full[:, None] * saved(best)) + 50, -1)
    return PlacementProblem(
        arrival_ms=arrival, prefill_ms=prefill, pulled_ms=pulled.astype(np.int64),
        prefix_tokens=prefix, decode_ms=rng.integers(2000, 6000, n),
        decode_demand_us=rng.integers(10, 30, n), decode_budget_us=np.full(n_decode, 80),
        kv_tokens=rng.integers(1000, 20_000, n), decode_kv_tokens=np.full(n_decode, 60_000),
        slo_ttft_ms=3000,
    )


def solve_placement_cpsat(
    problem: PlacementProblem, *, time_limit_s: float = 10.0, num_workers: int = 2,
    seed: int = 0,
) -> SolveResult:
    """Minimise the rejected requests of ``problem`` with CP-SAT within ``time_limit_s`` (the
    whole call). Rejecting everyone is always feasible, so a solution always exists: the status
    is ``OPTIMAL`` or ``FEASIBLE`` with CP-SAT's proven bound and the gap; ``schedule`` is a
    :class:`PlacementSchedule` that :func:`verify_placement` accepts.
    """
    t0 = time.perf_counter()
    check_instance(problem, PlacementProblem, "problem", "solve_placement_cpsat")
    time_limit_s = check_positive_float(time_limit_s, "time_limit_s", "solve_placement_cpsat")
    num_workers = check_positive_int(num_workers, "num_workers", "solve_placement_cpsat")
    from ortools.sat.python import cp_model

    pr = problem
    m = cp_model.CpModel()
    horizon = int(pr.arrival_ms.max(initial=0) + pr.slo_ttft_ms + pr.decode_ms.max(initial=0) + 1)
    accept = [m.new_bool_var(f"a{r}") for r in range(pr.n)]
    end_of = [m.new_int_var(0, horizon, f"end{r}") for r in range(pr.n)]
    pre_iv: list[list[Any]] = [[] for _ in range(pr.n_prefill)]
    options: list[list[tuple[Any, int, bool, Any]]] = []
    for r in range(pr.n):
        opts = []
        for p in range(pr.n_prefill):
            for pulled in (False, True):
                dur = pr.duration_ms(r, p, pulled)
                if dur < 0:
                    continue
                lo = int(max(pr.arrival_ms[r], pr.prefill_free_ms[p]))
                hi = int(pr.arrival_ms[r] + pr.slo_ttft_ms - dur)
                if hi < lo:
                    continue
                x = m.new_bool_var(f"x{r}_{p}_{int(pulled)}")
                s = m.new_int_var(lo, hi, f"s{r}_{p}_{int(pulled)}")
                pre_iv[p].append(m.new_optional_fixed_size_interval_var(s, dur, x, f"i{r}_{p}"))
                m.add(end_of[r] == s + dur).only_enforce_if(x)
                opts.append((x, p, pulled, s))
        options.append(opts)
        if opts:
            m.add(sum(o[0] for o in opts) == accept[r])
        else:  # no instance can prefill it within its TTFT
            m.add(accept[r] == 0)
    dec_x = [[m.new_bool_var(f"y{r}_{d}") for d in range(pr.n_decode)] for r in range(pr.n)]
    for d in range(pr.n_decode):
        ivs, step, kv = [], [], []
        for r in range(pr.n):
            iv = m.new_optional_fixed_size_interval_var(end_of[r], int(pr.decode_ms[r]),
                                                        dec_x[r][d], f"d{r}_{d}")
            ivs.append(iv)
            step.append(int(pr.decode_demand_us[r]))
            kv.append(int(pr.kv_tokens[r]))
        m.add_cumulative(ivs, step, int(pr.decode_budget_us[d]))
        m.add_cumulative(ivs, kv, int(pr.decode_kv_tokens[d]))
    for r in range(pr.n):
        m.add(sum(dec_x[r]) == accept[r])
    for p in range(pr.n_prefill):
        m.add_no_overlap(pre_iv[p])
    m.minimize(pr.n - sum(accept))
    solver, code = run_cpsat(m, time_left_s=time_limit_s - (time.perf_counter() - t0),
                             num_workers=num_workers, seed=seed)
    stats = {"n_variables": len(m.proto.variables), "n_constraints": len(m.proto.constraints),
             "branches": int(solver.num_branches), "solver_wall_s": float(solver.wall_time)}
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):  # nothing in time: reject everyone
        schedule = _schedule(pr.n, [], [], [], [], [])
        return SolveResult(status="FEASIBLE", objective=float(pr.n), bound=0.0,
                           wall_s=time.perf_counter() - t0, schedule=schedule, stats=stats)
    rows = []
    for r in range(pr.n):
        for x, p, pulled, s in options[r]:
            if solver.boolean_value(x):
                d = next(i for i in range(pr.n_decode) if solver.boolean_value(dec_x[r][i]))
                rows.append((r, p, pulled, solver.value(s), d))
    schedule = _schedule(pr.n, *zip(*rows, strict=True)) if rows else _schedule(
        pr.n, [], [], [], [], [])
    objective = float(pr.n - len(rows))
    bound = float(solver.best_objective_bound)
    status = "OPTIMAL" if code == cp_model.OPTIMAL else "FEASIBLE"
    return SolveResult(status=status, objective=objective,
                       bound=objective if status == "OPTIMAL" else bound,
                       wall_s=time.perf_counter() - t0, schedule=schedule, stats=stats)


def _schedule(n: int, r: Any, p: Any, pulled: Any, s: Any, d: Any) -> PlacementSchedule:
    acc = np.zeros(n, dtype=bool)
    pre = np.full(n, -1, dtype=np.int64)
    pul = np.zeros(n, dtype=bool)
    start = np.zeros(n, dtype=np.int64)
    dec = np.full(n, -1, dtype=np.int64)
    idx = np.asarray(r, dtype=np.int64)
    acc[idx] = True
    pre[idx] = p
    pul[idx] = pulled
    start[idx] = s
    dec[idx] = d
    return PlacementSchedule(accepted=acc, prefill=pre, pulled=pul, start_ms=start, decode=dec)
