"""Partial Rollout (Seer §4.2's APRIL baseline): an iteration that stops when enough groups have
completed cuts the rest with the tokens they had, and the next iteration resumes them; tokens are
conserved across iterations and the completed responses lean short."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.costmodel.base import ConstantIterationCost
from schedlab.datasets.rollout import rollout_batch
from schedlab.sim import (
    InstanceSpec,
    RolloutCluster,
    simulate_divided_rollout,
    simulate_partial_rollout,
)


def _cluster(n=2, batch=32, kv=None):
    spec = InstanceSpec(cost=ConstantIterationCost(slot_s=0.01, kv_capacity_tokens=kv or 10**7),
                        max_batch_size=batch, max_batch_tokens=65_536, preemption="recompute")
    return RolloutCluster(instance=spec, n_instances=n)


@pytest.fixture(scope="module")
def pool():
    return rollout_batch(n_prompts=60, samples_per_prompt=4, seed=3, max_tokens=4096)


@pytest.mark.parametrize("scheduler", ["group-round-robin", "seer", "divided-fifo"])
@pytest.mark.parametrize("need", [1, 4, 9])
def test_a_stopped_iteration_cuts_the_rest_at_the_last_needed_group(pool, scheduler, need):
    w = pool.head(16 * 4)
    r = simulate_divided_rollout(w, _cluster(), scheduler, max_tokens=4096,
                                 stop_after_groups=need)
    s = r.serving
    ok = s.completed
    gid = w.group_id
    whole = [g for g in np.unique(gid) if ok[gid == g].all()]
    assert len(whole) >= need
    # the iteration ends at the completion that made the count: no completion after it
    ends = sorted(max(s.finish_s[gid == g]) for g in whole)
    assert r.makespan_s == pytest.approx(ends[need - 1])
    cut = ~ok
    assert (s.reject_reason[cut] == f"partial rollout: cut when {len(whole)} groups completed"
            ).all()
    partial = r.extra["partial_tokens"]
    assert (partial[ok] == 0).all()
    assert (partial[cut] < w.output_tokens[cut]).all() and (partial >= 0).all()


def test_without_a_stop_nothing_is_cut(pool):
    r = simulate_divided_rollout(pool.head(32), _cluster(), "seer", max_tokens=4096)
    assert r.serving.completed.all() and not r.extra["partial_tokens"].any()


def test_resumed_requests_need_only_their_remaining_tokens(pool):
    w = pool.head(8)
    gen0 = w.output_tokens // 2
    fresh = simulate_divided_rollout(w, _cluster(1), "group-round-robin", max_tokens=4096)
    resumed = simulate_divided_rollout(w, _cluster(1), "group-round-robin", max_tokens=4096,
                                       generated_tokens=gen0)
    assert resumed.serving.completed.all()
    assert resumed.makespan_s < fresh.makespan_s


@pytest.mark.parametrize("bad,match", [
    (lambda w: w.output_tokens, "below each request's output length: request 0"),
    (lambda w: -np.ones(len(w), dtype=np.int64), "generated_tokens"),
    (lambda w: np.zeros(len(w) - 1, dtype=np.int64), "generated_tokens"),
])
def test_bad_generated_tokens_name_the_field(pool, bad, match):
    w = pool.head(8)
    with pytest.raises(ValueError, match=match):
        simulate_divided_rollout(w, _cluster(), "seer", generated_tokens=bad(w))


def test_bad_stop_names_the_field(pool):
    with pytest.raises(ValueError, match="stop_after_groups"):
        simulate_divided_rollout(pool.head(8), _cluster(), "seer", stop_after_groups=0)


@pytest.mark.parametrize("over_issue", [1.0, 1.5, 2.0])
def test_iterations_conserve_tokens_and_carry_the_cut(pool, over_issue):
    p = simulate_partial_rollout(pool, _cluster(), n_groups=6, over_issue=over_issue,
                                 iterations=4, max_tokens=4096)
    t = p.table
    assert (t["completed_groups"] >= 6).all()
    assert t["carried_requests"].iloc[0] == 0
    assert (t["carried_requests"].to_numpy()[1:] == t["cut_requests"].to_numpy()[:-1]).all()
    # every token generated is in a completed response or in the last iteration's cut ones
    done = sum(int(r.serving.output_tokens[r.serving.completed].sum()) for r in p.results)
    left = int(p.results[-1].extra["partial_tokens"].sum())
    assert int(t["new_tokens"].sum()) == done + left
    # no request completes twice, each id at most once over the iterations
    ids = np.concatenate([r.serving.request_id[r.serving.completed] for r in p.results])
    assert np.unique(ids).shape[0] == ids.shape[0]
    if over_issue == 1.0:  # nothing to cut: every issued group is needed
        assert (t["cut_requests"] == 0).all()


def test_completed_responses_lean_short_in_the_first_iteration(pool):
    p = simulate_partial_rollout(pool, _cluster(), n_groups=6, iterations=1, max_tokens=4096)
    assert p.length_bias < 1.0
    assert p.tokens_per_s == pytest.approx(p.table["tokens_per_s"].iloc[0])


@pytest.mark.parametrize("kwargs,match", [
    ({"n_groups": 0}, "n_groups"),
    ({"n_groups": 2, "over_issue": 0.5}, "over_issue"),
    ({"n_groups": 2, "iterations": 0}, "iterations"),
    ({"n_groups": 40, "iterations": 2}, "holds 60 groups; iteration 0 needs 80"),
    ({"n_groups": 2, "stop_after_groups": 3}, "stop_after_groups"),
])
def test_bad_partial_rollout_arguments_name_the_field(pool, kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_partial_rollout(pool, _cluster(), **kwargs)


def test_pool_must_be_group_ordered(pool):
    shuffled = pool.take(np.arange(len(pool))).replace(
        group_id=np.roll(pool.group_id, 1))
    with pytest.raises(ValueError, match="group-ordered"):
        simulate_partial_rollout(shuffled, _cluster(), n_groups=2)
