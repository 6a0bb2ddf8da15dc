"""A certified lower bound on the optimal total JCT that scales to thousands of requests:
:func:`lagrangian_bound`, and :func:`solve_lagrangian` (the bound beside the best list schedule,
with its gap).

**The relaxation.** Index each request's runs ``k = 1 .. o_j`` (run 1 is the prefill). A schedule
picks a slot ``s_{j,k}`` for every run, strictly increasing in ``k``, with ``s_{j,1} >= a_j``; run
``k`` uses 1 batch place, ``tok_{j,k}`` tokens (``input_j`` for the prefill, 1 for a decode) and
``input_j + k`` tokens of KV, exactly as :func:`~schedlab.solvers.iteration_verify.verify`
counts them. Only the per-slot capacities (batch size ``B``, token budget ``T``, KV ``K``) couple
the requests. Pricing them with multipliers ``lam_t, mu_t, nu_t >= 0`` (per unit of the capacity
used: a run costs ``lam_t / B + mu_t tok / T + nu_t kv / K`` in slot ``t``) gives

    L(lam, mu, nu) = sum_j min_path_j - sum_t (lam_t + mu_t + nu_t),

where ``min_path_j`` is the cheapest increasing choice of slots for request ``j`` plus its JCT
``s_{j,o_j} + 1 - a_j``: a shortest path, solved for every request by dynamic programming over its
window (prefix minima, compiled). For any non-negative multipliers, ``L`` is at most the optimal
total JCT (weak duality: the optimum's own paths cost at least ``L``). Its maximum equals the LP
relaxation of the run-indexed time-indexed formulation, which is at least as strong as
:func:`~schedlab.solvers.iteration_bounds.lp_bound`'s (that LP only under-estimates KV).

**Windows.** Request ``j`` may complete no later than ``min(a_j - 1 + U - sum_{k != j} o_k,
max_k a_k + sum_k o_k - 1)``: the first holds in every schedule of total JCT at most ``U`` (any
feasible schedule's, the best list schedule by default); the second in every *active* schedule
(no slot leaves out a pending request whose next run would fit; moving such a run earlier never
raises a JCT, so some optimal schedule is active, and in it every slot from the last arrival on
runs something). Both hold in an optimal active schedule, so the bound stays valid.

**The search.** Projected subgradient ascent with Polyak steps towards ``U`` (the step factor
halves after 20 iterations without progress). Every iterate is a valid bound, so the answer is
the best ``L`` seen, rounded up (JCTs are integers) after removing a float safety margin of
``1e-9 |L| + 1e-6``. It stops at ``max_iterations``, at ``time_limit_s``, when the step factor
falls below ``1e-4``, or when the bound meets ``U`` (then ``U`` is optimal).

**The heuristic beside it.** :func:`solve_lagrangian` also list-schedules the requests by the
completion slot their Lagrangian path chose (a classic Lagrangian heuristic), keeps the best of
it, FCFS and SRPT, improves that by a local search over priority orders
(:func:`~schedlab.solvers.iteration_heuristics.local_search`), and reports the gap to the bound
in a :class:`SolveResult`.

>>> import numpy as np
>>> from schedlab.solvers.iteration_problem import random_problem
>>> p = random_problem(30, np.random.default_rng(1))
>>> lb = lagrangian_bound(p, time_limit_s=5)
>>> p.trivial_bound() <= lb.bound <= lb.upper_bound
True
>>> r = solve_lagrangian(p, time_limit_s=5)
>>> r.bound == lb.bound and r.objective <= lb.upper_bound and 0 <= r.gap < 0.2
True
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.errors import (
    check_instance,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
)
from schedlab.jit import njit
from schedlab.solvers.budget import Budget
from schedlab.solvers.iteration_heuristics import best_list_schedule, list_schedule, local_search
from schedlab.solvers.iteration_problem import IterationProblem
from schedlab.solvers.iteration_schedule import Schedule
from schedlab.solvers.iteration_verify import verify
from schedlab.solvers.result import SolveResult

__all__ = ["LagrangianBound", "completion_windows", "lagrangian_bound", "run_costs",
           "solve_lagrangian"]

_STALL_ITERATIONS = 20
#: Share of :func:`solve_lagrangian`'s time limit the bound's search may take.
_BOUND_SHARE = 0.75
_MIN_STEP_FACTOR = 1e-4


@dataclass(frozen=True, slots=True, kw_only=True)
class LagrangianBound:
    """The best Lagrangian bound found and how the search ended.

    ``bound`` is the certified lower bound (an integer, at least the trivial bound);
    ``value`` the best dual value before rounding; ``upper_bound`` the total JCT the windows
    and steps used; ``completion`` each request's completion slot on its path at the best
    multipliers; ``stopped`` one of ``"converged"`` (the step factor ran down),
    ``"iterations"``, ``"time limit"``, ``"goal"`` (the bound met ``goal``, by default
    ``upper_bound``: then that schedule is optimal) or ``"empty"`` (``allowed`` leaves a run
    no slot; ``value`` is ``inf``);
    ``prices`` the best multipliers as per-run prices, shape ``(3 + cuts, horizon)`` (a batch
    place, a token, a KV token, a unit of each of :func:`prefill_cuts` in each slot), and
    ``last`` each request's latest completion slot (:func:`completion_windows`): with
    ``value`` they fix variables in :func:`run_costs`.
    """

    bound: int
    value: float
    upper_bound: int
    iterations: int
    wall_s: float
    stopped: str
    completion: np.ndarray
    prices: np.ndarray
    last: np.ndarray

    @property
    def gap(self) -> float:
        """``(upper_bound - bound) / upper_bound``."""
        return max(0.0, (self.upper_bound - self.bound) / self.upper_bound)


def completion_windows(problem: IterationProblem, upper_bound: int) -> np.ndarray:
    """Latest completion slot of each request in an optimal active schedule (module docstring).

    >>> p = IterationProblem(arrival_slot=[0, 2], input_tokens=[1, 1], output_tokens=[2, 3],
    ...                      max_batch_size=1, max_batch_tokens=4, kv_capacity_tokens=8)
    >>> completion_windows(p, 100).tolist()
    [6, 6]
    """
    active_end = int(problem.arrival_slot.max() + problem.output_tokens.sum()) - 1
    return np.minimum(problem.jct_deadlines(upper_bound), active_end)


def lagrangian_bound(problem: IterationProblem, *, upper_bound: int | None = None,
                     allowed: list[np.ndarray] | None = None, goal: int | None = None,
                     time_limit_s: float | None = 10.0,
                     max_iterations: int = 2000) -> LagrangianBound:
    """The Lagrangian lower bound on the optimal total JCT of ``problem`` (module docstring).

    ``upper_bound``: the total JCT of any feasible schedule (default: the best list schedule);
    it sets the windows and the step target, never the bound's validity beyond that.
    ``allowed``: boolean arrays in :func:`run_costs`' layout (one per request, run by slot
    of its window); the bound then holds for schedules that use only allowed slots, for
    example every schedule of total JCT at most ``t`` once :func:`run_costs` has ruled out the
    slots that cost more than ``t``. ``value`` is ``inf`` when some run has no allowed slot
    left. ``goal``: the value the ascent steers towards and stops at (default
    ``upper_bound``); proving that no schedule of total JCT ``t`` exists aims at ``t + 1``.
    ``time_limit_s`` (``None``: no limit) bounds the whole call; a bound is always returned
    (at least the trivial one), since every iterate is valid.
    """
    t0 = time.perf_counter()
    where = "lagrangian_bound"
    check_instance(problem, IterationProblem, "problem", where)
    if time_limit_s is not None:
        time_limit_s = check_positive_float(time_limit_s, "time_limit_s", where)
    max_iterations = check_positive_int(max_iterations, "max_iterations", where)
    if upper_bound is None:
        upper_bound = best_list_schedule(problem)[1]
    ub = check_positive_int(upper_bound, "upper_bound", where)
    if ub < problem.trivial_bound():
        raise ValueError(
            f"The 'upper_bound' parameter of {where} must be the total JCT of a feasible "
            f"schedule, so at least the trivial bound ({problem.trivial_bound()}). Got {ub}."
        )
    end = math.inf if time_limit_s is None else t0 + time_limit_s

    a = problem.arrival_slot
    inp = problem.input_tokens
    o = problem.output_tokens
    goal = ub if goal is None else check_positive_int(goal, "goal", where)
    last = completion_windows(problem, ub)
    offsets = _offsets(problem, last)
    mask = _flat_mask(allowed, offsets, where)
    horizon = int(last.max()) + 1
    cut_w, cut_cap = prefill_cuts(problem)
    cut_w = cut_w.astype(np.float64)
    caps = np.concatenate(([problem.max_batch_size, problem.max_batch_tokens,
                            problem.kv_capacity_tokens], cut_cap)).astype(np.float64)
    mult = np.zeros((caps.size, horizon))  # per unit of capacity: batch, tokens, KV, cuts
    use = np.zeros((caps.size, horizon))
    comp = np.zeros(problem.n, dtype=np.int64)
    best_value, best_comp, best_price = -math.inf, a + o - 1, mult / caps[:, None]
    factor, stall, it, stopped = 2.0, 0, 0, "iterations"
    while it < max_iterations:
        if time.perf_counter() >= end:
            stopped = "time limit"
            break
        it += 1
        price = mult / caps[:, None]
        paths = _shortest_paths(a, last, inp, o, cut_w, price, offsets, mask, use, comp)
        if paths == math.inf:  # a run with no allowed slot: nothing to bound
            best_value, stopped = math.inf, "empty"
            break
        value = paths - float(mult.sum())
        if value > best_value + 1e-9:
            best_value, best_comp, best_price, stall = value, comp.copy(), price, 0
        else:
            stall += 1
            if stall >= _STALL_ITERATIONS:
                factor, stall = factor / 2, 0
        if _round_up(best_value) >= goal:
            stopped = "goal"
            break
        if factor < _MIN_STEP_FACTOR:
            stopped = "converged"
            break
        grad = use / caps[:, None] - 1.0
        grad[(mult <= 0) & (grad < 0)] = 0.0  # projected: a zero price cannot fall
        norm = float((grad * grad).sum())
        if norm == 0.0:  # every path fits the capacities: the relaxation is tight
            stopped = "converged"
            break
        mult = np.maximum(0.0, mult + factor * (goal - value) / norm * grad)
    rounded = ub if best_value == math.inf else _round_up(best_value)
    bound = max(problem.trivial_bound(), min(ub, rounded))
    return LagrangianBound(bound=bound, value=best_value, upper_bound=ub, iterations=it,
                           wall_s=time.perf_counter() - t0, stopped=stopped,
                           completion=best_comp, prices=best_price, last=last)


def prefill_cuts(problem: IterationProblem, *, orders: tuple[int, ...] = (1, 2, 3)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Valid per-slot inequalities on the prefills that the token budget's linear form misses:
    ``sum_j w[f, j] * (j prefills in the slot) <= capacity[f]``, one row ``f`` per cut.

    Each applies a dual feasible function ``u`` (Fekete and Schepers' ``u^(k)``: ``x`` when
    ``(k + 1) x / T`` is whole, else ``floor((k + 1) x / T) T / k``, scaled by ``k``) to the
    token budget: items that fit ``T`` together still fit ``u(T)`` after ``u``, and a decode's
    single token maps to 0. ``k = 1`` says at most one prompt above ``T / 2`` per slot.
    Rows that add nothing (all zero, or the budget itself) are left out.

    >>> p = IterationProblem(arrival_slot=[0, 0, 0], input_tokens=[17, 16, 30],
    ...                      output_tokens=[1, 1, 1], max_batch_size=4, max_batch_tokens=32,
    ...                      kv_capacity_tokens=64)
    >>> w, cap = prefill_cuts(p, orders=(1,))
    >>> w.tolist(), cap.tolist()
    ([[32, 16, 32]], [32])
    """
    x = problem.input_tokens
    t = problem.max_batch_tokens
    rows: list[np.ndarray] = []
    caps: list[int] = []
    for k in orders:
        scaled = (k + 1) * x
        w = np.where(scaled % t == 0, k * x, (scaled // t) * t)
        if w.any() and not np.array_equal(w, k * x) and not any(
                np.array_equal(w, r) for r in rows):
            rows.append(w)
            caps.append(k * t)
    if not rows:
        return np.zeros((0, problem.n), dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.vstack(rows).astype(np.int64), np.asarray(caps, dtype=np.int64)


def run_costs(problem: IterationProblem, lb: LagrangianBound,
              allowed: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Lagrangian reduced costs of every run slot, for variable fixing.

    Entry ``[k, i]`` of request ``j``'s array is the least total JCT of any schedule in which
    run ``k + 1`` of ``j`` is in slot ``a_j + i`` (``i`` up to ``lb.last[j] - a_j``), as far as
    the relaxation can tell: ``lb.value`` plus the cheapest priced path through that run minus
    ``j``'s cheapest path. No schedule running it there beats that value (weak duality again),
    so a slot whose value is at least an upper bound cannot improve on it. With ``allowed``
    (the mask ``lb`` was computed under), paths use allowed slots only; a disallowed entry
    is ``inf``.

    >>> import numpy as np
    >>> from schedlab.solvers.iteration_problem import random_problem
    >>> p = random_problem(8, np.random.default_rng(0))
    >>> lb = lagrangian_bound(p)
    >>> costs = run_costs(p, lb)
    >>> [c.shape[0] for c in costs] == p.output_tokens.tolist()
    True
    >>> min(float(c.min()) for c in costs) >= lb.value - 1e-6
    True
    """
    a, inp, o = problem.arrival_slot, problem.input_tokens, problem.output_tokens
    widths = lb.last - a + 1
    offsets = _offsets(problem, lb.last)
    mask = _flat_mask(allowed, offsets, "run_costs")
    flat = np.empty(int(offsets[-1]))
    cut_w = prefill_cuts(problem)[0].astype(np.float64)
    path = _through_costs(a, lb.last, inp, o, cut_w, lb.prices, offsets, mask, flat)
    out = []
    for j in range(problem.n):
        block = flat[offsets[j]:offsets[j + 1]].reshape(int(o[j]), int(widths[j]))
        # a request with no allowed path: every entry is unreachable
        out.append(np.full_like(block, np.inf) if path[j] == np.inf
                   else block - path[j] + lb.value)
    return out


def _offsets(problem: IterationProblem, last: np.ndarray) -> np.ndarray:
    """Where each request's (run, slot) block starts in the flat layout of the kernels."""
    sizes = problem.output_tokens * (last - problem.arrival_slot + 1)
    return np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)


def _flat_mask(allowed: list[np.ndarray] | None, offsets: np.ndarray, where: str) -> np.ndarray:
    """``allowed`` flattened for the kernels (empty: every slot allowed)."""
    if allowed is None:
        return np.zeros(0, dtype=np.bool_)
    sizes = np.diff(offsets)
    if len(allowed) != sizes.size or any(
            np.asarray(m).size != s for m, s in zip(allowed, sizes, strict=False)):
        raise ValueError(
            f"The 'allowed' parameter of {where} must hold one boolean array per request in "
            "run_costs' layout (runs by the slots of the request's window)."
        )
    return np.concatenate([np.asarray(m, dtype=np.bool_).ravel() for m in allowed])


def _round_up(value: float) -> int:
    if not math.isfinite(value):
        return 0
    return math.ceil(value - 1e-9 * abs(value) - 1e-6)


def solve_lagrangian(problem: IterationProblem, *, time_limit_s: float = 10.0,
                     max_iterations: int = 2000, evaluations: int = 100_000,
                     seed: int = 0) -> SolveResult:
    """The best of the FCFS, SRPT and Lagrangian-guided list schedules, improved by
    :func:`~schedlab.solvers.iteration_heuristics.local_search`, with the Lagrangian bound: a
    :class:`SolveResult` whose ``gap`` is certified. Made for the sizes CP-SAT cannot prove
    (hundreds to thousands of requests).

    ``time_limit_s`` bounds the whole call: the bound's search takes at most three quarters of
    it, the local search (at most ``evaluations`` swaps, drawn with ``seed``; it stops early if
    it meets the bound) the rest. ``status`` is ``OPTIMAL`` when the bound meets the schedule,
    else ``FEASIBLE``; ``stats`` holds the better FCFS/SRPT list schedule's total JCT, the best
    list schedule's before the local search, the iterations, how the search stopped and which
    schedule won (``"list-schedule"``, ``"lagrangian-guided"`` or ``"local-search"``).
    """
    t0 = time.perf_counter()
    where = "solve_lagrangian"
    check_instance(problem, IterationProblem, "problem", where)
    time_limit_s = check_positive_float(time_limit_s, "time_limit_s", where)
    evaluations = check_nonneg_int(evaluations, "evaluations", where)
    seed = check_nonneg_int(seed, "seed", where)
    budget = Budget(time_limit_s)
    schedule, objective = best_list_schedule(problem)
    lb = lagrangian_bound(problem, upper_bound=objective,
                          time_limit_s=time_limit_s * _BOUND_SHARE,
                          max_iterations=max_iterations)
    schedule, objective, source = guided_incumbent(problem, lb, schedule, objective)
    stats: dict[str, Any] = {"list_schedule_objective": lb.upper_bound,
                             "guided_objective": objective,
                             "iterations": lb.iterations, "stopped": lb.stopped,
                             "bound_wall_s": lb.wall_s, "dual_value": lb.value}
    searched, searched_objective = local_search(
        problem, schedule, evaluations=evaluations, seed=seed, stop_at=lb.bound,
        time_limit_s=max(1e-3, budget.left()))
    if searched_objective < objective:
        schedule, objective, source = searched, searched_objective, "local-search"
    stats["solution_source"] = source
    optimal = lb.bound >= objective
    return SolveResult(status="OPTIMAL" if optimal else "FEASIBLE", objective=float(objective),
                       bound=float(objective if optimal else lb.bound),
                       wall_s=time.perf_counter() - t0, schedule=schedule, stats=stats)


def guided_incumbent(problem: IterationProblem, lb: LagrangianBound, schedule: Schedule,
                     objective: int) -> tuple[Schedule, int, str]:
    """The better of ``schedule`` (total JCT ``objective``, a list schedule) and the list
    schedule by the completion slots of ``lb``'s paths (earliest first: a classic Lagrangian
    heuristic), with where it came from (``"list-schedule"`` or ``"lagrangian-guided"``)."""
    guided = list_schedule(problem, "fcfs", priority=lb.completion)
    guided_obj = verify(problem, guided).raise_if_invalid().objective
    assert guided_obj is not None
    if guided_obj < objective:
        return guided, guided_obj, "lagrangian-guided"
    return schedule, objective, "list-schedule"


@njit
def _shortest_paths(a, last, inp, o, cut_w, price, offsets, allowed, use, comp):  # pragma: no cover
    """Sum over requests of the cheapest priced path plus JCT; fills ``use`` ((3 + cuts) x
    horizon: batch places, tokens, KV and each cut's weight the chosen paths take per slot) and
    ``comp`` (each path's completion slot). Compiled: this dynamic programme is the bound's
    whole cost.

    ``f[i]``, level ``k``: the cheapest price of runs ``1 .. k + 1`` with run ``k + 1`` in slot
    ``a_j + i``; ``pred[k - 1, i]``: the slot index of run ``k`` on that path."""
    use[:, :] = 0.0
    total = 0.0
    masked = allowed.shape[0] > 0
    for j in range(a.shape[0]):
        lo = a[j]
        width = last[j] - lo + 1
        oj = o[j]
        # Prices are >= 0, so a path completing at index i costs at least its JCT i + 1: no
        # path completing after the back-to-back path's cost can be the cheapest.
        quick = float(oj)
        for k in range(oj):
            t = lo + k
            quick += price[0, t] + price[1, t] * (inp[j] if k == 0 else 1)
            quick += price[2, t] * (inp[j] + k + 1)
            if k == 0:
                for c in range(cut_w.shape[0]):
                    quick += price[3 + c, t] * cut_w[c, j]
            if masked and not allowed[offsets[j] + k * width + k]:
                quick = np.inf
        w = width if quick >= width else int(quick) + 1
        f = np.empty(w)
        pred = np.empty((max(oj - 1, 1), w), dtype=np.int64)
        for k in range(oj):
            tok = inp[j] if k == 0 else 1
            kv = inp[j] + k + 1
            best = 0.0 if k == 0 else np.inf  # cheapest previous level strictly before slot i
            best_i = -1
            for i in range(w):
                t = lo + i
                reach = best
                if k > 0:
                    pred[k - 1, i] = best_i
                    if f[i] < best:
                        best = f[i]
                        best_i = i
                f[i] = reach + price[0, t] + price[1, t] * tok + price[2, t] * kv
                if k == 0:
                    for c in range(cut_w.shape[0]):
                        f[i] += price[3 + c, t] * cut_w[c, j]
                if masked and not allowed[offsets[j] + k * width + i]:
                    f[i] = np.inf
        best = np.inf
        end = 0
        for i in range(w):
            v = f[i] + (i + 1)  # the JCT of completing in slot a_j + i
            if v < best:
                best = v
                end = i
        if best == np.inf:
            return np.inf
        total += best
        comp[j] = lo + end
        i = end
        for k in range(oj - 1, -1, -1):
            t = lo + i
            use[0, t] += 1.0
            use[1, t] += inp[j] if k == 0 else 1
            use[2, t] += inp[j] + k + 1
            if k == 0:
                for c in range(cut_w.shape[0]):
                    use[3 + c, t] += cut_w[c, j]
            if k > 0:
                i = pred[k - 1, i]
    return total


@njit
def _through_costs(a, last, inp, o, cut_w, price, offsets, allowed, out):  # pragma: no cover
    """For every request, the cheapest priced path (plus JCT) through each (run, slot) into
    ``out`` (request ``j``'s block at ``offsets[j]``, run-major), and each request's cheapest
    path overall (returned). Forward prefix minima from the first run, backward suffix minima
    from the last, as in :func:`_shortest_paths`."""
    n = a.shape[0]
    path = np.empty(n)
    masked = allowed.shape[0] > 0
    for j in range(n):
        lo = a[j]
        w = last[j] - lo + 1
        oj = o[j]
        fwd = np.empty((oj, w))
        bwd = np.empty((oj, w))
        cost = np.empty((oj, w))
        for k in range(oj):
            tok = inp[j] if k == 0 else 1
            kv = inp[j] + k + 1
            for i in range(w):
                t = lo + i
                cost[k, i] = price[0, t] + price[1, t] * tok + price[2, t] * kv
                if k == 0:
                    for c in range(cut_w.shape[0]):
                        cost[k, i] += price[3 + c, t] * cut_w[c, j]
                if masked and not allowed[offsets[j] + k * w + i]:
                    cost[k, i] = np.inf
        for k in range(oj):  # fwd[k, i] extends fwd[k - 1] strictly before slot i
            best = 0.0 if k == 0 else np.inf
            for i in range(w):
                fwd[k, i] = best + cost[k, i]
                if k > 0 and fwd[k - 1, i] < best:
                    best = fwd[k - 1, i]
        for k in range(oj - 1, -1, -1):  # bwd[k, i] continues with bwd[k + 1] after slot i
            best = np.inf
            for i in range(w - 1, -1, -1):
                if k == oj - 1:
                    bwd[k, i] = cost[k, i] + (i + 1)
                else:
                    bwd[k, i] = cost[k, i] + best
                    if bwd[k + 1, i] < best:
                        best = bwd[k + 1, i]
        least = np.inf
        base = offsets[j]
        for k in range(oj):
            for i in range(w):
                v = np.inf if cost[k, i] == np.inf else fwd[k, i] + bwd[k, i] - cost[k, i]
                out[base + k * w + i] = v
                if v < least:
                    least = v
        path[j] = least
    return path
