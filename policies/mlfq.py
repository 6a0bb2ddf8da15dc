"""FastServe's skip-join multi-level feedback queue, and plain MLFQ (every arrival in queue 0).

The queue level of each request lives in the view's ``priority`` column (-1 until the policy
first sees it) and the service attained in its current queue in ``attained_s``; the policy returns
both updated, so it keeps no hidden state.

>>> from schedlab.policies.base import QueueView
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[100, 2000], kv_capacity_tokens=10_000,
...     est_prefill_s=[0.008, 0.035])
>>> d = skip_join_mlfq(v)
>>> d.priority.tolist(), d.run.tolist()
([0, 2], [0, 1])
"""

from __future__ import annotations

import math

import numpy as np

from schedlab.errors import (
    check_fraction,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
)
from schedlab.jit import njit
from schedlab.policies.base import BatchDecision, QueueView
from schedlab.policies.batching import (
    FEASIBLE,
    check_preempt,
    decision_with_rejects,
    infeasible_kernel,
    longest_prefix_kernel,
    prefetch_kernel,
    split_preemptions_kernel,
    stable_argsort,
)
from schedlab.policies.fcfs import arrival_order_kernel, in_arrival_order_kernel, started_kernel
from schedlab.policies.kv import costs_kernel

__all__ = ["initial_queue", "mlfq", "priority_order", "skip_join_mlfq", "starvation_check"]

def initial_queue(
    prefill_s: np.ndarray, *, base_quantum_s: float = 0.010, ratio: float = 2.0
) -> np.ndarray:
    """Skip-join: the smallest queue ``p >= 0`` whose quantum ``base_quantum_s * ratio**p`` is at
    least the request's batch-1 prefill time (serving.md §1.1, invariant 3).

    >>> initial_queue(np.array([0.0, 0.01, 0.0100001, 0.05])).tolist()
    [0, 0, 1, 3]
    """
    t = np.asarray(prefill_s, dtype=np.float64)
    with np.errstate(divide="ignore"):
        p = np.ceil(np.log(np.maximum(t, 1e-300) / base_quantum_s) / math.log(ratio))
    p = np.maximum(p, 0).astype(np.int64)
    # exact correction of the floating-point log: make p the least with q0 * ratio**p >= t
    p = p + (base_quantum_s * ratio ** p.astype(np.float64) < t)
    lower = np.maximum(p - 1, 0)
    p = np.where((p > 0) & (base_quantum_s * ratio ** lower.astype(np.float64) >= t), lower, p)
    return p


def priority_order(view: QueueView, priority: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``positions`` in MLFQ service order: queue 0 first; within a queue, requests that have
    started come first, most recently run first (the authors' code pushes a job that ran back to
    the *front* of its queue), then requests never run, in arrival order; ties by request id.

    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=5.0, input_tokens=[8, 8, 8, 8], kv_capacity_tokens=99,
    ...     arrival_s=[0.0, 1.0, 2.0, 3.0], last_run_s=[4.0, 4.5, 2.0, 3.0],
    ...     generated_tokens=[1, 1, 0, 0], prefilled_tokens=[8, 8, 0, 0])
    >>> priority_order(v, np.array([1, 1, 1, 0]), np.arange(4)).tolist()
    [3, 1, 0, 2]
    """
    v = view
    return priority_order_kernel(
        v.arrival_s, v.request_id, v.last_run_s,
        started_kernel(v.prefilled_tokens, v.generated_tokens, v.kv_location, v.running),
        np.asarray(priority, dtype=np.int64), np.asarray(positions, dtype=np.int64),
    )


@njit
def priority_order_kernel(
    arrival_s: np.ndarray,
    request_id: np.ndarray,
    last_run_s: np.ndarray,
    started: np.ndarray,
    priority: np.ndarray,
    positions: np.ndarray,
) -> np.ndarray:
    """Compiled rule of :func:`priority_order` (``started`` from
    :func:`~schedlab.policies.fcfs.started_kernel`)."""
    pos = arrival_order_kernel(
        arrival_s, request_id, positions, in_arrival_order_kernel(arrival_s, request_id)
    )
    m = pos.shape[0]
    recency = np.empty(m, dtype=np.float64)
    for j in range(m):
        p = pos[j]
        recency[j] = -last_run_s[p] if started[p] else arrival_s[p]
    # two stable sorts of the arrival-ordered positions replace a five-key lexsort
    i = stable_argsort(recency)
    group = np.empty(m, dtype=np.int64)
    for j in range(m):
        p = pos[i[j]]
        group[j] = priority[p] * 2 + (0 if started[p] else 1)
    return pos[i[stable_argsort(group)]]


def starvation_check(view: QueueView, period_iterations: int) -> bool:
    """Whether FastServe's starvation check runs at this decision: a multiple of
    ``period_iterations`` lies in ``(view.previous_decision_iteration, view.iteration]`` (the
    code runs it every ``starvation_period`` = 1000 iterations); ``period_iterations == 0``
    checks at every decision.

    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=9.0, input_tokens=[8], kv_capacity_tokens=99,
    ...     iteration=2003, previous_decision_iteration=1990)
    >>> starvation_check(v, 1000), starvation_check(v, 10), starvation_check(v, 3000)
    (True, True, False)
    """
    if period_iterations == 0:
        return True
    return (
        view.iteration // period_iterations > view.previous_decision_iteration // period_iterations
    )


def skip_join_mlfq(
    view: QueueView,
    /,
    *,
    base_quantum_s: float = 0.010,
    ratio: float = 2.0,
    num_queues: int | None = None,
    starvation_threshold_s: float = 3.0,
    starvation_period_iterations: int = 1000,
    use_skip_join: bool = True,
    reset_attained_on_promotion: bool = True,
    proactive_offloading: bool = True,
    min_free_blocks: int = 0,
    preempt: str = "swap",
    prefill_gate_host_fraction: float = 0.10,
) -> BatchDecision:
    """FastServe's skip-join MLFQ with proactive KV swapping.

    Seed paper: FastServe, Wu et al., "Fast Distributed Inference Serving for Large Language
    Models" (arXiv 2305.05920; NSDI'26 "Iteration-Level Preemptive Scheduling"); algorithm and
    defaults from the authors' ``fastserve/scheduler.py`` as digested in serving.md §1.1.

    At every decision point:

    1. *Skip-join*: a request seen for the first time (``priority == -1``) enters the smallest
       queue ``p`` with ``base_quantum_s * ratio**p >= est_prefill_s`` (queue 0 when
       ``use_skip_join=False``).
    2. *Demotion*: a request whose attained service exceeds its queue's quantum (strict ``>``)
       moves down exactly one queue and its attained service restarts at 0.
    3. *Starvation*: every ``starvation_period_iterations`` iterations of the instance (the
       code's ``starvation_period``), every job not running that has not run for at least
       ``starvation_threshold_s`` is promoted to queue 0. A pure policy counts iterations with
       the view's ``iteration`` and ``previous_decision_iteration``: the check runs at the
       first decision at or after each multiple of the period, i.e. when a multiple lies in
       ``(previous_decision_iteration, iteration]``. Being iteration-based, the check slows down
       by itself when iterations slow down (many swaps, long prefills), so slow iterations do
       not promote every waiting job at every decision. The authors' code keeps the
       promoted job's attained service; by default we reset it to 0
       (``reset_attained_on_promotion=True``) so a promoted job gets a whole queue-0 quantum
       instead of being demoted again after one iteration; pass ``False`` for the code's
       behaviour.
    4. *Batch*: the longest prefix of the priority order (:func:`priority_order`) that fits the
       batch size, token budget and KV cache; strict, a blocked job ends the batch. While the
       host swap space has less than ``prefill_gate_host_fraction`` of its size free, jobs
       whose next step is a prefill are held back (the code's prefill gate): the batch skips
       them without stopping, and they are the first waiting jobs to give up device KV. When
       nothing else can run the gate stays open (the code would idle, and with chunked prefill
       a prompt swapped out half-way could then wait forever).
    5. *Proactive KV management* (``proactive_offloading``): keep
       ``max(max_batch_size, min_free_blocks) * block_tokens`` KV tokens free after the batch by
       swapping out waiting jobs' KV from the back of the priority order (lowest queue, back of
       the queue first); if still short, jobs drop off the batch tail. In a step without
       swap-outs, prefetch host-resident jobs in priority order (at most ``max_batch_size``)
       while the reserve stays free *after the batch's next iteration too* (one more token per
       batched job). The code checks the reserve after this iteration only, so a job prefetched
       into the last free tokens is swapped out again at the very next decision (ping-pong: on
       2000 Azure-conv requests at 4 req/s, 453 of 695 prefetched jobs were swapped out within
       three decisions); with the headroom, a batch that stays the same evicts nothing at the
       next decision.
    6. ``reconsider_at_s``: the earliest time a batched job's quantum runs out. The starvation
       check asks for no wake-up of its own: it runs at the next decision after a period
       boundary (an arrival, a completion, a prefill, a swap or a quantum expiry; iterations
       only advance while something runs, and then one of those comes within the batch's
       remaining quantum). With ``starvation_period_iterations=0`` the check runs at every
       decision and the policy also wakes when the next waiting job reaches the threshold.

    Parameters (defaults from the authors' code and NSDI'26 artifact, serving.md §1.1)
    ----------
    base_quantum_s : float, default 0.010
        Quantum of queue 0 (10 ms).
    ratio : float, default 2.0
        Quantum of queue ``i`` is ``base_quantum_s * ratio**i``.
    num_queues : int or None, default None
        Number of queues; None = unbounded (created on demand, as in the code). Jobs in the last
        queue are not demoted further.
    starvation_threshold_s : float, default 3.0
        Wait after which a job is promoted to queue 0.
    starvation_period_iterations : int, default 1000
        Iterations between starvation checks (the code's ``starvation_period``); 0 checks at
        every decision, with wake-ups at the threshold (time-exact promotion, not the code's).
    use_skip_join : bool, default True
        False makes every arrival start in queue 0 (plain MLFQ, see :func:`mlfq`).
    reset_attained_on_promotion : bool, default True
        See step 3.
    proactive_offloading : bool, default True
        Keep the reserve of free KV and prefetch (step 5); False keeps no reserve.
    min_free_blocks : int, default 0
        ``num_min_free_blocks_threshold`` of the code.
    preempt : {"swap", "recompute"}, default "swap"
        How evicted jobs lose their device KV (swap falls back to recompute when host space is
        out).
    prefill_gate_host_fraction : float in [0, 1], default 0.10
        The code's hard-coded prefill gate (step 4): prefill jobs wait while less than this
        fraction of the host swap space is free; 0 turns the gate off.

    Not modelled: pipeline-parallel batches.

    Invariants checked by the property tests (serving.md §1.4): well-formed decisions within
    batch size, token budget and KV capacity; strict priority prefix (the batch is a prefix of
    the priority order, gated prefill jobs left out); no prefill job runs while the gate is
    closed and another job can run; skip-join queue monotone non-decreasing in the prefill time;
    priorities only rise by exactly 1 per demotion, except starvation promotion to 0; starvation
    bound (promotion exactly at the decisions that cross a period boundary, so a waiting job is
    promoted within ``3 s + period x max iteration time`` plus the wait for that decision; no
    promotion in between); no swap-in in a step that swaps out, and no job swapped in that the
    next iteration's growth would swap out again; one queue behaves as FCFS;
    ``use_skip_join=False`` starts arrivals at 0; scaling prefill times, attained service and
    quantum by the same factor leaves the decision unchanged; purity and determinism.

    >>> from schedlab.policies.base import QueueView, KV_GPU
    >>> v = QueueView.from_columns(now_s=2.0, input_tokens=[64, 64], arrival_s=[0.0, 1.9],
    ...     prefilled_tokens=[64, 0], generated_tokens=[30, 0], kv_tokens=[94, 0],
    ...     kv_location=[KV_GPU, 0], running=[True, False], priority=[0, -1],
    ...     attained_s=[0.012, 0.0], est_prefill_s=[0.004, 0.004], kv_capacity_tokens=10_000)
    >>> d = skip_join_mlfq(v)   # job 0 used up queue 0's 10 ms: demoted behind the newcomer
    >>> d.priority.tolist(), d.attained_s.tolist(), d.run.tolist(), round(d.reconsider_at_s, 3)
    ([1, 0], [0.0, 0.0], [1, 0], 2.01)
    """
    q0 = check_positive_float(base_quantum_s, "base_quantum_s", "skip_join_mlfq")
    r = check_positive_float(ratio, "ratio", "skip_join_mlfq")
    if r < 1.0:
        raise ValueError(
            f"The 'ratio' parameter of skip_join_mlfq must be a float in [1, inf). Got {ratio!r}."
        )
    top = (
        (2**62)
        if num_queues is None
        else check_positive_int(num_queues, "num_queues", "skip_join_mlfq") - 1
    )
    thr = check_positive_float(starvation_threshold_s, "starvation_threshold_s", "skip_join_mlfq")
    period = check_nonneg_int(
        starvation_period_iterations, "starvation_period_iterations", "skip_join_mlfq"
    )
    check_nonneg_int(min_free_blocks, "min_free_blocks", "skip_join_mlfq")
    check_preempt(preempt, "skip_join_mlfq")
    gate = check_fraction(
        prefill_gate_host_fraction, "prefill_gate_host_fraction", "skip_join_mlfq", open_low=False
    )
    v = view
    prio = np.array(v.priority, dtype=np.int64)
    att = np.array(v.attained_s, dtype=np.float64)
    new = prio < 0
    if new.any():
        prio[new] = (
            np.minimum(initial_queue(v.est_prefill_s[new], base_quantum_s=q0, ratio=r), top)
            if use_skip_join
            else 0
        )
    # quanta by numpy's power, as initial_queue computes them
    levels = q0 * np.power(r, np.arange(int(prio.max(initial=0)) + 2, dtype=np.float64))
    reserve = (
        max(v.max_batch_size, min_free_blocks) * v.block_tokens if proactive_offloading else 0
    )
    run, swap_out, recompute, swap_in, wake, n_reject = mlfq_kernel(
        prio, att, levels, v.now_s, q0, r, top, num_queues is not None, thr,
        starvation_check(v, period), period == 0, bool(reset_attained_on_promotion),
        bool(proactive_offloading), reserve, preempt == "swap",
        v.host_kv_free_tokens < gate * v.host_kv_capacity_tokens,
        v.arrival_s, v.request_id, v.input_tokens, v.prefilled_tokens, v.generated_tokens,
        v.kv_tokens, v.kv_location, v.running, v.last_run_s, v.kv_capacity_tokens,
        v.kv_free_tokens, v.max_batch_size, v.max_batch_tokens, v.chunk_tokens,
        v.host_kv_free_tokens,
    )
    if wake <= v.now_s:
        wake = math.nextafter(v.now_s, math.inf)
    decision = {
        "run": run,
        "swap_out": swap_out,
        "recompute": recompute,
        "swap_in": swap_in,
        "priority": prio,
        "attained_s": att,
        "reconsider_at_s": float(wake),  # a Python float under NUMBA_DISABLE_JIT too
    }
    return decision_with_rejects(view, decision, n_reject)


@njit
def mlfq_kernel(
    prio: np.ndarray,
    att: np.ndarray,
    levels: np.ndarray,
    now: float,
    q0: float,
    ratio: float,
    top: int,
    bounded: bool,
    threshold_s: float,
    check_starvation: bool,
    every_decision: bool,
    reset_attained: bool,
    proactive: bool,
    reserve: int,
    swap: bool,
    prefill_gated: bool,
    arrival_s: np.ndarray,
    request_id: np.ndarray,
    input_tokens: np.ndarray,
    prefilled_tokens: np.ndarray,
    generated_tokens: np.ndarray,
    kv_tokens: np.ndarray,
    kv_location: np.ndarray,
    running: np.ndarray,
    last_run_s: np.ndarray,
    kv_capacity_tokens: int,
    kv_free_tokens: int,
    max_batch_size: int,
    max_batch_tokens: int,
    chunk_tokens: int,
    host_kv_free_tokens: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Compiled steps 2 to 6 of :func:`skip_join_mlfq` on the view's columns, after skip-join
    placed the new requests in ``prio`` (``levels[p]``: the quantum of queue ``p``; ``bounded``:
    ``num_queues`` given, ``top`` its last queue; ``prefill_gated``: the prefill gate is closed).
    Updates ``prio`` and ``att`` in place and
    returns ``(run, swap_out, recompute, swap_in, reconsider_at_s, number rejected)``."""
    n = prio.shape[0]
    quantum = np.empty(n, dtype=np.float64)
    promotable = np.empty(n, dtype=np.bool_)
    due = np.empty(n, dtype=np.float64)
    for i in range(n):
        quantum[i] = levels[prio[i]]
        # demotion: one queue down once the attained service exceeds the quantum
        if att[i] > quantum[i] and (not bounded or prio[i] < top):
            prio[i] += 1
            att[i] = 0.0
            quantum[i] *= ratio
        promotable[i] = (prio[i] > 0 or (reset_attained and att[i] > 0)) and not running[i]
        due[i] = last_run_s[i] + threshold_s
        # starvation: promotion to queue 0 at the decisions that run the check
        if check_starvation and promotable[i] and now >= due[i]:
            prio[i] = 0
            quantum[i] = q0
            promotable[i] = False
            if reset_attained:
                att[i] = 0.0

    step, growth, demand, _, gkv = costs_kernel(
        input_tokens, prefilled_tokens, kv_tokens, kv_location, chunk_tokens
    )
    code = infeasible_kernel(kv_tokens, growth, step, kv_capacity_tokens, max_batch_tokens)
    is_started = started_kernel(prefilled_tokens, generated_tokens, kv_location, running)
    by_priority = priority_order_kernel(
        arrival_s, request_id, last_run_s, is_started, prio, np.arange(n)
    )
    n_reject = 0
    for i in range(n):
        n_reject += code[i] != FEASIBLE
    order = by_priority[code[by_priority] == FEASIBLE]
    reserves = np.full(order.shape[0], reserve, dtype=np.int64)
    k = 0
    n_open = order.shape[0]  # the batch is drawn from the first n_open jobs of the order
    if prefill_gated:
        # prefill jobs wait for host swap space: the batch skips them, and they move to the
        # back of the order, the first to give up device KV; when nothing else can run, the
        # gate stays open (holding every job back would stall the instance)
        is_open = prefilled_tokens[order] >= input_tokens[order]
        open_first = np.concatenate((order[is_open], order[~is_open]))
        n_open_first = int(is_open.sum())
        k, evict, free_after = longest_prefix_kernel(
            open_first, step, demand, gkv, kv_free_tokens, min(max_batch_size, n_open_first),
            max_batch_tokens, reserves,
        )
        if k:
            order, n_open = open_first, n_open_first
    if k == 0:
        k, evict, free_after = longest_prefix_kernel(
            order, step, demand, gkv, kv_free_tokens, max_batch_size, max_batch_tokens, reserves
        )
    batch = order[:k]
    swap_out, recompute = split_preemptions_kernel(evict, kv_tokens, host_kv_free_tokens, swap)
    swap_in = np.empty(0, dtype=np.int64)
    if proactive and evict.shape[0] == 0:
        # room for the batch's next iteration too (one token per batched job): prefetching
        # into room the next iteration needs gets the job swapped out again at once
        swap_in = prefetch_kernel(
            order[k:n_open], kv_location, kv_tokens, free_after - k, reserve, max_batch_size
        )

    # wake up when a batched job's quantum runs out (or, checking at every decision, when a
    # job left out reaches the threshold)
    wake = np.inf
    left = np.inf
    for p in batch:
        if not bounded or prio[p] < top:
            left = min(left, quantum[p] - att[p])
    if left < np.inf:
        wake = now + left
    if every_decision:
        for p in batch:
            promotable[p] = False
        for i in range(n):
            if promotable[i] and code[i] == FEASIBLE:
                wake = min(wake, due[i])
    return batch, swap_out, recompute, swap_in, wake, n_reject


def mlfq(
    view: QueueView,
    /,
    *,
    base_quantum_s: float = 0.010,
    ratio: float = 2.0,
    num_queues: int | None = None,
    starvation_threshold_s: float = 3.0,
    starvation_period_iterations: int = 1000,
    reset_attained_on_promotion: bool = True,
    proactive_offloading: bool = True,
    min_free_blocks: int = 0,
    preempt: str = "swap",
    prefill_gate_host_fraction: float = 0.10,
) -> BatchDecision:
    """Plain MLFQ: :func:`skip_join_mlfq` with every arrival entering queue 0.

    Seed paper: the MLFQ baseline FastServe improves on with skip-join (arXiv 2305.05920 /
    NSDI'26, serving.md §1.3: "skip-join MLFQ beats plain MLFQ"); same parameters and defaults as
    :func:`skip_join_mlfq` (10 ms first quantum, ratio 2, 3 s starvation threshold, proactive
    swapping, starvation check every 1000 iterations), without ``use_skip_join``.

    Invariants checked by the property tests: all of :func:`skip_join_mlfq`'s, and every
    arrival starts in queue 0.

    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[100, 2000], kv_capacity_tokens=10_000,
    ...     est_prefill_s=[0.008, 0.035])
    >>> mlfq(v).priority.tolist()
    [0, 0]
    """
    return skip_join_mlfq(
        view,
        base_quantum_s=base_quantum_s,
        ratio=ratio,
        num_queues=num_queues,
        starvation_threshold_s=starvation_threshold_s,
        starvation_period_iterations=starvation_period_iterations,
        use_skip_join=False,
        reset_attained_on_promotion=reset_attained_on_promotion,
        proactive_offloading=proactive_offloading,
        min_free_blocks=min_free_blocks,
        preempt=preempt,
        prefill_gate_host_fraction=prefill_gate_host_fraction,
    )
