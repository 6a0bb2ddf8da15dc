"""Elastic instances in the engine (LoongServe): every request ends completed or rejected with a
reason, the KV of a request spans instances without ever moving except by a plan's migrations
(scale-down leaves it where the prefill put it, scale-up adds instances around it), capacity per
instance holds, and bad input names its field."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.contract.elastic import ElasticPlan, PrefillBatch
from schedlab.datasets import long_context_workload
from schedlab.policies.loongserve import loongserve
from schedlab.records import Workload
from schedlab.sim import ElasticCluster, simulate_elastic

CLUSTER = ElasticCluster(n_instances=4, kv_capacity_tokens=210_000)


@pytest.mark.parametrize("dataset,rate", [("mixed", 0.5), ("sharegpt", 30.0), ("lveval", 0.2),
                                          ("leval", 2.0)])
@pytest.mark.parametrize("scheduler,scale_up", [("loongserve", True), ("loongserve", False),
                                                ("static-sp", False),
                                                ("loongserve-paper", True)])
def test_the_kv_audit_holds_and_every_request_ends(dataset, rate, scheduler, scale_up):
    w = long_context_workload(dataset, 120, rate=rate, seed=3)
    c = ElasticCluster(n_instances=4, kv_capacity_tokens=210_000, scale_up=scale_up)
    r = simulate_elastic(w, c, scheduler, check=True)  # raises on a broken KV invariant
    assert (r.completed | (r.status == "rejected")).all()
    assert (r.reject_reason[r.status == "rejected"] != "").all()
    ok = r.completed
    assert (r.first_token_s[ok] >= r.arrival_s[ok]).all()
    assert (r.finish_s[ok] >= r.first_token_s[ok]).all()
    if scheduler == "static-sp":
        assert r.extra["migrated_tokens"] == 0 and r.extra["backfills"] == 0


def test_large_batches_scale_up_and_without_scale_up_pauses_are_recomputed():
    """Above 128 requests a master, a decode batch takes idle instances (compute-bound FFN);
    without elastic scale-up it never does, and every pause is a recomputation."""
    w = long_context_workload("sharegpt", 600, rate=1000.0, seed=1)
    up = simulate_elastic(w, CLUSTER, check=True)
    flat = simulate_elastic(w, ElasticCluster(n_instances=4, kv_capacity_tokens=210_000,
                                              scale_up=False), check=True)
    assert up.completed.all() and flat.completed.all()
    assert up.extra["scale_ups"] > 0
    assert flat.extra["scale_ups"] == 0
    assert flat.extra["pauses"] == int(flat.preemptions.sum())


def test_a_request_longer_than_the_cluster_is_rejected_with_its_reason():
    w = Workload(arrival_s=[0.0, 1.0], input_tokens=[900_000, 1_000], output_tokens=[10, 10])
    r = simulate_elastic(w, CLUSTER)
    assert r.status.tolist() == ["rejected", "completed"]
    assert r.reject_reason[0] == "longer than the cluster's KV"


def test_a_users_scheduler_runs_and_an_invalid_plan_names_it():
    w = long_context_workload("leval", 20, rate=1.0, seed=0)

    def mine(view, /):
        return loongserve(view, max_num_ooe=0)

    assert simulate_elastic(w, CLUSTER, mine).completed.all()

    def greedy(view, /):  # prefills on an instance a running decode batch holds
        if not view.waiting_id.shape[0] or not view.batches.shape[0]:
            return loongserve(view)
        busy = view.batch_instances(int(view.batches[0]))
        return ElasticPlan(batches=(PrefillBatch([0], busy[:1]),))

    with pytest.raises(ValueError, match=r"Elastic scheduler 'greedy'.*does not pause"):
        simulate_elastic(long_context_workload("leval", 40, rate=5.0, seed=0), CLUSTER, greedy)


@pytest.mark.parametrize("kwargs,match", [
    ({"n_instances": 0}, "n_instances"), ({"tp": 0}, "'tp'"),
    ({"kv_capacity_tokens": 0}, "kv_capacity_tokens"), ({"threshold": 0}, "threshold"),
])
def test_bad_clusters_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ElasticCluster(**kwargs)


def test_bad_limits_and_names_are_refused():
    w = long_context_workload("leval", 5, rate=1.0, seed=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        simulate_elastic(w, CLUSTER, max_new_tokens=w.output_tokens - 1)
    with pytest.raises(ValueError, match="Unknown elastic scheduler 'loongserv'"):
        simulate_elastic(w, CLUSTER, "loongserv")
    with pytest.raises(ValueError, match="max_num_oe"):
        simulate_elastic(w, CLUSTER, scheduler_params={"max_num_oe": 3})


def test_runs_are_deterministic():
    w = long_context_workload("mixed", 80, rate=0.5, seed=2)
    a, b = simulate_elastic(w, CLUSTER), simulate_elastic(w, CLUSTER)
    assert np.array_equal(a.finish_s, b.finish_s, equal_nan=True)
