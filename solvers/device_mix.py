"""The optimum of heterogeneous decoding's device mix (Lamina): the cheapest tokens over every
mix of compute devices, memory devices, replicas and batch.

Seed paper: Lamina (arXiv 2405.01814 v2). The problem record is the sizers' own
:class:`~schedlab.costmodel.attention_offload.DeviceMixProblem`; a mix is feasible and priced by
:func:`verify_device_mix` (the cost model's
:func:`~schedlab.costmodel.attention_offload.evaluate_mix`, the one rule).

The optimum is exact by enumeration with a closed form in the batch: for each mix of devices
and replicas (compute devices up to ``max_compute``, each replica tensor parallel over an equal
share; memory pools dividing the KV heads, or none when ``homogeneous``) the best batch is the
largest one that fits and meets the SLO, because throughput only grows with the batch (every
term of the time between tokens is affine in it with a non-negative intercept,
``B / (c + m B)`` grows with ``B``). The tests check this against enumerating every batch.

>>> from schedlab.costmodel.attention_offload import DeviceMixProblem
>>> r = solve_device_mix(DeviceMixProblem(model="llama-3-70b", context_tokens=2000))
>>> r.status, r.schedule, round(r.objective, 3)   # USD per million tokens: 4 batches in flight
('OPTIMAL', DeviceMix(n_compute=6, n_memory=8, replicas=3, batch=263), 1.576)
"""

from __future__ import annotations

import math
import time

from schedlab.costmodel.attention_offload import (
    DeviceMix,
    DeviceMixProblem,
    MixEvaluation,
    deployment,
    evaluate_mix,
    largest_batch,
    memory_pools,
)
from schedlab.errors import check_instance
from schedlab.solvers.result import SolveResult

__all__ = ["mixes", "solve_device_mix", "verify_device_mix"]


def verify_device_mix(problem: DeviceMixProblem, mix: DeviceMix) -> MixEvaluation:
    """Whether ``mix`` is feasible on ``problem`` (and why not) and what it gives: tokens per
    second, time between tokens, requests at once, price and USD per million tokens.

    >>> from schedlab.costmodel.attention_offload import DeviceMixProblem, DeviceMix
    >>> p = DeviceMixProblem(model="llama-3-70b", context_tokens=2000, tbt_slo_s=0.05)
    >>> verify_device_mix(p, DeviceMix(2, 4, 1, 263)).reason
    'time between tokens 0.0799 s over the SLO'
    """
    check_instance(problem, DeviceMixProblem, "problem", "verify_device_mix")
    check_instance(mix, DeviceMix, "mix", "verify_device_mix")
    return evaluate_mix(problem, mix)


def mixes(problem: DeviceMixProblem) -> list[tuple[int, int, int]]:
    """Every ``(n_compute, n_memory, replicas)`` within the problem's limits whose devices run
    the model (``n_memory=0``: homogeneous, when allowed)."""
    pools = memory_pools(problem)
    if problem.homogeneous:
        pools = [0, *pools]
    out = []
    for a in range(1, problem.max_compute + 1):
        for r in range(1, min(a, problem.max_replicas) + 1):
            if a % r:
                continue
            for b in pools:
                if b == 0 and r != 1:
                    continue
                try:
                    deployment(problem, a, b, r)
                except ValueError:
                    continue
                out.append((a, b, r))
    return out


def solve_device_mix(problem: DeviceMixProblem) -> SolveResult:
    """The mix and batch with the fewest USD per million tokens (module docstring); status
    ``OPTIMAL`` (bound equal to the objective, gap 0) or ``INFEASIBLE`` when no mix within the
    limits runs the model and meets the SLO. ``stats``: ``mixes`` (device mixes enumerated),
    ``throughput``, ``tbt_s``, ``requests``, ``price_per_hour`` of the optimum, and
    ``best_homogeneous`` (the USD per million tokens of the cheapest mix without memory
    devices, ``inf`` when there is none) and ``best_homogeneous_mix`` (that mix, or ``None``).
    """
    check_instance(problem, DeviceMixProblem, "problem", "solve_device_mix")
    start = time.perf_counter()
    candidates = mixes(problem)
    best: tuple[float, DeviceMix, MixEvaluation] | None = None
    homogeneous: tuple[float, DeviceMix | None] = (math.inf, None)
    for a, b, r in candidates:
        batch = largest_batch(problem, deployment(problem, a, b, r))
        if batch < 1:
            continue
        mix = DeviceMix(a, b, r, batch)
        ev = evaluate_mix(problem, mix)
        cost = ev.usd_per_million_tokens
        if b == 0 and cost < homogeneous[0]:
            homogeneous = (cost, mix)
        if best is None or cost < best[0]:
            best = (cost, mix, ev)
    wall = time.perf_counter() - start
    if best is None:
        return SolveResult(status="INFEASIBLE", objective=None, bound=math.inf, wall_s=wall,
                           schedule=None, stats={"mixes": len(candidates)})
    cost, mix, ev = best
    return SolveResult(status="OPTIMAL", objective=cost, bound=cost, wall_s=wall, schedule=mix,
                       stats={"mixes": len(candidates), "throughput": ev.throughput,
                              "tbt_s": ev.tbt_s, "requests": ev.requests,
                              "price_per_hour": ev.price_per_hour,
                              "best_homogeneous": homogeneous[0],
                              "best_homogeneous_mix": homogeneous[1]})
