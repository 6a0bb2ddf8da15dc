"""FastServe's skip-join multi-level feedback queue, and plain MLFQ (every arrival in queue 0).

The queue level of each request lives in the view's ``priority`` column (-1 until the policy
first sees it) and the service attained in its current queue in ``attained_s``; the policy returns
both updated, so it keeps no hidden state.

>>> from schedlab.contract import QueueView, form_batch
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[100, 2000], kv_capacity_tokens=10_000,
...     est_prefill_s=[0.008, 0.035])
>>> plan = skip_join_mlfq(v)
>>> plan.priority.tolist(), form_batch(v, plan).run.tolist()
([0, 2], [0, 1])
"""

from __future__ import annotations

import functools
import math

import numpy as np

from schedlab.contract import Plan, QueueView, started
from schedlab.contract.accounting import infeasible_codes
from schedlab.errors import (
    check_fraction,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
)
from schedlab.policies.ordering import arrival_order, check_preempt

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


def priority_order(view: QueueView, priority: np.ndarray) -> np.ndarray:
    """All positions in MLFQ service order: queue 0 first; within a queue, requests that have
    started come first, most recently run first (the authors' code pushes a job that ran back to
    the *front* of its queue), then requests never run, in arrival order; ties by request id.

    >>> from schedlab.contract import QueueView
    >>> v = QueueView.from_columns(now_s=5.0, input_tokens=[8, 8, 8, 8], kv_capacity_tokens=99,
    ...     arrival_s=[0.0, 1.0, 2.0, 3.0], last_run_s=[4.0, 4.5, 2.0, 3.0],
    ...     generated_tokens=[1, 1, 0, 0], prefilled_tokens=[8, 8, 0, 0])
    >>> priority_order(v, np.array([1, 1, 1, 0])).tolist()
    [3, 1, 0, 2]
    """
    pos = arrival_order(view)
    begun = started(view)[pos]
    # two stable sorts of the arrival-ordered positions replace a five-key lexsort
    by_recency = np.argsort(np.where(begun, -view.last_run_s[pos], view.arrival_s[pos]),
                            kind="stable")
    pos, begun = pos[by_recency], begun[by_recency]
    return pos[np.argsort(np.asarray(priority)[pos] * 2 + ~begun, kind="stable")]


def starvation_check(view: QueueView, period_iterations: int) -> bool:
    """Whether FastServe's starvation check runs at this decision: a multiple of
    ``period_iterations`` lies in ``(view.previous_decision_iteration, view.iteration]`` (the
    code runs it every ``starvation_period`` = 1000 iterations); ``period_iterations == 0``
    checks at every decision.

    >>> from schedlab.contract import QueueView
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
    reset_attained_on_promotion: bool = False,
    proactive_offloading: bool = True,
    min_free_blocks: int = 0,
    preempt: str = "swap",
    prefill_gate_host_fraction: float = 0.10,
) -> Plan:
    """FastServe's skip-join MLFQ with proactive KV swapping.

    Seed paper: FastServe, Wu et al., "Fast Distributed Inference Serving for Large Language
    Models" (arXiv 2305.05920; NSDI'26 "Iteration-Level Preemptive Scheduling"); algorithm and
    defaults from the authors' ``fastserve/scheduler.py`` as digested in serving.md §1.1.

    At every decision point it returns a plan (:class:`~schedlab.contract.Plan`) built by:

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
       not promote every waiting job at every decision. As in the authors' code, a promoted
       job keeps its attained service, so it is demoted again as soon as it runs and walks down
       one queue per quantum; ``reset_attained_on_promotion=True`` restarts it at 0 instead
       (a whole queue-0 quantum).
    4. *Batch*: the order is the priority order (:func:`priority_order`); every job may give up
       device KV (``evictable``), so the batch is the longest prefix that fits the batch size,
       token budget and KV cache; strict, a blocked job ends the batch. While the host swap
       space has less than ``prefill_gate_host_fraction`` of its size free, jobs whose next
       step is a prefill are held back (the code's prefill gate, the plan's ``defer``): the
       batch skips them without stopping, and they are the first waiting jobs to give up device
       KV. When nothing else can run the gate stays open (the code would idle, and with chunked
       prefill a prompt swapped out half-way could then wait forever).
    5. *Proactive KV management* (``proactive_offloading``): keep
       ``max(max_batch_size, min_free_blocks) * block_tokens`` KV tokens free after the batch
       (``reserve_tokens``) by swapping out waiting jobs' KV from the back of the priority order
       (lowest queue, back of the queue first); if still short, jobs drop off the batch tail. In
       a step without swap-outs, prefetch host-resident jobs in priority order (at most
       ``max_batch_size``, the plan's ``prefetch``) while the reserve stays free *after the
       batch's next iteration too* (one more token per batched job). The code checks the
       reserve after this iteration only, so a job prefetched into the last free tokens is
       swapped out again at the very next decision (ping-pong: on 2000 Azure-conv requests at 4
       req/s, 453 of 695 prefetched jobs were swapped out within three decisions); with the
       headroom, a batch that stays the same evicts nothing at the next decision.
    6. *Wake-ups*: each job's quantum left (``quantum_left_s``), so the engine asks again when
       the first batched job's quantum runs out. The starvation check asks for no wake-up of its
       own: it runs at the next decision after a period boundary (an arrival, a completion, a
       prefill, a swap or a quantum expiry; iterations only advance while something runs, and
       then one of those comes within the batch's remaining quantum). With
       ``starvation_period_iterations=0`` the check runs at every decision and the policy also
       wakes when the next waiting job reaches the threshold (``reconsider_at_s``).

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
    reset_attained_on_promotion : bool, default False
        See step 3 (False is the code's behaviour).
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

    >>> from schedlab.contract import QueueView, KV_GPU, form_batch
    >>> v = QueueView.from_columns(now_s=2.0, input_tokens=[64, 64], arrival_s=[0.0, 1.9],
    ...     prefilled_tokens=[64, 0], generated_tokens=[30, 0], kv_tokens=[94, 0],
    ...     kv_location=[KV_GPU, 0], running=[True, False], priority=[0, -1],
    ...     attained_s=[0.012, 0.0], est_prefill_s=[0.004, 0.004], kv_capacity_tokens=10_000)
    >>> plan = skip_join_mlfq(v)   # job 0 used up queue 0's 10 ms: demoted behind the newcomer
    >>> d = form_batch(v, plan)
    >>> d.priority.tolist(), d.attained_s.tolist(), d.run.tolist(), round(d.reconsider_at_s, 3)
    ([1, 0], [0.0, 0.0], [1, 0], 2.01)
    """
    params = (base_quantum_s, ratio, num_queues, starvation_threshold_s,
              starvation_period_iterations, min_free_blocks, preempt, prefill_gate_host_fraction)
    try:
        q0, r, top, thr, period, gate = _parameters(*params)
    except TypeError:  # an unhashable value: check it without the cache (a ValueError naming it)
        q0, r, top, thr, period, gate = _parameters.__wrapped__(*params)
    v = view
    prio = np.array(v.priority, dtype=np.int64)
    att = np.array(v.attained_s, dtype=np.float64)
    new = prio < 0
    if new.any():  # 1. skip-join
        prio[new] = (np.minimum(initial_queue(v.est_prefill_s[new], base_quantum_s=q0, ratio=r),
                                top) if use_skip_join else 0)
    quantum = (q0 * np.power(r, np.arange(int(prio.max(initial=0)) + 2, dtype=np.float64)))[prio]
    demote = (att > quantum) & (prio < top)  # 2. demotion, one queue down
    if demote.any():
        prio[demote] += 1
        att[demote] = 0.0
        quantum[demote] *= r
    check = starvation_check(v, period)
    wake = math.inf  # checking at every decision: also when the next waiting job is due
    if check or period == 0:  # 3. starvation
        promotable = ((prio > 0) | (reset_attained_on_promotion & (att > 0))) & ~v.running
        due = v.last_run_s + thr
        promote = promotable & (v.now_s >= due)
        prio[promote] = 0
        quantum[promote] = q0
        if reset_attained_on_promotion:
            att[promote] = 0.0
        waiting = promotable & ~promote
        if period == 0 and waiting.any():
            waiting &= infeasible_codes(v) == 0
            wake = float(due[waiting].min()) if waiting.any() else wake
    left = quantum - att
    if num_queues is not None:
        left[prio >= top] = math.inf
    gated = v.host_kv_free_tokens < gate * v.host_kv_capacity_tokens
    return Plan(
        order=priority_order(v, prio),  # 4. the batch: the longest prefix that fits
        evictable=True,
        defer=~v.prefill_done if gated else None,
        reserve_tokens=(max(v.max_batch_size, min_free_blocks) * v.block_tokens
                        if proactive_offloading else 0),  # 5. proactive KV management
        prefetch=v.max_batch_size if proactive_offloading else 0,
        preempt=preempt,
        priority=prio,
        attained_s=att,
        quantum_left_s=left,  # 6. wake-ups
        reconsider_at_s=wake,
    )


@functools.lru_cache(maxsize=64)
def _parameters(
    base_quantum_s: float, ratio: float, num_queues: int | None, starvation_threshold_s: float,
    starvation_period_iterations: int, min_free_blocks: int, preempt: str,
    prefill_gate_host_fraction: float,
) -> tuple[float, float, int, float, int, float]:
    """The checked parameters of :func:`skip_join_mlfq` as ``(q0, ratio, last queue,
    threshold, period, gate fraction)``, computed once per parameter set (a policy is called at
    every decision with the same ones)."""
    where = "skip_join_mlfq"
    q0 = check_positive_float(base_quantum_s, "base_quantum_s", where)
    r = check_positive_float(ratio, "ratio", where)
    if r < 1.0:
        raise ValueError(f"The 'ratio' parameter of {where} must be a float in [1, inf). "
                         f"Got {ratio!r}.")
    top = 2**62 if num_queues is None else check_positive_int(num_queues, "num_queues", where) - 1
    thr = check_positive_float(starvation_threshold_s, "starvation_threshold_s", where)
    period = check_nonneg_int(starvation_period_iterations, "starvation_period_iterations", where)
    check_nonneg_int(min_free_blocks, "min_free_blocks", where)
    check_preempt(preempt, where)
    gate = check_fraction(prefill_gate_host_fraction, "prefill_gate_host_fraction", where,
                          open_low=False)
    return q0, r, top, thr, period, gate


def mlfq(
    view: QueueView,
    /,
    *,
    base_quantum_s: float = 0.010,
    ratio: float = 2.0,
    num_queues: int | None = None,
    starvation_threshold_s: float = 3.0,
    starvation_period_iterations: int = 1000,
    reset_attained_on_promotion: bool = False,
    proactive_offloading: bool = True,
    min_free_blocks: int = 0,
    preempt: str = "swap",
    prefill_gate_host_fraction: float = 0.10,
) -> Plan:
    """Plain MLFQ: :func:`skip_join_mlfq` with every arrival entering queue 0.

    Seed paper: the MLFQ baseline FastServe improves on with skip-join (arXiv 2305.05920 /
    NSDI'26, serving.md §1.3: "skip-join MLFQ beats plain MLFQ"); same parameters and defaults as
    :func:`skip_join_mlfq` (10 ms first quantum, ratio 2, 3 s starvation threshold, proactive
    swapping, starvation check every 1000 iterations), without ``use_skip_join``.

    Invariants checked by the property tests: all of :func:`skip_join_mlfq`'s, and every
    arrival starts in queue 0.

    >>> from schedlab.contract import QueueView
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
