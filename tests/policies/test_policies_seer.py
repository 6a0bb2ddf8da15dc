"""Seer's divided-rollout schedulers: the digest's invariants (rollout-anns-serverless.md §1.8)
as property tests on the divided-rollout contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract.divided import Chunks, DividedView, InvalidChunks, validate_chunks
from schedlab.policies import ROLLOUT_SCHEDULERS, get_rollout_scheduler
from schedlab.policies.seer import (
    group_estimates,
    group_round_robin_all,
    scheduling_order,
    seer,
    select_instance,
)
from schedlab.testing import check_divided, divided_views

FAST = settings(max_examples=60, deadline=None, database=None)


@pytest.mark.parametrize("name", sorted(ROLLOUT_SCHEDULERS))
def test_check_divided_every_registered_scheduler(name):
    check_divided(name, max_examples=40)


def test_check_divided_variants_and_failures():
    check_divided("seer", max_examples=20, starvation_eps=0.5, prior="predictor")

    def double(view, /):
        w = view.waiting
        if w.shape[0] == 0:
            return Chunks.none()
        return Chunks(request=np.array([w[0], w[0]]), instance=np.zeros(2, np.int64),
                      budget=np.ones(2, np.int64))

    with pytest.raises(AssertionError, match="request twice"):
        check_divided(double, max_examples=30)


def test_unknown_scheduler_lists_close_matches():
    with pytest.raises(ValueError, match="'seer'"):
        get_rollout_scheduler("sear")


def test_validate_chunks_rules():
    v = DividedView.from_columns(input_tokens=[10, 10, 10], n_instances=2,
                                 max_tokens=[100] * 3, done=[False, True, False],
                                 in_flight=[False, False, True])
    ok = Chunks(request=np.array([0]), instance=np.array([1]), budget=np.array([100]))
    validate_chunks(v, ok)
    for bad, rule in (
        (Chunks(request=np.array([1]), instance=np.array([0]), budget=np.array([5])),
         "not waiting"),
        (Chunks(request=np.array([2]), instance=np.array([0]), budget=np.array([5])),
         "not waiting"),
        (Chunks(request=np.array([0]), instance=np.array([2]), budget=np.array([5])),
         "instance out of range"),
        (Chunks(request=np.array([0]), instance=np.array([0]), budget=np.array([0])),
         "budget out of range"),
        (Chunks(request=np.array([0]), instance=np.array([0]), budget=np.array([5]),
                pull_from=np.array([0])), "malformed pull"),
        (Chunks(request=np.array([7]), instance=np.array([0]), budget=np.array([5])),
         "request out of range"),
    ):
        with pytest.raises(InvalidChunks, match=rule):
            validate_chunks(v, bad)
    with pytest.raises(ValueError, match=r"Chunks\.budget"):
        Chunks(request=np.array([0]), instance=np.array([0]), budget=np.array([1.5]))
    with pytest.raises(ValueError, match="group_on_instance"):
        DividedView.from_columns(input_tokens=[1], n_instances=2,
                                 group_on_instance=np.zeros((1, 3), bool))


# ------------------------------------------------------------------ context-aware scheduling
@FAST
@given(divided_views())
def test_estimates_are_the_longest_finished_sibling_or_the_limit(view):
    est = group_estimates(view)
    for g in range(est.shape[0]):
        members = view.group_index == g
        fin = members & view.done
        if fin.any():
            assert est[g] == view.generated_tokens[fin].max()  # invariant 5
            assert est[g] >= view.generated_tokens[fin].max()
        else:
            assert est[g] == view.max_tokens[members].max()


@FAST
@given(divided_views())
def test_probes_first_then_longest_estimate_first(view):
    order = scheduling_order(view)
    assert sorted(order.tolist()) == view.waiting.tolist()
    probe = view.is_probe[order]
    n_probes = int(probe.sum())
    assert probe[:n_probes].all()  # invariant 4: no other request before a waiting probe
    gen = view.generated_tokens[order[:n_probes]]
    assert (np.diff(gen) >= 0).all()  # smallest generated first
    est = group_estimates(view)[view.group_index[order[n_probes:]]]
    assert (np.diff(est) <= 0).all()  # invariant 6: longest estimate first


@FAST
@given(divided_views(), st.sampled_from([None, 64, 512, 8192]))
def test_seer_is_memory_aware_and_within_budgets(view, chunk):
    c = seer(view, chunk_tokens=chunk, starvation_eps=0.0)
    validate_chunks(view, c)
    need = view.kv_need_tokens(c)
    for i in range(view.n_instances):  # invariant 3: the chunks' largest KV fits
        on = c.instance == i
        assert need[on].sum() <= max(view.kv_free_tokens[i], 0) or not on.any()
        assert on.sum() <= max(view.slots_free[i], 0)
    left = view.max_tokens[c.request] - view.generated_tokens[c.request]
    assert (c.budget == (left if chunk is None else np.minimum(left, chunk))).all()
    # dispatched in scheduling order, stopping at the first that fits nowhere
    order = scheduling_order(view).tolist()
    assert c.request.tolist() == order[: c.request.shape[0]]


@FAST
@given(divided_views(), st.integers(0, 50), st.integers(0, 2000))
def test_instance_choice_rule(view, threshold, gap):
    """Invariant 7: the chosen instance has room; within the spread threshold it holds the most
    of the context; beyond it, it is the least loaded, pulling from the best holder when the
    gap exceeds the threshold."""
    w = view.waiting
    if w.shape[0] == 0:
        return
    r = int(w[0])
    need = int(view.context_tokens([r])[0]) + 1
    i, pull = select_instance(view, r, need, in_flight=view.in_flight_requests,
                              kv_free=view.kv_free_tokens, slots_free=view.slots_free,
                              imbalance_threshold=threshold, pull_gap_tokens=gap)
    ok = (view.kv_free_tokens >= need) & (view.slots_free > 0)
    if not ok.any():
        assert (i, pull) == (-1, -1)
        return
    assert ok[i]
    hit = view.hit_tokens(r)
    load = view.in_flight_requests
    if load.max() - load.min() <= threshold:
        assert hit[i] == hit[ok].max() and pull == -1
    else:
        assert load[i] == load[ok].min()
        best = int(np.argmax(hit))
        assert (pull == best) == (hit[best] - hit[i] > gap and best != i)


def test_seer_is_deterministic_for_a_seed_and_uses_the_decision_counter():
    v = DividedView.from_columns(input_tokens=[10] * 40, group_id=np.repeat(np.arange(10), 4),
                                 n_instances=4, served_s=np.arange(40.0))
    a = seer(v, starvation_eps=0.5, seed=3)
    b = seer(v, starvation_eps=0.5, seed=3)
    assert np.array_equal(a.request, b.request)
    c = seer(DividedView.from_columns(input_tokens=[10] * 40, n_instances=4,
                                      group_id=np.repeat(np.arange(10), 4),
                                      served_s=np.arange(40.0), decision=1),
             starvation_eps=0.5, seed=3)
    assert not np.array_equal(a.request, c.request)


def test_group_round_robin_sends_everything_whole():
    v = DividedView.from_columns(input_tokens=[5] * 6, group_id=[3, 3, 8, 8, 1, 1],
                                 n_instances=2, max_tokens=[100] * 6)
    c = group_round_robin_all(v)
    assert c.request.tolist() == list(range(6))
    assert c.instance.tolist() == [0, 0, 1, 1, 0, 0]
    assert (c.budget == 100).all()


def test_bad_parameters_name_the_field():
    v = DividedView.from_columns(input_tokens=[5], n_instances=1)
    for params, field in (({"chunk_tokens": 0}, "chunk_tokens"), ({"order": "lifo"}, "order"),
                          ({"prior": "oracle"}, "prior"), ({"starvation_eps": 2.0},
                                                           "starvation_eps"),
                          ({"imbalance_threshold": -1}, "imbalance_threshold"),
                          ({"seed": -1}, "seed")):
        with pytest.raises(ValueError, match=field):
            seer(v, **params)
