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

from schedlab.jit import njit
from schedlab.policies.base import BatchDecision, QueueView
from schedlab.policies.batching import (
    FEASIBLE,
    check_preempt,
    decision_with_rejects,
    infeasible_kernel,
    longest_prefix_kernel,
    split_preemptions_kernel,
    stable_argsort,
)
from schedlab.policies.fcfs import arrival_order_kernel, in_arrival_order_kernel, run_to_completion
from schedlab.policies.kv import costs_kernel

__all__ = ["remaining_pred", "sjf", "srpt"]


def remaining_pred(view: QueueView) -> np.ndarray:
    """Predicted output tokens still to generate (never below 0).

    >>> from schedlab.policies.base import QueueView
    >>> remaining_pred(QueueView.from_columns(now_s=0.0, input_tokens=[1, 1], kv_capacity_tokens=9,
    ...     output_tokens_pred=[5, 2], generated_tokens=[1, 4])).tolist()
    [4.0, 0.0]
    """
    return remaining_pred_kernel(view.output_tokens_pred, view.generated_tokens)


@njit
def remaining_pred_kernel(
    output_tokens_pred: np.ndarray, generated_tokens: np.ndarray
) -> np.ndarray:
    """Compiled rule of :func:`remaining_pred`."""
    n = output_tokens_pred.shape[0]
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        out[i] = max(output_tokens_pred[i] - generated_tokens[i], 0.0)
    return out


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
    v = view
    run, swap_out, recompute, n_reject = srpt_kernel(
        v.arrival_s, v.request_id, v.input_tokens, v.output_tokens_pred, v.prefilled_tokens,
        v.generated_tokens, v.kv_tokens, v.kv_location, v.kv_capacity_tokens, v.kv_free_tokens,
        v.max_batch_size, v.max_batch_tokens, v.chunk_tokens, v.host_kv_free_tokens,
        preempt == "swap",
    )
    decision = {"run": run, "swap_out": swap_out, "recompute": recompute}
    return decision_with_rejects(view, decision, n_reject)


@njit
def srpt_kernel(
    arrival_s: np.ndarray,
    request_id: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens_pred: np.ndarray,
    prefilled_tokens: np.ndarray,
    generated_tokens: np.ndarray,
    kv_tokens: np.ndarray,
    kv_location: np.ndarray,
    kv_capacity_tokens: int,
    kv_free_tokens: int,
    max_batch_size: int,
    max_batch_tokens: int,
    chunk_tokens: int,
    host_kv_free_tokens: int,
    swap: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Compiled :func:`srpt` on the view's columns: ``(run, swap_out, recompute, number
    rejected)``."""
    n = input_tokens.shape[0]
    step, growth, demand, _, gkv = costs_kernel(
        input_tokens, prefilled_tokens, kv_tokens, kv_location, chunk_tokens
    )
    code = infeasible_kernel(kv_tokens, growth, step, kv_capacity_tokens, max_batch_tokens)
    by_arrival = np.arange(n)
    if not in_arrival_order_kernel(arrival_s, request_id):
        by_arrival = arrival_order_kernel(arrival_s, request_id, by_arrival, False)
    remaining = remaining_pred_kernel(output_tokens_pred, generated_tokens)
    by_remaining = by_arrival[stable_argsort(remaining[by_arrival])]
    order = by_remaining[code[by_remaining] == FEASIBLE]
    k, evict, _ = longest_prefix_kernel(
        order, step, demand, gkv, kv_free_tokens, max_batch_size, max_batch_tokens,
        np.zeros(order.shape[0], dtype=np.int64),
    )
    swap_out, recompute = split_preemptions_kernel(evict, kv_tokens, host_kv_free_tokens, swap)
    return order[:k], swap_out, recompute, n - order.shape[0]
