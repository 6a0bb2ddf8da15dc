"""Orca-style FCFS run-to-completion at iteration level, and the run-to-completion engine it
shares with non-preemptive SJF.

>>> from schedlab.policies.base import QueueView
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[30, 30, 30], arrival_s=[0.2, 0.1, 0.3],
...     output_tokens_pred=[10, 10, 10], kv_capacity_tokens=90)
>>> fcfs(v).run.tolist()
[1, 0]
"""

from __future__ import annotations

import numpy as np
from schedlab.policies.base import KV_GPU, KV_NONE, BatchDecision, QueueView
from schedlab.policies.batching import decision_with_rejects, infeasible, longest_prefix
from schedlab.policies.kv import footprint_tokens, kv_demand, step_tokens

__all__ = ["arrival_order", "fcfs", "run_to_completion", "started"]


def started(view: QueueView) -> np.ndarray:
    """Requests that have begun service (some prompt or output processed, KV held, or running).

    >>> from schedlab.policies.base import QueueView
    >>> started(QueueView.from_columns(now_s=0.0, input_tokens=[4, 4], kv_capacity_tokens=9,
    ...     prefilled_tokens=[0, 2])).tolist()
    [False, True]
    """
    return (
        (view.prefilled_tokens > 0)
        | (view.generated_tokens > 0)
        | (view.kv_location != KV_NONE)
        | view.running
    )


def arrival_order(view: QueueView, positions: np.ndarray | None = None) -> np.ndarray:
    """Positions sorted by arrival time, ties by request id (all positions when none given).

    >>> from schedlab.policies.base import QueueView
    >>> arrival_order(QueueView.from_columns(now_s=0.0, input_tokens=[1, 1, 1],
    ...     arrival_s=[2.0, 1.0, 1.0], request_id=[7, 9, 8], kv_capacity_tokens=9)).tolist()
    [2, 1, 0]
    """
    if positions is None:
        return np.lexsort((view.request_id, view.arrival_s))
    return positions[np.lexsort((view.request_id[positions], view.arrival_s[positions]))]


def run_to_completion(view: QueueView, waiting_order: np.ndarray) -> BatchDecision:
    """Non-preemptive iteration-level batching: every admitted (started) request runs each
    iteration in arrival order; waiting requests are admitted in ``waiting_order`` while the batch
    size, the token budget and the KV *reservation* allow, stopping at the first that does not fit.

    Admission reserves each request's predicted final footprint (prompt plus predicted output,
    :func:`~schedlab.policies.kv.footprint_tokens`), as Orca reserves KV for a request's maximum
    length, so admitted requests never run out of KV when the predictions hold. When they do not
    (a request outgrows its prediction), the latest-admitted requests are preempted by
    recomputation so the decision stays within capacity. ``waiting_order`` must list the
    positions that have not started and are not infeasible.
    """
    reject, reasons = infeasible(view)
    is_started = started(view)
    ok = np.ones(view.n, dtype=bool)
    ok[reject] = False
    admitted = arrival_order(view, np.flatnonzero(is_started & ok))
    base = longest_prefix(view, admitted, evictable=np.ones(view.n, dtype=bool))
    run = base.batch
    if run.shape[0] == admitted.shape[0] and base.evict.shape[0] == 0 and waiting_order.shape[0]:
        on_gpu = view.kv_location[admitted] == KV_GPU
        held = np.where(on_gpu, view.kv_tokens[admitted], 0)
        reserved = int(
            np.maximum(footprint_tokens(view)[admitted] - held, kv_demand(view)[admitted]).sum()
        )
        room = view.kv_free_tokens - reserved
        tok_left = view.max_batch_tokens - int(step_tokens(view)[run].sum())
        slots = view.max_batch_size - admitted.shape[0]
        fit = (np.cumsum(footprint_tokens(view)[waiting_order]) <= room) & (
            np.cumsum(step_tokens(view)[waiting_order]) <= tok_left
        )
        fit[max(slots, 0) :] = False
        k = waiting_order.shape[0] if fit.all() else int(np.argmin(fit))
        if k == 0 and admitted.shape[0] == 0 and slots > 0:
            # an idle instance takes the head even when its predicted footprint exceeds the
            # free KV (only its next step must fit), so a long prediction cannot stall the queue
            head = waiting_order[:1]
            k = int(
                kv_demand(view)[head][0] <= view.kv_free_tokens
                and step_tokens(view)[head][0] <= tok_left
            )
        run = np.concatenate([run, waiting_order[:k]])
    return decision_with_rejects({"run": run, "recompute": base.evict}, reject, reasons)


def fcfs(view: QueueView, /) -> BatchDecision:
    """Orca-style FCFS run-to-completion with iteration-level (continuous) batching.

    Seed paper: Orca (Yu et al., OSDI'22), iteration-level scheduling with selective batching;
    the FCFS baseline of FastServe (arXiv 2305.05920 / NSDI'26, serving.md §1.3).

    Requests are admitted in arrival order (ties by request id) and, once admitted, run every
    iteration until they finish; a new request joins when the batch size (``max_batch_size``),
    the token budget (``max_batch_tokens``) and the KV reservation of its predicted footprint
    (prompt + ``output_tokens_pred``) allow. Strict FCFS: a waiting request that does not fit
    blocks the ones behind it. No parameters: limits come from the view. Requests that can never
    fit the instance are rejected with a reason.

    Invariants checked by the property tests: a well-formed decision within batch size, token
    budget and KV capacity (:func:`schedlab.testing.check_policy`); admitted requests are never
    preempted while predictions hold; the batch is admitted requests plus an arrival-order prefix
    of the waiting ones; purity and determinism.

    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=1.0, input_tokens=[50, 10, 10], arrival_s=[0.0, 0.5, 0.6],
    ...     output_tokens_pred=[20, 5, 5], prefilled_tokens=[50, 0, 0], generated_tokens=[3, 0, 0],
    ...     kv_tokens=[53, 0, 0], kv_location=[1, 0, 0], running=[True, False, False],
    ...     kv_capacity_tokens=90)
    >>> fcfs(v).run.tolist()   # 17 more reserved for request 0 leaves room for one 15-token job
    [0, 1]
    """
    waiting = arrival_order(view, np.flatnonzero(~started(view)))
    waiting = waiting[~np.isin(waiting, infeasible(view)[0])]
    return run_to_completion(view, waiting)
