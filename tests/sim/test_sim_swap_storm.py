"""No swap storm: FastServe's MLFQ on an overloaded slice of the shipped Azure trace.

The default instance (Llama-2-7B's shape, with a window long enough for every request, on one
A100-80GB, 256 requests per batch) falls behind the trace's first 1,500 requests (FCFS ends 40 s
after the last arrival). Before issue 10, with unlimited host memory by default, skip-join MLFQ
swapped 5.8 times per request on this slice and took 2.1x FCFS's makespan (27 swaps per request
on 3,000 requests); with the default host swap space (vLLM's 4 GiB per GPU) the prefill gate
bounds the number of started jobs and the swaps stay near one per request. The last test keeps
the bound honest: the same slice with unlimited host memory still thrashes, as the authors' rules
would (the gate never closes), so the bound is one that can fail.
"""

from __future__ import annotations

import pytest

from schedlab import datasets
from schedlab.sim import Cluster, simulate

N = 1500
#: Swaps (swap-outs) per request, and recomputations per request, allowed on the slice.
MAX_SWAPS_PER_REQUEST, MAX_RECOMPUTES_PER_REQUEST = 2.0, 0.15


@pytest.fixture(scope="module")
def workload():
    return datasets.load("azure-conv-2023").head(N)


#: Llama-2-7B's shape and costs with a 1M-token window (the catalog's ``lwm-text-1m``): the
#: trace's requests beyond Llama-2-7B's 4,096 tokens, which make the load, are served, not
#: rejected.
MODEL = "lwm-text-1m"


@pytest.fixture(scope="module")
def cluster():
    return Cluster.homogeneous(MODEL, "a100-80gb")


def _per_request(result) -> tuple[float, float]:
    swaps = float(result.swaps.sum())
    recomputes = float(result.preemptions.sum()) - swaps
    return swaps / N, recomputes / N


@pytest.mark.parametrize("policy", ["skip-join-mlfq", "mlfq"])
def test_mlfq_swaps_about_once_per_request_on_an_overloaded_trace(workload, cluster, policy):
    result = simulate(workload, cluster, policy)
    swaps, recomputes = _per_request(result)
    assert result.summary()["completed"] == N
    assert swaps <= MAX_SWAPS_PER_REQUEST, f"{swaps:.2f} swaps per request"
    assert recomputes <= MAX_RECOMPUTES_PER_REQUEST, f"{recomputes:.3f} recomputations per request"
    fcfs = simulate(workload, cluster, "fcfs").summary()["makespan_s"]
    assert result.summary()["makespan_s"] < 1.5 * fcfs


def test_without_a_host_limit_the_authors_rules_thrash(workload):
    unlimited = Cluster.homogeneous(MODEL, "a100-80gb", host_kv_capacity_tokens=2**62)
    swaps, recomputes = _per_request(simulate(workload, unlimited, "skip-join-mlfq"))
    assert swaps > 2 * MAX_SWAPS_PER_REQUEST and recomputes == 0
