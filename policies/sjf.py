"""Shortest-job-first (non-preemptive) and shortest-remaining-predicted-tokens (preemptive)
batching on predicted output lengths (the oracle's true lengths, or any predictor's output).

>>> from schedlab.contract import QueueView, form_batch
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 10, 10],
...     output_tokens_pred=[30, 5, 20], kv_capacity_tokens=40)
>>> form_batch(v, sjf(v)).run.tolist(), form_batch(v, srpt(v)).run.tolist()
([1], [1, 2, 0])
"""

from __future__ import annotations

import numpy as np

from schedlab.contract import Plan, QueueView
from schedlab.policies.fcfs import run_to_completion
from schedlab.policies.ordering import arrival_order, check_preempt

__all__ = ["remaining_pred", "sjf", "srpt"]


def remaining_pred(view: QueueView) -> np.ndarray:
    """Predicted output tokens still to generate (never below 0).

    >>> from schedlab.contract import QueueView
    >>> remaining_pred(QueueView.from_columns(now_s=0.0, input_tokens=[1, 1], kv_capacity_tokens=9,
    ...     output_tokens_pred=[5, 2], generated_tokens=[1, 4])).tolist()
    [4.0, 0.0]
    """
    return np.maximum(view.output_tokens_pred - view.generated_tokens, 0.0)


def sjf(view: QueueView, /) -> Plan:
    """Non-preemptive shortest job first on predicted output length, at iteration level.

    Seed: the SJF/SRPT comparators of FastServe (arXiv 2305.05920 / NSDI'26, serving.md §1.2 and
    §1.3); lengths come from ``output_tokens_pred`` (an oracle or a predictor).

    Started requests run to completion (exactly as :func:`~schedlab.policies.fcfs.fcfs`,
    including the KV reservation of their predicted footprint); waiting requests are admitted in
    increasing predicted output length (ties by arrival, then request id) while they fit,
    stopping at the first that does not. No parameters. Not static: a newcomer ranks by its
    length, so the engine asks again at every decision point.

    Invariants checked by the property tests: a valid batch within batch size, token budget and
    KV capacity; the admitted waiting requests are a prefix of the shortest-predicted-first
    order; purity and determinism.

    >>> from schedlab.contract import QueueView, form_batch
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 10], output_tokens_pred=[50, 5],
    ...     kv_capacity_tokens=1000)
    >>> form_batch(v, sjf(v)).run.tolist()
    [1, 0]
    """
    return run_to_completion(view, view.output_tokens_pred)


def srpt(view: QueueView, /, *, preempt: str = "swap") -> Plan:
    """Preemptive shortest remaining predicted tokens first, at iteration level.

    Seed: FastServe's "artificial" SRPT oracle scheduler, a JCT comparator that knows each
    request's output length (arXiv 2305.05920 / NSDI'26 code, serving.md §1.2).

    Every decision orders all requests by predicted remaining output tokens (ties by arrival, then
    request id); the batch is the longest prefix that fits, and device-resident requests behind it
    are preempted from the back of the order as needed to make room (``evictable``).

    Parameters
    ----------
    preempt : {"swap", "recompute"}, default "swap"
        Preemption by swapping KV to host memory (FastServe's engine) or by recomputation.

    Invariants checked by the property tests: a valid batch within batch size, token budget and
    KV capacity; the batch is a prefix of the shortest-remaining order; every preempted request
    has at least as much remaining work as every batched one; purity and determinism.

    >>> from schedlab.contract import QueueView, KV_GPU, form_batch
    >>> v = QueueView.from_columns(now_s=1.0, input_tokens=[40, 40], output_tokens_pred=[90, 3],
    ...     prefilled_tokens=[40, 0], generated_tokens=[5, 0], kv_tokens=[45, 0],
    ...     kv_location=[KV_GPU, 0], running=[True, False], kv_capacity_tokens=80)
    >>> d = form_batch(v, srpt(v))   # the new short job needs the long one's KV
    >>> d.run.tolist(), d.swap_out.tolist()
    ([1], [0])
    """
    check_preempt(preempt, "srpt")
    by_arrival = arrival_order(view)
    order = by_arrival[np.argsort(remaining_pred(view)[by_arrival], kind="stable")]
    return Plan(order=order, evictable=True, preempt=preempt)
