"""Orca-style FCFS run-to-completion at iteration level, and the run-to-completion rule it shares
with non-preemptive SJF.

>>> from schedlab.contract import QueueView, form_batch
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[30, 30, 30], arrival_s=[0.2, 0.1, 0.3],
...     output_tokens_pred=[10, 10, 10], kv_capacity_tokens=90)
>>> form_batch(v, fcfs(v)).run.tolist()
[1, 0]
"""

from __future__ import annotations

import numpy as np

from schedlab.contract import Plan, QueueView, started
from schedlab.errors import check_positive_int
from schedlab.policies.ordering import arrival_order, is_arrival_order

__all__ = ["fcfs", "fifo", "run_to_completion"]


def run_to_completion(
    view: QueueView, waiting_key: np.ndarray | None, *, reserve_max_tokens: int | None = None
) -> Plan:
    """Non-preemptive iteration-level batching: admitted (started) requests first, in arrival
    order; then waiting requests in increasing ``waiting_key`` (ties by arrival, then request id;
    arrival order when None). Admission reserves each request's predicted footprint, its prompt
    plus its predicted output (``footprint_tokens="predicted"``), as Orca reserves a request's
    maximum length, so admitted requests never run out of KV while the predictions hold; one that
    outgrows its prediction pushes out the latest admitted requests (``evictable``, by
    recomputation). The head of the queue runs whenever its next step fits, even if its
    footprint does not, so a long prediction cannot stall an idle instance. With
    ``reserve_max_tokens`` every request's footprint is that many tokens instead (Orca reserving
    the maximum sequence length).

    The order is static (the engine keeps it, and puts newcomers at its back itself) whenever
    it is arrival order, as it always is in a simulation: admission only moves requests from the
    front of the waiting queue to the back of the admitted one, and a newcomer queues last.

    >>> from schedlab.contract import QueueView, form_batch
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 10], output_tokens_pred=[50, 5],
    ...     kv_capacity_tokens=70)
    >>> [form_batch(v, run_to_completion(v, k)).run.tolist() for k in (None, v.output_tokens_pred)]
    [[0], [1]]
    """
    begun = started(view)
    waiting = arrival_order(view, np.flatnonzero(~begun))
    if waiting_key is not None:
        waiting = waiting[np.argsort(waiting_key[waiting], kind="stable")]
    order = np.concatenate((arrival_order(view, np.flatnonzero(begun)), waiting))
    return Plan(
        order=order,
        evictable=True,
        footprint_tokens=("predicted" if reserve_max_tokens is None
                          else np.full(view.n, reserve_max_tokens, dtype=np.int64)),
        static=waiting_key is None and is_arrival_order(view, order),
    )


def fcfs(view: QueueView, /, *, reserve_max_tokens: int | None = None) -> Plan:
    """Orca-style FCFS run-to-completion with iteration-level (continuous) batching.

    Seed paper: Orca (Yu et al., OSDI'22), iteration-level scheduling with selective batching;
    the FCFS baseline of FastServe (arXiv 2305.05920 / NSDI'26, serving.md §1.3).

    Requests are admitted in arrival order (ties by request id) and, once admitted, run every
    iteration until they finish; a new request joins when the batch size, the token budget and
    the KV reservation of its predicted footprint (prompt + ``output_tokens_pred``) allow
    (:func:`run_to_completion`). Strict FCFS: a waiting request that does not fit blocks the
    ones behind it. Limits come from the view. Requests that can never fit the instance are
    rejected by the engine with a reason.

    Parameters
    ----------
    reserve_max_tokens : int or None, default None
        Reserve this many KV tokens per request instead of its prompt plus predicted output:
        Orca as the vLLM paper runs it ("Orca (Max)", Kwon et al., SOSP'23 §6.1: the maximum
        sequence length, 2,048 tokens for OPT), which is how FastServe's v1 prototype was
        compared with Orca.

    Invariants checked by the property tests: a valid batch within batch size, token budget and
    KV capacity (:func:`schedlab.testing.check_policy`, whose static-plan check confirms the
    engine may keep the plan); admitted requests are never preempted while predictions hold; the
    batch is the admitted requests plus an arrival-order prefix of the waiting ones; purity and
    determinism.

    >>> from schedlab.contract import QueueView, form_batch
    >>> v = QueueView.from_columns(now_s=1.0, input_tokens=[50, 10, 10], arrival_s=[0.0, 0.5, 0.6],
    ...     output_tokens_pred=[20, 5, 5], prefilled_tokens=[50, 0, 0], generated_tokens=[3, 0, 0],
    ...     kv_tokens=[53, 0, 0], kv_location=[1, 0, 0], running=[True, False, False],
    ...     kv_capacity_tokens=90)
    >>> form_batch(v, fcfs(v)).run.tolist()   # 17 more reserved for 0 leave room for one 15
    [0, 1]
    """
    if reserve_max_tokens is not None:
        check_positive_int(reserve_max_tokens, "reserve_max_tokens", "fcfs")
    return run_to_completion(view, None, reserve_max_tokens=reserve_max_tokens)


def fifo(view: QueueView, /) -> Plan:
    """First in, first out: the batch is the longest arrival-order prefix that fits, and having
    started gives no precedence; when the KV cache is full, requests give up their KV from the
    back of the queue (by recomputation) so that the head can run.

    Seed: the serial prefill queue of Mooncake's prefill instances (arXiv 2407.00079 v3 §6.1:
    a request's queue time is the prefill time of every request queued before it); with
    ``max_batch_size=1`` an instance prefills one request at a time in arrival order, however
    much of its prompt a prefix cache already holds. No parameters.

    Invariants checked by the property tests: a valid batch; the batch is an arrival-order
    prefix; the plan is static (arrival order stays arrival order); purity and determinism.

    >>> from schedlab.contract import QueueView, KV_HOST, form_batch
    >>> v = QueueView.from_columns(now_s=1.0, input_tokens=[30, 30], arrival_s=[0.0, 0.5],
    ...     prefilled_tokens=[0, 16], kv_tokens=[0, 16], kv_location=[0, KV_HOST],
    ...     kv_capacity_tokens=90, max_batch_size=1)
    >>> form_batch(v, fifo(v)).run.tolist()   # the cached prefix of 1 does not jump the queue
    [0]
    """
    return Plan(order=arrival_order(view), evictable=True, static=True)
