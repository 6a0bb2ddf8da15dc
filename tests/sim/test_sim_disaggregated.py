"""Disaggregated serving (serving.md §2.4): every request ends completed or rejected with a
reason; prefixes are reused, pulled and replicated; prefill takes max(load, compute); the late
baseline wastes prefills that early rejection does not; token gaps give Mooncake's TBT the same
way stepped and closed-form; bad input gets a ValueError naming the field."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from schedlab import PrefixBlocks, Workload
from schedlab.contract.placement import Placement, PlacementView
from schedlab.costmodel import iteration_cost
from schedlab.costmodel.base import ConstantIterationCost
from schedlab.costmodel.hardware import get_interconnect
from schedlab.policies.mooncake import mooncake
from schedlab.sim import DisaggregatedCluster, simulate, simulate_disaggregated
from schedlab.sim.disaggregated import fit_decode_step

COST = iteration_cost("llama-3-70b", "a800", 8)


def _cluster(n_prefill: int = 2, n_decode: int = 2, **kw: object) -> DisaggregatedCluster:
    return DisaggregatedCluster.homogeneous(cost=COST, n_prefill=n_prefill, n_decode=n_decode,
                                            **kw)  # type: ignore[arg-type]


def _workload(n: int, seed: int = 0, shared_blocks: int = 6, rate: float = 2.0) -> Workload:
    """Requests whose prompts share a common system prefix of ``shared_blocks`` blocks and then
    one of four conversation prefixes."""
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / rate, n))
    conv = rng.integers(0, 4, n)
    extra = rng.integers(1, 8, n)
    chains, inputs = [], []
    for i in range(n):
        chain = list(range(shared_blocks)) + [100 + conv[i]] + [1000 + 10 * i + k
                                                               for k in range(extra[i])]
        chains.append(chain)
        inputs.append(512 * (len(chain) - 1) + int(rng.integers(1, 512)))
    return Workload(arrival_s=arrival, input_tokens=inputs,
                    output_tokens=rng.integers(1, 200, n),
                    prefix_block_ids=PrefixBlocks.from_lists(chains))


@pytest.mark.parametrize("rule", ["kvcache-centric", "cache-aware", "load-balancing", "random"])
def test_every_request_ends_completed_or_rejected(rule: str) -> None:
    w = _workload(120, rate=4.0)
    r = simulate_disaggregated(w, _cluster(), placement_params={"prefill": rule,
                                                                "slo_ttft_s": 5.0})
    assert set(r.status.tolist()) <= {"completed", "rejected"}
    done = r.completed
    assert (r.first_token_s[done] >= r.arrival_s[done]).all()
    assert (r.finish_s[done] >= r.first_token_s[done]).all()
    assert (r.reject_reason[~done] != "").all() and (r.reject_reason[done] == "").all()
    e = r.extra
    assert ((e["prefill_instance"] >= 0) == (e["decode_instance"] >= 0)).all()
    assert (e["cached_tokens"] < w.input_tokens).all()
    multi = done & (w.output_tokens > 1)
    assert np.isfinite(e["tbt_s"][multi]).all() and np.isnan(e["tbt_s"][~done]).all()
    assert r.summary()["completed"] + r.summary()["rejected"] == len(w)


def test_a_prefix_is_reused_then_pulled_to_an_idle_instance() -> None:
    """The second request finds the first one's prompt on instance 0; while instance 0 is busy
    with a long prefill the third pulls the prefix to instance 1 and keeps it there."""
    chains = [[1, 2, 3, 4], [1, 2, 3, 5], [9, *range(20, 195)], [1, 2, 3, 6]]
    w = Workload(arrival_s=[0.0, 10.0, 20.0, 20.01], input_tokens=[2000, 2000, 90_000, 2000],
                 output_tokens=[2, 2, 2, 2], prefix_block_ids=PrefixBlocks.from_lists(chains))
    c = _cluster(max_context_tokens=200_000)
    r = simulate_disaggregated(w, c, placement_params={"balance_threshold": 2.0})
    e = r.extra
    assert e["prefill_instance"].tolist()[:2] == [0, 0]
    assert e["cached_tokens"].tolist() == [0, 1536, 0, 1536]
    assert e["prefill_instance"][2] == 0 != e["prefill_instance"][3]  # instance 0 is busy
    assert e["transfer_tokens"].tolist() == [0, 0, 0, 1536]


def test_prefill_takes_the_longer_of_load_and_compute() -> None:
    """A lone request's TTFT is its prefill: compute of the uncached tokens, or the load of the
    cached ones when that is longer; and the Conductor's estimate is close to it."""
    chain = list(range(200))
    w = Workload(arrival_s=[0.0, 100.0], input_tokens=[100_000, 100_000], output_tokens=[1, 1],
                 prefix_block_ids=PrefixBlocks.from_lists([chain, chain]))
    c = _cluster(n_prefill=1, n_decode=1, max_context_tokens=200_000)
    r = simulate_disaggregated(w, c)
    full, cached = r.ttft_s
    p = int(r.extra["cached_tokens"][1])
    assert p == 99_999
    assert full == pytest.approx(float(COST.prefill_time_s(np.array([100_000]))[0]), rel=0.05)
    assert cached == pytest.approx(float(COST.swap_time_s(p)), rel=0.05)  # the load dominates
    assert r.ttft_s == pytest.approx(r.extra["ttft_est_s"], rel=0.05)


def test_late_rejection_wastes_prefills_and_early_rejection_does_not() -> None:
    """With a TBT SLO a few decoding requests already break, the late baseline admits requests
    and rejects them when their prefill is done; early rejection without the decode instance's
    double check refuses them on arrival and wastes no prefill."""
    w = _workload(150, seed=1, rate=6.0)
    c = _cluster(n_prefill=2, n_decode=1)
    kw = {"slo_tbt_s": 0.0235, "slo_ttft_s": 60.0, "recheck_at_handoff": False}
    late = simulate_disaggregated(w, c, placement_params={**kw, "admission": "late"})
    early = simulate_disaggregated(w, c, placement_params={**kw, "admission": "early"})
    pred = simulate_disaggregated(w, c, placement_params={**kw, "admission": "early-prediction"})
    assert late.extra["wasted_prefill"].sum() > 0
    assert set(late.reject_reason[late.extra["wasted_prefill"]]) == {"tbt_slo_at_handoff"}
    for r in (early, pred):
        assert r.extra["wasted_prefill"].sum() == 0
    assert "tbt_slo" in set(early.reject_reason)
    assert "predicted_tbt_slo" in set(pred.reject_reason)


def test_closed_form_and_stepped_runs_agree() -> None:
    w = _workload(60, seed=2, rate=3.0)
    a = simulate_disaggregated(w, _cluster())
    b = simulate_disaggregated(w, _cluster(), closed_form=False)
    assert a.status.tolist() == b.status.tolist()
    np.testing.assert_allclose(a.finish_s, b.finish_s, rtol=1e-9)
    np.testing.assert_allclose(a.extra["tbt_s"], b.extra["tbt_s"], rtol=1e-3)


def test_lfu_caches_run_too() -> None:
    w = _workload(80, seed=5, rate=5.0)
    r = simulate_disaggregated(w, _cluster(cache_eviction="lfu", cache_tokens=4 * 512))
    assert (r.status == "completed").all() and r.extra["cached_tokens"].sum() > 0


def test_runs_are_deterministic() -> None:
    w = _workload(80, seed=3, rate=5.0)
    a = simulate_disaggregated(w, _cluster(), placement_params={"prefill": "random"})
    b = simulate_disaggregated(w, _cluster(), placement_params={"prefill": "random"})
    np.testing.assert_array_equal(a.finish_s, b.finish_s)
    np.testing.assert_array_equal(a.extra["prefill_instance"], b.extra["prefill_instance"])


def test_colocated_runs_record_tbt_too() -> None:
    """``simulate(token_gaps=True)``: a decode stalled behind a long prefill shows it in TBT."""
    w = Workload(arrival_s=[0.0, 0.5], input_tokens=[100, 60_000], output_tokens=[40, 2])
    spec = replace(_cluster(max_context_tokens=100_000).decode[0], max_batch_tokens=100_000)
    r = simulate(w, spec, "vllm", token_gaps=True)
    tbt = r.extra["tbt_s"]
    assert tbt[0] > 1.0  # its slowest gap waited for the 60k-token prefill
    assert tbt[1] < 0.05
    assert "tbt_s" not in simulate(w, spec, "vllm").extra


def test_fitted_decode_step_follows_the_cost_model() -> None:
    m = fit_decode_step(COST)
    one = np.array([1.0])
    for b, ctx in ((1, 8192), (16, 16 * 12_000), (64, 64 * 4096)):
        assert m.step_s(b, ctx) == pytest.approx(
            float(COST.fast_decode_steps_time_s(b, ctx, one)[0]), rel=0.1)


def test_bad_input_names_the_field() -> None:
    w = _workload(5)
    with pytest.raises(ValueError, match="cache_tokens"):
        DisaggregatedCluster.homogeneous(cost=COST, cache_tokens=100)
    with pytest.raises(ValueError, match="cache_eviction"):
        DisaggregatedCluster.homogeneous(cost=COST, cache_eviction="lifo")
    with pytest.raises(ValueError, match="'prefill' parameter"):
        DisaggregatedCluster(prefill=(), decode=_cluster().decode)
    with pytest.raises(ValueError, match="Unknown placement policy"):
        simulate_disaggregated(w, _cluster(), "moon")
    with pytest.raises(ValueError, match="slo_ttft"):
        simulate_disaggregated(w, _cluster(), placement_params={"slo_ttf_s": 3.0})
    with pytest.raises(ValueError, match="'cluster' parameter"):
        simulate_disaggregated(w, _cluster().decode[0])  # type: ignore[arg-type]

    mixed = replace(_cluster(), prefill=(_cluster().prefill[0],
                                         replace(_cluster().prefill[0],
                                                 cost=iteration_cost("llama-2-7b", "a100-80gb"))))
    with pytest.raises(ValueError, match="prefill pool of a DisaggregatedCluster must share"):
        simulate_disaggregated(w, mixed)

    def nowhere(view: PlacementView, /) -> Placement:
        return Placement(prefill=view.n_prefill + 3, decode=0)

    with pytest.raises(ValueError, match="Placement policy 'nowhere': instance out of range"):
        simulate_disaggregated(w, _cluster(), nowhere)


def test_a_cost_model_without_a_catalog_model_works() -> None:
    w = _workload(10)
    c = DisaggregatedCluster.homogeneous(cost=ConstantIterationCost(slot_s=0.01,
                                                                    kv_capacity_tokens=10**6))
    assert (simulate_disaggregated(w, c).status == "completed").all()


@pytest.mark.parametrize("seed, capacity", [(4, 30_000), (1, 20_000), (2, 25_000), (7, 40_000)])
def test_kv_stays_within_capacity_and_comes_back_to_zero(seed: int, capacity: int) -> None:
    """Invariant 6: no instance ever holds more KV than its capacity (decode instances refuse
    what would not fit at the hand-off, leaving room for what the running decode adds by its
    next step, and cut a stretch planned without the newcomer), and every counter is back at
    zero at the end."""
    from schedlab.sim.deciding import Decider

    w = _workload(200, seed=seed, rate=8.0)
    c = _cluster(n_prefill=2, n_decode=1, decode_batch_size=16)
    small = replace(c, decode=(replace(c.decode[0], kv_capacity_tokens=capacity),))
    seen = []
    orig = Decider.decide

    def spy(self: Decider, now: float) -> float | None:
        rt = self.rt
        assert 0 <= rt.gpu_used <= rt.cap and rt.host_used >= 0
        seen.append(rt)
        return orig(self, now)

    Decider.decide = spy  # type: ignore[method-assign]
    try:
        r = simulate_disaggregated(w, small, placement_params={"slo_ttft_s": 60.0})
    finally:
        Decider.decide = orig  # type: ignore[method-assign]
    assert "decode_kv" in set(r.reject_reason) or "decode_kv_full" in set(r.reject_reason)
    for rt in set(seen):
        assert (rt.gpu_used, rt.host_used, rt.Q.n) == (0, 0, 0)


def test_an_ssd_tier_serves_what_dram_evicted_after_reading_it_back() -> None:
    """A 10-block prompt on a 4-block DRAM cache leaves its last 6 blocks on SSD; the same
    prompt again is served from both tiers, waiting for the SSD read first."""
    chain = list(range(10))
    w = Workload(arrival_s=[0.0, 30.0], input_tokens=[5120, 5120], output_tokens=[2, 2],
                 prefix_block_ids=PrefixBlocks.from_lists([chain, chain]))
    kw = dict(n_prefill=1, n_decode=1, cache_tokens=4 * 512)
    dram = simulate_disaggregated(w, _cluster(**kw))
    both = simulate_disaggregated(w, _cluster(**kw, ssd_tokens=20 * 512))
    assert dram.extra["cached_tokens"].tolist() == [0, 2048]
    assert both.extra["cached_tokens"].tolist() == [0, 5119]
    read = 6 * 512 * COST.kv_bytes_per_token / 16e9
    assert read <= both.ttft_s[1] < dram.ttft_s[1]
    # the estimate (T(n) - T(p), the read, the load) misses a one-token iteration's fixed cost
    assert both.ttft_s[1] == pytest.approx(both.extra["ttft_est_s"][1], abs=0.02)
    with pytest.raises(ValueError, match="ssd_tokens"):
        _cluster(ssd_tokens=-1)


def test_every_view_agrees_with_its_rules_recomputed() -> None:
    """The views' compiled estimates and incrementally kept decode-pool columns, recomputed
    from their definitions (the module docstring) at every arrival: the best prefix and its
    holder, the transfer of what is missing, queue times >= 0, the decode pool grouped by
    instance with one row per request decoding, joined no later than now, and each instance's
    context the sum of its requests'."""
    w = _workload(150, rate=6.0)
    seen: list[PlacementView] = []

    def checking(view: PlacementView, /) -> Placement:
        seen.append(view)
        return mooncake(view, slo_ttft_s=8.0)

    c = _cluster(3, 3)
    simulate_disaggregated(w, c, checking)
    kvb = COST.kv_bytes_per_token
    link = get_interconnect(c.link)
    for v in seen:
        n = v.input_tokens
        assert v.best_prefix_tokens == v.prefix_tokens.max()
        held = np.flatnonzero(v.prefix_tokens == v.best_prefix_tokens)
        assert v.best_holder == (held[0] if v.best_prefix_tokens else -1)
        missing = v.best_prefix_tokens - v.prefix_tokens
        want = np.where(missing > 0, link.latency_s + missing * kvb
                        / (link.bytes_per_s * c.links_per_node), 0.0)
        np.testing.assert_allclose(v.transfer_s, want, rtol=1e-12)
        assert (v.queue_s >= 0).all()
        full = float(COST.prefill_time_s(np.array([n]))[0])
        cold = v.prefix_tokens == 0
        np.testing.assert_allclose(v.prefill_s[cold], full, rtol=1e-12)
        assert (v.prefill_s[~cold] <= full + 1e-12).all()
        assert (v.prefill_best_s == v.prefill_best_s[0]).all()
        assert (np.diff(v.decoding_instance) >= 0).all()
        np.testing.assert_array_equal(np.bincount(v.decoding_instance, minlength=v.n_decode),
                                      v.decode_batch)
        np.testing.assert_array_equal(
            np.bincount(v.decoding_instance, v.decoding_context_tokens, minlength=v.n_decode),
            v.decode_context_tokens)
        assert (v.decoding_since_s <= v.now_s).all()
    assert sum(int(v.decode_batch.sum()) for v in seen) > 0  # the pool was seen busy
