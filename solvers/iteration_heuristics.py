"""Simple feasible schedules for an :class:`IterationProblem`, built inside the solvers layer (no
policy imports): greedy list scheduling by a priority order, and a local search over those
orders. They give the CP-SAT model its horizon and a first solution, the Lagrangian gap its
schedule, and tests compare the optimum with them.

Each slot, the arrived unfinished requests are taken in priority order and added first-fit while
the batch size, token budget and KV capacity allow (skipping one that does not fit and trying the
next). The highest-priority request always fits alone, so every slot with work makes progress.

- ``fcfs``: by arrival slot, then index.
- ``srpt``: by remaining runs (output tokens not yet produced), then arrival, then index.

:func:`local_search` improves a schedule by searching the static priority orders: swap two
requests' places, keep the swap when the list schedule's total JCT does not grow. Each list
schedule is one compiled pass (about 1.4 us at 20 requests), which stops as soon as its total
provably exceeds the current one's. Every run here takes one slot, so a schedule in which no run
could move to an earlier slot with room for it (an *active* one, which some optimum is) is a
first-fit list schedule of some order per slot. One order for all slots does not reach every
such schedule, but on the benchmark's 12- to 24-request instances the search finds every proven
optimum.

>>> from schedlab.solvers.iteration_problem import IterationProblem
>>> p = IterationProblem(arrival_slot=[0, 0], input_tokens=[2, 2], output_tokens=[3, 1],
...                      max_batch_size=1, max_batch_tokens=4, kv_capacity_tokens=10)
>>> list_schedule(p, "fcfs").completion_slot().tolist()
[2, 3]
>>> list_schedule(p, "srpt").completion_slot().tolist()
[3, 0]
"""

from __future__ import annotations

import time

import numpy as np

from schedlab.errors import (
    check_array,
    check_instance,
    check_nonneg_int,
    check_positive_float,
    unknown_name_error,
)
from schedlab.jit import njit
from schedlab.solvers.budget import Budget
from schedlab.solvers.iteration_problem import IterationProblem, kv_tokens_at_run
from schedlab.solvers.iteration_schedule import Schedule
from schedlab.solvers.iteration_verify import ScheduleInvalid, verify

__all__ = ["PRIORITY_RULES", "best_list_schedule", "list_schedule", "local_search"]

#: Names accepted by :func:`list_schedule`.
PRIORITY_RULES = ("fcfs", "srpt")


def list_schedule(problem: IterationProblem, rule: str = "fcfs", *,
                  priority: np.ndarray | None = None) -> Schedule:
    """Greedy first-fit list schedule of ``problem`` by priority ``rule`` (see module docstring).

    ``priority``: an optional static key per request (lower runs first), ahead of the rule's
    own order, which then only breaks ties (for example the completion slots of a relaxation's
    solution).

    >>> from schedlab.solvers.iteration_problem import IterationProblem
    >>> p = IterationProblem(arrival_slot=[0, 0], input_tokens=[2, 2], output_tokens=[3, 1],
    ...                      max_batch_size=1, max_batch_tokens=4, kv_capacity_tokens=10)
    >>> list_schedule(p, priority=np.array([1, 0])).completion_slot().tolist()
    [3, 0]
    """
    if rule not in PRIORITY_RULES:
        raise unknown_name_error("priority rule of list_schedule", rule, PRIORITY_RULES)
    a, inp, o = problem.arrival_slot, problem.input_tokens, problem.output_tokens
    key = np.zeros(problem.n) if priority is None else check_array(
        priority, "priority", "list_schedule", dtype=np.float64, length=problem.n)
    done = np.zeros(problem.n, dtype=np.int64)
    idx = np.arange(problem.n)
    reqs: list[np.ndarray] = []
    slots: list[int] = []
    pres: list[np.ndarray] = []
    t = int(a.min())
    while np.any(done < o):
        cand = idx[(a <= t) & (done < o)]
        if cand.size == 0:
            t = int(a[done < o].min())
            continue
        if rule == "fcfs":
            cand = cand[np.lexsort((cand, a[cand], key[cand]))]
        else:
            cand = cand[np.lexsort((cand, a[cand], o[cand] - done[cand], key[cand]))]
        need_tok = np.where(done[cand] == 0, inp[cand], 1)
        need_kv = kv_tokens_at_run(inp[cand], done[cand] + 1)
        chosen: list[int] = []
        tok = kv = 0
        for c, nt, nk in zip(cand.tolist(), need_tok.tolist(), need_kv.tolist(), strict=True):
            if len(chosen) == problem.max_batch_size:
                break
            if tok + nt <= problem.max_batch_tokens and kv + nk <= problem.kv_capacity_tokens:
                chosen.append(c)
                tok += nt
                kv += nk
        ch = np.asarray(chosen, dtype=np.int64)
        reqs.append(ch)
        slots.append(t)
        pres.append(np.where(done[ch] == 0, inp[ch], 0))
        done[ch] += 1
        t += 1
    req = np.concatenate(reqs)
    return Schedule(
        n_requests=problem.n,
        request=req,
        slot=np.repeat(np.asarray(slots, dtype=np.int64), [r.size for r in reqs]),
        prefill_tokens=np.concatenate(pres),
        output_token=np.ones(req.size, dtype=bool),
    )


def best_list_schedule(problem: IterationProblem) -> tuple[Schedule, int]:
    """The better of the FCFS and SRPT list schedules and its total JCT."""
    best: tuple[Schedule, int] | None = None
    for rule in ("srpt", "fcfs"):
        s = list_schedule(problem, rule)
        obj = verify(problem, s).raise_if_invalid().objective
        assert obj is not None
        if best is None or obj < best[1]:
            best = (s, obj)
    assert best is not None
    return best


#: :func:`local_search` draws its swaps in chunks, one compiled call each, and checks its time
#: limit between them: the first chunk has this many swaps, the next ones as many as fit in
#: ``_CHUNK_S`` seconds (or the time left) at the last chunk's pace, at most ``_CHUNK``. The
#: swaps drawn do not depend on the chunks, so only a time limit that runs out makes the result
#: depend on the machine.
_FIRST_CHUNK = 16
_CHUNK = 4096
_CHUNK_S = 0.1


def local_search(problem: IterationProblem, schedule: Schedule, *, evaluations: int = 100_000,
                 seed: int = 0, stop_at: int | None = None,
                 time_limit_s: float | None = None) -> tuple[Schedule, int]:
    """A schedule of ``problem`` no worse than ``schedule``, by local search over priority orders,
    with its total JCT.

    Starts from the order of ``schedule``'s completion slots (then arrival, then index) and
    tries ``evaluations`` random swaps of two requests' places (uniform, drawn from
    ``numpy.random.default_rng(seed)``), keeping each swap whose first-fit list schedule
    (:func:`list_schedule` with that order as its ``priority``) has a total JCT no larger; ties
    are kept too, so the search walks across plateaus. It stops early when the total reaches
    ``stop_at`` (a lower bound: nothing better exists) or ``time_limit_s`` runs out (checked
    about every 0.1 s; only then does the result depend on the machine's speed). Returns
    ``schedule`` itself unless a strictly better one was found.

    >>> from schedlab.solvers.iteration_problem import random_problem
    >>> p = random_problem(20, np.random.default_rng(0))
    >>> start, total = best_list_schedule(p)
    >>> better, better_total = local_search(p, start)
    >>> total, better_total, verify(p, better).objective
    (110, 109, 109)
    """
    where = "local_search"
    check_instance(problem, IterationProblem, "problem", where)
    check_instance(schedule, Schedule, "schedule", where)
    evaluations = check_nonneg_int(evaluations, "evaluations", where)
    seed = check_nonneg_int(seed, "seed", where)
    goal = -1 if stop_at is None else check_nonneg_int(stop_at, "stop_at", where)
    budget = Budget(None if time_limit_s is None
                    else check_positive_float(time_limit_s, "time_limit_s", where))
    try:
        total = verify(problem, schedule).raise_if_invalid().objective
    except ScheduleInvalid as exc:
        raise ScheduleInvalid(f"The 'schedule' parameter of {where} is no schedule of the "
                              f"problem. {exc}") from None
    assert total is not None
    if problem.n < 2 or total <= goal:
        return schedule, total
    a, inp, o = problem.arrival_slot, problem.input_tokens, problem.output_tokens
    limits = (problem.max_batch_size, problem.max_batch_tokens, problem.kv_capacity_tokens)
    order = np.lexsort((np.arange(problem.n), a, schedule.completion_slot()))
    done = np.zeros(problem.n, dtype=np.int64)
    value = _list_total(a, inp, o, *limits, order, np.iinfo(np.int64).max, done)
    rng = np.random.default_rng(seed)
    left, size = evaluations, _FIRST_CHUNK
    while left and value > goal and budget.left() > 0:
        # one double per place (no rejection sampling), so the swaps do not depend on the chunks
        swaps = (rng.random((min(left, size), 2)) * problem.n).astype(np.int64)
        t0 = time.perf_counter()
        value = _swap_search(a, inp, o, *limits, order, value, swaps, goal, done)
        per_swap = max(time.perf_counter() - t0, 1e-9) / swaps.shape[0]
        left -= swaps.shape[0]
        size = int(np.clip(min(_CHUNK_S, budget.left()) / per_swap, 1, _CHUNK))
    if value >= total:
        return schedule, total
    rank = np.empty(problem.n)
    rank[order] = np.arange(problem.n)
    return list_schedule(problem, "fcfs", priority=rank), int(value)


@njit
def _list_total(a, inp, o, batch, budget, kv_cap, order, cap, done):  # pragma: no cover
    """Total JCT of the first-fit list schedule taking requests in ``order`` (the rule of
    :func:`list_schedule`), or ``cap + 1`` once it provably exceeds ``cap``: the requests done
    plus, for each one left, its runs back to back from the next slot. ``done``: scratch
    (runs done per request; a run chosen this slot is marked ``-(done + 1)``)."""
    n = order.shape[0]
    done[:] = 0
    left = n
    t = a.min()
    total = 0
    while left > 0:
        tokens = 0
        kv = 0
        size = 0
        waiting = False
        for q in range(n):
            j = order[q]
            if a[j] <= t and done[j] < o[j]:
                waiting = True
                need_tok = inp[j] if done[j] == 0 else 1
                need_kv = inp[j] + done[j] + 1  # kv_tokens_at_run(inp, done + 1)
                if size < batch and tokens + need_tok <= budget and kv + need_kv <= kv_cap:
                    tokens += need_tok
                    kv += need_kv
                    size += 1
                    done[j] = -done[j] - 1
        if not waiting:  # idle until the next arrival of unfinished work
            t = np.iinfo(np.int64).max
            for j in range(n):
                if done[j] < o[j] and a[j] < t:
                    t = a[j]
            continue
        floor = 0
        for j in range(n):
            if done[j] < 0:
                done[j] = -done[j]
                if done[j] == o[j]:
                    left -= 1
                    total += t + 1 - a[j]
            if done[j] < o[j]:
                floor += max(t + 1, a[j]) + o[j] - done[j] - a[j]
        if total + floor > cap:
            return cap + 1
        t += 1
    return total


@njit
def _swap_search(a, inp, o, batch, budget, kv_cap, order, value, swaps, goal,
                 done):  # pragma: no cover
    """Try each swap of ``swaps`` (pairs of places in ``order``), keeping it (in ``order``) when
    the total does not grow; returns the total, stopping once it reaches ``goal``."""
    for s in range(swaps.shape[0]):
        if value <= goal:
            break
        i = swaps[s, 0]
        k = swaps[s, 1]
        if i == k:
            continue
        order[i], order[k] = order[k], order[i]
        tried = _list_total(a, inp, o, batch, budget, kv_cap, order, value, done)
        if tried <= value:
            value = tried
        else:
            order[i], order[k] = order[k], order[i]
    return value
