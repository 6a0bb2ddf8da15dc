"""``check_simulation``: conservation and time-monotonicity of a simulation result.

Written against the fields :class:`schedlab.sim.SimResult` documents (per-request columns in
workload order, run-wide counters, and the optional ``iteration_log``). It only reads the
result, so this module imports nothing from :mod:`schedlab.sim`.

>>> from schedlab.records import Workload
>>> from schedlab.sim import simulate, InstanceSpec
>>> from schedlab.costmodel.base import ConstantIterationCost
>>> w = Workload(arrival_s=[0.0, 0.1, 0.2], input_tokens=[30, 500, 20], output_tokens=[4, 3, 6])
>>> spec = InstanceSpec(cost=ConstantIterationCost(kv_capacity_tokens=200), max_batch_size=4)
>>> r = simulate(w, spec, "skip-join-mlfq", record_iterations=True)
>>> check_simulation(r, w)
>>> r.status.tolist()
['completed', 'rejected', 'completed']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schedlab.records import Workload

__all__ = ["check_simulation"]

_EPS = 1e-9


def _fail(rule: str, detail: str) -> None:
    raise AssertionError(f"simulation: {rule}: {detail}")


def _first(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask)[:10].tolist()


def check_simulation(result: Any, workload: Workload) -> None:
    """Check a simulation result against its workload; raise ``AssertionError`` naming the rule
    and the first offending requests (workload indices).

    Rules:

    - *shape*: every per-request column has one entry per workload request, and ``request_id``,
      ``arrival_s``, ``input_tokens``, ``output_tokens`` are the workload's;
    - *conservation*: every request ends ``completed`` or ``rejected``; rejected ones carry a
      reason and completed ones none;
    - *time monotone*: a completed request has ``arrival <= first token <= finish``, all
      finite, on an instance in ``[0, n_instances)``;
    - *time bounds*: every iteration takes time, so a completed request's first token comes
      strictly after its arrival and, with more than one output token, its finish strictly
      after its first token; ``swaps <= preemptions``; busy time within
      ``n_instances`` times the makespan;
    - with an ``iteration_log``: iterations have ``start <= end`` and never overlap on one
      instance; no request runs before it arrives or twice in one iteration; a completed
      request emits exactly ``output_tokens`` tokens (a rejected one fewer), prefills at least
      its prompt less the prefix a cache held for it (``extra["cached_tokens"]``), gets its
      first token at the end of the iteration that emits it and finishes at the end of the one
      that emits its last.

    >>> import numpy as np, dataclasses
    >>> from schedlab.records import Workload
    >>> from schedlab.sim import simulate, InstanceSpec
    >>> from schedlab.costmodel.base import ConstantIterationCost
    >>> w = Workload(arrival_s=[0.0, 0.5], input_tokens=[8, 8], output_tokens=[3, 2])
    >>> r = simulate(w, InstanceSpec(cost=ConstantIterationCost(kv_capacity_tokens=64)), "fcfs")
    >>> bad = dataclasses.replace(r, first_token_s=r.first_token_s - 10.0)
    >>> check_simulation(bad, w)
    Traceback (most recent call last):
    ...
    AssertionError: simulation: time not monotone: first token before arrival for requests [0, 1]
    """
    n = len(workload)
    for col in (
        "request_id",
        "arrival_s",
        "first_token_s",
        "finish_s",
        "status",
        "instance",
        "reject_reason",
        "input_tokens",
        "output_tokens",
        "preemptions",
        "swaps",
    ):
        a = getattr(result, col)
        if np.shape(a) != (n,):
            _fail("shape", f"{col} has shape {np.shape(a)}, the workload has {n} requests")
    for col in ("request_id", "arrival_s", "input_tokens", "output_tokens"):
        if not np.array_equal(getattr(result, col), getattr(workload, col)):
            _fail("shape", f"{col} differs from the workload's")

    status = np.asarray(result.status).astype(str)
    done, rej = status == "completed", status == "rejected"
    if not (done | rej).all():
        _fail(
            "conservation", f"requests {_first(~(done | rej))} ended neither completed nor rejected"
        )
    reason = np.asarray(result.reject_reason).astype(str)
    if (rej & (reason == "")).any():
        _fail("conservation", f"rejected requests {_first(rej & (reason == ''))} have no reason")
    if (done & (reason != "")).any():
        _fail("conservation", f"completed requests {_first(done & (reason != ''))} have a reason")

    arr, first, fin = result.arrival_s, result.first_token_s, result.finish_s
    if not (np.isfinite(first[done]).all() and np.isfinite(fin[done]).all()):
        _fail(
            "time not monotone",
            f"completed requests without times: {_first(done & ~np.isfinite(fin))}",
        )
    early = done & (first < arr - _EPS)
    if early.any():
        _fail("time not monotone", f"first token before arrival for requests {_first(early)}")
    late = done & (fin < first - _EPS)
    if late.any():
        _fail("time not monotone", f"finish before first token for requests {_first(late)}")
    # every iteration takes time: the prefill ends after the arrival, each decode after the last
    instant = done & ((first <= arr) | ((result.output_tokens > 1) & (fin <= first)))
    if instant.any():
        _fail("time bounds", f"requests {_first(instant)} got tokens in no time (first token at "
              "arrival, or several tokens at one instant)")
    inst = result.instance
    bad_inst = done & ((inst < 0) | (inst >= result.n_instances))
    if bad_inst.any():
        _fail("instance out of range", f"requests {_first(bad_inst)}")
    if (result.swaps > result.preemptions).any() or (result.swaps < 0).any():
        _fail(
            "counters",
            f"swaps exceed preemptions for requests {_first(result.swaps > result.preemptions)}",
        )
    if done.any():
        span = float(fin[done].max() - arr.min())
        if result.busy_s > result.n_instances * span + 1e-6 or result.busy_s < 0:
            _fail("counters", f"busy_s={result.busy_s} outside [0, {result.n_instances} x {span}]")
    if result.iteration_log is not None:
        _check_log(result, result.iteration_log, n, done, rej)


def _check_log(result: Any, log: dict, n: int, done: np.ndarray, rej: np.ndarray) -> None:
    start, end, inst, off = log["start_s"], log["end_s"], log["instance"], log["offsets"]
    req, pre, out = log["request"], log["prefill_tokens"], np.asarray(log["output_token"], bool)
    if (end < start - _EPS).any():
        _fail("iteration log", f"iterations {_first(end < start - _EPS)} end before they start")
    order = np.lexsort((start, inst))
    same = inst[order][1:] == inst[order][:-1]
    overlap = same & (start[order][1:] < end[order][:-1] - _EPS)
    if overlap.any():
        _fail(
            "iteration log",
            f"iterations {order[1:][overlap][:10].tolist()} overlap on one instance",
        )
    if req.shape[0] and (req.min() < 0 or req.max() >= n):
        _fail("iteration log", "request index out of range")
    it = np.repeat(np.arange(start.shape[0]), np.diff(off))
    before = start[it] < result.arrival_s[req] - _EPS
    if before.any():
        _fail(
            "iteration log", f"requests {np.unique(req[before])[:10].tolist()} run before arriving"
        )
    pair = it * n + req
    if np.unique(pair).shape[0] != pair.shape[0]:
        _fail("iteration log", "a request appears twice in one iteration")
    emitted = np.bincount(req, weights=out, minlength=n).astype(np.int64)
    prefilled = np.bincount(req, weights=pre, minlength=n).astype(np.int64)
    wrong = done & (emitted != result.output_tokens)
    if wrong.any():
        _fail(
            "token conservation",
            f"completed requests {_first(wrong)} emitted {emitted[wrong][:10].tolist()} tokens, "
            f"expected {result.output_tokens[wrong][:10].tolist()}",
        )
    over = rej & (emitted >= result.output_tokens)
    if over.any():
        _fail("token conservation", f"rejected requests {_first(over)} emitted all their tokens")
    cached = np.asarray(result.extra.get("cached_tokens", 0))  # a prefix cache's share
    short = done & (prefilled < result.input_tokens - cached)
    if short.any():
        _fail(
            "token conservation",
            f"completed requests {_first(short)} prefilled less than their prompt (less what a "
            "prefix cache held)",
        )
    t = end[it][out]
    r = req[out]
    first_emit = np.full(n, np.inf)
    np.minimum.at(first_emit, r, t)
    last_emit = np.full(n, -np.inf)
    np.maximum.at(last_emit, r, t)
    off_first = done & ~np.isclose(first_emit, result.first_token_s, rtol=0, atol=1e-9)
    if off_first.any():
        _fail(
            "time not monotone",
            f"first_token_s of requests {_first(off_first)} is not the end of their first "
            "emitting iteration",
        )
    off_last = done & ~np.isclose(last_emit, result.finish_s, rtol=0, atol=1e-9)
    if off_last.any():
        _fail(
            "time not monotone",
            f"finish_s of requests {_first(off_last)} is not the end of their last emitting "
            "iteration",
        )
