"""Every registered policy and router runs end to end on a shipped trace with the roofline cost."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.costmodel import iteration_cost
from schedlab.datasets import load
from schedlab.policies import REGISTRY, ROUTERS
from schedlab.sim import Cluster, InstanceSpec, simulate


@pytest.fixture(scope="module")
def trace():
    w = load("azure-conv-2023").head(120)
    return w.replace(arrival_s=w.arrival_s - w.arrival_s[0])


@pytest.fixture(scope="module")
def cost():
    return iteration_cost("llama-2-7b", "a100-80gb", 1)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registered_policy_serves_a_real_trace(name, trace, cost) -> None:
    spec = InstanceSpec(cost=cost, max_batch_tokens=16384, chunk_tokens=0)
    res = simulate(trace, spec, name)
    assert set(res.status) <= {"completed", "rejected"}
    assert (res.reject_reason[res.status == "rejected"] != "").all()
    done = res.status == "completed"
    assert done.sum() > 0.9 * len(trace)
    assert (res.finish_s[done] >= res.first_token_s[done]).all()
    assert (res.first_token_s[done] >= res.arrival_s[done]).all()
    again = simulate(trace, spec, name)
    assert np.array_equal(res.finish_s, again.finish_s, equal_nan=True)


@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_registered_router_spreads_requests(router, trace, cost) -> None:
    cl = Cluster.homogeneous(cost=cost, n_instances=3, max_batch_tokens=16384)
    res = simulate(trace, cl, "fcfs", router=router)
    assert (res.status == "completed").all()
    assert set(np.unique(res.instance).tolist()) == {0, 1, 2}
    assert res.summary()["instances"] == 3
