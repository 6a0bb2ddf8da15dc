"""Exact offline iteration scheduling with OR-Tools CP-SAT: :func:`solve_cpsat`.

The model follows the FastServe digest (serving.md §1.5) on the rules of
:class:`~schedlab.solvers.iteration_problem.IterationProblem` (free swapping, so only the running
requests hold device KV). Built in labelled stages:

1. **Horizon.** The better of the FCFS and SRPT list schedules gives an upper bound ``U`` on the
   total JCT. Since every other request needs at least ``o_k`` slots, request ``j`` completes by
   ``a_j - 1 + U - sum_{k != j} o_k`` in every schedule at least as good, so its variables live in
   that window only (a valid restriction, not a heuristic one).
2. **Variables.** ``x[j,t]`` (runs in slot t), ``p[j,t]`` (its prefill is in slot t),
   ``r[j,t]`` (runs so far, chained ``r[j,t] = r[j,t-1] + x[j,t]``), ``d[j,t]`` (done by the
   end of slot t), ``kv[j,t]`` (KV held while running), ``C_j``.
3. **Constraints.** ``r[j,last] = o_j``; one prefill, in the first run (``p => x``,
   ``x[j,t] <= sum_{s<=t} p[j,s]``); ``d`` non-decreasing, ``o_j d[j,t] <= r[j,t]``, no run
   after done, so ``C_j = a_j + o_j - 1 + #{t: not d[j,t]}`` (the time-indexed form, whose LP
   relaxation is strong); per slot the batch size, the token budget
   (``input_j * p + (x - p)``) and KV (``kv[j,t] = input_j + r[j,t]`` if running, else 0, plus
   its linear big-M form); ``x[j,t] => C_j >= t`` and ``C_j >= start_j + o_j - 1``.
   Identical requests (same arrival, prompt and output) complete in index order (symmetry).
   Per-slot constraints that cannot bind (too few candidate requests) are left out.
4. **Objective.** Minimise ``sum_j (C_j + 1 - a_j)``, at most ``U``, with the best list
   schedule as a hint (so a time-limited answer is never worse than the list schedule).

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
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.errors import check_instance, check_positive_float, check_positive_int
from schedlab.solvers.budget import Budget, OutOfTime
from schedlab.solvers.iteration_bounds import lp_bound_within
from schedlab.solvers.iteration_heuristics import best_list_schedule
from schedlab.solvers.iteration_problem import IterationProblem, kv_tokens_at_run
from schedlab.solvers.iteration_schedule import Schedule
from schedlab.solvers.result import SolveResult, run_cpsat

__all__ = ["IterationModel", "build_model", "solve_cpsat"]

_WHERE = "solve_cpsat"


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationModel:
    """A built CP-SAT model with handles to its variables.

    ``x[j]`` and ``p[j]`` map slot -> BoolVar over request j's window ``[first[j], last[j]]``;
    ``completion[j]`` is ``C_j``; ``upper_bound`` is the total JCT the windows were derived from.
    """

    model: Any
    x: tuple[dict[int, Any], ...]
    p: tuple[dict[int, Any], ...]
    completion: tuple[Any, ...]
    first: np.ndarray
    last: np.ndarray
    upper_bound: int


def build_model(problem: IterationProblem, upper_bound: int, *,
                budget: Budget | None = None) -> IterationModel:
    """Build the CP-SAT model for schedules of total JCT at most ``upper_bound``; with a
    ``budget``, raise :class:`~schedlab.solvers.budget.OutOfTime` once it runs out."""
    from ortools.sat.python import cp_model

    budget = budget if budget is not None else Budget(None)
    ub = check_positive_int(upper_bound, "upper_bound", "build_model")
    a, inp, o = problem.arrival_slot, problem.input_tokens, problem.output_tokens
    n = problem.n
    first = a.copy()
    last = problem.jct_deadlines(ub)
    if np.any(last - first + 1 < o):
        j = int(np.flatnonzero(last - first + 1 < o)[0])
        raise ValueError(
            f"The 'upper_bound' parameter of build_model ({ub}) leaves request {j} too few slots; "
            "it must be at least the total JCT of a feasible schedule."
        )
    m = cp_model.CpModel()

    # ---- stage 2: variables
    x: list[dict[int, Any]] = []
    p: list[dict[int, Any]] = []
    r: list[dict[int, Any]] = []
    d: list[dict[int, Any]] = []
    comp: list[Any] = []
    for j in range(n):
        budget.check("building the CP-SAT model")
        slots = range(int(first[j]), int(last[j]) + 1)
        x.append({t: m.new_bool_var(f"x[{j},{t}]") for t in slots})
        # the prefill leaves room for the o_j - 1 decodes that follow it
        p.append({t: m.new_bool_var(f"p[{j},{t}]") for t in slots if t <= last[j] - o[j] + 1})
        r.append({t: m.new_int_var(0, min(int(o[j]), t - int(first[j]) + 1), f"r[{j},{t}]")
                  for t in slots})
        # done[j,t]: completed by the end of slot t (possible from a_j + o_j - 1 on)
        d.append({t: m.new_bool_var(f"d[{j},{t}]") for t in slots if t >= a[j] + o[j] - 1})
        comp.append(m.new_int_var(int(a[j] + o[j] - 1), int(last[j]), f"C[{j}]"))

    # ---- stage 3: constraints per request
    for j in range(n):
        budget.check("building the CP-SAT model")
        xj, pj, rj, dj = x[j], p[j], r[j], d[j]
        m.add_exactly_one(pj.values())
        started: list[Any] = []
        prev_r = prev_d = None
        for t, xv in xj.items():
            if t in pj:
                m.add_implication(pj[t], xv)
                started.append(pj[t])
            m.add(xv <= sum(started))  # no run before the prefill
            m.add(rj[t] == (prev_r if prev_r is not None else 0) + xv)
            if prev_d is not None:
                m.add_implication(xv, prev_d.negated())  # no run after completion
            if t in dj:
                m.add(int(o[j]) * dj[t] <= rj[t])  # done only after o_j runs
                if prev_d is not None:
                    m.add_implication(prev_d, dj[t])
                prev_d = dj[t]
            m.add(comp[j] >= t).only_enforce_if(xv)
            m.add(comp[j] >= t * xv)
            prev_r = rj[t]
        m.add(prev_r == int(o[j]))
        m.add(prev_d == 1)
        # C_j is the first slot that is done: C_j = a_j + o_j - 1 + (slots not yet done)
        m.add(comp[j] == int(a[j] + o[j] - 1) + sum(1 - v for v in dj.values()))
        m.add(comp[j] >= sum(t * v for t, v in pj.items()) + int(o[j] - 1))

    # symmetry: identical requests complete in index order
    keys: dict[tuple[int, int, int], int] = {}
    for j in range(n):
        k = (int(a[j]), int(inp[j]), int(o[j]))
        if k in keys:
            m.add(comp[keys[k]] <= comp[j])
        keys[k] = j

    # ---- stage 3: constraints per slot (only where they can bind)
    horizon = int(last.max()) + 1
    for t in range(int(first.min()), horizon):
        budget.check("building the CP-SAT model")
        live = [j for j in range(n) if t in x[j]]
        if len(live) > problem.max_batch_size:
            m.add(sum(x[j][t] for j in live) <= problem.max_batch_size)
        if sum(int(inp[j]) for j in live) > problem.max_batch_tokens:
            m.add(
                sum(int(inp[j] - 1) * p[j][t] + x[j][t] for j in live if t in p[j])
                + sum(x[j][t] for j in live if t not in p[j])
                <= problem.max_batch_tokens
            )
        max_kv = [int(kv_tokens_at_run(inp[j], o[j])) for j in live]
        if sum(max_kv) > problem.kv_capacity_tokens:
            terms = []
            for j, cap_j in zip(live, max_kv, strict=True):
                kv = m.new_int_var(0, cap_j, f"kv[{j},{t}]")
                m.add(kv == kv_tokens_at_run(int(inp[j]), r[j][t])).only_enforce_if(x[j][t])
                m.add(kv == 0).only_enforce_if(x[j][t].negated())
                m.add(kv >= int(kv_tokens_at_run(int(inp[j]), 1)) * x[j][t])
                # linear form of the first line (big-M with r <= o_j), for the LP relaxation
                m.add(kv >= kv_tokens_at_run(int(inp[j]), r[j][t]) - cap_j * (1 - x[j][t]))
                terms.append(kv)
            m.add(sum(terms) <= problem.kv_capacity_tokens)

    # ---- stage 4: objective, no worse than the schedule the windows came from
    total_jct = sum(comp) + int((1 - a).sum())
    m.add(total_jct <= ub)
    m.minimize(total_jct)
    return IterationModel(
        model=m, x=tuple(x), p=tuple(p), completion=tuple(comp), first=first, last=last,
        upper_bound=ub,
    )


def _add_hint(im: IterationModel, schedule: Schedule) -> None:
    run = schedule.run_matrix(int(im.last.max()) + 1)
    comp = schedule.completion_slot()
    for j, (xj, pj) in enumerate(zip(im.x, im.p, strict=True)):
        start = int(np.argmax(run[j]))
        for t, v in xj.items():
            im.model.add_hint(v, bool(run[j, t]))
        for t, v in pj.items():
            im.model.add_hint(v, t == start)
        im.model.add_hint(im.completion[j], int(comp[j]))


def solve_cpsat(
    problem: IterationProblem,
    *,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
    seed: int = 0,
    hint: bool = True,
) -> SolveResult:
    """Minimise total JCT of ``problem`` with CP-SAT within ``time_limit_s`` seconds.

    ``time_limit_s`` is a wall-clock budget for the whole call: the list schedule, building the
    model, CP-SAT's search and the LP bound share it (CP-SAT and HiGHS get what is left), so the
    call returns after about ``time_limit_s`` (plus the list schedule, milliseconds) whatever
    the problem's size.

    Returns a :class:`SolveResult` whose ``schedule`` is a :class:`Schedule` (checked by
    :func:`verify`) and ``stats`` the model size, the list-schedule upper bound, where the
    solution and the bound came from and CP-SAT's counters. Every instance is feasible, so the
    status is ``OPTIMAL`` or ``FEASIBLE`` (not proven optimal in time: a normal outcome). A
    ``FEASIBLE`` answer carries CP-SAT's best solution, or the better list schedule when CP-SAT
    found none in time (or the model could not be built in time), and as ``bound`` the best of
    CP-SAT's proven bound, :func:`lp_bound` and the trivial bound; ``stats["lp_bound"]`` says
    whether the LP bound was computed (``"optimal"``), ran out of time (``"time limit"``) or
    failed, ``stats["stopped_while"]`` what was under way when the budget ran out.
    """
    t0 = time.perf_counter()
    check_instance(problem, IterationProblem, "problem", _WHERE)
    time_limit_s = check_positive_float(time_limit_s, "time_limit_s", _WHERE)
    num_workers = check_positive_int(num_workers, "num_workers", _WHERE)
    budget = Budget(time_limit_s)
    from ortools.sat.python import cp_model  # its first import (~0.5 s) counts too

    start_schedule, ub = best_list_schedule(problem)
    stats: dict[str, Any] = {"list_schedule_objective": ub}
    try:
        im = build_model(problem, ub, budget=budget)
    except OutOfTime as exc:  # the list schedule stands; bounds get nothing of the budget
        stats.update(solution_source="list-schedule", lp_bound="time limit",
                     stopped_while=str(exc))
        return _feasible(problem, start_schedule, float(ub), problem.trivial_bound(), stats, t0)
    if hint:
        _add_hint(im, start_schedule)
    solver, code = run_cpsat(im.model, time_left_s=budget.left(), num_workers=num_workers,
                             seed=seed)
    if code in (cp_model.MODEL_INVALID, cp_model.INFEASIBLE):  # a bug in build_model
        raise RuntimeError(
            f"CP-SAT found the model {solver.status_name(code)} although the list schedule is "
            f"feasible: {im.model.validate()}"
        )
    proto = im.model.proto
    stats.update({
        "n_variables": len(proto.variables),
        "n_constraints": len(proto.constraints),
        "horizon_slots": int(im.last.max()) + 1,
        "branches": int(solver.num_branches),
        "conflicts": int(solver.num_conflicts),
        "solver_wall_s": float(solver.wall_time),
    })
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        req: list[int] = []
        slot: list[int] = []
        for j, xj in enumerate(im.x):
            for t, v in xj.items():
                if solver.boolean_value(v):
                    req.append(j)
                    slot.append(t)
        schedule = Schedule.from_runs(
            n_requests=problem.n, request=req, slot=slot, input_tokens=problem.input_tokens
        )
        objective = float(solver.objective_value)
        stats["solution_source"] = "cp-sat"
    else:  # no CP-SAT solution in time: the list schedule is still a feasible answer
        schedule, objective = start_schedule, float(ub)
        stats["solution_source"] = "list-schedule"
    if code == cp_model.OPTIMAL:
        stats["lp_bound"] = "not needed"
        return SolveResult(status="OPTIMAL", objective=objective, bound=objective,
                           wall_s=time.perf_counter() - t0, schedule=schedule, stats=stats)
    cp_bound = solver.best_objective_bound if code == cp_model.FEASIBLE else -math.inf
    lp, stats["lp_bound"] = lp_bound_within(problem, ub, budget)
    if lp is None and stats["lp_bound"] == "time limit":
        stats["stopped_while"] = "computing the LP bound"
    bound = max(cp_bound, problem.trivial_bound(), -math.inf if lp is None else lp)
    return _feasible(problem, schedule, objective, bound, stats, t0)


def _feasible(problem: IterationProblem, schedule: Schedule, objective: float, bound: float,
              stats: dict[str, Any], t0: float) -> SolveResult:
    """A FEASIBLE result, or OPTIMAL when the bound meets the objective."""
    status = "OPTIMAL" if bound >= objective else "FEASIBLE"
    return SolveResult(status=status, objective=objective,
                       bound=objective if status == "OPTIMAL" else float(bound),
                       wall_s=time.perf_counter() - t0, schedule=schedule, stats=stats)
