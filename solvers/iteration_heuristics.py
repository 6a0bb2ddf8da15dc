"""Simple feasible schedules for an :class:`IterationProblem`, built inside the solvers layer (no
policy imports): greedy list scheduling by a priority order. They give the CP-SAT model its
horizon and a first solution, and tests compare the optimum with them.

Each slot, the arrived unfinished requests are taken in priority order and added first-fit while
the batch size, token budget and KV capacity allow (skipping one that does not fit and trying the
next). The highest-priority request always fits alone, so every slot with work makes progress.

- ``fcfs``: by arrival slot, then index.
- ``srpt``: by remaining runs (output tokens not yet produced), then arrival, then index.

>>> from schedlab.solvers.iteration_problem import IterationProblem
>>> p = IterationProblem(arrival_slot=[0, 0], input_tokens=[2, 2], output_tokens=[3, 1],
...                      max_batch_size=1, max_batch_tokens=4, kv_capacity_tokens=10)
>>> list_schedule(p, "fcfs").completion_slot().tolist()
[2, 3]
>>> list_schedule(p, "srpt").completion_slot().tolist()
[3, 0]
"""

from __future__ import annotations

import numpy as np

from schedlab.errors import check_array, unknown_name_error
from schedlab.solvers.iteration_problem import IterationProblem, kv_tokens_at_run
from schedlab.solvers.iteration_schedule import Schedule
from schedlab.solvers.iteration_verify import verify

__all__ = ["PRIORITY_RULES", "best_list_schedule", "list_schedule"]

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
