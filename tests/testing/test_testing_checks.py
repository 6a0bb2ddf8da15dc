"""check_policy / check_router catch each kind of broken policy, naming the check, with a
readable counterexample, and pass correct ones, ours or a user's (plans or full decisions)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import strategies as st

from schedlab.contract import (
    KV_GPU,
    BatchDecision,
    InvalidDecision,
    Plan,
    QueueView,
    RouterView,
    request_costs,
    validate_decision,
)
from schedlab.policies import get_policy
from schedlab.testing import POLICY_CHECKS, check_policy, check_router, policy_checks


def ignores_kv(view: QueueView) -> BatchDecision:
    return user_policy(view, check_kv=False)


def ignores_batch_size(view: QueueView) -> BatchDecision:
    return user_policy(view, extra_slots=1)


def duplicates(view: QueueView) -> BatchDecision:
    return BatchDecision(run=np.zeros(2 if view.n else 0, dtype=np.int64))


def out_of_range(view: QueueView) -> BatchDecision:
    return BatchDecision(run=np.array([view.n]))


def mutates(view: QueueView) -> BatchDecision:
    view.priority.flags.writeable = True  # the view's arrays own their data, so this works
    view.priority[:] = 7
    view.priority.flags.writeable = False
    return user_policy(view)


_calls = itertools.count()


def stateful(view: QueueView) -> BatchDecision:
    d = user_policy(view)
    return BatchDecision(
        run=d.run,
        reject=d.reject,
        reject_reason=d.reject_reason,
        reconsider_at_s=view.now_s + 1 + next(_calls),
    )


def wakes_in_the_past(view: QueueView) -> BatchDecision:
    d = user_policy(view)
    return BatchDecision(
        run=d.run, reject=d.reject, reject_reason=d.reject_reason, reconsider_at_s=view.now_s
    )


def idles(view: QueueView) -> BatchDecision:
    return BatchDecision(run=np.zeros(0, dtype=np.int64))


def only_drops_kv(view: QueueView) -> BatchDecision:
    holders = np.flatnonzero(view.kv_tokens > 0)
    if holders.shape[0] == 0:
        return user_policy(view)
    return BatchDecision(run=np.zeros(0, dtype=np.int64), recompute=holders[-1:])


def swaps_in_device_kv(view: QueueView) -> BatchDecision:
    d = user_policy(view)
    gpu = np.flatnonzero(view.kv_location == KV_GPU)
    gpu = gpu[~np.isin(gpu, np.concatenate([d.run, d.recompute, d.reject]))]
    return BatchDecision(run=d.run, swap_in=gpu, reject=d.reject, reject_reason=d.reject_reason)


def user_policy(view: QueueView, *, check_kv: bool = True, extra_slots: int = 0) -> BatchDecision:
    """A correct, simple user policy: run the cheapest requests first while they fit without
    evicting anything; reject what can never fit; when nothing fits, drop the last holder's KV
    and ask to decide again shortly.
    (``check_kv=False`` and ``extra_slots`` break it on purpose.)"""
    c = request_costs(view)
    never = np.flatnonzero(
        (view.kv_tokens + c.growth > view.kv_capacity_tokens) | (c.step > view.max_batch_tokens)
    )
    by_cost = np.argsort(c.demand, kind="stable")
    ok = by_cost[~np.isin(by_cost, never)]
    fits = np.cumsum(c.step[ok]) <= view.max_batch_tokens
    if check_kv:
        fits &= np.cumsum(c.demand[ok]) <= view.kv_free_tokens
    k = int(np.argmin(fits)) if not fits.all() else ok.shape[0]
    run = ok[: min(k, view.max_batch_size + extra_slots)]
    recompute = np.zeros(0, dtype=np.int64)
    wake = float("inf")
    if run.shape[0] == 0 and ok.shape[0]:
        holders = ok[view.kv_tokens[ok] > 0]
        recompute = holders[-1:]
        wake = view.now_s + 1e-3  # decide again once the KV is dropped
    reasons = tuple("too big" for _ in never)
    return BatchDecision(
        run=run, recompute=recompute, reject=never, reject_reason=reasons, reconsider_at_s=wake
    )


def plan_repeats_a_position(view: QueueView) -> Plan:
    return Plan(order=np.zeros(2 if view.n else 0, dtype=np.int64))


def plan_with_short_mask(view: QueueView) -> Plan:
    return Plan(order=np.arange(view.n), evictable=np.ones(view.n + 1, dtype=bool))


def returns_a_list(view: QueueView) -> list:
    return list(range(view.n))


def shortest_prompt_first(view: QueueView, /) -> Plan:
    """The README's user policy: a plan, the engine forms the batch."""
    order = np.argsort(view.input_tokens - view.prefilled_tokens, kind="stable")
    return Plan(order=order, evictable=True)


def falsely_static_srpt(view: QueueView, /) -> Plan:
    """SRPT claiming a static order: the newcomer with the least work would jump ahead."""
    return dataclasses.replace(get_policy("srpt")(view), static=True)


def least_work_first(view: QueueView, /) -> Plan:
    """The README's false claim: a newcomer with little work would rank ahead."""
    left = view.output_tokens_pred - view.generated_tokens
    return Plan(order=np.argsort(left, kind="stable"), evictable=True, static=True)


def falsely_static_fcfs(view: QueueView, /) -> Plan:
    """FCFS claiming static even when admitted requests arrived after waiting ones (admission
    then reorders the started group)."""
    return dataclasses.replace(get_policy("fcfs")(view), static=True)


@pytest.mark.parametrize(
    ("policy", "check", "rule"),
    [
        (ignores_kv, "check_valid_answer", "KV capacity exceeded"),
        (ignores_batch_size, "check_valid_answer", "batch too large"),
        (duplicates, "check_valid_answer", "duplicate positions"),
        (out_of_range, "check_valid_answer", "position out of range"),
        (plan_repeats_a_position, "check_valid_answer", "duplicate positions"),
        (plan_with_short_mask, "check_valid_answer", "malformed answer"),
        (returns_a_list, "check_answer_type", "malformed answer"),
        (mutates, "check_pure", "input mutated"),
        (stateful, "check_deterministic", "not deterministic"),
        (wakes_in_the_past, "check_valid_answer", "reconsider_at_s not in the future"),
        (idles, "check_progress", "no progress"),
        (only_drops_kv, "check_progress", "no progress"),
        (swaps_in_device_kv, "check_valid_answer", "swap_in of KV not on the host"),
        (falsely_static_srpt, "check_static_plan", "newcomer ranked ahead"),
        (least_work_first, "check_static_plan", "newcomer ranked ahead"),
    ],
)
def test_check_policy_names_the_check_that_fails(policy, check: str, rule: str) -> None:
    with pytest.raises(AssertionError) as err:
        check_policy(policy, shrink=False)  # the default 50 examples
    msg = str(err.value)
    assert msg.startswith(f"{check} failed for {policy.__name__}: {rule}"), msg
    assert "pos id arrival input" in msg  # the counterexample view, as a table
    # no notes (hypothesis's falsifying example repeats the table; Python 3.11.2's doctest would
    # compare its last line instead of the message)
    assert not getattr(err.value, "__notes__", None)


def test_counterexamples_are_shrunk_to_a_small_view() -> None:
    with pytest.raises(AssertionError, match="duplicate positions") as err:
        check_policy(duplicates, max_examples=50)
    lines = str(err.value).splitlines()
    assert lines[3].startswith("pos id arrival")
    assert len(lines[4:]) == 1  # one request suffices: hypothesis shrank the view to it


@pytest.mark.parametrize("policy", [user_policy, shortest_prompt_first])
def test_a_correct_user_policy_passes(policy) -> None:
    check_policy(policy, max_examples=100)


def test_each_named_check_runs_alone() -> None:
    checks = policy_checks(duplicates, max_examples=30, shrink=False)
    assert [c.__name__ for c in checks] == [c.__name__ for c in POLICY_CHECKS]
    failed = []
    for c in checks:
        try:
            c()
        except AssertionError:
            failed.append(c.__name__)
    assert failed == ["check_valid_answer"]


def test_a_false_static_claim_on_one_view_is_caught() -> None:
    # waiting request 0 arrived before admitted request 1: admitting 0 reorders FCFS's order
    view = QueueView.from_columns(
        now_s=1.0, input_tokens=[10, 10], arrival_s=[0.0, 0.5], output_tokens_pred=[5, 5],
        prefilled_tokens=[0, 10], generated_tokens=[0, 2], kv_tokens=[0, 12],
        kv_location=[0, KV_GPU], running=[False, True], kv_capacity_tokens=1000)
    assert get_policy("fcfs")(view).static is False  # FCFS itself does not claim it here
    with pytest.raises(AssertionError, match=r"check_static_plan failed .*order changed"):
        check_policy(falsely_static_fcfs, views=st.just(view), max_examples=1, shrink=False)


def test_params_are_passed_to_the_policy() -> None:
    def needs_param(view: QueueView, /, *, factor: int) -> BatchDecision:
        assert factor == 3
        return user_policy(view)

    check_policy(needs_param, max_examples=10, factor=3)
    with pytest.raises(TypeError):
        check_policy(needs_param, max_examples=10, shrink=False)


def test_validate_decision_rejects_conflicting_moves() -> None:
    v = QueueView.from_columns(
        now_s=0.0,
        input_tokens=[4, 4],
        prefilled_tokens=[4, 4],
        generated_tokens=[1, 1],
        kv_tokens=[5, 5],
        kv_location=[KV_GPU, KV_GPU],
        kv_capacity_tokens=100,
    )
    with pytest.raises(InvalidDecision, match=r"duplicate positions: run, .* repeats \[0\]"):
        validate_decision(v, BatchDecision(run=np.array([0]), swap_out=np.array([0])))
    validate_decision(v, BatchDecision(run=np.array([0]), swap_out=np.array([1])))


def test_a_partial_chunk_without_chunking_breaks_the_one_rule() -> None:
    """The review's disagreement: a 0-token or partial chunk with chunked prefill off is invalid
    for check_policy exactly as for the simulator (both call validate_decision)."""
    v = QueueView.from_columns(now_s=0.0, input_tokens=[8], kv_capacity_tokens=100)
    for chunk in (0, 4):
        with pytest.raises(InvalidDecision, match="prefill chunk out of range"):
            validate_decision(v, BatchDecision(run=[0], prefill_chunk=[chunk]))
    validate_decision(v, BatchDecision(run=[0], prefill_chunk=[8]))


def _bad_router(view: RouterView) -> np.ndarray:
    return np.full(view.request_id.shape[0], view.n_instances)


def _router_with_memory(view: RouterView, _seen: list = []) -> np.ndarray:  # noqa: B006
    _seen.append(1)
    return np.full(view.request_id.shape[0], len(_seen) % view.n_instances)


def test_check_router_catches_broken_routers() -> None:
    with pytest.raises(AssertionError, match="instance out of range"):
        check_router(_bad_router, max_examples=20, shrink=False)
    with pytest.raises(AssertionError, match="not deterministic"):
        check_router(_router_with_memory, max_examples=50, shrink=False)
