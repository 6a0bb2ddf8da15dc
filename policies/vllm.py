"""vLLM-style FCFS batching with preemption when the KV cache runs out.

>>> from schedlab.contract import QueueView, form_batch
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[30, 30], kv_capacity_tokens=100)
>>> form_batch(v, vllm(v)).run.tolist()
[0, 1]
"""

from __future__ import annotations

import numpy as np

from schedlab.contract import KV_GPU, KV_HOST, Plan, QueueView
from schedlab.errors import check_fraction
from schedlab.policies.ordering import arrival_order, check_preempt, is_arrival_order

__all__ = ["vllm"]


def vllm(view: QueueView, /, *, preempt: str = "recompute", watermark: float = 0.01) -> Plan:
    """vLLM's FCFS scheduler with preemption (Kwon et al., SOSP'23, "Efficient Memory Management
    for Large Language Model Serving with PagedAttention", §4.5 scheduling and preemption; the
    vLLM baseline of FastServe, serving.md §1.3).

    Three queues in priority order: requests whose KV is on the device (vLLM's *running*
    queue), then swapped-out requests, then waiting requests (never started, or preempted by
    recomputation), each in arrival order. The batch is the longest prefix of that order that
    fits the batch size, the token budget and the KV cache; a request admitted from the waiting
    queue must leave ``watermark`` of the KV free. When the running requests' growth does not
    fit, the latest-arrived device-resident requests are preempted (``evictable``, from the back
    of the order), all or nothing. Without chunked prefill (``view.chunk_tokens == 0``) an
    iteration that admits new requests runs only their prefills (``prefills_alone``: vLLM's
    default scheduler does not schedule decodes while prefills are scheduled, so the running
    requests wait one iteration per admission); with chunked prefill, decodes and prefill chunks
    share iterations. The plan is static whenever the order is arrival order (a newcomer queues
    last; the engine keeps the plan until a preemption) and no swapped-out request waits beside
    a waiting one.

    Parameters
    ----------
    preempt : {"recompute", "swap"}, default "recompute"
        How to preempt: drop the KV and prefill it again later (vLLM's default for single
        sequences), or swap it to host memory (falls back to recompute when host space is out).
    watermark : float in [0, 1], default 0.01
        Fraction of the KV capacity that must stay free after admitting a *new* request
        (vLLM's ``watermark`` block-manager parameter), to avoid immediate preemption.

    Not modelled: vLLM's token budget counts only the prefill tokens of a prefill iteration
    (here the batch's decodes, one token each, count while it is formed), and its admission
    checks the prompt's blocks against the free blocks (here the batch's next-token growth
    counts too).

    Invariants checked by the property tests: a valid batch within batch size, token budget and
    KV capacity; preempted requests are the latest-arrived device-resident ones and arrived
    after every running one; no request is admitted from the waiting queue in a step that
    preempts; without chunked prefill, no decode runs beside a prefill; purity and determinism.

    >>> from schedlab.contract import QueueView, KV_GPU, form_batch
    >>> v = QueueView.from_columns(now_s=1.0, input_tokens=[40, 40, 10], arrival_s=[0.0, 0.1, 0.2],
    ...     prefilled_tokens=[40, 40, 0], generated_tokens=[10, 10, 0], kv_tokens=[50, 50, 0],
    ...     kv_location=[KV_GPU, KV_GPU, 0], running=[True, True, False], kv_capacity_tokens=100)
    >>> d = form_batch(v, vllm(v))   # KV full: request 0 grows, request 1 (the later) is preempted
    >>> d.run.tolist(), d.recompute.tolist()
    ([0], [1])
    """
    check_preempt(preempt, "vllm")
    check_fraction(watermark, "watermark", "vllm", open_low=False)
    loc = view.kv_location
    queue = np.where(loc == KV_GPU, 0, np.where(loc == KV_HOST, 1, 2))
    by_arrival = arrival_order(view)
    order = by_arrival[np.argsort(queue[by_arrival], kind="stable")]
    return Plan(
        order=order,
        evictable=True,
        watermark_tokens=int(watermark * view.kv_capacity_tokens),
        preempt=preempt,
        prefills_alone=view.chunk_tokens == 0,
        # a swapped-out request behind which a waiting one is admitted (its decode sits out a
        # prefill-only iteration, or its swap-in does not fit) falls behind it once that one is
        # on the device: the order then changes, so the plan cannot be kept
        static=is_arrival_order(view, order)
        and not (bool((queue == 1).any()) and bool((queue == 2).any())),
    )
