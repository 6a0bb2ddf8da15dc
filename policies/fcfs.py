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

from schedlab.jit import njit
from schedlab.policies.base import KV_NONE, BatchDecision, QueueView
from schedlab.policies.batching import (
    FEASIBLE,
    decision_with_rejects,
    infeasible_kernel,
    longest_prefix_kernel,
    stable_argsort,
)
from schedlab.policies.kv import costs_kernel, footprint_kernel

__all__ = ["arrival_order", "fcfs", "in_arrival_order", "run_to_completion", "started"]


def started(view: QueueView) -> np.ndarray:
    """Requests that have begun service (some prompt or output processed, KV held, or running).

    >>> from schedlab.policies.base import QueueView
    >>> started(QueueView.from_columns(now_s=0.0, input_tokens=[4, 4], kv_capacity_tokens=9,
    ...     prefilled_tokens=[0, 2])).tolist()
    [False, True]
    """
    return started_kernel(
        view.prefilled_tokens, view.generated_tokens, view.kv_location, view.running
    )


@njit
def started_kernel(
    prefilled_tokens: np.ndarray, generated_tokens: np.ndarray, kv_location: np.ndarray,
    running: np.ndarray,
) -> np.ndarray:
    """Compiled rule of :func:`started`."""
    n = prefilled_tokens.shape[0]
    out = np.empty(n, dtype=np.bool_)
    for i in range(n):
        out[i] = (
            prefilled_tokens[i] > 0
            or generated_tokens[i] > 0
            or kv_location[i] != KV_NONE
            or running[i]
        )
    return out


def in_arrival_order(view: QueueView) -> bool:
    """Whether the view lists its requests by arrival time, ties by request id (the simulator
    does), so that position order is arrival order and sorting can be skipped.

    >>> from schedlab.policies.base import QueueView
    >>> in_arrival_order(QueueView.from_columns(now_s=0.0, input_tokens=[1, 1],
    ...     arrival_s=[1.0, 1.0], request_id=[4, 3], kv_capacity_tokens=9))
    False
    """
    return in_arrival_order_kernel(view.arrival_s, view.request_id)


@njit
def in_arrival_order_kernel(arrival_s: np.ndarray, request_id: np.ndarray) -> bool:
    """Compiled rule of :func:`in_arrival_order`."""
    for i in range(1, arrival_s.shape[0]):
        a, b = arrival_s[i - 1], arrival_s[i]
        if not (b > a or (b == a and request_id[i] > request_id[i - 1])):
            return False
    return True


def arrival_order(view: QueueView, positions: np.ndarray | None = None) -> np.ndarray:
    """Positions sorted by arrival time, ties by request id (all positions when none given).

    >>> from schedlab.policies.base import QueueView
    >>> arrival_order(QueueView.from_columns(now_s=0.0, input_tokens=[1, 1, 1],
    ...     arrival_s=[2.0, 1.0, 1.0], request_id=[7, 9, 8], kv_capacity_tokens=9)).tolist()
    [2, 1, 0]
    """
    pos = np.arange(view.n) if positions is None else np.asarray(positions, dtype=np.int64)
    return arrival_order_kernel(view.arrival_s, view.request_id, pos,
                                in_arrival_order_kernel(view.arrival_s, view.request_id))


@njit
def arrival_order_kernel(
    arrival_s: np.ndarray, request_id: np.ndarray, positions: np.ndarray, ordered: bool
) -> np.ndarray:
    """Compiled rule of :func:`arrival_order` for ``positions``, with
    :func:`in_arrival_order_kernel` already known (``ordered``: sorting positions suffices)."""
    if ordered:
        return positions[stable_argsort(positions)]
    # two stable sorts: by request id, then by arrival time
    pos = positions[stable_argsort(request_id[positions])]
    return pos[stable_argsort(arrival_s[pos])]


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
    by what their reservation shrinks. When the head is blocked by KV, completions do not end
    that hold until they could have made room for it (``hold_room_tokens``: the room is the KV
    capacity minus the admitted requests' footprints, which never shrink, so a completion adds
    at most the footprint it had at this decision, ``hold_release_tokens``).

    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 10], output_tokens_pred=[50, 5],
    ...     kv_capacity_tokens=70)
    >>> by_arrival = run_to_completion(v, None).run.tolist()
    >>> by_output = run_to_completion(v, v.output_tokens_pred).run.tolist()
    >>> by_arrival, by_output
    ([0], [1])
    """
    use_key = waiting_key is not None
    v = view
    run, recompute, n_reject, wake, hold, room, release = run_to_completion_kernel(
        v.arrival_s, v.request_id, v.input_tokens, v.output_tokens_pred, v.prefilled_tokens,
        v.generated_tokens, v.kv_tokens, v.kv_location, v.running,
        waiting_key if use_key else v.output_tokens_pred, use_key,
        v.kv_capacity_tokens, v.kv_free_tokens, v.max_batch_size, v.max_batch_tokens,
        v.chunk_tokens,
    )
    # bool(): exact Python bools under NUMBA_DISABLE_JIT too
    decision = {"run": run, "recompute": recompute, "wake_on_arrival": bool(wake),
                "hold_batch": bool(hold)}
    if room > 0:
        decision.update(hold_room_tokens=int(room), hold_release_tokens=release)
    return decision_with_rejects(view, decision, n_reject)


@njit
def run_to_completion_kernel(
    arrival_s: np.ndarray,
    request_id: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens_pred: np.ndarray,
    prefilled_tokens: np.ndarray,
    generated_tokens: np.ndarray,
    kv_tokens: np.ndarray,
    kv_location: np.ndarray,
    running: np.ndarray,
    waiting_key: np.ndarray,
    use_key: bool,
    kv_capacity_tokens: int,
    kv_free_tokens: int,
    max_batch_size: int,
    max_batch_tokens: int,
    chunk_tokens: int,
) -> tuple[np.ndarray, np.ndarray, int, bool, bool, int, np.ndarray]:
    """Compiled :func:`run_to_completion` on the view's columns (``waiting_key`` is ignored
    unless ``use_key``): ``(run, recompute, number rejected, wake_on_arrival, hold_batch,
    hold_room_tokens, hold_release_tokens)`` (the last one empty when the room is 0)."""
    n = input_tokens.shape[0]
    step, growth, demand, _, gkv = costs_kernel(
        input_tokens, prefilled_tokens, kv_tokens, kv_location, chunk_tokens
    )
    code = infeasible_kernel(kv_tokens, growth, step, kv_capacity_tokens, max_batch_tokens)
    is_started = started_kernel(prefilled_tokens, generated_tokens, kv_location, running)
    n_admitted = 0
    n_waiting = 0
    n_reject = 0
    for i in range(n):
        if code[i] != FEASIBLE:
            n_reject += 1
        elif is_started[i]:
            n_admitted += 1
        else:
            n_waiting += 1
    admitted = np.empty(n_admitted, dtype=np.int64)
    waiting = np.empty(n_waiting, dtype=np.int64)
    a = 0
    w = 0
    for i in range(n):
        if code[i] != FEASIBLE:
            continue
        if is_started[i]:
            admitted[a] = i
            a += 1
        else:
            waiting[w] = i
            w += 1
    ordered = in_arrival_order_kernel(arrival_s, request_id)
    if not ordered:  # positions ascending are in arrival order when ordered
        admitted = arrival_order_kernel(arrival_s, request_id, admitted, False)
    k, evict, _ = longest_prefix_kernel(
        admitted, step, demand, gkv, kv_free_tokens, max_batch_size, max_batch_tokens,
        np.zeros(n_admitted, dtype=np.int64),
    )
    slots = max_batch_size - n_admitted
    # what later events can change (BatchDecision.wake_on_arrival, hold_batch): see the docstring
    wake, hold = True, False
    # a newcomer the simulator admits is feasible here when a prefill chunk fits the budget
    newcomer_ok = chunk_tokens <= max_batch_tokens
    if k == n_admitted and evict.shape[0] == 0 and n_reject == 0:
        hold = True
        if n_waiting and slots <= 0:
            wake = use_key or not newcomer_ok
    joined = 0
    hold_room = 0
    foot = np.zeros(0, dtype=np.int64)
    if k == n_admitted and evict.shape[0] == 0 and n_waiting and slots > 0:
        if not ordered:
            waiting = arrival_order_kernel(arrival_s, request_id, waiting, False)
        if use_key:
            waiting = waiting[stable_argsort(waiting_key[waiting])]
        all_fit_slots = n_waiting >= slots
        waiting = waiting[:slots]  # at most this many can join
        foot = footprint_kernel(input_tokens, output_tokens_pred, kv_tokens, growth)
        reserved = 0
        tok_left = max_batch_tokens
        for i in admitted:
            reserved += max(foot[i] - gkv[i], demand[i])
            tok_left -= step[i]
        room = kv_free_tokens - reserved
        kv_fit = True  # whether the first waiting request that does not fit has KV room
        kv_sum = 0
        tok_sum = 0
        for i in waiting:
            kv_sum += foot[i]
            tok_sum += step[i]
            kv_fit = kv_sum <= room
            if not kv_fit or tok_sum > tok_left:
                break
            joined += 1
        if joined < waiting.shape[0] or all_fit_slots:
            # the newcomer queues behind a blocked request (or finds no slot): strict FCFS
            wake = use_key or not newcomer_ok
            # the blocked head stays blocked while the batch only grows its KV (its room
            # shrinks by what the batch adds); one blocked by the token budget may fit once
            # the batch's prefills are done, so then the policy is asked again
            hold = hold and (joined == waiting.shape[0] or not kv_fit)
            if hold and joined < waiting.shape[0]:
                # the room is the capacity minus the admitted footprints, which only grow: it
                # gains at most a completed request's footprint at this decision, and the
                # blocked request needs kv_sum - room more (hold_room_tokens)
                hold_room = kv_sum - room
        if joined == 0 and n_admitted == 0:
            head = waiting[0]
            joined = int(demand[head] <= kv_free_tokens and step[head] <= tok_left)
            wake, hold, hold_room = True, False, 0
    run = np.empty(k + joined, dtype=np.int64)
    run[:k] = admitted[:k]
    run[k:] = waiting[:joined]
    return run, evict, n_reject, wake, hold, hold_room, foot


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
