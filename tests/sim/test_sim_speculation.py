"""Speculative decoding in a divided rollout's engine steps (Seer §3.4): per-chunk draft lengths
from the allocator, acceptance that rises as a group's siblings start, tokens conserved, and no
draft meaning exactly plain decoding."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.costmodel.speculative import ALPHA0, acceptance
from schedlab.datasets.rollout import rollout_batch
from schedlab.sim import RolloutCluster, Speculation, simulate_divided_rollout


@pytest.fixture(scope="module")
def batch():
    return rollout_batch(n_prompts=12, samples_per_prompt=8, seed=2, max_tokens=8192)


@pytest.fixture(scope="module")
def cluster():
    return RolloutCluster.homogeneous("qwen2.5-7b", "h800", n_instances=2)


def _never(batch_high, batch_low, beta, *, gamma_star, gamma_max):
    return 0, 0


def test_no_draft_is_exactly_plain_decoding(batch, cluster):
    plain = simulate_divided_rollout(batch, cluster, "seer", max_tokens=8192)
    none = simulate_divided_rollout(batch, cluster, "seer", max_tokens=8192,
                                    speculation=Speculation(allocator=_never))
    assert none.makespan_s == plain.makespan_s
    assert np.array_equal(none.serving.finish_s, plain.serving.finish_s)
    assert np.allclose(none.extra["tokens_per_step"], 1.0)


@pytest.mark.parametrize("spec", [
    Speculation(), Speculation(allocator="uniform"), Speculation(grouped=False),
    Speculation(allocator_params={}), Speculation(decay=0.8, draft_s=0.002),
])
def test_speculation_conserves_tokens_and_never_preempts(batch, cluster, spec):
    plain = simulate_divided_rollout(batch, cluster, "seer", max_tokens=8192)
    r = simulate_divided_rollout(batch, cluster, "seer", max_tokens=8192, speculation=spec)
    s = r.serving
    assert s.completed.all() and r.preemptions == 0
    assert np.array_equal(s.output_tokens, batch.output_tokens)
    assert np.array_equal(r.extra["chunks"], plain.extra["chunks"])  # same chunks, fewer steps
    tps = r.extra["tokens_per_step"]
    assert (tps >= 1.0).all() and (tps <= spec.gamma_max + 1).all()
    assert (r.extra["verify_steps"] <= batch.output_tokens).all()
    assert r.makespan_s <= plain.makespan_s * 1.001


def test_grouped_acceptance_rises_with_started_siblings(batch, cluster):
    grouped = simulate_divided_rollout(batch, cluster, "seer", max_tokens=8192,
                                       speculation=Speculation())
    vanilla = simulate_divided_rollout(batch, cluster, "seer", max_tokens=8192,
                                       speculation=Speculation(grouped=False,
                                                               allocator="uniform"))
    a = grouped.extra["acceptance"]
    assert np.allclose(vanilla.extra["acceptance"], ALPHA0)
    assert (a >= ALPHA0).all() and (a <= acceptance(7) + 1e-12).all()
    assert a.max() > ALPHA0  # later siblings draft from the others' text
    assert np.nanmean(grouped.extra["tokens_per_step"]) > np.nanmean(
        vanilla.extra["tokens_per_step"])
    assert grouped.makespan_s < vanilla.makespan_s


def test_groups_of_one_have_no_siblings_to_learn_from(cluster):
    w = rollout_batch(n_prompts=24, samples_per_prompt=1, seed=4, max_tokens=4096)
    grouped = simulate_divided_rollout(w, cluster, "seer", max_tokens=4096,
                                       speculation=Speculation(allocator="uniform"))
    vanilla = simulate_divided_rollout(w, cluster, "seer", max_tokens=4096,
                                       speculation=Speculation(grouped=False,
                                                               allocator="uniform"))
    assert grouped.makespan_s == vanilla.makespan_s


def test_partial_rollout_and_speculation_compose(batch, cluster):
    r = simulate_divided_rollout(batch, cluster, "group-round-robin", max_tokens=8192,
                                 stop_after_groups=3, speculation=Speculation())
    cut = ~r.serving.completed
    assert cut.any() and np.isnan(r.extra["tokens_per_step"][cut]).all()


@pytest.mark.parametrize("kwargs,match", [
    ({"gamma_max": 0}, "gamma_max"),
    ({"grouped": 1}, "grouped"),
    ({"allocator": "mbaa"}, "Unknown draft allocator 'mbaa'"),
    ({"allocator_params": {"lamda": 2}}, "lamda"),
    ({"alpha0": 1.5}, "alpha0"),
    ({"decay": -0.1}, "decay"),
    ({"draft_s": float("nan")}, "draft_s"),
])
def test_bad_speculation_names_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Speculation(**kwargs)


def test_an_allocator_out_of_bounds_is_named(batch, cluster):
    def greedy(batch_high, batch_low, beta, *, gamma_star, gamma_max):
        return gamma_max + 1, 0

    with pytest.raises(ValueError, match="must return two draft lengths in \\[0, gamma_max=8\\]"):
        simulate_divided_rollout(batch, cluster, "seer", max_tokens=8192,
                                 speculation=Speculation(allocator=greedy))


def test_speculation_must_be_a_speculation(batch, cluster):
    with pytest.raises(ValueError, match="'speculation' parameter"):
        simulate_divided_rollout(batch, cluster, "seer", speculation={"grouped": True})
