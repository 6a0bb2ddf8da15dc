"""A placement policy on a window problem: :func:`replay_placement` runs any placement policy
(Mooncake's Conductor by default) over a :class:`~schedlab.solvers.PlacementProblem`, so the
heuristic and the optimum (:func:`~schedlab.solvers.solve_placement_cpsat`) are judged on the same
record by the same :func:`~schedlab.solvers.verify_placement`.

Requests are placed in arrival order. Each sees a
:class:`~schedlab.contract.placement.PlacementView` of the window's state: its prefix on each
prefill instance (``problem.prefix_tokens``), the queue left on each serial prefill instance, its
prefill times (pulling the best prefix where the problem allows it, the transfer included, so the
view's ``transfer_s`` is 0), and the decode instances' load in the problem's units: a decode step
model of one microsecond per unit of ``decode_demand_us``, with each instance's load already
there at the window's start (its budget below the largest one) shown as a request decoding
throughout. The policy's SLOs are the problem's. An accepted request is then checked the way a
decode instance checks it at the hand-off, over its whole decode: if it would break the decode
instance's step budget or KV at any moment, it is rejected after its prefill (a wasted prefill).
So the replay's schedule always keeps the problem's rules.

>>> from schedlab.solvers import PlacementProblem, solve_placement_cpsat, verify_placement
>>> p = PlacementProblem(arrival_ms=[0, 0, 10], prefill_ms=[[100], [100], [100]],
...     pulled_ms=[[-1], [-1], [-1]], decode_ms=[1000, 1000, 1000], decode_demand_us=[5, 5, 5],
...     decode_budget_us=[10], kv_tokens=[1, 1, 1], decode_kv_tokens=[10], slo_ttft_ms=250)
>>> s, wasted = replay_placement(p)
>>> s.rejected, wasted, verify_placement(p, s).ok
(1, 0, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from schedlab.contract.placement import DecodeStepModel, Placement, PlacementView
from schedlab.errors import check_instance
from schedlab.solvers.placement_window import (
    PlacementProblem,
    PlacementSchedule,
    decode_overloads,
)

__all__ = ["replay_placement"]

_STEP = DecodeStepModel(base_s=0.0, per_context_token_s=1e-6)  # a "token" is 1 us of demand


def _ro(a: Any, dtype: Any) -> np.ndarray:
    out = np.array(a, dtype=dtype)
    out.flags.writeable = False
    return out


def replay_placement(
    problem: PlacementProblem,
    placement: str | Callable[..., Placement] = "mooncake",
    **params: Any,
) -> tuple[PlacementSchedule, int]:
    """Run ``placement`` over ``problem`` (see the module docstring); returns the schedule and
    how many of its rejections came after the prefill (wasted prefills). ``params`` go to the
    policy (its SLOs default to the problem's)."""
    from schedlab.policies import get_placement

    check_instance(problem, PlacementProblem, "problem", "replay_placement")
    fn = get_placement(placement)
    pr = problem
    n, P, D = pr.n, pr.n_prefill, pr.n_decode
    budget_max = int(pr.decode_budget_us.max())
    if fn.__name__ == "mooncake":
        params = {"slo_ttft_s": pr.slo_ttft_ms / 1000, "slo_tbt_s": budget_max * 1e-6,
                  "decode_duration_s": float(pr.decode_ms.mean()) / 1000, **params}
    free = pr.prefill_free_ms.astype(np.int64).copy()
    acc = np.zeros(n, dtype=bool)
    pre = np.full(n, -1, dtype=np.int64)
    pul = np.zeros(n, dtype=bool)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    dec = np.full(n, -1, dtype=np.int64)
    queued = np.zeros(P, dtype=np.int64)
    wasted = 0
    base_inst = np.arange(D, dtype=np.int64)
    base_load = budget_max - pr.decode_budget_us
    for r in range(n):
        t = int(pr.arrival_ms[r])
        placed = np.flatnonzero(acc)
        live = placed[(end[placed] <= t) & (end[placed] + pr.decode_ms[placed] > t)]
        coming = placed[end[placed] > t]
        queued[:] = np.bincount(pre[coming], minlength=P)
        local = pr.prefix_tokens[r]
        best = int(local.max())
        can_pull = pr.pulled_ms[r] >= 0
        inst = np.concatenate((base_inst, dec[live]))
        ctx = np.concatenate((base_load, pr.decode_demand_us[live]))
        kv_used = (np.bincount(dec[live], pr.kv_tokens[live], minlength=D)
                   + np.bincount(dec[coming], pr.kv_tokens[coming], minlength=D))
        need = int(pr.decode_demand_us[r])  # "tokens" the request adds to a decode step
        view = PlacementView(
            now_s=t / 1000, request_id=r, input_tokens=need,
            output_tokens_pred=0.0, prefix_tokens=_ro(local, np.int64),
            queue_s=_ro(np.maximum(free - t, 0) / 1000, np.float64),
            queued_requests=_ro(queued, np.int64),
            prefill_s=_ro(pr.prefill_ms[r] / 1000, np.float64),
            prefill_best_s=_ro(np.where(can_pull, pr.pulled_ms[r], pr.prefill_ms[r]) / 1000,
                               np.float64),
            transfer_s=_ro(np.zeros(P), np.float64), best_prefix_tokens=best,
            best_holder=int(np.argmax(local)) if best > 0 else -1,
            decode_batch=_ro(np.bincount(inst, minlength=D), np.int64),
            decode_context_tokens=_ro(np.bincount(inst, ctx, minlength=D), np.int64),
            decode_kv_free_tokens=_ro(pr.decode_kv_tokens - kv_used - pr.kv_tokens[r] + need,
                                      np.int64),
            decode_step=_STEP,
            decoding_instance=_ro(inst, np.int64),
            decoding_since_s=_ro(np.concatenate((np.full(D, -math.inf), end[live] / 1000)),
                                 np.float64),
            decoding_context_tokens=_ro(ctx, np.int64),
            incoming_instance=_ro(dec[coming], np.int64),
            incoming_join_s=_ro(end[coming] / 1000, np.float64),
            incoming_context_tokens=_ro(pr.decode_demand_us[coming], np.int64),
        )
        p = fn(view, **params)
        if not p.accepted:
            continue
        i, d = p.prefill, p.decode
        pulled = bool(p.transfer_tokens) and bool(can_pull[i])
        s = max(t, int(free[i]))
        e = s + pr.duration_ms(r, i, pulled)
        if e - t > pr.slo_ttft_ms:  # the policy's estimate was off: it cannot be served
            continue
        free[i] = e
        if not _decode_fits(pr, acc, dec, end, r, d, e):
            wasted += 1  # the decode instance refuses it at the hand-off
            continue
        acc[r], pre[r], pul[r], start[r], end[r], dec[r] = True, i, pulled, s, e, d
    return PlacementSchedule(accepted=acc, prefill=pre, pulled=pul, start_ms=start,
                             decode=dec), wasted


def _decode_fits(pr: PlacementProblem, acc: np.ndarray, dec: np.ndarray, end: np.ndarray,
                 r: int, d: int, join: int) -> bool:
    """Whether ``r`` decoding on ``d`` from ``join`` keeps ``d`` within its step budget and KV
    at every moment (the record's own rule, :func:`~schedlab.solvers.placement_window.
    decode_overloads`)."""
    others = np.flatnonzero(acc & (dec == d))
    return not decode_overloads(pr, d, np.append(others, r), np.append(end[others], join))
