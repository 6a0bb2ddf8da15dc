"""Simulator failure modes: stalls raise SimulationStalled, bad input raises ValueError."""

from __future__ import annotations

import numpy as np
import pytest
from sim_toy_policies import idle_forever, idle_now, toy_fcfs

from schedlab import Workload
from schedlab.contract import BatchDecision, Plan
from schedlab.costmodel.base import ConstantIterationCost
from schedlab.errors import SimulationStalled
from schedlab.sim import Cluster, InstanceSpec, simulate

W = Workload(arrival_s=[0.0, 1.0], input_tokens=[4, 4], output_tokens=[3, 2])
SPEC = InstanceSpec(cost=ConstantIterationCost())


def test_policy_that_never_runs_stalls_naming_requests() -> None:
    with pytest.raises(SimulationStalled, match=r"2 requests unfinished.*0: 0, 0/4, 0/3"):
        simulate(W, SPEC, idle_forever)


def test_livelock_at_one_instant_stalls() -> None:
    with pytest.raises(SimulationStalled, match=r"idle_now.*stuck requests.*\[0\]"):
        simulate(W, SPEC, idle_now, max_idle_decisions=50)


def test_unknown_policy_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"Unknown .*'fcfz'.*Known: .*'fcfs'"):
        simulate(W, SPEC, "fcfz")


def test_policy_must_return_a_decision() -> None:
    with pytest.raises(ValueError, match="must return a Plan or a BatchDecision"):
        simulate(W, SPEC, lambda view: [0])


@pytest.mark.parametrize(
    "decision, message",
    [
        (BatchDecision(run=np.array([5])), "position out of range"),
        (BatchDecision(run=np.array([0, 0])), "duplicate positions"),
        (BatchDecision(run=np.array([0]), swap_out=np.array([0])), "duplicate positions"),
        (BatchDecision(run=np.array([], dtype=np.int64), swap_in=np.array([0])), "not on the host"),
        (BatchDecision(run=np.array([0]), prefill_chunk=np.array([2])), "prefill chunk"),
        (BatchDecision(run=np.array([0]), priority=np.array([1, 2, 3])), "priority"),
        (BatchDecision(run=np.array([0]), reconsider_at_s=0.0), "reconsider_at_s not in the"),
        (Plan(order=np.array([0, 0])), "duplicate positions"),
        (Plan(order=np.array([0]), footprint_tokens=np.array([1, 2])), "footprint_tokens"),
    ],
)
def test_bad_decisions_raise_naming_the_policy(decision, message) -> None:
    def bad_policy(view, /):
        return decision

    w = Workload(arrival_s=[0.0], input_tokens=[4], output_tokens=[3])
    with pytest.raises(ValueError, match=f"bad_policy.*{message}"):
        simulate(w, SPEC, bad_policy)


def test_batch_size_and_token_budget_are_enforced() -> None:
    w = Workload(arrival_s=[0.0, 0.0, 0.0], input_tokens=[4, 4, 4], output_tokens=[3, 3, 3])

    def everyone(view, /):
        return BatchDecision(run=np.arange(view.n))

    with pytest.raises(ValueError, match="max_batch_size=2"):
        simulate(w, InstanceSpec(cost=ConstantIterationCost(), max_batch_size=2), everyone)
    with pytest.raises(ValueError, match="max_batch_tokens=10"):
        simulate(w, InstanceSpec(cost=ConstantIterationCost(), max_batch_tokens=10), everyone)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"chunk_tokens": -1}, "chunk_tokens"),
        ({"preemption": "drop"}, "preemption"),
        ({"tp": 0}, "tp"),
        ({"cost": "fast"}, "IterationCost"),
    ],
)
def test_bad_instance_spec(kwargs, message) -> None:
    base = {"cost": ConstantIterationCost()}
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        InstanceSpec(**base)


def test_instance_spec_needs_cost_or_model() -> None:
    with pytest.raises(ValueError, match="model"):
        InstanceSpec(model="llama-2-7b")
    with pytest.raises(ValueError, match="at least one"):
        Cluster(instances=())


def test_bad_simulate_arguments() -> None:
    with pytest.raises(ValueError, match="'workload'"):
        simulate([1, 2], SPEC, toy_fcfs)
    with pytest.raises(ValueError, match="'cluster'"):
        simulate(W, "a100", toy_fcfs)
    with pytest.raises(ValueError, match="predicted_output_tokens"):
        simulate(W, SPEC, toy_fcfs, predicted_output_tokens=[1.0])
    with pytest.raises(ValueError, match="predicted_output_tokens"):
        simulate(W, SPEC, toy_fcfs, predicted_output_tokens=[1.0, -2.0])
    with pytest.raises(ValueError, match="'policy'"):
        simulate(W, SPEC, 42)


def test_bad_router_output() -> None:
    cl = Cluster.homogeneous(n_instances=2, cost=ConstantIterationCost())
    with pytest.raises(ValueError,
                       match=r"router .<lambda>. must return 1 instance indices in \[0, 2\)"):
        simulate(W, cl, toy_fcfs, router=lambda view: np.array([7]))


def test_requests_longer_than_the_models_window_are_rejected_with_that_reason() -> None:
    w = Workload(arrival_s=[0.0, 0.0, 0.1], input_tokens=[4000, 100, 2000],
                 output_tokens=[200, 50, 2096])
    res = simulate(w, Cluster.homogeneous("llama-2-7b", "a100-80gb"), "fcfs")
    # 4,200 tokens exceed Llama-2-7B's 4,096; 2,000 + 2,096 = 4,096 fits exactly
    assert res.status.tolist() == ["rejected", "completed", "completed"]
    assert res.reject_reason[0] == "exceeds_model_context"
    assert res.summary()["rejected_by_reason"] == {"exceeds_model_context": 1}
    assert InstanceSpec(model="opt-13b", gpu="a100-80gb").context_limit() == 2048
    assert InstanceSpec(model="opt-13b", gpu="a100-80gb",
                        max_context_tokens=8192).context_limit() == 8192
    with pytest.raises(ValueError, match="max_context_tokens"):
        InstanceSpec(model="opt-13b", gpu="a100-80gb", max_context_tokens=0)


def test_an_unknown_router_is_an_error_with_one_instance_too() -> None:
    w = Workload(arrival_s=[0.0], input_tokens=[10], output_tokens=[5])
    with pytest.raises(ValueError, match="Unknown router 'nosuch'"):
        simulate(w, InstanceSpec(cost=ConstantIterationCost()), "fcfs", router="nosuch")


def test_summary_frame_is_the_summary_as_one_row_with_reasons_spread():
    import pandas as pd

    from schedlab import Workload
    from schedlab.sim import Cluster, simulate

    w = Workload(arrival_s=[0.0, 0.0, 0.1], input_tokens=[10, 5_000, 20], output_tokens=[4, 3, 2])
    res = simulate(w, Cluster.homogeneous("llama-2-7b", "a100-80gb"), "fcfs")
    row = res.summary_frame(rate=1.5, seed=7)
    assert row.shape[0] == 1 and list(row.columns[:2]) == ["rate", "seed"]
    assert row["rejected:exceeds_model_context"].item() == 1
    summary = res.summary()
    for key, value in summary.items():
        if key != "rejected_by_reason":
            got = row[key].item()
            assert (got is None and value is None) or got == value or (
                isinstance(value, float) and pd.isna(value) and pd.isna(got)), key
    both = pd.concat([row, res.summary_frame(slo_ttft_s=1.0, rate=3.0)], ignore_index=True)
    assert both["rate"].tolist() == [1.5, 3.0] and both["slo_attainment"].notna().tolist() == [
        False, True]


def test_bad_answers_are_refused_at_the_boundary_naming_the_field():
    from schedlab.contract import BatchDecision, Plan

    with pytest.raises(ValueError, match=r"BatchDecision.run must hold integer positions; "
                       r"element 0 is 0.5"):
        BatchDecision(run=np.arange(3) + 0.5)  # was truncated to runs 0, 1, 2
    with pytest.raises(ValueError, match="element 1 is nan"):
        Plan(order=[0.0, np.nan])
    with pytest.raises(ValueError, match="not a boolean mask"):
        BatchDecision(run=[0], swap_out=np.array([True, False]))
    assert BatchDecision(run=[1.0, 2.0]).run.tolist() == [1, 2]  # whole floats are positions


def test_unknown_parameters_are_refused_before_the_run():
    from schedlab import Workload
    from schedlab.sim import Cluster, simulate
    from schedlab.testing import check_policy, check_router

    w = Workload(arrival_s=[0.0, 0.1], input_tokens=[10, 20], output_tokens=[3, 2])
    cluster = Cluster.homogeneous("llama-2-7b", "a100-80gb")
    for workload in (w, w.head(0)):  # an empty workload too, where no decision is ever made
        with pytest.raises(ValueError, match=r"policy 'vllm' has no parameter 'watermrk'\. "
                           r"Close matches: 'watermark'"):
            simulate(workload, cluster, "vllm", policy_params={"watermrk": 0.1})
    with pytest.raises(ValueError, match="router 'least-kv' has no parameter 'alpha'"):
        simulate(w, cluster, "fcfs", router="least-kv", router_params={"alpha": 1})
    with pytest.raises(ValueError, match="policy 'vllm' has no parameter 'watermrk'"):
        check_policy("vllm", max_examples=5, watermrk=0.1)
    with pytest.raises(ValueError, match="router 'least_kv' has no parameter 'alpha'"):
        check_router("least-kv", max_examples=5, alpha=1)

    def takes_anything(view, /, **params):
        from schedlab.contract import Plan

        return Plan(order=np.arange(view.n))

    assert simulate(w, cluster, takes_anything, policy_params={"any": 1}).completed.all()


def test_a_router_answering_none_is_named():
    from schedlab import Workload
    from schedlab.sim import Cluster, simulate

    def lost(view, /):
        return None

    w = Workload(arrival_s=[0.0, 0.1], input_tokens=[10, 20], output_tokens=[3, 2])
    with pytest.raises(ValueError, match=r"The router 'lost' must return 1 instance indices"):
        simulate(w, Cluster.homogeneous("llama-2-7b", "a100-80gb", n_instances=2), "fcfs",
                 router=lost)


@pytest.mark.parametrize(
    ("state", "match"),
    [({"priority": np.nan}, "priority must be integers"),
     ({"attained_s": -1.0}, r"invalid attained_s: values must be finite and >= 0")],
)
def test_bad_policy_state_is_refused_naming_the_policy(state, match):
    from schedlab import Workload
    from schedlab.contract import Plan
    from schedlab.sim import Cluster, simulate

    (field, value), = state.items()

    def sloppy(view, /):
        return Plan(order=np.arange(view.n), **{field: np.full(view.n, value)})

    w = Workload(arrival_s=[0.0, 0.1], input_tokens=[10, 20], output_tokens=[3, 2])
    with pytest.raises(ValueError, match=f"Policy 'sloppy' on instance 0: .*{match}"):
        simulate(w, Cluster.homogeneous("llama-2-7b", "a100-80gb"), sloppy)
