"""The rollout simulator: a dispatch carried out as decided on the serving engine, and the
rollout metrics."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.contract.dispatch import Dispatch
from schedlab.costmodel.base import ConstantIterationCost
from schedlab.costmodel.training import TrainingCost
from schedlab.datasets.rollout import rollout_batch
from schedlab.records import Workload
from schedlab.sim import InstanceSpec
from schedlab.sim.rollout import RolloutCluster, dispatch_view, simulate_rollout
from schedlab.testing import check_simulation


def _cluster(n=2, batch=256, kv=None):
    spec = InstanceSpec(cost=ConstantIterationCost(slot_s=0.01, kv_capacity_tokens=kv or 10**7),
                        max_batch_size=batch, max_batch_tokens=65_536, preemption="recompute")
    return RolloutCluster(instance=spec, n_instances=n)


@pytest.fixture(scope="module")
def batch():
    return rollout_batch(n_prompts=24, samples_per_prompt=4, seed=3, max_tokens=4096)


@pytest.mark.parametrize("dispatch", ["round-robin", "random", "lpt", "skew-aware"])
def test_every_sample_completes_where_dispatched(batch, dispatch):
    r = simulate_rollout(batch, _cluster(3), dispatch)
    s = r.serving
    assert s.completed.all()
    assert np.array_equal(s.instance, r.dispatch.instance)
    assert np.array_equal(s.output_tokens, batch.output_tokens)  # the workload's order
    assert np.array_equal(s.request_id, batch.request_id)
    assert r.makespan_s == pytest.approx(np.nanmax(s.finish_s))
    check_simulation(s, batch.replace(arrival_s=np.zeros(len(batch))))


def test_instances_admit_in_the_dispatch_order():
    """With one slot per instance, samples finish in the order the dispatch gave."""
    w = Workload(arrival_s=np.zeros(6), input_tokens=np.full(6, 10),
                 output_tokens=np.array([5, 50, 20, 40, 10, 30]))
    order = np.array([3, 0, 5, 1, 4, 2])

    def fixed(view, /):
        return Dispatch(instance=np.array([0, 1, 0, 1, 0, 1]), order=order)

    r = simulate_rollout(w, _cluster(2, batch=1), fixed)
    for i in (0, 1):
        adm = r.dispatch.admission_order(i)
        assert (np.diff(r.finish_s[adm]) > 0).all()
    assert r.dispatch_name == "fixed"


def test_lpt_order_finishes_the_longest_first_on_one_slot():
    w = Workload(arrival_s=np.zeros(4), input_tokens=np.full(4, 10),
                 output_tokens=np.array([5, 50, 20, 40]))
    r = simulate_rollout(w, _cluster(1, batch=1), "lpt")
    assert np.argsort(r.finish_s).tolist() == [1, 3, 2, 0]


def test_metrics_on_a_hand_made_rollout():
    w = Workload(arrival_s=np.zeros(10), input_tokens=np.full(10, 10),
                 output_tokens=np.array([10] * 9 + [100]))
    r = simulate_rollout(w, _cluster(2), "round-robin")  # 5 samples on each instance
    f = r.finish_s
    assert r.makespan_s == f.max()
    # the tail: the last 10% (one sample) after the ninth completion
    assert r.tail_s() == pytest.approx(f.max() - np.sort(f)[-2])
    assert r.instance_finish_s.tolist() == [f[0::2].max(), f[1::2].max()]
    assert r.idle_s.min() == 0.0 and r.idle_s.max() > 0
    s = r.summary()
    assert s["samples"] == 10 and s["completed"] == 10 and s["preemptions"] == 0
    assert s["output_tokens_per_s"] == pytest.approx(190 / r.makespan_s)
    with pytest.raises(ValueError, match="fraction"):
        r.tail_s(0.0)


def test_kv_overflow_preempts_by_recomputation_and_still_completes(batch):
    small = _cluster(2, batch=64, kv=12_000)
    r = simulate_rollout(batch, small, "round-robin")
    assert r.serving.completed.sum() + (r.serving.status == "rejected").sum() == len(batch)
    assert r.preemptions > 0
    assert r.serving.swaps.sum() == 0


def test_oracle_lpt_beats_round_robin_on_a_heavy_tail():
    w = rollout_batch(n_prompts=64, samples_per_prompt=4, seed=0, max_tokens=8192)
    c = _cluster(8, batch=4)  # rounds of four: where the long samples go matters
    rr = simulate_rollout(w, c, "round-robin").makespan_s
    assert simulate_rollout(w, c, "lpt").makespan_s < rr


def test_predictions_reach_the_dispatch_not_the_truth(batch):
    seen = {}

    def spy(view, /):
        seen["pred"] = view.output_tokens_pred.copy()
        seen["hist"] = view.history_tokens.copy()
        return Dispatch(instance=np.zeros(view.n, dtype=np.int64), order=np.arange(view.n))

    pred = np.full(len(batch), 7.0)
    r = simulate_rollout(batch, _cluster(), spy, predicted_output_tokens=pred,
                         history_tokens=[1.0, 2.0])
    assert (seen["pred"] == 7.0).all() and seen["hist"].tolist() == [1.0, 2.0]
    assert np.array_equal(r.serving.output_tokens, batch.output_tokens)


def test_bad_input_gets_clear_errors(batch):
    c = _cluster()
    with pytest.raises(ValueError, match="Close matches"):
        simulate_rollout(batch, c, "round-robbin")
    with pytest.raises(ValueError, match="must return a Dispatch"):
        simulate_rollout(batch, c, lambda view: None)
    with pytest.raises(ValueError, match="out of range"):
        simulate_rollout(batch, c, lambda view: Dispatch(
            instance=np.full(view.n, 5), order=np.arange(view.n)))
    with pytest.raises(ValueError, match="predicted_output_tokens"):
        simulate_rollout(batch, c, predicted_output_tokens=np.ones(3))
    with pytest.raises(ValueError, match="history_tokens"):
        simulate_rollout(batch, c, history_tokens=[-1.0])
    with pytest.raises(ValueError, match="seed"):
        simulate_rollout(batch, c, "random", dispatch_params={"seed": -1})
    with pytest.raises(ValueError, match="n_instances"):
        RolloutCluster(instance=c.instance, n_instances=0)


def test_dispatch_view_fits_the_decode_step_to_the_cost_model():
    c = RolloutCluster.homogeneous("qwen2.5-7b", "h800", n_instances=4)
    w = rollout_batch(n_prompts=4, samples_per_prompt=2, seed=0, max_tokens=2048)
    v = dispatch_view(w, c)
    assert v.n_instances == 4 and v.max_batch_size == 256
    assert v.kv_capacity_tokens == c.instance.kv_capacity(c.instance.resolved_cost())
    one = v.decode_step.step_s(1, 2048)
    assert 0.004 < one < 0.02  # a 7B decode step on one H800: a few milliseconds
    assert v.decode_step.step_s(256, 256 * 2048) > 2 * one


def test_training_cost_is_linear_in_tokens_and_inverse_in_gpus():
    t = TrainingCost.build("qwen2.5-7b", "h800")
    assert t.time_s(2000, 8) == pytest.approx(2 * t.time_s(1000, 8))
    assert t.time_s(1000, 16) == pytest.approx(t.time_s(1000, 8) / 2)
    assert t.time_s(np.array([1000, 2000]), 8).shape == (2,)
    with pytest.raises(ValueError, match="tokens"):
        t.time_s(-1, 8)
    with pytest.raises(ValueError, match="gpus"):
        t.time_s(1, 0)
    with pytest.raises(ValueError, match="mfu"):
        TrainingCost.build("qwen2.5-7b", "h800", mfu=1.5)
