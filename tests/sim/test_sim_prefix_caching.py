"""Automatic prefix caching on colocated instances (vLLM's, the baseline of Mooncake's Fig. 1):
a request whose prompt starts with blocks an earlier prompt finished finds them cached, starts
with them prefilled and loads them for free; a prompt is cached only once its prefill is done;
the KV accounting comes back to zero; runs stay valid and stepped runs agree with closed-form
ones; bad settings name their field."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from schedlab import PrefixBlocks, Workload
from schedlab.costmodel import iteration_cost
from schedlab.datasets import load
from schedlab.sim import Cluster, InstanceSpec, simulate
from schedlab.sim.deciding import Decider
from schedlab.testing import check_simulation

COST = iteration_cost("llama-3-70b", "a800", 8)
SPEC = InstanceSpec(cost=COST, max_context_tokens=100_000, max_batch_tokens=100_000,
                    prefix_cache_tokens=1_000_000)


def _two(gap_s: float) -> Workload:
    return Workload(arrival_s=[0.0, gap_s], input_tokens=[20_000, 20_100], output_tokens=[5, 5],
                    prefix_block_ids=PrefixBlocks.from_lists([list(range(40)),
                                                              [*range(39), 99]]))


def test_a_shared_prefix_is_found_prefilled_and_free_to_load() -> None:
    w = _two(50.0)
    on = simulate(w, SPEC, "vllm", record_iterations=True)
    off = simulate(w, replace(SPEC, prefix_cache_tokens=0), "vllm")
    assert on.extra["cached_tokens"].tolist() == [0, 39 * 512]
    assert on.ttft_s[0] == pytest.approx(off.ttft_s[0])
    # only the 132 uncached tokens are computed, attending to the cached 19,968: no load time
    expected = COST.iteration_time_s(np.array([132]), np.array([39 * 512]), 0, 0)
    assert on.ttft_s[1] == pytest.approx(expected, rel=1e-6) and on.ttft_s[1] < off.ttft_s[1] / 20
    check_simulation(on, w)


def test_a_prompt_is_cached_only_once_its_prefill_is_done() -> None:
    on = simulate(_two(0.5), SPEC, "vllm")  # the second arrives during the first's prefill
    assert on.extra["cached_tokens"].tolist() == [0, 0]


def test_kv_accounting_returns_to_zero_on_a_trace() -> None:
    w = load("mooncake-conversation", end_s=300)
    spec = replace(SPEC, max_context_tokens=200_000, max_batch_tokens=200_000,
                   prefix_cache_tokens=int(COST.kv_capacity_tokens))
    seen = []
    orig = Decider.decide

    def spy(self: Decider, now: float) -> float | None:
        rt = self.rt
        assert rt.host_used >= 0 and 0 <= rt.gpu_used <= rt.cap
        seen.append(rt)
        return orig(self, now)

    Decider.decide = spy  # type: ignore[method-assign]
    try:
        r = simulate(w, Cluster(instances=(spec,) * 2), "vllm", token_gaps=True)
    finally:
        Decider.decide = orig  # type: ignore[method-assign]
    assert (r.status == "completed").all()
    assert r.extra["cached_tokens"].sum() > 0.03 * w.input_tokens.sum()  # 6.6% here
    for rt in set(seen):
        assert (rt.gpu_used, rt.host_used, rt.Q.n) == (0, 0, 0)
    check_simulation(r, w)


def test_stepped_and_closed_form_runs_agree() -> None:
    w = load("mooncake-conversation", end_s=120)
    spec = replace(SPEC, max_context_tokens=200_000, max_batch_tokens=200_000)
    a = simulate(w, spec, "vllm")
    b = simulate(w, spec, "vllm", closed_form=False)
    np.testing.assert_allclose(a.finish_s, b.finish_s, rtol=1e-9)
    np.testing.assert_array_equal(a.extra["cached_tokens"], b.extra["cached_tokens"])


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="prefix_cache_tokens"):
        replace(SPEC, prefix_cache_tokens=100)
    with pytest.raises(ValueError, match="prefix_block_tokens"):
        replace(SPEC, prefix_block_tokens=0)
    plain = Workload(arrival_s=[0.0], input_tokens=[10], output_tokens=[2])
    with pytest.raises(ValueError, match="no prefix_block_ids"):
        simulate(plain, SPEC, "vllm")
