"""check_policy / check_router catch each kind of broken policy, with a readable counterexample,
and pass correct ones, ours or a user's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from schedlab.policies.base import KV_GPU, BatchDecision, QueueView, RouterView
from schedlab.policies.kv import request_costs
from schedlab.testing import check_decision, check_policy, check_purity, check_router


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


@pytest.mark.parametrize(
    ("policy", "rule"),
    [
        (ignores_kv, "KV capacity exceeded"),
        (ignores_batch_size, "batch too large"),
        (duplicates, "duplicate positions"),
        (out_of_range, "position out of range"),
        (mutates, "input mutated"),
        (stateful, "not deterministic"),
        (wakes_in_the_past, "reconsider_at_s not in the future"),
        (idles, "no progress"),
        (only_drops_kv, "no progress"),
        (swaps_in_device_kv, "swap_in of KV not on the host"),
    ],
)
def test_check_policy_catches_broken_policies(policy, rule: str) -> None:
    with pytest.raises(AssertionError) as err:
        check_policy(policy, max_examples=100, shrink=False)
    msg = str(err.value)
    assert msg.startswith(f"{policy.__name__}: {rule}"), msg
    assert "pos id arrival input" in msg  # the counterexample view, as a table


def test_counterexamples_are_shrunk_to_a_small_view() -> None:
    with pytest.raises(AssertionError, match="duplicate positions") as err:
        check_policy(duplicates, max_examples=50)
    lines = str(err.value).splitlines()
    assert lines[3].startswith("pos id arrival")
    assert len(lines[4:]) == 1  # one request suffices: hypothesis shrank the view to it


def test_a_correct_user_policy_passes() -> None:
    check_policy(user_policy, max_examples=100)


def test_params_are_passed_to_the_policy() -> None:
    def needs_param(view: QueueView, /, *, factor: int) -> BatchDecision:
        assert factor == 3
        return user_policy(view)

    check_policy(needs_param, max_examples=10, factor=3)
    with pytest.raises(TypeError):
        check_policy(needs_param, max_examples=10, shrink=False)


def test_check_decision_rejects_conflicting_moves() -> None:
    v = QueueView.from_columns(
        now_s=0.0,
        input_tokens=[4, 4],
        prefilled_tokens=[4, 4],
        generated_tokens=[1, 1],
        kv_tokens=[5, 5],
        kv_location=[KV_GPU, KV_GPU],
        kv_capacity_tokens=100,
    )
    with pytest.raises(
        AssertionError, match="conflicting moves: positions \\[0\\] are in both run and swap_out"
    ):
        check_decision(v, BatchDecision(run=np.array([0]), swap_out=np.array([0])))
    check_decision(v, BatchDecision(run=np.array([0]), swap_out=np.array([1])))


@pytest.mark.parametrize("field", ["hold_room_tokens", "hold_free_tokens"])
def test_check_decision_rejects_negative_hold_tokens(field: str) -> None:
    v = QueueView.from_columns(now_s=0.0, input_tokens=[4], kv_capacity_tokens=100)
    d = BatchDecision(run=np.array([0]), hold_batch=True, **{field: -3})
    with pytest.raises(AssertionError, match=f"{field} must be an int >= 0, got -3"):
        check_decision(v, d)


def test_check_purity_returns_the_decision() -> None:
    v = QueueView.from_columns(now_s=0.0, input_tokens=[4], kv_capacity_tokens=100)
    assert check_purity(user_policy, v).run.tolist() == [0]


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
