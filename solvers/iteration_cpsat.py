"""Exact offline iteration scheduling with OR-Tools CP-SAT: :func:`solve_cpsat`.

The model follows the FastServe digest (serving.md §1.5) on the rules of
:class:`~schedlab.solvers.iteration_problem.IterationProblem` (free swapping, so only the running
requests hold device KV). Built in labelled stages:

1. **An incumbent and a bound.** The best of the FCFS, SRPT and Lagrangian-guided list
   schedules, improved by :func:`~schedlab.solvers.iteration_heuristics.local_search` (swaps in
   its priority order; at most a tenth of the time left), is the incumbent (total JCT ``U``);
   :func:`~schedlab.solvers.iteration_lagrangian.lagrangian_bound` gives a certified lower bound
   ``L`` in milliseconds. ``L = U`` ends the solve.
2. **Run-indexed variables.** Run ``k`` of request ``j`` (run 1 is the prefill) is one Boolean
   per slot it may take, ``y[j,k,t]``, exactly one of them true, and its slot ``S[j,k]``. A run's
   tokens (the prompt or 1) and KV (``input_j + k``) are constants, so every per-slot capacity is
   an exact linear sum: no big-M, no running counters.
3. **Reduced-cost fixing.** For a target total JCT ``t``, a slot whose Lagrangian reduced
   cost (:func:`~schedlab.solvers.iteration_lagrangian.run_costs`) exceeds ``t`` is in no
   schedule of total JCT at most ``t``, so it gets no variable; the bound is then recomputed on
   the slots left and fixing repeated (up to 4 rounds). When a run has no slot left, or the
   recomputed bound exceeds ``t``, no such schedule exists. Without the Lagrangian stage the
   windows of :func:`~schedlab.solvers.iteration_lagrangian.completion_windows` remain.
4. **Constraints.** Runs of a request in order (``S[j,k+1] > S[j,k]``, also in time-indexed form
   for the LP relaxation: by each slot, no more runs ``k + 1`` started than runs ``k`` before
   it); per slot the batch size, the token budget and KV, where they can bind, and the token
   budget's :func:`~schedlab.solvers.iteration_lagrangian.prefill_cuts` (at most one prompt
   above half the budget, and two more cuts of that kind), which the linear budget misses.
   Symmetry: requests with the same prompt and output length are interchangeable run by run
   (swapping their run sequences slot by slot keeps every slot's load and the total JCT), so
   the one that arrives first takes each of its runs no later than the other. Dominance
   (:func:`_add_dominance`): only *active* schedules, in which no run could move to an earlier
   slot with room for it (an optimal schedule of that kind always exists).
5. **Search.** (a) Decision models from the bound up: is there a schedule of total JCT
   exactly ``L``? Fixed at ``t = L``, each gets at most half of the time left (all of it when
   ``L = U - 1``: its answer settles the optimum either way), on CP-SAT's workers
   ``probing_max_lp`` (which proves infeasibility fastest) and ``max_lp`` (which finds
   schedules); infeasible raises ``L`` by one, feasible is optimal (every smaller total was
   ruled out). (b) If still open, minimise ``sum_j (S[j,o_j] + 1 - a_j)`` between ``L`` and
   ``U`` (fixed at ``t = U``, the incumbent as the hint) with the time left, on ``max_lp``;
   CP-SAT's proven bound may raise ``L``. The workers are chosen on two workers (one: ``max_lp``
   alone; more: CP-SAT's portfolio); the plain model (``lagrangian=False``) keeps CP-SAT's
   defaults and no dominance.

>>> from schedlab.solvers.iteration_problem import IterationProblem
>>> p = IterationProblem(arrival_slot=[0, 0], input_tokens=[2, 2], output_tokens=[3, 1],
...                      max_batch_size=1, max_batch_tokens=4, kv_capacity_tokens=10)
>>> r = solve_cpsat(p, time_limit_s=5)
>>> r.status, r.objective, r.bound
('OPTIMAL', 5.0, 5.0)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.errors import (
    check_instance,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
)
from schedlab.solvers.budget import Budget, OutOfTime
from schedlab.solvers.iteration_heuristics import best_list_schedule, local_search
from schedlab.solvers.iteration_lagrangian import (
    LagrangianBound,
    completion_windows,
    guided_incumbent,
    lagrangian_bound,
    prefill_cuts,
    run_costs,
)
from schedlab.solvers.iteration_problem import IterationProblem, kv_tokens_at_run
from schedlab.solvers.iteration_schedule import Schedule
from schedlab.solvers.result import SolveResult, run_cpsat

__all__ = ["solve_cpsat"]

_WHERE = "solve_cpsat"
#: Share of the time limit the Lagrangian bound may take (it converges in about 0.05 s on
#: 20 requests; the share only matters on large instances).
_LAGRANGIAN_SHARE = 0.25
#: Share of the time left that the local search over priority orders may take (100,000 swaps,
#: its default, take about 0.14 s on 20 requests; the share only matters on large instances).
_LOCAL_SEARCH_SHARE = 0.1
#: Reduced costs are floats: a slot is kept unless it is this much above the threshold.
_FIX_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class _Model:
    """A built CP-SAT model: ``y[j][k]`` maps slot -> BoolVar of run ``k + 1`` of request
    ``j``, ``start[j][k]`` is its slot."""

    model: Any
    y: tuple[tuple[dict[int, Any], ...], ...]
    start: tuple[tuple[Any, ...], ...]
    n_slots_fixed: int


def _build_model(problem: IterationProblem, incumbent: int, target: int, lower_bound: int,
                 allowed: list[np.ndarray] | None, budget: Budget, *,
                 dominance: bool = False) -> _Model:
    """The model of schedules with total JCT between ``lower_bound`` and ``target`` (at most
    ``incumbent``, whose windows it uses); with ``allowed`` (run_costs' layout), only the
    allowed slots get a variable (stage 3); with ``dominance``, only active schedules
    (:func:`_add_dominance`)."""
    from ortools.sat.python import cp_model

    a, inp, o = problem.arrival_slot, problem.input_tokens, problem.output_tokens
    n = problem.n
    last = completion_windows(problem, incumbent)
    m = cp_model.CpModel()
    y: list[tuple[dict[int, Any], ...]] = []
    start: list[tuple[Any, ...]] = []
    per_slot: dict[int, list[tuple[Any, int, int, int]]] = {}
    prefills: dict[int, list[tuple[Any, int]]] = {}
    cut_w, cut_cap = prefill_cuts(problem)
    fixed = 0
    for j in range(n):
        budget.check("building the CP-SAT model")
        oj, aj = int(o[j]), int(a[j])
        yj: list[dict[int, Any]] = []
        sj: list[Any] = []
        for k in range(oj):
            window = np.arange(aj + k, int(last[j]) - (oj - 1 - k) + 1)
            if allowed is not None:
                keep = allowed[j][k, window - aj]
                fixed += int(window.size - keep.sum())
                window = window[keep]
            slots = window.tolist()
            yk = {t: m.new_bool_var(f"y[{j},{k + 1},{t}]") for t in slots}
            m.add_exactly_one(yk.values())
            sk = m.new_int_var_from_domain(cp_model.Domain.from_values(slots),
                                           f"S[{j},{k + 1}]")
            m.add(sk == sum(t * v for t, v in yk.items()))
            tok = int(inp[j]) if k == 0 else 1
            kv = int(kv_tokens_at_run(int(inp[j]), k + 1))
            for t, v in yk.items():
                per_slot.setdefault(t, []).append((v, tok, kv, j))
                if k == 0:
                    prefills.setdefault(t, []).append((v, j))
            if k:
                m.add(sk >= sj[-1] + 1)
                _add_time_indexed_order(m, yj[-1], yk)
            yj.append(yk)
            sj.append(sk)
        y.append(tuple(yj))
        start.append(tuple(sj))

    # identical prompts and outputs: the earlier arrival takes each run no later
    previous: dict[tuple[int, int], int] = {}
    for j in range(n):
        key = (int(inp[j]), int(o[j]))
        if key in previous:
            for si, sj_ in zip(start[previous[key]], start[j], strict=True):
                m.add(si <= sj_)
        previous[key] = j

    for t, runs in per_slot.items():
        budget.check("building the CP-SAT model")
        by_request: dict[int, list[Any]] = {}
        for v, _, _, j in runs:
            by_request.setdefault(j, []).append(v)
        for vs in by_request.values():
            if len(vs) > 1:
                m.add_at_most_one(vs)
        if len(by_request) > problem.max_batch_size:
            m.add(sum(v for v, *_ in runs) <= problem.max_batch_size)
        if _can_bind(runs, 1, problem.max_batch_tokens):
            m.add(sum(tok * v for v, tok, _, _ in runs) <= problem.max_batch_tokens)
        if _can_bind(runs, 2, problem.kv_capacity_tokens):
            m.add(sum(kv * v for v, _, kv, _ in runs) <= problem.kv_capacity_tokens)
        for w, cap in zip(cut_w.tolist(), cut_cap.tolist(), strict=True):
            pre = [(v, w[j]) for v, j in prefills.get(t, ()) if w[j]]
            if sum(wj for _, wj in pre) > cap:
                m.add(sum(wj * v for v, wj in pre) <= cap)

    if dominance:
        _add_dominance(m, problem, y, start, per_slot, budget)
    total_jct = sum(sj[-1] for sj in start) + int((1 - a).sum())
    m.add(total_jct <= target)
    m.add(total_jct >= lower_bound)
    m.minimize(total_jct)
    return _Model(model=m, y=tuple(y), start=tuple(start), n_slots_fixed=fixed)


def _add_time_indexed_order(m: Any, before: dict[int, Any], after: dict[int, Any]) -> None:
    """By each slot where run ``k + 1`` may start, it has started no more often than run ``k``
    strictly before that slot (the LP-strong form of ``S[k+1] > S[k]``)."""
    earlier = sorted(before.items())
    acc_before: list[Any] = []
    acc_after: list[Any] = []
    i = 0
    for t, v in sorted(after.items()):
        while i < len(earlier) and earlier[i][0] < t:
            acc_before.append(earlier[i][1])
            i += 1
        acc_after.append(v)
        if i < len(earlier):  # once every run-k slot is before t the constraint is implied
            m.add(sum(acc_after) <= sum(acc_before))


def _can_bind(runs: list[tuple[Any, int, int, int]], column: int, capacity: int) -> bool:
    """Whether the largest use of the runs that may share a slot (one per request) exceeds
    ``capacity``."""
    return _peak(runs, column) > capacity


def _peak(runs: Iterable[tuple[Any, int, int, int]], column: int) -> int:
    """The largest load in ``column`` (0: runs, 1: tokens, 2: KV) that the runs which may share a
    slot can put on it: one run per request, its largest."""
    most: dict[int, int] = {}
    for run in runs:
        most[run[3]] = max(most.get(run[3], 0), run[column] if column else 1)
    return sum(most.values())


def _add_dominance(m: Any, problem: IterationProblem, y: list[tuple[dict[int, Any], ...]],
                   start: list[tuple[Any, ...]],
                   per_slot: dict[int, list[tuple[Any, int, int, int]]], budget: Budget) -> None:
    """Only *active* schedules: where run ``k`` of request ``j`` starts after slot ``t`` while
    its run ``k - 1`` ran before ``t`` (for the prefill: ``j`` had arrived), slot ``t`` has no
    room for it: its batch is full, or its tokens plus the run's exceed the budget, or its KV
    plus the run's exceeds the capacity.

    Valid because moving a run to an earlier slot with room keeps every rule (its request runs
    nothing there, its order holds, slot ``t`` fits it and its old slot only loses load) and never
    raises the total JCT; so an optimal schedule with the least sum of run slots is active, and
    it uses only slots the reduced-cost fixing keeps (a schedule that good uses no other). Nor
    does it clash with the symmetry rule: giving the earlier of two identical requests the
    earlier slot of each of their runs keeps every slot's load and leaves the schedule active.
    Each "slot ``t`` is full for the run" is a literal implying its load (one per slot and
    threshold, shared by the runs that need it); where no load of slot ``t`` can block the run,
    the run may not wait past ``t`` once its predecessor ran before it."""
    a, inp = problem.arrival_slot, problem.input_tokens
    limits = (problem.max_batch_size, problem.max_batch_tokens, problem.kv_capacity_tokens)
    full: dict[tuple[int, int, int], Any] = {}
    reach: dict[tuple[int, int], int] = {}  # (slot, column): its _peak

    def full_at(t: int, column: int, threshold: int) -> Any:
        """A literal implying slot ``t``'s load in ``column`` (0: runs, 1: tokens, 2: KV) is
        at least ``threshold``; None when it never can be."""
        runs = per_slot.get(t, ())
        if (t, column) not in reach:
            reach[t, column] = _peak(runs, column)
        if reach[t, column] < threshold:
            return None
        key = (t, column, threshold)
        if key not in full:
            lit = full[key] = m.new_bool_var(f"full[{t},{column},{threshold}]")
            m.add(sum((1, tok, kv)[column] * v for v, tok, kv, _ in runs) >= threshold
                  ).only_enforce_if(lit)
        return full[key]

    later: dict[tuple[int, int, int], Any] = {}

    def starts_after(j: int, k: int, t: int) -> Any:
        """The literal ``S[j,k] > t``."""
        if (j, k, t) not in later:
            lit = later[j, k, t] = m.new_bool_var(f"after[{j},{k + 1},{t}]")
            m.add(start[j][k] > t).only_enforce_if(lit)
            m.add(start[j][k] <= t).only_enforce_if(lit.Not())
        return later[j, k, t]

    for j, yj in enumerate(y):
        budget.check("building the CP-SAT model")
        for k, yk in enumerate(yj):
            slots = sorted(yk)
            tok = int(inp[j]) if k == 0 else 1
            kv = int(kv_tokens_at_run(int(inp[j]), k + 1))
            before = sorted(yj[k - 1]) if k else [int(a[j]) - 1]
            for t in slots[:-1]:  # the run may start at t or later
                if before[0] >= t:
                    continue
                waits = [starts_after(j, k, t)]
                if before[-1] >= t:  # its predecessor ran before t
                    waits.append(starts_after(j, k - 1, t - 1).Not())
                blocked = [lit for lit in (full_at(t, 0, limits[0]),
                                           full_at(t, 1, limits[1] - tok + 1),
                                           full_at(t, 2, limits[2] - kv + 1)) if lit is not None]
                if blocked:
                    m.add_bool_or(blocked).only_enforce_if(waits)
                else:
                    m.add_bool_or([w.Not() for w in waits])


def _add_hint(im: _Model, schedule: Schedule) -> None:
    run = schedule.run_matrix()
    for j, (yj, sj) in enumerate(zip(im.y, im.start, strict=True)):
        slots = np.flatnonzero(run[j])
        for k, (yk, sk) in enumerate(zip(yj, sj, strict=True)):
            t_k = int(slots[k])
            for t, v in yk.items():
                im.model.add_hint(v, t == t_k)
            if t_k in yk:
                im.model.add_hint(sk, t_k)


def solve_cpsat(
    problem: IterationProblem,
    *,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
    seed: int = 0,
    hint: bool = True,
    lagrangian: bool = True,
) -> SolveResult:
    """Minimise total JCT of ``problem`` with CP-SAT within ``time_limit_s`` seconds.

    ``time_limit_s`` is a wall-clock budget for the whole call: the list schedules, the
    Lagrangian bound (at most a quarter of it), the local search (at most a tenth of what is
    left), building the model and CP-SAT's search share it, so the call returns after about
    ``time_limit_s`` whatever the problem's size. ``hint``: start CP-SAT from the incumbent.
    ``seed`` (``>= 0``): CP-SAT's and the local search's. ``lagrangian=False`` leaves out stage
    1's bound and local search and stage 3 (for comparison: the plain run-indexed model).

    Returns a :class:`SolveResult` whose ``schedule`` is a :class:`Schedule` (checked by
    :func:`verify`). Every instance is feasible, so the status is ``OPTIMAL`` or ``FEASIBLE``
    (not proven optimal in time: a normal outcome) and a schedule is always there: CP-SAT's
    best, or the incumbent when CP-SAT found none better. ``bound`` is the best of CP-SAT's
    proven bound, the Lagrangian bound and the trivial bound. ``stats``: the list-schedule and
    incumbent objectives, the Lagrangian bound and how its search stopped, slots fixed,
    the model size, CP-SAT's counters, where the solution came from (``"list-schedule"``,
    ``"lagrangian-guided"``, ``"local-search"`` or ``"cp-sat"``), what proved it
    (``"lagrangian"``: the bound or its fixing, with no CP-SAT model; ``"cp-sat"``) and, when
    the budget ran out early, ``"stopped_while"``.
    """
    t0 = time.perf_counter()
    check_instance(problem, IterationProblem, "problem", _WHERE)
    time_limit_s = check_positive_float(time_limit_s, "time_limit_s", _WHERE)
    num_workers = check_positive_int(num_workers, "num_workers", _WHERE)
    seed = check_nonneg_int(seed, "seed", _WHERE)
    budget = Budget(time_limit_s)
    import ortools.sat.python.cp_model  # noqa: F401  (its first import, ~0.5 s, counts too)

    incumbent, best = best_list_schedule(problem)
    stats: dict[str, Any] = {"list_schedule_objective": best, "solution_source": "list-schedule",
                             "models": 0}
    bound = problem.trivial_bound()
    lb: LagrangianBound | None = None
    costs: list[np.ndarray] = []
    if lagrangian:
        lb = lagrangian_bound(problem, upper_bound=best,
                              time_limit_s=max(1e-3, budget.left() * _LAGRANGIAN_SHARE))
        stats.update(lagrangian_bound=lb.bound, lagrangian_stopped=lb.stopped,
                     lagrangian_iterations=lb.iterations)
        incumbent, best, stats["solution_source"] = guided_incumbent(problem, lb, incumbent,
                                                                     best)
        bound = max(bound, lb.bound)
        costs = run_costs(problem, lb)
        searched, searched_best = local_search(
            problem, incumbent, seed=seed, stop_at=bound,
            time_limit_s=max(1e-3, budget.left() * _LOCAL_SEARCH_SHARE))
        if searched_best < best:
            incumbent, best, stats["solution_source"] = searched, searched_best, "local-search"
    stats["incumbent_objective"] = best
    search = _Search(problem, incumbent, best, bound, stats, budget, num_workers, seed,
                     tuned=lagrangian)
    try:
        if lb is not None:  # stage 5a: targets from the bound up; the first feasible one is optimal
            while search.bound < search.best and search.prove_or_find(lb, costs):
                pass
        if search.bound < search.best:  # stage 5b: improve the incumbent, raise CP-SAT's bound
            allowed = None if lb is None else _fixed_slots(problem, search.best, lb, costs,
                                                             budget)
            if allowed is not None or lb is None:
                search.minimise(allowed, hint)
            else:
                search.bound = search.best
    except OutOfTime as exc:
        stats["stopped_while"] = str(exc)
    if search.bound >= search.best:
        stats["proved_by"] = "cp-sat" if stats["models"] else "lagrangian"
    return _result(search.incumbent, search.best, search.bound, stats, t0)


#: Rounds of Lagrangian fixing per target (each: a bound on the allowed slots, then fixing).
_FIX_ROUNDS = 4
#: A decision model (is there a schedule of total JCT t?) gets this share of the time left,
#: unless ``t`` is one below the incumbent's total (then it gets all of it).
_DECISION_SHARE = 0.5
#: CP-SAT's full workers on two workers or fewer, measured on the benchmark's instances.
#: ``max_lp`` finds schedules (its LP solutions also feed an LNS helper when it runs alone,
#: which found instance 3's (n=20) schedule of 163 in 23 s); ``probing_max_lp`` proves
#: infeasibility fastest (instance 9 at its bound of 134: 20 s, against 55 s with ``max_lp``
#: and no proof in 60 s with CP-SAT's default workers) but finds schedules slowly. A decision
#: model may be either, so it runs both; the minimisation runs ``max_lp`` and its helpers.
_DECIDE_WITH = ("probing_max_lp", "max_lp")
_MINIMISE_WITH = ("max_lp",)


def _fixed_slots(problem: IterationProblem, target: int, lb: LagrangianBound,
                 costs: list[np.ndarray], budget: Budget) -> list[np.ndarray] | None:
    """The slots a schedule of total JCT at most ``target`` may use, by rounds of reduced-cost
    fixing (``costs``: :func:`run_costs` under ``lb``), each under a Lagrangian bound
    recomputed on the slots still allowed (in ``lb``'s windows, which hold those of any better
    incumbent); ``None`` when the relaxation proves that no such schedule exists."""
    allowed = [c <= target + _FIX_TOLERANCE for c in costs]
    for _ in range(_FIX_ROUNDS):
        if not all(m.any(axis=1).all() for m in allowed):
            return None
        budget.check("fixing variables with the Lagrangian bound")
        again = lagrangian_bound(problem, upper_bound=lb.upper_bound, allowed=allowed,
                                 goal=target + 1, time_limit_s=max(1e-3, budget.left() / 4))
        if again.stopped in ("goal", "empty"):
            return None
        tighter = [m & (c <= target + _FIX_TOLERANCE)
                   for m, c in zip(allowed, run_costs(problem, again, allowed), strict=True)]
        if sum(int(m.sum()) for m in tighter) == sum(int(m.sum()) for m in allowed):
            break
        allowed = tighter
    return allowed if all(m.any(axis=1).all() for m in allowed) else None


class _Search:
    """The incumbent, the bound and the CP-SAT models of stage 5, with their statistics."""

    def __init__(self, problem: IterationProblem, incumbent: Schedule, best: int, bound: int,
                 stats: dict[str, Any], budget: Budget, num_workers: int, seed: int, *,
                 tuned: bool) -> None:
        self.problem, self.incumbent, self.best, self.bound = problem, incumbent, best, bound
        self.stats, self.budget, self.num_workers, self.seed = stats, budget, num_workers, seed
        self.tuned = tuned  # dominance and the LP workers of stage 5 (False: the plain model)

    def prove_or_find(self, lb: LagrangianBound, costs: list[np.ndarray]) -> bool:
        """Decide whether a schedule of total JCT ``bound`` exists: raise the bound when not,
        take it as the optimum when so. False when undecided in its share of the time."""
        target = self.bound
        allowed = _fixed_slots(self.problem, target, lb, costs, self.budget)
        if allowed is None:
            self.bound += 1
            return True
        from ortools.sat.python import cp_model

        # the last total below the incumbent's: its answer settles the optimum either way, so
        # it may take all the time left (the minimisation would only ask it again)
        share = 1.0 if target + 1 == self.best else _DECISION_SHARE
        code, solver, im = self._solve(target, allowed, hint=False, workers=_DECIDE_WITH,
                                       seconds=self.budget.left() * share)
        if code == cp_model.INFEASIBLE:
            self.bound += 1
            return True
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            self._take(solver, im)
            self.bound = self.best  # every smaller total was ruled out
            return True
        return False

    def minimise(self, allowed: list[np.ndarray] | None, hint: bool) -> None:
        """Minimise from the incumbent (its hint) over ``allowed`` with the time left."""
        from ortools.sat.python import cp_model

        code, solver, im = self._solve(self.best, allowed, hint=hint, workers=_MINIMISE_WITH,
                                       seconds=self.budget.left())
        if code == cp_model.MODEL_INVALID or code == cp_model.INFEASIBLE:
            raise RuntimeError(  # a bug in _build_model: the incumbent satisfies the model
                f"CP-SAT found the model {solver.status_name(code)} although the incumbent "
                f"is feasible: {im.model.validate()}"
            )
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            self._take(solver, im)
        if code == cp_model.OPTIMAL:
            self.bound = self.best
        elif code == cp_model.FEASIBLE:
            self.bound = max(self.bound, math.ceil(solver.best_objective_bound - 1e-6))

    def _solve(self, target: int, allowed: list[np.ndarray] | None, *, hint: bool,
               workers: tuple[str, ...], seconds: float) -> tuple[int, Any, _Model]:
        """Build and solve the model of totals between the bound and ``target``; ``workers``:
        CP-SAT's full workers in a tuned search on two workers."""
        im = _build_model(self.problem, self.best, target, self.bound, allowed, self.budget,
                          dominance=self.tuned)
        if hint:
            _add_hint(im, self.incumbent)
        params: dict[str, Any] = {}
        if self.tuned and self.num_workers == 2:
            params["subsolvers"] = list(workers)
        elif self.tuned and self.num_workers == 1:
            params["subsolvers"] = list(_MINIMISE_WITH)  # one worker: the one that finds
        solver, code = run_cpsat(im.model, time_left_s=min(seconds, self.budget.left()),
                                 num_workers=self.num_workers, seed=self.seed, **params)
        proto = im.model.proto
        st = self.stats
        st["models"] += 1
        st.update({
            "target": target,
            "slots_fixed": im.n_slots_fixed,
            "n_variables": len(proto.variables),
            "n_constraints": len(proto.constraints),
            "branches": st.get("branches", 0) + int(solver.num_branches),
            "conflicts": st.get("conflicts", 0) + int(solver.num_conflicts),
            "solver_wall_s": st.get("solver_wall_s", 0.0) + float(solver.wall_time),
        })
        return code, solver, im

    def _take(self, solver: Any, im: _Model) -> None:
        req: list[int] = []
        slot: list[int] = []
        for j, yj in enumerate(im.y):
            for yk in yj:
                for t, v in yk.items():
                    if solver.boolean_value(v):
                        req.append(j)
                        slot.append(t)
        self.incumbent = Schedule.from_runs(n_requests=self.problem.n, request=req, slot=slot,
                                            input_tokens=self.problem.input_tokens)
        self.best = round(solver.objective_value)
        self.stats["solution_source"] = "cp-sat"


def _result(schedule: Schedule, objective: int, bound: int, stats: dict[str, Any],
            t0: float) -> SolveResult:
    """OPTIMAL when the bound meets the objective, else FEASIBLE."""
    status = "OPTIMAL" if bound >= objective else "FEASIBLE"
    return SolveResult(status=status, objective=float(objective),
                       bound=float(objective if status == "OPTIMAL" else bound),
                       wall_s=time.perf_counter() - t0, schedule=schedule, stats=stats)
