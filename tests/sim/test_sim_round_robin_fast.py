"""The simulator's shortcut for the registry's round-robin router (no RouterView, no load
tracking) gives the same schedule as the general routing path."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.policies.routers import round_robin
from schedlab.records import Workload
from schedlab.sim import Cluster, simulate


def _as_plain_callable(view, /):
    """round_robin behind another function object, so the simulator takes the general path."""
    return round_robin(view)


@pytest.mark.parametrize("policy", ["fcfs", "vllm"])
def test_round_robin_shortcut_matches_general_path(policy: str) -> None:
    rng = np.random.default_rng(3)
    n = 300
    arrival = np.sort(np.round(rng.exponential(0.05, n).cumsum(), 2))  # some equal times
    w = Workload(
        arrival_s=arrival,
        input_tokens=rng.integers(10, 400, n),
        output_tokens=rng.integers(1, 200, n),
    )
    cl = Cluster.homogeneous("llama-2-7b", "a100-80gb", n_instances=3)
    fast = simulate(w, cl, policy, router="round-robin")
    general = simulate(w, cl, policy, router=_as_plain_callable)
    assert np.array_equal(fast.instance, general.instance)
    assert np.array_equal(fast.finish_s, general.finish_s)
    assert np.array_equal(fast.first_token_s, general.first_token_s)
    assert fast.decisions == general.decisions


def test_round_robin_with_params_still_fails_loudly() -> None:
    w = Workload(arrival_s=np.array([0.0, 0.1]), input_tokens=np.array([5, 5]),
                 output_tokens=np.array([2, 2]))
    cl = Cluster.homogeneous("llama-2-7b", "a100-80gb", n_instances=2)
    with pytest.raises(ValueError, match="router 'round-robin' has no parameter 'bogus'"):
        simulate(w, cl, "fcfs", router="round-robin", router_params={"bogus": 1})
