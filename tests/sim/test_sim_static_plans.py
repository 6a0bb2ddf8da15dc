"""Static plans: the engine keeps them and re-forms the batch itself, which saves policy calls
and changes nothing else; a user's plan gets the built-in's treatment; false claims are caught."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_sim_core import affine_cost

from schedlab import Workload
from schedlab.contract import Plan, QueueView, started
from schedlab.policies import get_policy
from schedlab.sim import InstanceSpec, simulate


def overloaded(n: int = 120, seed: int = 0, rate: float = 30.0) -> Workload:
    rng = np.random.default_rng(seed)
    return Workload(
        arrival_s=np.cumsum(rng.exponential(1 / rate, n)),
        input_tokens=rng.integers(5, 200, n),
        output_tokens=rng.integers(1, 60, n),
    )


def _batches(res) -> np.ndarray:
    """(iteration, request) pairs of the log, each batch sorted (its order carries no meaning)."""
    log = res.iteration_log
    it = np.repeat(np.arange(log["start_s"].shape[0]), np.diff(log["offsets"]))
    order = np.lexsort((log["request"], it))
    return np.stack([it[order], log["request"][order]])


def _asked_every_time(policy):
    def every_time(view, /, **kw):
        return dataclasses.replace(policy(view, **kw), static=False)

    return every_time


def _same_schedule(a, b) -> None:
    assert np.array_equal(a.status, b.status)
    np.testing.assert_allclose(a.finish_s, b.finish_s, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.first_token_s, b.first_token_s, rtol=1e-9, atol=1e-9)
    assert a.iterations == b.iterations
    assert np.array_equal(_batches(a), _batches(b))
    assert np.array_equal(a.preemptions, b.preemptions)


@pytest.mark.parametrize("name", ["fcfs", "vllm"])
@pytest.mark.parametrize(("chunk", "seed", "sigma"), [(0, 0, 0.0), (0, 1, 0.5), (32, 2, 0.0),
                                                      (0, 4, 1.0), (32, 5, 1.0)])
def test_kept_plans_keep_the_schedule(name: str, chunk: int, seed: int, sigma: float) -> None:
    """Also with mispredicted lengths, where FCFS's reservations are wrong and requests are
    preempted; check_static asks at every decision point and raises on any difference."""
    w = overloaded(seed=seed)
    rng = np.random.default_rng(seed)
    pred = np.maximum(w.output_tokens * rng.lognormal(0.0, sigma, len(w)), 1.0)
    spec = InstanceSpec(cost=affine_cost(1500), max_batch_size=8, max_batch_tokens=256,
                        chunk_tokens=chunk)
    pol = get_policy(name)
    kept = simulate(w, spec, pol, predicted_output_tokens=pred, record_iterations=True)
    asked = simulate(w, spec, _asked_every_time(pol), predicted_output_tokens=pred,
                     record_iterations=True)
    _same_schedule(kept, asked)
    assert kept.decisions < asked.decisions / 2  # the kept plans did save calls
    simulate(w, spec, pol, predicted_output_tokens=pred, check_static=True)


def user_fcfs(view: QueueView, /) -> Plan:
    """A user's FCFS, written from the rule: admitted requests first, then waiting ones, by
    arrival; reserve prompt plus predicted output; a static order when it is arrival order."""
    begun = started(view)
    by_arrival = np.lexsort((view.request_id, view.arrival_s))
    order = np.concatenate((by_arrival[begun[by_arrival]], by_arrival[~begun[by_arrival]]))
    return Plan(order=order, evictable=True, footprint_tokens="predicted",
                static=bool(np.array_equal(order, by_arrival)))


@pytest.mark.parametrize(("chunk", "seed"), [(0, 0), (32, 2)])
def test_a_users_plan_gets_the_built_ins_treatment(chunk: int, seed: int) -> None:
    w = overloaded(n=200, seed=seed)
    spec = InstanceSpec(cost=affine_cost(1500), max_batch_size=8, max_batch_tokens=256,
                        chunk_tokens=chunk)
    built_in = simulate(w, spec, "fcfs", record_iterations=True)
    user = simulate(w, spec, user_fcfs, record_iterations=True)
    assert user.decisions == built_in.decisions
    assert np.array_equal(user.finish_s, built_in.finish_s)  # bit for bit
    assert np.array_equal(_batches(user), _batches(built_in))


def test_a_false_static_claim_is_caught_on_a_whole_run() -> None:
    sjf = get_policy("sjf")

    def static_sjf(view, /):
        return dataclasses.replace(sjf(view), static=True)

    w = overloaded(n=150, seed=3)
    spec = InstanceSpec(cost=affine_cost(900), max_batch_size=8, max_batch_tokens=256)
    honest = simulate(w, spec, sjf)
    claimed = simulate(w, spec, static_sjf)
    assert not np.allclose(honest.finish_s, claimed.finish_s)  # the claim changes the schedule
    with pytest.raises(ValueError, match=r"Policy 'static_sjf'.*claimed static=True"):
        simulate(w, spec, static_sjf, check_static=True)


def _with_footprint_array(view: QueueView, /) -> Plan:
    """user_fcfs with its footprints as an array: a plan that does not cover newcomers."""
    plan = user_fcfs(view)
    foot = view.input_tokens + np.ceil(view.output_tokens_pred).astype(np.int64)
    return dataclasses.replace(plan, footprint_tokens=foot)


@pytest.mark.parametrize(("policy", "n_calls"), [(user_fcfs, 1), (_with_footprint_array, 3)])
def test_arrivals_behind_a_blocked_prefix_neither_interrupt_nor_ask(policy, n_calls) -> None:
    """One long request reserves nearly all the KV; newcomers queue behind it. A plan that
    covers newcomers is asked once: the engine puts them at the back itself. One with
    per-request footprints is asked at the first arrival (the batch had room for it), not at
    the next ones (they rank behind a blocked request), and again when the long request
    completes and the unplanned newcomers could run."""
    calls = []

    def counted(view, /):
        calls.append(view.now_s)
        return policy(view)

    w = Workload(arrival_s=[0.0, 0.5, 0.7, 0.9], input_tokens=[40, 30, 30, 30],
                 output_tokens=[200, 2, 2, 2])
    res = simulate(w, InstanceSpec(cost=affine_cost(250)), counted)
    assert (res.status == "completed").all()
    assert res.finish_s[0] < res.first_token_s[1:].min()
    assert len(calls) == n_calls and calls[0] == 0.0
    if n_calls == 3:
        assert 0.5 <= calls[1] < 0.7 and calls[2] == res.finish_s[0]


def test_a_static_plan_that_moves_kv_is_asked_again() -> None:
    """A formation that evicts ends the kept plan (the order may change after a preemption)."""
    calls = []

    def counted(view, /):
        calls.append(view.now_s)
        return dataclasses.replace(get_policy("vllm")(view), static=True)

    w = Workload(arrival_s=[0.0, 0.0], input_tokens=[40, 40], output_tokens=[30, 30])
    res = simulate(w, InstanceSpec(cost=affine_cost(100)), counted)
    assert res.preemptions.sum() >= 1 and len(calls) >= 2
