"""Mooncake's Conductor (serving.md §2.4): argmin placement, rational transfers, monotone
estimates, sound admission with the failing estimate as the reason, valid placements, and
clear errors for bad parameters."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract.placement import (
    DecodeStepModel,
    InvalidPlacement,
    Placement,
    PlacementView,
    validate_placement,
)
from schedlab.policies import get_placement
from schedlab.policies.mooncake import (
    ADMISSIONS,
    PREFILL_RULES,
    cache_aware_prefill,
    decode_step_at,
    kvcache_centric_prefill,
    least_tbt_decode,
    load_balancing_prefill,
    mooncake,
    random_prefill,
)
from schedlab.testing import check_placement, placement_views

PROPS = settings(max_examples=150, deadline=None, database=None, derandomize=True)
THRESHOLDS = st.sampled_from([1.0, 1.2, 2.0, 4.0, math.inf])


def _estimates(view: PlacementView, thr: float) -> np.ndarray:
    """Algorithm 1's estimate per instance, written out one instance at a time."""
    out = []
    for p in range(view.n_prefill):
        local, best = int(view.prefix_tokens[p]), view.best_prefix_tokens
        ratio = math.inf if local == 0 and best > 0 else (1.0 if best == 0 else best / local)
        if ratio > thr:
            out.append(view.transfer_s[p] + view.queue_s[p] + view.prefill_best_s[p])
        else:
            out.append(view.queue_s[p] + view.prefill_s[p])
    return np.array(out)


@PROPS
@given(placement_views(), THRESHOLDS)
def test_kvcache_centric_takes_the_argmin_of_algorithm_1(view: PlacementView, thr: float) -> None:
    est = _estimates(view, thr)
    c = kvcache_centric_prefill(view, balance_threshold=thr)
    assert c.instance == int(np.argmin(est))  # ties to the lowest index
    assert c.ttft_est_s == pytest.approx(float(est.min()))


@PROPS
@given(placement_views(), THRESHOLDS)
def test_a_transfer_is_rational_and_pulls_the_missing_prefix(view: PlacementView,
                                                            thr: float) -> None:
    c = kvcache_centric_prefill(view, balance_threshold=thr)
    local = int(view.prefix_tokens[c.instance])
    if c.transfer_tokens:
        assert c.transfer_tokens == view.best_prefix_tokens - local > 0
        assert c.transfer_from == view.best_holder != c.instance
        assert view.best_prefix_tokens > thr * local  # the balancing branch was taken
        assert c.ttft_est_s == pytest.approx(float(view.transfer_s[c.instance]
                                                   + view.queue_s[c.instance]
                                                   + view.prefill_best_s[c.instance]))
    else:
        assert c.transfer_from == -1


@PROPS
@given(placement_views())
def test_cache_aware_is_kvcache_centric_without_transfers(view: PlacementView) -> None:
    assert cache_aware_prefill(view) == kvcache_centric_prefill(view, balance_threshold=math.inf)


@PROPS
@given(placement_views(), st.data())
def test_less_queue_or_a_longer_local_prefix_never_raises_an_estimate(
    view: PlacementView, data: st.DataObject
) -> None:
    """Monotonicity (invariant 5): lowering one instance's queue time or local prefill time
    (more cached prefix) never raises the estimated TTFT of the choice."""
    i = data.draw(st.integers(0, view.n_prefill - 1))
    cut = data.draw(st.floats(0.0, 1.0))
    lighter = dataclasses.replace(
        view, queue_s=_ro(view.queue_s * np.where(np.arange(view.n_prefill) == i, cut, 1.0)),
        prefill_s=_ro(view.prefill_s * np.where(np.arange(view.n_prefill) == i, cut, 1.0)))
    for rule in ("kvcache-centric", "cache-aware"):
        fn = PREFILL_RULES[rule]
        assert fn(lighter).ttft_est_s <= fn(view).ttft_est_s + 1e-12


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.flags.writeable = False
    return a


@PROPS
@given(placement_views())
def test_load_balancing_and_random_choices(view: PlacementView) -> None:
    lb = load_balancing_prefill(view)
    assert view.queued_requests[lb.instance] == view.queued_requests.min()
    assert lb.instance == int(np.flatnonzero(view.queued_requests == view.queued_requests.min())[0])
    r = random_prefill(view, seed=3)
    assert 0 <= r.instance < view.n_prefill and r == random_prefill(view, seed=3)
    for c in (lb, r):
        assert c.ttft_est_s == pytest.approx(float(view.queue_s[c.instance]
                                                   + view.prefill_s[c.instance]))


def test_random_placement_spreads_requests_evenly() -> None:
    v = PlacementView.from_columns(now_s=0.0, input_tokens=10, prefix_tokens=[0] * 4,
                                   decode_batch=[0])
    picks = [random_prefill(dataclasses.replace(v, request_id=r)).instance for r in range(4000)]
    counts = np.bincount(picks, minlength=4)
    assert counts.min() > 900 and counts.max() < 1100


@PROPS
@given(placement_views())
def test_least_tbt_decode_is_the_least_step_among_instances_with_room(view: PlacementView) -> None:
    d, tbt = least_tbt_decode(view)
    need = view.input_tokens + math.ceil(view.output_tokens_pred)
    room = view.decode_kv_free_tokens >= need
    if not room.any():
        assert (d, tbt) == (-1, math.inf)
        return
    placed = [int((view.incoming_instance == i).sum()) for i in range(view.n_decode)]
    ctx = [int(view.incoming_context_tokens[view.incoming_instance == i].sum())
           for i in range(view.n_decode)]
    steps = np.array([view.decode_step.step_s(view.decode_batch[i] + placed[i] + 1,
                                              view.decode_context_tokens[i] + ctx[i]
                                              + view.input_tokens)
                      for i in range(view.n_decode)])
    assert room[d] and tbt == pytest.approx(float(steps[room].min()))
    assert d == int(np.flatnonzero(room & np.isclose(steps, steps[room].min(), rtol=1e-12,
                                                       atol=0))[0])


@PROPS
@given(placement_views(), st.sampled_from(ADMISSIONS), st.sampled_from(list(PREFILL_RULES)),
       st.floats(0.5, 60.0), st.floats(0.01, 0.2))
def test_admission_is_sound_and_names_the_failing_estimate(
    view: PlacementView, admission: str, rule: str, slo_ttft: float, slo_tbt: float
) -> None:
    """Invariant 3: an accepted request's estimates are within the SLOs its admission checks;
    a rejection names the first check that failed, in the order KV room, TTFT, decode load."""
    kw = dict(prefill=rule, admission=admission, slo_ttft_s=slo_ttft, slo_tbt_s=slo_tbt)
    p = mooncake(view, **kw)
    validate_placement(view, p)
    choice = PREFILL_RULES[rule](view)
    d, tbt_now = least_tbt_decode(view)
    assert p.ttft_est_s == pytest.approx(choice.ttft_est_s)
    at = view.now_s + choice.ttft_est_s
    predicted = (float(decode_step_at(view, at, decode_duration_s=34.3, join=d).mean())
                 if d >= 0 else math.inf)
    if d < 0:
        expected = "decode_kv"
    elif choice.ttft_est_s > slo_ttft:
        expected = "ttft_slo"
    elif admission == "early" and tbt_now > slo_tbt:
        expected = "tbt_slo"
    elif admission == "early-prediction" and predicted > slo_tbt:
        expected = "predicted_tbt_slo"
    else:
        expected = None
    assert p.reject_reason == expected
    if p.accepted:
        assert (p.prefill, p.decode) == (choice.instance, d)
        assert p.ttft_est_s <= slo_ttft
        assert p.handoff_tbt_slo_s == slo_tbt  # the decode instance double-checks
        if admission != "late":
            assert mooncake(view, **kw, recheck_at_handoff=False).handoff_tbt_slo_s == math.inf
        if admission == "early":
            assert p.tbt_est_s == tbt_now <= slo_tbt
        if admission == "early-prediction":
            assert p.tbt_est_s == pytest.approx(predicted) and predicted <= slo_tbt


def test_early_prediction_sees_the_load_at_the_hand_off() -> None:
    """Early rejection judges the decode load placed now; the prediction (v3 §7.4) judges the
    load when the request would arrive there: requests about to finish no longer count, and
    requests still on their way by then count only once they have joined."""
    step = DecodeStepModel(base_s=0.02, per_request_s=0.01)

    def view(**kw: object) -> PlacementView:
        return PlacementView.from_columns(now_s=100.0, input_tokens=1000, prefix_tokens=[0],
                                          prefill_s=[2.0], decode_step=step, **kw)

    leaving = view(decode_batch=[9], decoding_since_s=[70.0] * 9)  # done by 102 s (t_d 30 s)
    assert mooncake(leaving, admission="early").reason == "tbt_slo"
    p = mooncake(leaving, admission="early-prediction", decode_duration_s=30.0)
    assert p.accepted and p.tbt_est_s == pytest.approx(0.03)
    late = mooncake(leaving, admission="late")
    assert late.accepted and late.handoff_tbt_slo_s == 0.1
    coming = view(decode_batch=[0], incoming_instance=[0] * 9, incoming_join_s=[101.0] * 9,
                  incoming_context_tokens=[1000] * 9)
    p = mooncake(coming, admission="early-prediction")
    assert p.reason == "predicted_tbt_slo" and p.tbt_est_s == pytest.approx(0.12)
    later = view(decode_batch=[0], incoming_instance=[0] * 9, incoming_join_s=[150.0] * 9,
                 incoming_context_tokens=[1000] * 9)
    assert mooncake(later, admission="early-prediction").accepted
    assert mooncake(later, admission="early").reason == "tbt_slo"


def test_decode_step_at_counts_who_is_live_at_that_time() -> None:
    v = PlacementView.from_columns(
        now_s=10.0, input_tokens=100, prefix_tokens=[0], decode_batch=[2, 1],
        decode_context_tokens=[300, 50], decoding_since_s=[0.0, 8.0, 9.5],
        decoding_context_tokens=[100, 200, 50], incoming_instance=[1], incoming_join_s=[12.0],
        incoming_context_tokens=[70],
        decode_step=DecodeStepModel(base_s=0.0, per_request_s=1.0, per_context_token_s=0.001))
    # at 11 s with t_d = 5 s: on 0 only the one that joined at 8 s; on 1 the one from 9.5 s
    assert decode_step_at(v, 11.0, decode_duration_s=5.0).tolist() == pytest.approx([1.2, 1.05])
    # at 13 s the one from 8 s has left (8 + 5 is not after 13) and the new request joins 0;
    # the incoming one has joined instance 1
    assert decode_step_at(v, 13.0, decode_duration_s=5.0, join=0).tolist() == pytest.approx(
        [1.1, 2.12])


@pytest.mark.parametrize("admission", ADMISSIONS)
@pytest.mark.parametrize("rule", list(PREFILL_RULES))
def test_check_placement_passes(admission: str, rule: str) -> None:
    check_placement("mooncake", max_examples=40, admission=admission, prefill=rule)


def test_check_placement_catches_a_broken_policy() -> None:
    def off_by_one(view: PlacementView, /) -> Placement:
        return Placement(prefill=view.n_prefill, decode=0)

    with pytest.raises(AssertionError, match="instance out of range"):
        check_placement(off_by_one, max_examples=5)

    def mutating(view: PlacementView, /) -> Placement:
        object.__setattr__(view, "input_tokens", view.input_tokens + 1)
        return Placement(prefill=0, decode=0)

    with pytest.raises(AssertionError, match="input mutated"):
        check_placement(mutating, max_examples=5)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"prefill": "cache-awar"}, "cache-aware"),
        ({"admission": "eager"}, "early"),
        ({"balance_threshold": 0.5}, "balance_threshold"),
        ({"balance_threshold": float("nan")}, "balance_threshold"),
        ({"slo_ttft_s": -1.0}, "slo_ttft_s"),
        ({"slo_tbt_s": 0.0}, "slo_tbt_s"),
        ({"decode_duration_s": float("inf")}, "decode_duration_s"),
        ({"prefill": "random", "seed": -2}, "seed"),
        ({"recheck_at_handoff": 1}, "recheck_at_handoff"),
    ],
)
def test_bad_parameters_name_the_field(kw: dict, field: str) -> None:
    v = PlacementView.from_columns(now_s=0.0, input_tokens=10, prefix_tokens=[0],
                                   decode_batch=[0])
    with pytest.raises(ValueError, match=field):
        mooncake(v, **kw)


def test_placement_records_refuse_malformed_fields() -> None:
    with pytest.raises(ValueError, match="reject_reason"):
        Placement(prefill=-1, decode=-1, reject_reason="busy")
    with pytest.raises(ValueError, match=r"Placement\.prefill"):
        Placement(prefill=1.5, decode=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"DecodeStepModel\.base_s"):
        DecodeStepModel(base_s=float("nan"))
    with pytest.raises(ValueError, match="queue_s has 1 entries, expected 2"):
        PlacementView.from_columns(now_s=0.0, input_tokens=10, prefix_tokens=[0, 0],
                                   queue_s=[0.0], decode_batch=[0])
    v = PlacementView.from_columns(now_s=0.0, input_tokens=10, prefix_tokens=[0, 0],
                                   decode_batch=[0])
    with pytest.raises(InvalidPlacement, match="rejected request placed"):
        validate_placement(v, Placement(prefill=0, decode=0, reject_reason="ttft_slo"))
    with pytest.raises(InvalidPlacement, match="malformed transfer"):
        validate_placement(v, Placement(prefill=0, decode=0, transfer_from=0, transfer_tokens=5))


def test_registry_and_unknown_names() -> None:
    assert get_placement("mooncake") is mooncake
    with pytest.raises(ValueError, match="Unknown placement policy 'moon'"):
        get_placement("moon")
