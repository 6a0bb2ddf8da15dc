"""The default runs of FastServe and LoongServe spread their simulations over two processes;
the results must not depend on it."""

from __future__ import annotations

import numpy as np

from schedlab.seeds import fastserve, loongserve


def test_fastserve_sweep_is_the_same_on_two_processes() -> None:
    from schedlab.sim import Cluster

    ws = fastserve.artifact_workloads((1.0, 3.0), (12, 20), np.random.default_rng(0))
    cluster = Cluster.homogeneous(model=fastserve.MODEL, gpu=fastserve.GPU, **fastserve.ENGINE)
    runs = (("fcfs", cluster, "fcfs", {}), ("skip-join-mlfq", cluster, "skip-join-mlfq", {}))
    one = fastserve._sweep(ws, runs, (1.0, 3.0), "test", jobs=1)
    two = fastserve._sweep(ws, runs, (1.0, 3.0), "test", jobs=2)
    for name in ("mean_norm_s", "p95_norm_s", "attainment", "mean_jct_s", "swaps"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name


def test_loongserve_search_is_a_module_function_of_its_arguments() -> None:
    from joblib import Parallel, delayed

    from schedlab.sim.elastic import ElasticCluster

    cluster = ElasticCluster(model=loongserve.MODEL, gpu=loongserve.GPU, tp=2, n_instances=4,
                             kv_capacity_tokens=210_000)
    rows = cluster.parts()["rows"]
    task = ("fig10", "vllm", "sharegpt", None, loongserve.RATES["sharegpt"], 10, 0, cluster,
            rows, 2)
    here = loongserve._search(*task)
    there = Parallel(n_jobs=2)(delayed(loongserve._search)(*task) for _ in range(2))
    assert there == [here, here]
