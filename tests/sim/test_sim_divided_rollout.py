"""Divided rollout on the engine: chunks carried out as the scheduler decides, tokens conserved,
memory-aware dispatch without preemption, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schedlab.contract.divided import Chunks
from schedlab.costmodel.base import ConstantIterationCost
from schedlab.datasets.rollout import rollout_batch
from schedlab.errors import SimulationStalled
from schedlab.records import Workload
from schedlab.sim import InstanceSpec, RolloutCluster, simulate_divided_rollout


def _cluster(n=2, batch=64, kv=None):
    spec = InstanceSpec(cost=ConstantIterationCost(slot_s=0.01, kv_capacity_tokens=kv or 10**7),
                        max_batch_size=batch, max_batch_tokens=65_536, preemption="recompute")
    return RolloutCluster(instance=spec, n_instances=n)


@pytest.fixture(scope="module")
def batch():
    return rollout_batch(n_prompts=16, samples_per_prompt=4, seed=5, max_tokens=4096)


@pytest.mark.parametrize("scheduler,params", [
    ("seer", {"chunk_tokens": 512}), ("seer", {"chunk_tokens": 512, "starvation_eps": 0.0}),
    ("divided-fifo", {"chunk_tokens": 1000}), ("request-level", {}), ("oracle-lfs", {}),
    ("group-round-robin", {}),
])
def test_tokens_are_conserved_across_chunks(batch, scheduler, params):
    r = simulate_divided_rollout(batch, _cluster(), scheduler, scheduler_params=params,
                                 max_tokens=4096)
    s = r.serving
    assert s.completed.all()
    assert np.array_equal(s.output_tokens, batch.output_tokens)  # sampling never changes
    chunk = params.get("chunk_tokens", 8192 if scheduler not in ("request-level",
                                                                  "group-round-robin") else None)
    expect = (np.ones(len(batch)) if chunk is None
              else np.ceil(batch.output_tokens / chunk))  # each chunk its budget, the last less
    assert np.array_equal(r.extra["chunks"], expect.astype(np.int64))
    assert (s.first_token_s <= s.finish_s).all()


def test_memory_aware_dispatch_never_preempts_where_one_shot_does():
    w = rollout_batch(n_prompts=8, samples_per_prompt=8, seed=1, max_tokens=8192)
    tight = _cluster(2, batch=64, kv=40_000)
    rr = simulate_divided_rollout(w, tight, "group-round-robin", max_tokens=8192)
    seer = simulate_divided_rollout(w, tight, "seer", max_tokens=8192,
                                    scheduler_params={"chunk_tokens": 1024})
    assert rr.preemptions > 0 and seer.preemptions == 0
    assert seer.serving.completed.all() and rr.serving.completed.all()


def test_pulls_happen_when_the_load_decides_and_the_gap_is_large(batch):
    r = simulate_divided_rollout(batch, _cluster(4), "seer", max_tokens=4096,
                                 scheduler_params={"chunk_tokens": 256,
                                                   "imbalance_threshold": 0,
                                                   "pull_gap_tokens": 0})
    assert r.extra["pulls"].sum() > 0 and r.serving.completed.all()
    never = simulate_divided_rollout(batch, _cluster(4), "seer", max_tokens=4096,
                                     scheduler_params={"chunk_tokens": 256,
                                                       "imbalance_threshold": 10**6})
    assert never.extra["pulls"].sum() == 0


def test_a_chunk_boundary_costs_time_but_not_tokens():
    w = Workload(arrival_s=[0.0], input_tokens=[100], output_tokens=[1000])
    whole = simulate_divided_rollout(w, _cluster(1), "request-level")
    split = simulate_divided_rollout(w, _cluster(1), "seer",
                                     scheduler_params={"chunk_tokens": 100})
    assert split.extra["chunks"].tolist() == [10] and whole.extra["chunks"].tolist() == [1]
    assert split.makespan_s >= whole.makespan_s
    assert split.serving.output_tokens.tolist() == [1000]


def test_runs_are_deterministic(batch):
    a = simulate_divided_rollout(batch, _cluster(3), "seer", max_tokens=4096)
    b = simulate_divided_rollout(batch, _cluster(3), "seer", max_tokens=4096)
    assert np.array_equal(a.finish_s, b.finish_s)


def test_the_scheduler_sees_the_buffer_change():
    seen = []

    def spy(view, /):
        seen.append((view.decision, view.waiting.tolist(), view.generated_tokens.tolist()))
        w = view.waiting
        return Chunks(request=w, instance=np.zeros(w.shape[0], np.int64),
                      budget=np.minimum(view.max_tokens[w] - view.generated_tokens[w], 30))

    w = Workload(arrival_s=[0.0, 0.0], input_tokens=[10, 10], output_tokens=[50, 20])
    simulate_divided_rollout(w, _cluster(1), spy)
    assert seen[0] == (0, [0, 1], [0, 0])
    assert seen[1][2] == [30, 20] and seen[1][1] == [0]  # request 1 ended, request 0 waits
    assert len(seen) == 2


def test_bad_input_gets_clear_errors(batch):
    c = _cluster()
    with pytest.raises(ValueError, match="Close matches"):
        simulate_divided_rollout(batch, c, "sear")
    with pytest.raises(ValueError, match="must return Chunks"):
        simulate_divided_rollout(batch, c, lambda view: None)
    with pytest.raises(ValueError, match="budget out of range"):
        simulate_divided_rollout(batch, c, lambda view: Chunks(
            request=view.waiting, instance=np.zeros(view.waiting.shape[0], np.int64),
            budget=np.zeros(view.waiting.shape[0], np.int64)))
    with pytest.raises(ValueError, match="max_tokens"):
        simulate_divided_rollout(batch, c, max_tokens=10)
    with pytest.raises(ValueError, match="predicted_output_tokens"):
        simulate_divided_rollout(batch, c, predicted_output_tokens=np.ones(2))
    with pytest.raises(ValueError, match="chunk_tokens"):
        simulate_divided_rollout(batch, c, scheduler_params={"chunk_tokens": 0})
    with pytest.raises(SimulationStalled, match="dispatched nothing"):
        simulate_divided_rollout(batch, c, lambda view: Chunks.none())


def test_metrics_follow_the_rollout_result(batch):
    r = simulate_divided_rollout(batch, _cluster(2), "seer", max_tokens=4096)
    s = r.summary()
    assert s["dispatch"] == "seer" and s["samples"] == len(batch)
    assert math.isnan(s["est_makespan_s"]) and s["long_instances"] == 0
    assert r.extra["decisions"] >= 1 and r.dispatch is None


def test_oracle_dominance_on_the_heavy_tailed_generator():
    """Invariant 10 of the digest (§1.8): makespan(Oracle-LFS) <= makespan(Seer) <=
    makespan(veRL-like group round robin) up to noise (2% per batch here), and strictly on
    average, over 8 batches of the heavy-tailed RL generator (epsilon 0: no anti-starvation
    picks)."""
    c = RolloutCluster.homogeneous("qwen2.5-7b", "h800", n_instances=2)
    o_s, s_g = [], []
    for seed in range(8):
        w = rollout_batch(n_prompts=24, samples_per_prompt=8, seed=seed, max_tokens=16384)
        eps = {"starvation_eps": 0.0}
        oracle = simulate_divided_rollout(
            w, c, "oracle-lfs", max_tokens=16384, scheduler_params=eps,
            predicted_output_tokens=w.output_tokens.astype(np.float64)).makespan_s
        seer = simulate_divided_rollout(w, c, "seer", max_tokens=16384,
                                        scheduler_params=eps).makespan_s
        grr = simulate_divided_rollout(w, c, "group-round-robin", max_tokens=16384).makespan_s
        o_s.append(oracle / seer)
        s_g.append(seer / grr)
    assert max(o_s) <= 1.02 and max(s_g) <= 1.02
    assert np.mean(o_s) < 1.0 and np.mean(s_g) < 1.0
