"""vLLM-style FCFS batching with preemption when the KV cache runs out.

>>> from schedlab.policies.base import QueueView
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[30, 30], kv_capacity_tokens=100)
>>> vllm(v).run.tolist()
[0, 1]
"""

from __future__ import annotations

import numpy as np

from schedlab.errors import check_fraction
from schedlab.policies.base import KV_HOST, BatchDecision, QueueView
from schedlab.policies.batching import (
    check_preempt,
    decision_with_rejects,
    infeasible,
    longest_prefix,
    split_preemptions,
)
from schedlab.policies.fcfs import arrival_order
from schedlab.policies.kv import request_costs

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
    again unchanged until a completion.

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
    c = request_costs(view)
    reject, reasons = infeasible(view, c)
    loc = view.kv_location
    group = np.where(c.on_gpu, 0, np.where(loc == KV_HOST, 1, 2))
    order = arrival_order(view)
    order = order[np.argsort(group[order], kind="stable")]
    if reject.shape[0]:
        order = order[~np.isin(order, reject)]
    n_old = int(np.count_nonzero(group[order] < 2))
    reserve = np.zeros(order.shape[0], dtype=np.int64)
    reserve[n_old:] = int(watermark * view.kv_capacity_tokens)
    res = longest_prefix(view, order, costs=c, evictable=c.on_gpu, reserve_tokens=reserve)
    swap_out, recompute = split_preemptions(view, res.evict, preempt)
    wake, hold = _later_events(view, order, res.batch.shape[0], c.step)
    if res.evict.shape[0] or reject.shape[0]:
        wake, hold = True, False
    return decision_with_rejects(
        {"run": res.batch, "swap_out": swap_out, "recompute": recompute,
         "wake_on_arrival": wake, "hold_batch": hold},
        reject,
        reasons,
    )


def _later_events(
    view: QueueView, order: np.ndarray, k: int, step: np.ndarray
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
    wake = view.chunk_tokens > view.max_batch_tokens
    if k == 0:
        return wake, False
    if k >= view.max_batch_size:
        return wake, True
    tokens = int(np.add.reduce(step[order[: k + 1]]))
    return wake, tokens <= view.max_batch_tokens
