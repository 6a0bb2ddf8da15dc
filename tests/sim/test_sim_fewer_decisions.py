"""BatchDecision.wake_on_arrival / hold_batch only save policy calls: same schedule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sim_toy_policies import toy_fcfs
from test_sim_core import affine_cost

from schedlab import Workload
from schedlab.policies.base import BatchDecision
from schedlab.policies.registry import get_policy
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


def _plain(policy):
    def plain(view, /, **kw):
        return dataclasses.replace(policy(view, **kw), wake_on_arrival=True, hold_batch=False)

    return plain


@pytest.mark.parametrize("name", ["fcfs", "vllm", "sjf"])
@pytest.mark.parametrize(("chunk", "seed"), [(0, 0), (0, 1), (32, 2)])
def test_declared_events_keep_the_schedule(name: str, chunk: int, seed: int) -> None:
    w = overloaded(seed=seed)
    spec = InstanceSpec(cost=affine_cost(1500), max_batch_size=8, max_batch_tokens=256,
                        chunk_tokens=chunk)
    pol = get_policy(name)
    fast = simulate(w, spec, pol, record_iterations=True)
    slow = simulate(w, spec, _plain(pol), record_iterations=True)
    assert np.array_equal(fast.status, slow.status)
    np.testing.assert_allclose(fast.finish_s, slow.finish_s, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.first_token_s, slow.first_token_s, rtol=1e-9, atol=1e-9)
    assert fast.iterations == slow.iterations
    assert np.array_equal(_batches(fast), _batches(slow))
    np.testing.assert_allclose(fast.iteration_log["end_s"], slow.iteration_log["end_s"], rtol=1e-9)
    assert np.array_equal(fast.preemptions, slow.preemptions)
    assert fast.decisions < slow.decisions  # the declarations did save calls here


@pytest.mark.parametrize("name", ["fcfs", "sjf", "vllm"])
@pytest.mark.parametrize(("sigma", "seed"), [(0.0, 4), (0.5, 5), (1.0, 6)])
def test_holding_across_completions_keeps_the_schedule(name: str, sigma: float, seed: int) -> None:
    """hold_room_tokens / hold_free_tokens: FCFS/SJF/vLLM keep a KV-blocked hold across
    completions that cannot have made room, also when the predicted lengths are off (FCFS/SJF
    bound the room by the footprints; vLLM needs the blocked request's demand free)."""
    w = overloaded(n=150, seed=seed, rate=40.0)
    rng = np.random.default_rng(seed)
    pred = np.maximum(w.output_tokens * rng.lognormal(0.0, sigma, len(w)), 1.0)
    spec = InstanceSpec(cost=affine_cost(900), max_batch_size=32, max_batch_tokens=512)
    pol = get_policy(name)
    fast = simulate(w, spec, pol, predicted_output_tokens=pred, record_iterations=True)
    slow = simulate(w, spec, _plain(pol), predicted_output_tokens=pred, record_iterations=True)
    np.testing.assert_allclose(fast.finish_s, slow.finish_s, rtol=1e-9, atol=1e-9)
    assert np.array_equal(_batches(fast), _batches(slow))
    assert np.array_equal(fast.preemptions, slow.preemptions)
    held = [0]

    def counting(view, /):
        d = pol(view)
        held[0] += d.hold_room_tokens > 0 or d.hold_free_tokens > 0
        return d

    simulate(w, spec, counting, predicted_output_tokens=pred)
    assert held[0] > 0  # the case was exercised


def test_release_must_come_with_the_room_and_match_the_view() -> None:
    with pytest.raises(ValueError, match="needs hold_release_tokens"):
        BatchDecision(run=[0], hold_batch=True, hold_room_tokens=5)

    def bad(view, /):
        return BatchDecision(run=np.arange(view.n)[:1], hold_batch=True, hold_room_tokens=5,
                             hold_release_tokens=[1])

    w = Workload(arrival_s=[0.0, 0.0], input_tokens=[4, 4], output_tokens=[2, 2])
    with pytest.raises(ValueError, match="hold_release_tokens must have shape"):
        simulate(w, InstanceSpec(cost=affine_cost(100)), bad)


def test_negative_hold_tokens_are_rejected() -> None:
    def bad(view, /):
        return BatchDecision(run=np.arange(view.n)[:1], hold_batch=True, hold_free_tokens=-1)

    w = Workload(arrival_s=[0.0, 0.0], input_tokens=[4, 4], output_tokens=[2, 2])
    with pytest.raises(ValueError, match="hold_free_tokens must be >= 0"):
        simulate(w, InstanceSpec(cost=affine_cost(100)), bad)

    def bad_release(view, /):
        return BatchDecision(run=np.arange(view.n)[:1], hold_batch=True, hold_room_tokens=5,
                             hold_release_tokens=np.arange(view.n) - 1)

    with pytest.raises(ValueError, match=r"hold_release_tokens must be >= 0. Got \[-1, 0\]"):
        simulate(w, InstanceSpec(cost=affine_cost(100)), bad_release)


def test_no_wake_keeps_a_stretch_running_through_arrivals() -> None:
    calls = []

    def deaf(view, /):
        calls.append(view.now_s)
        return BatchDecision(run=np.arange(view.n)[:1], wake_on_arrival=False)

    w = Workload(arrival_s=[0.0, 0.5, 0.7], input_tokens=[4, 4, 4], output_tokens=[10, 1, 1])
    from schedlab.costmodel.base import ConstantIterationCost

    res = simulate(w, InstanceSpec(cost=ConstantIterationCost(slot_s=1.0)), deaf)
    # the decode stretch of request 0 (t=1..10) ignores the arrivals; the idle-free instance
    # decides at 0 (prefill), 1 (decode stretch) and at each completion
    assert calls == [0.0, 1.0, 10.0, 11.0]
    assert res.finish_s.tolist() == [10.0, 11.0, 12.0]


def test_hold_repeats_the_batch_until_a_completion() -> None:
    calls = []

    def holder(view, /):
        calls.append(view.now_s)
        return BatchDecision(run=np.arange(view.n), hold_batch=True)

    w = Workload(arrival_s=[0.0], input_tokens=[40], output_tokens=[3])
    spec = InstanceSpec(cost=affine_cost(1000), chunk_tokens=16)
    res = simulate(w, spec, holder, record_iterations=True)
    # three prefill chunks (16, 16, 8) and two decode steps after one decision
    assert calls == [0.0]
    assert res.iteration_log["prefill_tokens"].tolist() == [16, 16, 8, 0, 0]
    assert res.iterations == 5 and res.status.tolist() == ["completed"]


def test_toy_policies_without_declarations_are_unchanged() -> None:
    w = overloaded(n=40, seed=3, rate=5.0)
    res = simulate(w, InstanceSpec(cost=affine_cost(1500), max_batch_size=4), toy_fcfs)
    assert (res.status == "completed").all()
