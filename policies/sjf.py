"""Shortest-job-first (non-preemptive) and shortest-remaining-predicted-tokens (preemptive)
batching on predicted output lengths (the oracle's true lengths, or any predictor's output).

>>> from schedlab.policies.base import QueueView
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 10, 10],
...     output_tokens_pred=[30, 5, 20], kv_capacity_tokens=40)
>>> sjf(v).run.tolist(), srpt(v).run.tolist()
([1], [1, 2, 0])
"""

from __future__ import annotations

import numpy as np

from schedlab.policies.base import BatchDecision, QueueView
from schedlab.policies.batching import (
    check_preempt,
    decision_with_rejects,
    infeasible,
    longest_prefix,
    split_preemptions,
)
from schedlab.policies.fcfs import arrival_order, run_to_completion
from schedlab.policies.kv import request_costs

__all__ = ["remaining_pred", "sjf", "srpt"]


def remaining_pred(view: QueueView) -> np.ndarray:
    """Predicted output tokens still to generate (never below 0).

    >>> from schedlab.policies.base import QueueView
    >>> remaining_pred(QueueView.from_columns(now_s=0.0, input_tokens=[1, 1], kv_capacity_tokens=9,
    ...     output_tokens_pred=[5, 2], generated_tokens=[1, 4])).tolist()
    [4.0, 0.0]
    """
    return np.maximum(view.output_tokens_pred - view.generated_tokens, 0.0)


def sjf(view: QueueView, /) -> BatchDecision:
    """Non-preemptive shortest job first on predicted output length, at iteration level.

    Seed: the SJF/SRPT comparators of FastServe (arXiv 2305.05920 / NSDI'26, serving.md §1.2 and
    §1.3); lengths come from ``output_tokens_pred`` (an oracle or a predictor).

    Started requests run to completion (exactly as :func:`~schedlab.policies.fcfs.fcfs`,
    including the KV reservation of their predicted footprint); waiting requests are admitted in
    increasing predicted output length (ties by arrival, then request id) while they fit,
    stopping at the first that does not. No parameters.

    Invariants checked by the property tests: a well-formed decision within batch size, token
    budget and KV capacity; the admitted waiting requests are a prefix of the
    shortest-predicted-first order; purity and determinism.

    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 10], output_tokens_pred=[50, 5],
    ...     kv_capacity_tokens=1000)
    >>> sjf(v).run.tolist()
    [1, 0]
    """
    return run_to_completion(view, view.output_tokens_pred)


def srpt(view: QueueView, /, *, preempt: str = "swap") -> BatchDecision:
    """Preemptive shortest remaining predicted tokens first, at iteration level.

    Seed: FastServe's "artificial" SRPT oracle scheduler, a JCT comparator that knows each
    request's output length (arXiv 2305.05920 / NSDI'26 code, serving.md §1.2).

    Every decision orders all requests by predicted remaining output tokens (ties by arrival, then
    request id) and runs the longest prefix that fits the batch size, token budget and KV cache;
    device-resident requests behind the batch are preempted from the back of the order as
    needed to make room.

    Parameters
    ----------
    preempt : {"swap", "recompute"}, default "swap"
        Preemption by swapping KV to host memory (FastServe's engine) or by recomputation.

    Invariants checked by the property tests: a well-formed decision within batch size, token
    budget and KV capacity; the batch is a prefix of the shortest-remaining order; every
    preempted request has at least as much remaining work as every batched one; purity and
    determinism.

    >>> from schedlab.policies.base import QueueView, KV_GPU
    >>> v = QueueView.from_columns(now_s=1.0, input_tokens=[40, 40], output_tokens_pred=[90, 3],
    ...     prefilled_tokens=[40, 0], generated_tokens=[5, 0], kv_tokens=[45, 0],
    ...     kv_location=[KV_GPU, 0], running=[True, False], kv_capacity_tokens=80)
    >>> d = srpt(v)   # the new short job needs the long one's KV
    >>> d.run.tolist(), d.swap_out.tolist()
    ([1], [0])
    """
    check_preempt(preempt, "srpt")
    c = request_costs(view)
    reject, reasons = infeasible(view, c)
    order = arrival_order(view)
    order = order[np.argsort(remaining_pred(view)[order], kind="stable")]
    if reject.shape[0]:
        order = order[~np.isin(order, reject)]
    res = longest_prefix(view, order, costs=c, evictable=c.on_gpu)
    swap_out, recompute = split_preemptions(view, res.evict, preempt)
    return decision_with_rejects(
        {"run": res.batch, "swap_out": swap_out, "recompute": recompute}, reject, reasons
    )
