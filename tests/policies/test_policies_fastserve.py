"""FastServe's skip-join MLFQ against the invariants of serving.md §1.4.

Property tests draw consistent queue views (schedlab.testing.queue_views) and check one decision
(the batch the engine forms from the policy's plan); the example tests pin the rules on
hand-built views.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract import KV_GPU, KV_HOST, BatchDecision, QueueView, form_batch
from schedlab.contract.accounting import infeasible, request_costs, started
from schedlab.policies import fcfs as fcfs_module
from schedlab.policies import get_policy
from schedlab.policies import mlfq as mlfq_module
from schedlab.policies.mlfq import initial_queue, starvation_check
from schedlab.testing import queue_views

PROPS = settings(max_examples=50, deadline=None, database=None, derandomize=True)
Q0, RATIO, THR = 0.010, 2.0, 3.0


def skip_join_mlfq(view: QueueView, **params) -> BatchDecision:
    """The decision the engine forms from skip-join MLFQ's plan."""
    return form_batch(view, mlfq_module.skip_join_mlfq(view, **params))


def mlfq(view: QueueView, **params) -> BatchDecision:
    return form_batch(view, mlfq_module.mlfq(view, **params))


def fcfs(view: QueueView) -> BatchDecision:
    return form_batch(view, fcfs_module.fcfs(view))


def priority_order(view: QueueView, priority: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``positions`` in the MLFQ service order."""
    order = mlfq_module.priority_order(view, priority)
    return order[np.isin(order, positions)]


def _not_rejected(view: QueueView) -> np.ndarray:
    keep = np.ones(view.n, dtype=bool)
    keep[infeasible(view)[0]] = False
    return np.flatnonzero(keep)


def _gate_closed(view: QueueView, fraction: float = 0.10) -> bool:
    return view.host_kv_free_tokens < fraction * view.host_kv_capacity_tokens


def _gated(view: QueueView, d) -> np.ndarray:
    """The prefill jobs the decision ``d`` held back: every prefill job while the gate is
    closed, unless the batch holds one (nothing else could run: the gate stayed open)."""
    prefill = view.prefilled_tokens < view.input_tokens
    if not _gate_closed(view) or prefill[d.run].any():
        return np.zeros(0, dtype=np.int64)
    return np.intersect1d(_not_rejected(view), np.flatnonzero(prefill))


def _schedulable(view: QueueView, d) -> np.ndarray:
    """Positions the batch is drawn from: not rejected, and not held back by the gate."""
    return np.setdiff1d(_not_rejected(view), _gated(view, d))


# ----------------------------------------------------------------- 3. skip-join
@PROPS
@given(
    t=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=30),
    q0=st.floats(1e-4, 1.0),
    ratio=st.sampled_from([1.5, 2.0, 3.0, 10.0]),
)
def test_initial_queue_is_the_least_queue_whose_quantum_covers_the_prefill(
    t: list[float], q0: float, ratio: float
) -> None:
    p = initial_queue(np.array(t), base_quantum_s=q0, ratio=ratio)
    for ti, pi in zip(t, p.tolist(), strict=True):
        assert q0 * ratio**pi >= ti
        assert pi == 0 or q0 * ratio ** (pi - 1) < ti
    order = np.argsort(t, kind="stable")
    assert (np.diff(p[order]) >= 0).all()


@PROPS
@given(queue_views())
def test_skip_join_queue_is_monotone_in_input_length(view: QueueView) -> None:
    d = skip_join_mlfq(view, starvation_threshold_s=1e9)
    new = np.flatnonzero(view.priority < 0)
    by_len = new[np.argsort(view.input_tokens[new], kind="stable")]
    assert (np.diff(d.priority[by_len]) >= 0).all()
    expected = initial_queue(view.est_prefill_s[new], base_quantum_s=Q0, ratio=RATIO)
    assert d.priority[new].tolist() == expected.tolist()


@PROPS
@given(queue_views())
def test_without_skip_join_every_arrival_starts_in_queue_zero(view: QueueView) -> None:
    new = view.priority < 0
    for d in (skip_join_mlfq(view, use_skip_join=False), mlfq(view)):
        assert (d.priority[new] == 0).all()
        assert (d.attained_s[new] == 0).all()


def test_skip_join_example_from_the_digest() -> None:
    # 8 ms fits queue 0 (10 ms); 35 ms needs queue 2 (40 ms); exactly 20 ms is queue 1
    v = QueueView.from_columns(
        now_s=0.0,
        input_tokens=[100, 2000, 900],
        est_prefill_s=[0.008, 0.035, 0.020],
        kv_capacity_tokens=10_000,
    )
    assert skip_join_mlfq(v).priority.tolist() == [0, 2, 1]


# ----------------------------------------------------------------- 4. priority moves
def _counters(draw_it: int, gap: int) -> dict[str, int]:
    return {"iteration": draw_it, "previous_decision_iteration": draw_it - gap}


def _crosses(view: QueueView, period: int) -> bool:
    """A multiple of ``period`` in (previous_decision_iteration, iteration], by enumeration."""
    lo, hi = view.previous_decision_iteration + 1, view.iteration
    return period == 0 or any(m % period == 0 for m in range(lo, hi + 1))


COUNTERS = st.builds(_counters, st.integers(0, 5000), st.integers(0, 1200))


@PROPS
@given(queue_views(), st.booleans(), COUNTERS, st.sampled_from([0, 1, 7, 1000]))
def test_priority_moves_by_demotion_or_starvation_only(
    view: QueueView, reset: bool, counters: dict[str, int], period: int
) -> None:
    view = dataclasses.replace(view, **counters)
    d = skip_join_mlfq(view, reset_attained_on_promotion=reset, starvation_period_iterations=period)
    seen = np.flatnonzero(view.priority >= 0)
    old, new = view.priority[seen], d.priority[seen]
    att_old, att_new = view.attained_s[seen], d.attained_s[seen]
    quantum = Q0 * RATIO ** old.astype(float)
    demoted = att_old > quantum
    starving = ~view.running[seen] & (view.now_s >= view.last_run_s[seen] + THR)
    starving &= _crosses(view, period)
    # a priority only rises by exactly one (demotion) or falls to 0 (starvation promotion)
    moved_up = new == old + 1
    to_zero = (new == 0) & (old > 0)
    same = new == old
    assert (moved_up | to_zero | same).all()
    # demotion exactly when attained exceeds the quantum (strict >), unless promoted after it
    assert (moved_up == (demoted & ~starving)).all()
    assert (att_new[moved_up] == 0).all()
    # promotion to 0 only for starving jobs, and only at a decision that crosses a period
    assert starving[to_zero].all()
    # untouched jobs keep their attained service
    untouched = same & ~demoted & ~starving
    assert (att_new[untouched] == att_old[untouched]).all()


def _promoted_view() -> QueueView:
    # job 0 waited 5 s in queue 3 with 50 ms attained; job 1 runs in queue 0
    return QueueView.from_columns(
        now_s=10.0,
        input_tokens=[64, 64],
        arrival_s=[0.0, 9.0],
        prefilled_tokens=[64, 64],
        generated_tokens=[20, 2],
        kv_tokens=[84, 66],
        kv_location=[KV_GPU, KV_GPU],
        running=[False, True],
        priority=[3, 0],
        attained_s=[0.05, 0.001],
        last_run_s=[5.0, 9.99],
        kv_capacity_tokens=10_000,
    )


def test_starvation_promotion_can_reset_attained() -> None:
    d = skip_join_mlfq(_promoted_view(), reset_attained_on_promotion=True)
    assert d.priority[0] == 0 and d.attained_s[0] == 0.0
    assert d.run.tolist()[0] == 1  # job 1 ran most recently within queue 0


def test_by_default_as_the_code_promotion_keeps_attained_and_demotes_after_the_next_run(
) -> None:
    d = skip_join_mlfq(_promoted_view())
    assert d.priority[0] == 0 and d.attained_s[0] == pytest.approx(0.05)
    # once it has run, its 50 ms already exceed queue 0's 10 ms quantum: demoted again
    after = dataclasses.replace(
        _promoted_view(),
        priority=np.array([0, 0]),
        attained_s=np.array([0.05 + 0.02, 0.021]),
        running=np.array([True, True]),
        last_run_s=np.array([10.0, 10.0]),
        now_s=10.02,
    )
    d2 = skip_join_mlfq(after, reset_attained_on_promotion=False)
    assert d2.priority.tolist() == [1, 1]


# ----------------------------------------------------------------- 5. starvation bound
def test_starvation_check_runs_once_per_period_of_iterations() -> None:
    def at(prev: int, it: int) -> bool:
        v = QueueView.from_columns(
            now_s=0.0,
            input_tokens=[1],
            kv_capacity_tokens=9,
            iteration=it,
            previous_decision_iteration=prev,
        )
        return starvation_check(v, 1000)

    assert at(-1, 0)  # the first decision: 0 is a multiple
    assert not at(0, 999) and at(999, 1000) and not at(1000, 1000) and not at(1000, 1999)
    assert at(0, 5000)  # a long closed-form stretch crosses several: one check
    assert not at(1001, 1500) and at(1500, 2600)


@PROPS
@given(queue_views(), COUNTERS, st.sampled_from([0, 1, 7, 1000]))
def test_starvation_bound(view: QueueView, counters: dict[str, int], period: int) -> None:
    view = dataclasses.replace(view, **counters)
    d = skip_join_mlfq(view, starvation_period_iterations=period,
                       reset_attained_on_promotion=True)
    due = view.last_run_s + THR
    waiting = ~view.running
    now_due = waiting & (view.now_s >= due)
    if _crosses(view, period):
        # every waiting job due by now is in queue 0 with a fresh quantum
        assert (d.priority[now_due] == 0).all() and (d.attained_s[now_due] == 0).all()
    else:
        # between checks nothing is promoted, however long it has waited
        seen = view.priority >= 0
        assert not ((d.priority == 0) & (view.priority > 0) & seen).any()
        kept = seen & (view.attained_s <= Q0 * RATIO ** view.priority.astype(float))
        assert (d.attained_s[kept] == view.attained_s[kept]).all()
    # wake-ups: the quantum of the batch; starvation adds one only when checking at every
    # decision, for the jobs not running in the view (the policy does not know which the batch
    # takes: a job it takes wakes the engine once more, for nothing) that are not rejected
    kept_in = np.ones(view.n, dtype=bool)
    kept_in[d.reject] = False
    pending = kept_in & waiting & ((d.priority > 0) | (d.attained_s > 0))
    run = d.run
    quantum_wake = np.inf
    if run.shape[0]:
        left = Q0 * RATIO ** d.priority[run].astype(float) - d.attained_s[run]
        quantum_wake = max(view.now_s + float(left.min()), np.nextafter(view.now_s, 1e300))
    if period == 0 and pending.any():
        starve_wake = max(float(due[pending].min()), np.nextafter(view.now_s, 1e300))
        assert d.reconsider_at_s == min(quantum_wake, starve_wake)
    else:
        assert d.reconsider_at_s == quantum_wake


def test_slow_iterations_do_not_promote_at_every_decision() -> None:
    # The thrash the time-based rule caused: iterations of 2 s (swaps in series with compute)
    # make every waiting job pass the 3 s threshold at every decision. Checking every 1000
    # iterations, a job waiting 5 s in queue 3 stays there until the 1000th iteration.
    v = dataclasses.replace(_promoted_view(), iteration=17, previous_decision_iteration=16)
    assert skip_join_mlfq(v).priority.tolist() == [3, 0]
    v = dataclasses.replace(v, iteration=1000, previous_decision_iteration=998)
    assert skip_join_mlfq(v).priority.tolist() == [0, 0]
    # the time-exact variant (period 0) promotes at any decision
    assert skip_join_mlfq(v, starvation_period_iterations=0).priority.tolist() == [0, 0]


@PROPS
@given(queue_views())
def test_wakes_when_a_batched_quantum_runs_out(view: QueueView) -> None:
    d = skip_join_mlfq(view)
    run = d.run
    if run.shape[0]:
        left = Q0 * RATIO ** d.priority[run].astype(float) - d.attained_s[run]
        assert d.reconsider_at_s <= max(
            view.now_s + float(left.min()), np.nextafter(view.now_s, 1e300)
        )
    assert d.reconsider_at_s > view.now_s


# ----------------------------------------------------------------- 2. strict priority prefix
@PROPS
@given(queue_views())
def test_batch_is_the_longest_fitting_prefix_of_the_priority_order(view: QueueView) -> None:
    d = skip_join_mlfq(view)
    order = priority_order(view, d.priority, _schedulable(view, d))
    k = d.run.shape[0]
    c = request_costs(view)
    if d.run.tolist() != order[:k].tolist():
        # host space short of the victims: jobs that have not started wait, and the batch is
        # a prefix of the started ones (a new job never forces a recomputation)
        begun = started(view)
        assert d.run.tolist() == [p for p in order.tolist() if begun[p]][:k]
        assert int(c.gpu_kv[order].sum()) > view.host_kv_free_tokens
        return
    if k == order.shape[0]:
        return
    # the next job does not fit: batch size, token budget or KV (with the proactive reserve;
    # the jobs behind it and the gated ones can give up their device KV), checked where the
    # host space takes every victim (otherwise fewer can go: the contract's tests cover that)
    nxt = order[: k + 1]
    reserve = view.max_batch_size * view.block_tokens if k else 0
    reclaim = int(c.gpu_kv[order[k + 1 :]].sum()) + int(c.gpu_kv[_gated(view, d)].sum())
    if reclaim > view.host_kv_free_tokens:
        return
    assert (
        k + 1 > view.max_batch_size
        or int(c.step[nxt].sum()) > view.max_batch_tokens
        or int(c.demand[nxt].sum()) + reserve > view.kv_free_tokens + reclaim
    )


@PROPS
@given(queue_views())
def test_only_lower_priority_jobs_are_evicted_and_no_swap_in_after_a_swap_out(
    view: QueueView,
) -> None:
    d = skip_join_mlfq(view)
    gated = _gated(view, d)
    # gated jobs give up their device KV first, as if at the back of the order
    order = priority_order(view, d.priority, _schedulable(view, d)).tolist()
    order += priority_order(view, d.priority, gated).tolist()
    evicted = np.concatenate([d.swap_out, d.recompute]).tolist()
    if evicted:
        assert d.swap_in.shape[0] == 0
        assert min(order.index(e) for e in evicted) >= d.run.shape[0]
        # evicted from the back: every device-resident job behind the last evicted one is
        # evicted, except one the host swap space could not take (swap-only; when jobs had to
        # be recomputed to let anything run, every one counts)
        swappable, room = set(), view.host_kv_free_tokens
        for p in reversed(order):
            if view.kv_location[p] == KV_GPU and (d.recompute.shape[0] or
                                                  view.kv_tokens[p] <= room):
                swappable.add(p)
                room -= int(view.kv_tokens[p])
        first = min(order.index(e) for e in evicted)
        behind = [p for p in order[first:] if p in swappable]
        assert set(behind) <= set(evicted)
    for p in d.swap_in.tolist():
        assert view.kv_location[p] == KV_HOST
        assert order.index(p) >= d.run.shape[0]


def test_proactive_offloading_keeps_a_reserve_and_prefetches_when_room() -> None:
    # device: capacity 300; job 0 (queue 0, running) holds 100; job 1 (queue 5, waiting) holds 180
    base = {
        "now_s": 1.0,
        "input_tokens": [90, 170, 40],
        "arrival_s": [0.0, 0.1, 0.2],
        "prefilled_tokens": [90, 170, 40],
        "generated_tokens": [10, 10, 10],
        "kv_tokens": [100, 180, 50],
        "running": [True, False, False],
        "priority": [0, 5, 1],
        "attained_s": [0.0, 0.0, 0.0],
        "last_run_s": [1.0, 0.9, 0.95],
        "kv_capacity_tokens": 300,
        "max_batch_size": 1,
        "block_tokens": 16,
    }
    full = QueueView.from_columns(**base, kv_location=[KV_GPU, KV_GPU, KV_HOST])
    d = skip_join_mlfq(full)  # 20 free - 1 growth = 19 >= 16 reserve: nothing to evict
    assert d.run.tolist() == [0] and d.swap_out.tolist() == [] and d.swap_in.tolist() == []
    tight = QueueView.from_columns(
        **{**base, "kv_capacity_tokens": 290}, kv_location=[KV_GPU, KV_GPU, KV_HOST]
    )
    d = skip_join_mlfq(tight)  # 10 free - 1 growth < 16 reserve: swap out the back job
    assert d.run.tolist() == [0] and d.swap_out.tolist() == [1] and d.swap_in.tolist() == []
    roomy = QueueView.from_columns(**base, kv_location=[KV_GPU, KV_HOST, KV_HOST])
    # job 1 on the host, 200 free: prefetch job 2 (next in priority order, 50 tokens)
    d = skip_join_mlfq(roomy)
    assert d.run.tolist() == [0] and d.swap_in.tolist() == [2]
    assert skip_join_mlfq(roomy, proactive_offloading=False).swap_in.tolist() == []


@st.composite
def _decoding_views(draw: st.DrawFn) -> QueueView:
    """Every request past its prefill, its KV on the device or the host, no chunking, long
    outputs (nothing completes), a device from full to roomy; no demotion or starvation due."""
    n = draw(st.integers(2, 16))
    kv = np.array(draw(st.lists(st.integers(2, 300), min_size=n, max_size=n)))
    on_host = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    running = ~on_host & np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    used = int(kv[~on_host].sum())
    bs = draw(st.integers(1, 8))
    return QueueView.from_columns(
        now_s=5.0,
        input_tokens=kv - 1,
        arrival_s=np.linspace(0.0, 1.0, n),
        output_tokens_pred=np.full(n, 10**6),
        prefilled_tokens=kv - 1,
        generated_tokens=np.ones(n, dtype=np.int64),
        kv_tokens=kv,
        kv_location=np.where(on_host, KV_HOST, KV_GPU),
        running=running,
        priority=np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))),
        last_run_s=np.where(running, 4.99, 4.0),
        kv_capacity_tokens=used + draw(st.integers(0, 2000)),
        max_batch_size=bs,
        max_batch_tokens=4096,
        block_tokens=draw(st.sampled_from([1, 4, 16])),
        iteration=10,
        previous_decision_iteration=9,
    )


def _after_one_iteration(view: QueueView, d) -> QueueView:
    """The view at the next decision when nothing arrives: the batch ran one decode iteration
    (one more token of KV each, host-resident batched jobs swapped in), prefetched jobs are on
    the device."""
    ran = np.zeros(view.n, dtype=bool)
    ran[d.run] = True
    loc = np.array(view.kv_location)
    loc[d.run] = KV_GPU
    loc[d.swap_in] = KV_GPU
    return QueueView.from_columns(
        now_s=view.now_s + 0.01,
        input_tokens=view.input_tokens,
        arrival_s=view.arrival_s,
        output_tokens_pred=view.output_tokens_pred,
        prefilled_tokens=view.prefilled_tokens,
        generated_tokens=view.generated_tokens + ran,
        kv_tokens=view.kv_tokens + ran,
        kv_location=loc,
        running=ran,
        priority=d.priority,
        attained_s=d.attained_s,
        last_run_s=np.where(ran, view.now_s + 0.01, view.last_run_s),
        kv_capacity_tokens=view.kv_capacity_tokens,
        max_batch_size=view.max_batch_size,
        max_batch_tokens=view.max_batch_tokens,
        block_tokens=view.block_tokens,
        iteration=view.iteration + 1,
        previous_decision_iteration=view.iteration,
    )


@PROPS
@given(_decoding_views())
def test_a_prefetched_job_is_not_swapped_out_again_at_the_next_decision(view: QueueView) -> None:
    # serving.md §1.4 invariant 6 guards against swap ping-pong within a step; across steps, a
    # job prefetched into the last free tokens would be evicted by the batch's very next
    # iteration. With the batch unchanged, the next decision must evict nothing.
    d = skip_join_mlfq(view, base_quantum_s=1e6)
    if d.swap_in.shape[0] == 0:
        return
    nxt = _after_one_iteration(view, d)
    assert nxt.kv_free_tokens >= 0
    d2 = skip_join_mlfq(nxt, base_quantum_s=1e6)
    if sorted(d2.run.tolist()) == sorted(d.run.tolist()):
        assert d2.swap_out.shape[0] == 0 and d2.recompute.shape[0] == 0


def test_prefetch_leaves_room_for_the_next_iteration() -> None:
    # job 0 runs (queue 0) holding 100 of 150 tokens; job 1 (queue 1) waits on the host with 33.
    # Reserve 1 block of 16: this iteration leaves 49 free, 49 - 16 = 33 would take job 1, but
    # the next iteration needs one more token, and then job 1 would be evicted again.
    base = {
        "now_s": 1.0,
        "input_tokens": [90, 30],
        "prefilled_tokens": [90, 30],
        "generated_tokens": [10, 3],
        "kv_tokens": [100, 33],
        "kv_location": [KV_GPU, KV_HOST],
        "running": [True, False],
        "priority": [0, 1],
        "output_tokens_pred": [10**6, 10**6],
        "max_batch_size": 1,
        "block_tokens": 16,
        "iteration": 10,
        "previous_decision_iteration": 9,
    }
    tight = QueueView.from_columns(**base, kv_capacity_tokens=150)
    assert skip_join_mlfq(tight).swap_in.tolist() == []
    roomy = QueueView.from_columns(**base, kv_capacity_tokens=151)
    d = skip_join_mlfq(roomy)
    assert d.swap_in.tolist() == [1]
    assert skip_join_mlfq(_after_one_iteration(roomy, d)).swap_out.tolist() == []


# ----------------------------------------------------------------- 7. degenerate cases
@st.composite
def _fcfs_like_views(draw: st.DrawFn) -> QueueView:
    """Ample KV, no chunking, every started request ran in the last iteration."""
    n = draw(st.integers(1, 20))
    inp = np.array(draw(st.lists(st.integers(1, 500), min_size=n, max_size=n)))
    started = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    gen = np.where(started, np.array(draw(st.lists(st.integers(1, 50), min_size=n, max_size=n))), 0)
    arrival = np.array(draw(st.lists(st.floats(0.0, 9.0), min_size=n, max_size=n)))
    return QueueView.from_columns(
        now_s=10.0,
        input_tokens=inp,
        arrival_s=arrival,
        output_tokens_pred=np.full(n, 60),
        prefilled_tokens=np.where(started, inp, 0),
        generated_tokens=gen,
        kv_tokens=np.where(started, inp + gen, 0),
        kv_location=np.where(started, KV_GPU, 0),
        running=started,
        priority=np.where(started, 0, -1),
        attained_s=np.where(started, draw(st.floats(0.0, 100.0)), 0.0),
        last_run_s=np.where(started, 9.99, arrival),
        est_prefill_s=inp * 1e-4,
        kv_capacity_tokens=10**9,
        max_batch_size=draw(st.integers(1, 24)),
        max_batch_tokens=draw(st.integers(500, 4000)),
    )


@PROPS
@given(_fcfs_like_views())
def test_one_queue_with_a_huge_ratio_behaves_as_fcfs(view: QueueView) -> None:
    d = skip_join_mlfq(view, num_queues=1, ratio=1e9, starvation_threshold_s=1e9)
    assert d.run.tolist() == fcfs(view).run.tolist()
    assert (d.priority == 0).all()
    assert d.reconsider_at_s >= 1e9  # no quantum expires with a single queue


# ----------------------------------------------------------------- 8. metamorphic scaling
@PROPS
@given(queue_views(), st.sampled_from([0.125, 0.25, 0.5, 2.0, 4.0, 8.0]), st.floats(0.001, 0.1))
def test_scaling_service_times_and_quantum_leaves_the_decision_unchanged(
    view: QueueView, c: float, q0: float
) -> None:
    scaled = dataclasses.replace(
        view, est_prefill_s=view.est_prefill_s * c, attained_s=view.attained_s * c
    )
    a = skip_join_mlfq(view, base_quantum_s=q0, starvation_threshold_s=1e9)
    b = skip_join_mlfq(scaled, base_quantum_s=q0 * c, starvation_threshold_s=1e9)
    for f in ("run", "swap_out", "recompute", "swap_in", "reject", "priority"):
        assert getattr(a, f).tolist() == getattr(b, f).tolist(), f
    assert np.array_equal(a.attained_s * c, b.attained_s)


@pytest.mark.parametrize("name", ["mlfq", "skip-join-mlfq"])
def test_registered_mlfq_variants_differ_only_in_skip_join(name: str) -> None:
    v = QueueView.from_columns(
        now_s=0.0, input_tokens=[10, 3000], est_prefill_s=[0.001, 0.3], kv_capacity_tokens=10**6
    )
    expected = [0, 0] if name == "mlfq" else [0, 5]
    assert get_policy(name)(v).priority.tolist() == expected


@PROPS
@given(queue_views(), st.randoms(use_true_random=False))
def test_priority_order_matches_the_five_key_definition(view: QueueView, rnd) -> None:
    prio = np.array([rnd.randint(0, 3) for _ in range(view.n)], dtype=np.int64)
    pos = np.arange(view.n)
    st_ = (view.prefilled_tokens > 0) | (view.generated_tokens > 0) | (view.kv_location != 0)
    st_ |= view.running
    recency = np.where(st_, -view.last_run_s, view.arrival_s)
    ref = np.lexsort((view.request_id, view.arrival_s, recency, ~st_, prio))
    assert priority_order(view, prio, pos).tolist() == ref.tolist()
    # the same when the view already lists requests in arrival order (the simulator's case)
    by_arrival = np.lexsort((view.request_id, view.arrival_s))
    sorted_view = dataclasses.replace(
        view, **{c: getattr(view, c)[by_arrival] for c in view.column_names()}
    )
    recency_s = recency[by_arrival]
    ref_s = np.lexsort(
        (
            sorted_view.request_id,
            sorted_view.arrival_s,
            recency_s,
            ~st_[by_arrival],
            prio[by_arrival],
        )
    )
    assert priority_order(sorted_view, prio[by_arrival], pos).tolist() == ref_s.tolist()


# ----------------------------------------------------------------- 5. starvation, end to end
def test_through_the_simulator_promotion_happens_only_once_per_period_of_iterations() -> None:
    from schedlab.costmodel.base import ConstantIterationCost
    from schedlab.records import Workload
    from schedlab.sim import InstanceSpec, simulate

    period, slot, thr = 50, 0.05, 1.0
    calls: list[tuple[QueueView, object]] = []

    def recorded(view: QueueView, /, **kw):
        d = skip_join_mlfq(view, **kw)
        calls.append((view, d))
        return d

    n = 30
    w = Workload(
        arrival_s=np.linspace(0.0, 3.0, n),
        input_tokens=np.full(n, 8),
        output_tokens=np.arange(n) * 7 % 90 + 20,
    )
    spec = InstanceSpec(cost=ConstantIterationCost(slot_s=slot), max_batch_size=4)
    params = {"starvation_period_iterations": period, "starvation_threshold_s": thr}
    res = simulate(w, spec, recorded, policy_params=params)
    assert res.summary()["completed"] == n
    prev_it, promotions, last_now, max_gap = -1, 0, 0.0, 0.0
    for view, d in calls:
        # the simulator's counters: previous_decision_iteration is the last call's iteration
        assert view.previous_decision_iteration == prev_it and view.iteration >= prev_it
        prev_it = view.iteration
        max_gap, last_now = max(max_gap, view.now_s - last_now), view.now_s
        promoted = ~view.running & (view.priority > 0) & (d.priority == 0)
        if promoted.any():
            assert _crosses(view, period)
            promotions += int(promoted.sum())
            # invariant 5: promoted within 3 s + period x iteration time (+ the decision's wait)
            waited = view.now_s - view.last_run_s[promoted]
            assert (waited <= thr + period * slot + max_gap + 1e-9).all()
    assert promotions > 0  # the workload does starve jobs, so the rule was exercised
    checks = sum(_crosses(v, period) for v, _ in calls)
    assert checks <= calls[-1][0].iteration // period + 1 < len(calls)


# ----------------------------------------------------------------- prefill gate (serving.md §1.1)
@PROPS
@given(queue_views())
def test_no_prefill_job_runs_while_the_host_swap_space_is_nearly_full(view: QueueView) -> None:
    d = skip_join_mlfq(view)
    prefill = view.prefilled_tokens < view.input_tokens
    open_gate = skip_join_mlfq(view, prefill_gate_host_fraction=0.0)
    if not _gate_closed(view) or prefill[d.run].any():
        # an open gate, or one kept open because nothing else could run
        assert d.run.tolist() == open_gate.run.tolist()
    if open_gate.run.shape[0]:  # the gate never stalls an instance that could make progress
        assert d.run.shape[0] > 0


def _gate_view(host_free: int) -> QueueView:
    # job 0: a new prompt in queue 0; job 1: decoding in queue 3, behind it in priority order
    return QueueView.from_columns(
        now_s=1.0, input_tokens=[50, 20], arrival_s=[0.5, 0.0], prefilled_tokens=[0, 20],
        generated_tokens=[0, 4], kv_tokens=[0, 24], kv_location=[0, KV_GPU],
        running=[False, True], priority=[0, 3], est_prefill_s=[0.005, 0.002],
        kv_capacity_tokens=10_000, host_kv_free_tokens=host_free, host_kv_capacity_tokens=1000,
    )


def test_prefill_gate_holds_back_prompts_without_blocking_the_jobs_behind() -> None:
    assert skip_join_mlfq(_gate_view(host_free=500)).run.tolist() == [0, 1]
    # 9.9% of the host swap space free: the prompt waits, the decode behind it runs
    assert skip_join_mlfq(_gate_view(host_free=99)).run.tolist() == [1]
    assert skip_join_mlfq(_gate_view(host_free=100)).run.tolist() == [0, 1]
    off = skip_join_mlfq(_gate_view(host_free=0), prefill_gate_host_fraction=0.0)
    assert off.run.tolist() == [0, 1]
    assert mlfq(_gate_view(host_free=99)).run.tolist() == [1]
    # nothing but prompts to run: the gate stays open rather than stall the instance
    only_prompt = QueueView.from_columns(
        now_s=1.0, input_tokens=[50], priority=[0], est_prefill_s=[0.005],
        kv_capacity_tokens=10_000, host_kv_free_tokens=99, host_kv_capacity_tokens=1000,
    )
    assert skip_join_mlfq(only_prompt).run.tolist() == [0]
    with pytest.raises(ValueError, match="prefill_gate_host_fraction"):
        skip_join_mlfq(_gate_view(host_free=99), prefill_gate_host_fraction=1.5)
