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

from schedlab.policies.base import KV_NONE, BatchDecision, QueueView
from schedlab.policies.batching import decision_with_rejects, infeasible, longest_prefix
from schedlab.policies.kv import request_costs

__all__ = ["arrival_order", "fcfs", "in_arrival_order", "run_to_completion", "started"]


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


def in_arrival_order(view: QueueView) -> bool:
    """Whether the view lists its requests by arrival time, ties by request id (the simulator
    does), so that position order is arrival order and sorting can be skipped.

    >>> from schedlab.policies.base import QueueView
    >>> in_arrival_order(QueueView.from_columns(now_s=0.0, input_tokens=[1, 1],
    ...     arrival_s=[1.0, 1.0], request_id=[4, 3], kv_capacity_tokens=9))
    False
    """
    if view.n < 2:
        return True
    a = view.arrival_s
    later = a[1:] > a[:-1]
    if later.all():
        return True
    r = view.request_id
    return bool((later | ((a[1:] == a[:-1]) & (r[1:] > r[:-1]))).all())


def arrival_order(view: QueueView, positions: np.ndarray | None = None) -> np.ndarray:
    """Positions sorted by arrival time, ties by request id (all positions when none given).

    >>> from schedlab.policies.base import QueueView
    >>> arrival_order(QueueView.from_columns(now_s=0.0, input_tokens=[1, 1, 1],
    ...     arrival_s=[2.0, 1.0, 1.0], request_id=[7, 9, 8], kv_capacity_tokens=9)).tolist()
    [2, 1, 0]
    """
    return _arrival_order(view, positions, in_arrival_order(view))


def _arrival_order(view: QueueView, positions: np.ndarray | None, ordered: bool) -> np.ndarray:
    """:func:`arrival_order` with :func:`in_arrival_order` already known (``ordered``)."""
    if ordered:
        return np.arange(view.n) if positions is None else np.sort(positions)
    if positions is None:
        return np.lexsort((view.request_id, view.arrival_s))
    return positions[np.lexsort((view.request_id[positions], view.arrival_s[positions]))]


def run_to_completion(
    view: QueueView,
    waiting_key: np.ndarray | None,
) -> BatchDecision:
    """Non-preemptive iteration-level batching: every admitted (started) request runs each
    iteration in arrival order; waiting requests are admitted in increasing ``waiting_key``
    (ties by arrival, then request id; arrival order when None) while the batch size, the token
    budget and the KV *reservation* allow, stopping at the first that does not fit.

    Admission reserves each request's predicted final footprint (prompt plus predicted output,
    :func:`~schedlab.policies.kv.footprint_tokens`), as Orca reserves KV for a request's maximum
    length, so admitted requests never run out of KV when the predictions hold. When they do not
    (a request outgrows its prediction), the latest-arrived admitted requests are preempted by
    recomputation so the decision stays within capacity. An idle instance admits the head of the
    queue whenever its next step fits, even if its predicted footprint does not, so a long
    prediction cannot stall the queue. Infeasible requests are rejected.

    The decision declares what later events can change it: with ``waiting_key`` None (FCFS) a
    newcomer queues behind a blocked waiting request, so it does not wake the instance
    (``wake_on_arrival=False``); and when nothing is preempted and the waiting head is blocked by
    KV or batch size (or nothing waits), the batch runs again unchanged until a completion
    (``hold_batch=True``): admitted requests only grow their KV, which shrinks the room exactly
    by what their reservation shrinks.

    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 10], output_tokens_pred=[50, 5],
    ...     kv_capacity_tokens=70)
    >>> by_arrival = run_to_completion(v, None).run.tolist()
    >>> by_output = run_to_completion(v, v.output_tokens_pred).run.tolist()
    >>> by_arrival, by_output
    ([0], [1])
    """
    c = request_costs(view)
    reject, reasons = infeasible(view, c)
    is_started = started(view)
    if reject.shape[0]:
        is_started[reject] = False
    ordered = in_arrival_order(view)
    admitted = np.flatnonzero(is_started)  # ascending: already in arrival order when ordered
    if not ordered:
        admitted = _arrival_order(view, admitted, False)
    base = longest_prefix(view, admitted, costs=c, evictable=c.on_gpu)
    run = base.batch
    waiting = np.flatnonzero(~is_started)
    if reject.shape[0]:
        waiting = waiting[~np.isin(waiting, reject)]
    slots = view.max_batch_size - admitted.shape[0]
    # what later events can change (BatchDecision.wake_on_arrival, hold_batch): see the docstring
    wake, hold = True, False
    # a newcomer the simulator admits is feasible here when a prefill chunk fits the budget
    newcomer_ok = view.chunk_tokens <= view.max_batch_tokens
    if run.shape[0] == admitted.shape[0] and base.evict.shape[0] == 0 and not reject.shape[0]:
        hold = True
        if waiting.shape[0] and slots <= 0:
            wake = waiting_key is not None or not newcomer_ok
    if (
        run.shape[0] == admitted.shape[0]
        and base.evict.shape[0] == 0
        and waiting.shape[0]
        and slots > 0
    ):
        if not ordered:
            waiting = _arrival_order(view, waiting, False)
        if waiting_key is not None:
            waiting = waiting[np.argsort(waiting_key[waiting], kind="stable")]
        all_fit_slots = waiting.shape[0] >= slots
        waiting = waiting[:slots]  # at most this many can join
        foot = view.input_tokens + np.ceil(view.output_tokens_pred).astype(np.int64)
        foot = np.maximum(foot, view.kv_tokens + c.growth)
        reserved = int(np.maximum(foot[admitted] - c.gpu_kv[admitted], c.demand[admitted]).sum())
        room = view.kv_free_tokens - reserved
        tok_left = view.max_batch_tokens - int(c.step[run].sum())
        kv_fit = foot[waiting].cumsum() <= room
        fit = kv_fit & (c.step[waiting].cumsum() <= tok_left)
        k = waiting.shape[0] if fit.all() else int(fit.argmin())
        if k < waiting.shape[0] or all_fit_slots:
            # the newcomer queues behind a blocked request (or finds no slot): strict FCFS
            wake = waiting_key is not None or not newcomer_ok
            # the blocked head stays blocked while the batch only grows its KV (its room
            # shrinks by what the batch adds); one blocked by the token budget may fit once
            # the batch's prefills are done, so then the policy is asked again
            hold = hold and (k == waiting.shape[0] or not bool(kv_fit[k]))
        if k == 0 and admitted.shape[0] == 0:
            head = waiting[0]
            k = int(c.demand[head] <= view.kv_free_tokens and c.step[head] <= tok_left)
            wake, hold = True, False
        if k:
            run = np.concatenate([run, waiting[:k]])
    return decision_with_rejects(
        {"run": run, "recompute": base.evict, "wake_on_arrival": wake, "hold_batch": hold},
        reject,
        reasons,
    )


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
    return run_to_completion(view, None)
