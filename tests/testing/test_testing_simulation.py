"""check_simulation holds for every registered policy run through the simulator, and catches
results that break conservation or time order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel.base import ConstantIterationCost
from schedlab.policies import REGISTRY
from schedlab.records import Workload
from schedlab.sim import InstanceSpec, simulate
from schedlab.testing import check_simulation, workloads

SPECS = st.builds(
    lambda cap, bs, chunk, pre: InstanceSpec(
        cost=ConstantIterationCost(slot_s=0.02, kv_capacity_tokens=cap),
        max_batch_size=bs,
        max_batch_tokens=512,
        chunk_tokens=chunk,
        preemption=pre,
        host_kv_capacity_tokens=1000,
    ),
    cap=st.sampled_from([300, 1200, 100_000]),
    bs=st.integers(1, 8),
    chunk=st.sampled_from([0, 32]),
    pre=st.sampled_from(["swap", "recompute"]),
)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_policy_simulates_to_a_consistent_result(name: str) -> None:
    @settings(max_examples=12, deadline=None, database=None, derandomize=True)
    @given(
        workloads(max_requests=25, max_input_tokens=400, max_output_tokens=60, max_gap_s=0.05),
        SPECS,
    )
    def run(w: Workload, spec: InstanceSpec) -> None:
        r = simulate(w, spec, name, record_iterations=True)
        check_simulation(r, w)
        if name in ("fcfs", "sjf"):  # run to completion with oracle lengths: never preempted
            assert int(r.preemptions.sum()) == 0

    run()


def _result() -> tuple:
    w = Workload(arrival_s=[0.0, 0.1, 0.2], input_tokens=[30, 40, 20], output_tokens=[5, 3, 4])
    spec = InstanceSpec(cost=ConstantIterationCost(kv_capacity_tokens=500), max_batch_size=2)
    return simulate(w, spec, "skip-join-mlfq", record_iterations=True), w


def test_a_real_result_passes() -> None:
    r, w = _result()
    check_simulation(r, w)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda r: {"status": np.array(["completed", "pending", "completed"])}, "conservation"),
        (lambda r: {"finish_s": r.first_token_s - 1.0}, "finish before first token"),
        (lambda r: {"first_token_s": r.arrival_s - 1.0}, "first token before arrival"),
        (lambda r: {"output_tokens": r.output_tokens + 1}, "output_tokens differs"),
        (lambda r: {"swaps": r.preemptions + 1}, "swaps exceed preemptions"),
        (lambda r: {"busy_s": 1e9}, "busy_s"),
        (lambda r: {"instance": r.instance + 5}, "instance out of range"),
        (
            lambda r: {"reject_reason": np.array(["oops", "", ""])},
            "completed requests \\[0\\] have a reason",
        ),
        (
            lambda r: {
                "iteration_log": {
                    **r.iteration_log,
                    "output_token": ~r.iteration_log["output_token"],
                }
            },
            "token conservation",
        ),
        (
            lambda r: {
                "iteration_log": {**r.iteration_log, "end_s": r.iteration_log["end_s"] + 0.5}
            },
            "overlap on one instance",
        ),
    ],
)
def test_broken_results_are_caught(change, rule: str) -> None:
    r, w = _result()
    bad = dataclasses.replace(r, **change(r))
    with pytest.raises(AssertionError, match=rule):
        check_simulation(bad, w)


def test_tokens_in_no_time_break_the_time_bounds():
    import dataclasses

    from schedlab.costmodel.base import ConstantIterationCost
    from schedlab.records import Workload
    from schedlab.sim import InstanceSpec, simulate

    w = Workload(arrival_s=[0.0, 1e9], input_tokens=[8, 8], output_tokens=[3, 2])
    r = simulate(w, InstanceSpec(cost=ConstantIterationCost(kv_capacity_tokens=64)), "fcfs")
    check_simulation(r, w)  # 1e9 s is late but still resolves an iteration
    at_arrival = dataclasses.replace(r, first_token_s=r.arrival_s.copy())
    with pytest.raises(AssertionError, match=r"time bounds: requests \[0, 1\] got tokens"):
        check_simulation(at_arrival, w)
    at_once = dataclasses.replace(r, finish_s=r.first_token_s.copy())
    with pytest.raises(AssertionError, match="time bounds"):
        check_simulation(at_once, w)
