"""Simulator invariants: conservation, KV capacity, time order, determinism, closed form."""

from __future__ import annotations

import numpy as np
import pytest
from sim_toy_policies import greedy_all, reject_long, toy_fcfs, toy_swapper

from schedlab import Workload
from schedlab.contract import BatchDecision
from schedlab.costmodel.base import ConstantIterationCost, FastPathsFromChecked
from schedlab.sim import Cluster, InstanceSpec, simulate


def workload(n: int = 40, seed: int = 0, rate: float = 2.0, max_in: int = 60) -> Workload:
    rng = np.random.default_rng(seed)
    return Workload(
        arrival_s=np.cumsum(rng.exponential(1 / rate, n)),
        input_tokens=rng.integers(1, max_in, n),
        output_tokens=rng.integers(1, 30, n),
    )


def affine_cost(cap: int = 2000) -> object:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Affine(FastPathsFromChecked):
        kv_capacity_tokens: int = cap
        kv_bytes_per_token: float = 1.0

        def iteration_time_s(
            self, prefill_tokens, prefill_context, decode_batch, decode_context_sum
        ):
            return (0.01 + 1e-4 * float(np.sum(prefill_tokens)) + 2e-5 * decode_context_sum
                    + 1e-3 * decode_batch)

        def decode_steps_time_s(self, batch_size, context_sum, n_steps):
            k = np.asarray(n_steps, dtype=np.float64)
            ctx = k * context_sum + batch_size * k * (k - 1) / 2
            return 0.01 * k + 2e-5 * ctx + 1e-3 * batch_size * k

        def prefill_time_s(self, input_tokens):
            return 0.01 + 1e-4 * np.asarray(input_tokens, dtype=np.float64)

        def swap_time_s(self, tokens):
            return 1e-5 * np.asarray(tokens, dtype=np.float64)

    return Affine()


def kv_trace_ok(res, cap_by_instance) -> None:
    """Replay the iteration log: device KV (without preemption) never exceeds capacity."""
    log = res.iteration_log
    kv: dict[int, int] = {}
    inst_of = res.instance
    for j in range(log["start_s"].shape[0]):
        s, e = log["offsets"][j], log["offsets"][j + 1]
        batch = zip(log["request"][s:e], log["prefill_tokens"][s:e], log["output_token"][s:e],
                    strict=True)
        for r, p, o in batch:
            kv[int(r)] = kv.get(int(r), 0) + int(p) + int(o)
        i = log["instance"][j]
        held = sum(v for r, v in kv.items() if inst_of[r] == i)
        assert held <= cap_by_instance[i]
        done = [r for r in kv
                if res.finish_s[r] <= log["end_s"][j] and res.status[r] == "completed"]
        for r in done:
            del kv[r]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("chunk", [0, 16])
def test_conservation_capacity_and_time_order(seed: int, chunk: int) -> None:
    w = workload(seed=seed)
    cap = 300
    spec = InstanceSpec(cost=affine_cost(cap), max_batch_size=4, max_batch_tokens=64,
                        chunk_tokens=chunk)
    res = simulate(w, spec, toy_fcfs, record_iterations=True)
    assert set(res.status) <= {"completed", "rejected"}
    rej = res.status == "rejected"
    assert (res.reject_reason[rej] != "").all() and (res.reject_reason[~rej] == "").all()
    done = res.status == "completed"
    assert (res.first_token_s[done] >= res.arrival_s[done]).all()
    assert (res.finish_s[done] >= res.first_token_s[done]).all()
    log = res.iteration_log
    assert (log["end_s"] > log["start_s"]).all()
    assert (log["start_s"][1:] >= log["end_s"][:-1] - 1e-12).all()
    counts = np.bincount(log["request"], weights=log["output_token"], minlength=len(w))
    assert np.array_equal(counts[done], w.output_tokens[done])
    pre = np.bincount(log["request"], weights=log["prefill_tokens"], minlength=len(w))
    assert np.array_equal(pre[done], w.input_tokens[done])
    kv_trace_ok(res, [cap])
    if chunk == 0:
        assert (log["prefill_tokens"] <= 64).all()


def test_prompt_too_big_is_rejected_with_reason() -> None:
    w = Workload(arrival_s=[0.0, 0.0, 0.0], input_tokens=[10, 500, 90], output_tokens=[5, 5, 20])
    spec = InstanceSpec(cost=ConstantIterationCost(kv_capacity_tokens=100), max_batch_tokens=80)
    res = simulate(w, spec, toy_fcfs)
    assert res.status.tolist() == ["completed", "rejected", "rejected"]
    assert res.reject_reason.tolist() == [
        "", "prompt_exceeds_kv_capacity", "prompt_exceeds_kv_capacity"
    ]
    w2 = w.replace(output_tokens=[5, 5, 5], input_tokens=[10, 90, 20])
    res2 = simulate(w2, spec, toy_fcfs)
    assert res2.reject_reason.tolist() == ["", "prompt_exceeds_batch_token_budget", ""]


def test_policy_rejections_keep_their_reason() -> None:
    w = Workload(arrival_s=[0.0, 1.0], input_tokens=[10, 500], output_tokens=[5, 5])
    res = simulate(w, InstanceSpec(cost=ConstantIterationCost()), reject_long,
                   policy_params={"limit": 100})
    assert res.status.tolist() == ["completed", "rejected"]
    assert res.reject_reason.tolist() == ["", "too_long"]
    assert res.summary()["rejected"] == 1


def test_deterministic() -> None:
    w = workload(n=60, seed=3)
    spec = InstanceSpec(cost=affine_cost(400), max_batch_size=6, chunk_tokens=8)
    a = simulate(w, spec, toy_fcfs, record_iterations=True)
    b = simulate(w, spec, toy_fcfs, record_iterations=True)
    for col in ("finish_s", "first_token_s", "status", "instance"):
        assert np.array_equal(getattr(a, col), getattr(b, col), equal_nan=col != "status")
    for key in a.iteration_log:
        assert np.array_equal(a.iteration_log[key], b.iteration_log[key])


@pytest.mark.parametrize("policy", [toy_fcfs, toy_swapper])
@pytest.mark.parametrize("seed", range(3))
def test_closed_form_equals_step_by_step(policy, seed: int) -> None:
    w = workload(n=50, seed=seed, rate=5.0)
    spec = InstanceSpec(cost=affine_cost(500), max_batch_size=8, max_batch_tokens=128)
    fast = simulate(w, spec, policy, record_iterations=True)
    slow = simulate(w, spec, policy, record_iterations=True, closed_form=False)
    assert np.array_equal(fast.status, slow.status)
    np.testing.assert_allclose(fast.finish_s, slow.finish_s, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.first_token_s, slow.first_token_s, rtol=1e-9, atol=1e-9)
    assert fast.iterations == slow.iterations
    np.testing.assert_allclose(fast.iteration_log["end_s"], slow.iteration_log["end_s"], rtol=1e-9)
    assert np.array_equal(fast.iteration_log["request"], slow.iteration_log["request"])
    assert fast.decisions < slow.decisions


@pytest.mark.parametrize("recompute", [False, True])
def test_preemption_by_swap_and_recompute_completes_everything(recompute: bool) -> None:
    w = workload(n=30, seed=1, rate=10.0, max_in=40)
    spec = InstanceSpec(cost=affine_cost(120), max_batch_size=4, max_batch_tokens=64,
                        preemption="recompute" if recompute else "swap")
    res = simulate(w, spec, toy_swapper, policy_params={"recompute": recompute})
    done = res.status == "completed"
    assert done.all()
    assert res.preemptions.sum() > 0
    assert (res.swaps.sum() > 0) != recompute
    assert res.summary()["preemptions"] == int(res.preemptions.sum())


def test_swapped_kv_respects_host_capacity() -> None:
    w = workload(n=30, seed=1, rate=10.0, max_in=40)
    spec = InstanceSpec(cost=affine_cost(120), max_batch_size=4, max_batch_tokens=64,
                        host_kv_capacity_tokens=5)
    with pytest.raises(ValueError, match="host swap space"):
        simulate(w, spec, toy_swapper)


def test_kv_overcommit_raises_naming_policy() -> None:
    w = Workload(arrival_s=[0.0, 0.0], input_tokens=[60, 60], output_tokens=[10, 10])
    spec = InstanceSpec(cost=ConstantIterationCost(kv_capacity_tokens=100))
    with pytest.raises(ValueError, match=r"greedy_all.*KV capacity exceeded: free 100"):
        simulate(w, spec, greedy_all)


def test_multi_instance_with_callable_router() -> None:
    w = workload(n=40, seed=2, rate=8.0)

    def to_one(view, /):
        return np.ones(view.request_id.shape[0], dtype=np.int64)

    cl = Cluster.homogeneous(n_instances=3, cost=affine_cost(1000), max_batch_size=4)
    res = simulate(w, cl, toy_fcfs, router=to_one, record_iterations=True)
    assert (res.instance == 1).all() and (res.status == "completed").all()
    assert set(res.iteration_log["instance"].tolist()) == {1}

    def alternate(view, /):
        return (view.routed_so_far + np.arange(view.request_id.shape[0])) % view.n_instances

    res2 = simulate(w, cl, toy_fcfs, router=alternate, record_iterations=True)
    assert np.array_equal(res2.instance, np.arange(40) % 3)
    kv_trace_ok(res2, [1000] * 3)
    s = res2.summary()
    assert s["instances"] == 3 and 0 < s["gpu_utilisation"] <= 1


def test_predictions_do_not_change_completion() -> None:
    w = workload(n=30, seed=5)
    spec = InstanceSpec(cost=affine_cost(2000), max_batch_size=4)
    res = simulate(w, spec, toy_fcfs, predicted_output_tokens=np.full(30, 3.0),
                   record_iterations=True)
    done = res.status == "completed"
    counts = np.bincount(res.iteration_log["request"], weights=res.iteration_log["output_token"],
                         minlength=30)
    assert np.array_equal(counts[done], w.output_tokens[done])


def test_summary_metrics_and_dataframe() -> None:
    w = Workload(arrival_s=[0.0, 0.0], input_tokens=[4, 4], output_tokens=[3, 1],
                 slo_ttft_s=[0.5, 5.0])
    res = simulate(w, InstanceSpec(cost=ConstantIterationCost(slot_s=1.0)), toy_fcfs)
    df = res.requests
    assert df["jct_s"].tolist() == [3.0, 1.0]
    assert df["ttft_s"].tolist() == [1.0, 1.0]
    s = res.summary()
    assert s["slo_attainment"] == 0.5  # per-request SLO column: request 0 misses its TTFT
    assert s["makespan_s"] == 3.0 and s["throughput_rps"] == pytest.approx(2 / 3)
    assert s["completed"] == 2 and s["iterations"] == 3
    assert res.summary(slo_ttft_s=2.0)["slo_attainment"] == 1.0
    assert res.summary(slo_tpot_s=0.5)["goodput_rps"] == pytest.approx(1 / 3)


def test_router_sees_consistent_instance_load() -> None:
    w = workload(n=60, seed=4, rate=20.0)
    seen = []

    def least_queue(view, /):
        seen.append((view.outstanding_tokens.copy(), view.queue_length.copy(), view.routed_so_far,
                     view.kv_used_tokens.copy()))
        return np.full(view.request_id.shape[0], int(np.argmin(view.queue_length)), dtype=np.int64)

    cl = Cluster.homogeneous(n_instances=2, cost=affine_cost(3000), max_batch_size=3)
    res = simulate(w, cl, toy_fcfs, router=least_queue)
    assert (res.status == "completed").all()
    for out, qlen, routed, kv in seen:
        assert (out >= -1e-6).all() and (qlen >= 0).all() and qlen.sum() <= routed
        assert (kv >= 0).all() and (kv <= 3000).all()
        assert ((qlen == 0) <= (np.abs(out) < 1e-6)).all()
    assert max(s[1].sum() for s in seen) > 2  # queues do build up, so the check has teeth


def test_reconsider_at_stops_a_stretch_at_the_first_boundary_after_it() -> None:
    times = []

    def periodic(view, /):
        times.append(view.now_s)
        return BatchDecision(run=np.arange(view.n), reconsider_at_s=view.now_s + 10.5)

    w = Workload(arrival_s=[0.0], input_tokens=[4], output_tokens=[100])
    res = simulate(w, InstanceSpec(cost=ConstantIterationCost(slot_s=1.0)), periodic)
    assert times[:4] == [0.0, 1.0, 12.0, 23.0]
    assert res.finish_s[0] == 100.0 and res.iterations == 100


def test_idle_policy_is_woken_at_its_reconsider_time() -> None:
    times = []

    def wait_until_5(view, /):
        times.append(view.now_s)
        if view.now_s < 5:
            return BatchDecision(run=np.zeros(0, dtype=np.int64), reconsider_at_s=5.0)
        return BatchDecision(run=np.arange(view.n))

    w = Workload(arrival_s=[0.0, 2.0], input_tokens=[4, 4], output_tokens=[2, 2])
    res = simulate(w, InstanceSpec(cost=ConstantIterationCost(slot_s=1.0)), wait_until_5)
    assert times[:3] == [0.0, 2.0, 5.0]
    assert res.first_token_s.tolist() == [6.0, 6.0] and res.finish_s.tolist() == [7.0, 7.0]


def test_long_stretches_continue_past_the_costing_horizon_exactly() -> None:
    w = Workload(arrival_s=[0.0, 0.0, 5.0], input_tokens=[50, 20, 10], output_tokens=[900, 400, 5])
    spec = InstanceSpec(cost=affine_cost(5000), max_batch_size=8)
    fast = simulate(w, spec, toy_fcfs, record_iterations=True)
    slow = simulate(w, spec, toy_fcfs, closed_form=False)
    np.testing.assert_allclose(fast.finish_s, slow.finish_s, rtol=1e-12)
    assert fast.iterations == slow.iterations == 900
    assert fast.decisions <= 6 < slow.decisions
