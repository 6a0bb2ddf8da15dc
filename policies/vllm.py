"""vLLM-style FCFS batching with preemption when the KV cache runs out.

>>> from schedlab.policies.base import QueueView
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[30, 30], kv_capacity_tokens=100)
>>> vllm(v).run.tolist()
[0, 1]
"""

from __future__ import annotations

import numpy as np

from schedlab.errors import check_fraction
from schedlab.jit import njit
from schedlab.policies.base import KV_GPU, KV_HOST, BatchDecision, QueueView
from schedlab.policies.batching import (
    FEASIBLE,
    check_preempt,
    decision_with_rejects,
    infeasible_kernel,
    longest_prefix_kernel,
    split_preemptions_kernel,
)
from schedlab.policies.fcfs import arrival_order_kernel, in_arrival_order_kernel
from schedlab.policies.kv import costs_kernel

__all__ = ["vllm"]


def vllm(
    view: QueueView, /, *, preempt: str = "recompute", watermark: float = 0.01
) -> BatchDecision:
    """vLLM's FCFS scheduler with preemption (Kwon et al., SOSP'23, "Efficient Memory Management
    for Large Language Model Serving with PagedAttention", §4.5 scheduling and preemption; the
    vLLM baseline of FastServe, serving.md §1.3).

    Queues in priority order: requests whose KV is on the device (vLLM's *running* queue), then
    swapped-out requests, then waiting requests (never started, or preempted by recomputation),
    each in arrival order. The batch is the longest prefix of that order that fits the batch
    size, the token budget and the KV cache. When the running requests' KV growth does not fit,
    the latest-arrived device-resident requests are preempted, all or nothing. The decision
    declares what later events can change it (``wake_on_arrival``, ``hold_batch``): a newcomer
    cannot join when the prefix stopped early, and a batch stopped by KV or batch size runs
    again unchanged until a completion; when KV stopped it, until the device has the KV the
    stopping request needs free (``hold_free_tokens``).

    Parameters
    ----------
    preempt : {"recompute", "swap"}, default "recompute"
        How to preempt: drop the KV and prefill it again later (vLLM's default for single
        sequences), or swap it to host memory (falls back to recompute when host space is out).
    watermark : float in [0, 1], default 0.01
        Fraction of the KV capacity that must stay free after admitting a *new* request
        (vLLM's ``watermark`` block-manager parameter), to avoid immediate preemption.

    Invariants checked by the property tests: a well-formed decision within batch size, token
    budget and KV capacity; preempted requests are the latest-arrived device-resident ones and
    arrived after every running one; no request is admitted from the waiting queue in a step
    that preempts; purity and determinism.

    >>> from schedlab.policies.base import QueueView, KV_GPU
    >>> v = QueueView.from_columns(now_s=1.0, input_tokens=[40, 40, 10], arrival_s=[0.0, 0.1, 0.2],
    ...     prefilled_tokens=[40, 40, 0], generated_tokens=[10, 10, 0], kv_tokens=[50, 50, 0],
    ...     kv_location=[KV_GPU, KV_GPU, 0], running=[True, True, False], kv_capacity_tokens=100)
    >>> d = vllm(v)   # KV full: request 0 grows, request 1 (the later one) is preempted
    >>> d.run.tolist(), d.recompute.tolist()
    ([0], [1])
    """
    check_preempt(preempt, "vllm")
    check_fraction(watermark, "watermark", "vllm", open_low=False)
    v = view
    run, swap_out, recompute, n_reject, wake, hold, free = vllm_kernel(
        v.arrival_s, v.request_id, v.input_tokens, v.prefilled_tokens, v.kv_tokens,
        v.kv_location, v.kv_capacity_tokens, v.kv_free_tokens, v.max_batch_size,
        v.max_batch_tokens, v.chunk_tokens, v.host_kv_free_tokens,
        int(watermark * v.kv_capacity_tokens), preempt == "swap",
    )
    # bool(): exact Python bools under NUMBA_DISABLE_JIT too
    decision = {"run": run, "swap_out": swap_out, "recompute": recompute,
                "wake_on_arrival": bool(wake), "hold_batch": bool(hold)}
    if free > 0:
        decision["hold_free_tokens"] = int(free)
    return decision_with_rejects(view, decision, n_reject)


@njit
def vllm_kernel(
    arrival_s: np.ndarray,
    request_id: np.ndarray,
    input_tokens: np.ndarray,
    prefilled_tokens: np.ndarray,
    kv_tokens: np.ndarray,
    kv_location: np.ndarray,
    kv_capacity_tokens: int,
    kv_free_tokens: int,
    max_batch_size: int,
    max_batch_tokens: int,
    chunk_tokens: int,
    host_kv_free_tokens: int,
    watermark_tokens: int,
    swap: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, bool, bool, int]:
    """Compiled :func:`vllm` on the view's columns: ``(run, swap_out, recompute, number
    rejected, wake_on_arrival, hold_batch, hold_free_tokens)``."""
    n = input_tokens.shape[0]
    step, growth, demand, _, gkv = costs_kernel(
        input_tokens, prefilled_tokens, kv_tokens, kv_location, chunk_tokens
    )
    code = infeasible_kernel(kv_tokens, growth, step, kv_capacity_tokens, max_batch_tokens)
    by_arrival = np.arange(n)
    if not in_arrival_order_kernel(arrival_s, request_id):
        by_arrival = arrival_order_kernel(arrival_s, request_id, by_arrival, False)
    # device-resident (vLLM's running queue), then swapped out, then waiting; rejects left out
    group = np.empty(n, dtype=np.int64)
    for p in range(n):
        loc = kv_location[p]
        group[p] = 0 if loc == KV_GPU else 1 if loc == KV_HOST else 2
    order = np.empty(n, dtype=np.int64)
    m = 0
    n_old = 0  # requests in the first two queues
    for g in range(3):
        for p in by_arrival:
            if group[p] == g and code[p] == FEASIBLE:
                order[m] = p
                m += 1
        if g == 1:
            n_old = m
    order = order[:m]
    reserve = np.zeros(m, dtype=np.int64)
    reserve[n_old:] = watermark_tokens  # only a new request must leave the watermark free
    k, evict, _ = longest_prefix_kernel(
        order, step, demand, gkv, kv_free_tokens, max_batch_size, max_batch_tokens, reserve
    )
    swap_out, recompute = split_preemptions_kernel(evict, kv_tokens, host_kv_free_tokens, swap)
    wake, hold = _later_events(order, k, step, max_batch_size, max_batch_tokens, chunk_tokens)
    if evict.shape[0] or m < n:
        wake, hold = True, False
    free = 0
    if hold and k < m and k < max_batch_size and kv_location[order[k]] != KV_GPU:
        # the request that stopped the prefix (swapped out or waiting: no device-resident
        # request behind it to evict) fits only with its demand plus the watermark free
        free = demand[order[k]] + reserve[k]
    return order[:k], swap_out, recompute, n - m, wake, hold, free


@njit
def _later_events(
    order: np.ndarray, k: int, step: np.ndarray, max_batch_size: int, max_batch_tokens: int,
    chunk_tokens: int,
) -> tuple[bool, bool]:
    """``(wake_on_arrival, hold_batch)`` for a batch that is the first ``k`` of ``order``.

    A newcomer joins the back of the order (waiting, latest arrival), so when the prefix stopped
    before the end of the order it cannot join: no wake-up. The batch holds (runs again without a
    decision) when nothing was left out, when the batch size is reached, or when the request that
    stopped it did not fit the KV cache: running only grows the batch's KV, so it stays out. A
    request stopped by the token budget may fit once the batch's prefills are done.
    """
    if k == order.shape[0]:
        return True, True
    # a newcomer the simulator admits is feasible for this policy when the chunk fits the budget
    wake = chunk_tokens > max_batch_tokens
    if k == 0:
        return wake, False
    if k >= max_batch_size:
        return wake, True
    tokens = 0
    for i in range(k + 1):
        tokens += step[order[i]]
    return wake, tokens <= max_batch_tokens
