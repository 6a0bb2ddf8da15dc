"""Every registered policy and router passes the public check suite (each named check on its
own), with default and non-default parameters, answers with a plan, and rejects bad parameters
with a ValueError naming them."""

from __future__ import annotations

import pytest

from schedlab.contract import Plan, QueueView, form_batch
from schedlab.policies import REGISTRY, ROUTERS, get_policy
from schedlab.testing import check_policy, check_router, policy_checks

CHECKS = [(name, check) for name in sorted(REGISTRY)
          for check in policy_checks(name, max_examples=60)]


@pytest.mark.parametrize(("name", "check"), CHECKS,
                         ids=[f"{n}-{c.__name__}" for n, c in CHECKS])
def test_registered_policy_passes_each_named_check(name: str, check) -> None:
    check()


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("vllm", {"preempt": "swap", "watermark": 0.3}),
        ("fcfs", {"reserve_max_tokens": 2048}),
        ("srpt", {"preempt": "recompute"}),
        ("mlfq", {"num_queues": 2, "proactive_offloading": False}),
        (
            "skip-join-mlfq",
            {
                "reset_attained_on_promotion": False,
                "starvation_period_iterations": 2,
                "preempt": "recompute",
            },
        ),
        ("skip-join-mlfq", {"num_queues": 1, "ratio": 1e9, "min_free_blocks": 64}),
        ("skip-join-mlfq", {"base_quantum_s": 0.5, "ratio": 1.0, "starvation_threshold_s": 0.1}),
    ],
)
def test_policy_with_parameters_passes_check_policy(name: str, params: dict) -> None:
    check_policy(name, max_examples=40, **params)


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_registered_router_passes_check_router(name: str) -> None:
    check_router(name, max_examples=60)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("vllm", {"preempt": "drop"}, "'preempt' parameter of vllm"),
        ("fcfs", {"reserve_max_tokens": 0}, "'reserve_max_tokens' parameter of fcfs"),
        ("vllm", {"watermark": 1.5}, "'watermark' parameter of vllm"),
        ("srpt", {"preempt": "swap-out"}, "'preempt' parameter of srpt"),
        ("skip-join-mlfq", {"base_quantum_s": 0.0}, "'base_quantum_s' parameter of skip_join_mlfq"),
        ("skip-join-mlfq", {"ratio": 0.5}, "'ratio' parameter of skip_join_mlfq"),
        ("skip-join-mlfq", {"num_queues": 0}, "'num_queues' parameter of skip_join_mlfq"),
        ("mlfq", {"starvation_threshold_s": -1.0}, "'starvation_threshold_s' parameter"),
        ("mlfq", {"starvation_period_iterations": -1}, "'starvation_period_iterations' parameter"),
        ("skip-join-mlfq", {"min_free_blocks": -2}, "'min_free_blocks' parameter"),
    ],
)
def test_bad_parameters_raise_value_error(name: str, params: dict, match: str) -> None:
    view = QueueView.from_columns(now_s=0.0, input_tokens=[4], kv_capacity_tokens=100)
    with pytest.raises(ValueError, match=match):
        get_policy(name)(view, **params)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_empty_queue_gives_empty_decision(name: str) -> None:
    view = QueueView.from_columns(now_s=3.0, input_tokens=[], kv_capacity_tokens=100)
    plan = get_policy(name)(view)
    d = form_batch(view, plan)
    assert isinstance(plan, Plan) and d.run.shape == (0,) and d.reject.shape == (0,)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_requests_that_never_fit_are_rejected_by_the_engine_with_a_reason(name: str) -> None:
    view = QueueView.from_columns(
        now_s=0.0,
        input_tokens=[50, 500, 20],
        kv_capacity_tokens=200,
        max_batch_tokens=100,
        max_batch_size=4,
    )
    d = form_batch(view, get_policy(name)(view))
    assert d.reject.tolist() == [1]
    assert "capacity" in d.reject_reason[0]
    assert sorted(d.run.tolist()) == [0, 2]
