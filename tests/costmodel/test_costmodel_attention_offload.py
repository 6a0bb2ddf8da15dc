"""Lamina's heterogeneous decoding cost (serving-deeper.md §1): traffic and memory conserved
across devices, the pipeline's cycle bounded by its parts, throughput growing with the batch
(what the optimum's closed form rests on), Table 5's prices, and named errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel import get_model, ops
from schedlab.costmodel.attention_offload import (
    FHBN,
    NCCL,
    AttentionOffload,
    DeviceMix,
    DeviceMixProblem,
    Homogeneous,
    NetworkStack,
    evaluate_mix,
)

PROPS = settings(max_examples=60, deadline=None, database=None, derandomize=True)
DEPLOYMENTS = st.sampled_from([("llama-3-70b", 2, 4, 1), ("llama-3-70b", 4, 8, 2),
                               ("llama-33b", 1, 2, 1), ("llama-65b", 2, 4, 1),
                               ("llama-3-8b", 2, 2, 2), ("llama-3-8b", 3, 1, 3)])


def test_network_bytes_are_the_papers_per_token_traffic() -> None:
    """(2 + 2/G) e d bytes per token and layer, over the smaller side's NICs, plus a round
    trip per layer (v2 §3.1)."""
    off = AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=4, send_q_early=False)
    spec = get_model("llama-3-70b")
    p = off.parts(100, 1000)
    per_layer = (2 + 2 / 8) * 2 * 8192 * 100 / (2 * 50e9 * FHBN.efficiency)
    assert p.network_s == pytest.approx(80 * (FHBN.round_trip_s + per_layer))
    assert p.overlap_s == 0.0 and spec.num_heads // spec.num_kv_heads == 8
    nccl = AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=4, stack=NCCL)
    assert nccl.parts(100, 1000).network_s > p.network_s


def test_kv_and_attention_work_are_conserved_across_memory_devices() -> None:
    spec = get_model("llama-65b")
    for b in (1, 2, 4, 8):
        per_dev = ops.kv_bytes_per_token_per_device(spec, b)
        assert per_dev * b == ops.kv_bytes_per_token_per_device(spec, 1)
        att = ops.attention_decode(spec, 16, 16 * 4096, tp=b)
        assert float(att.flops) * b == pytest.approx(
            float(ops.attention_decode(spec, 16, 16 * 4096, tp=1).flops))
        off = AttentionOffload.build("llama-65b", n_compute=2, n_memory=b)
        assert off.kv_capacity_tokens == int(b * 96e9 * 0.9 // spec.kv_bytes_per_token())


@PROPS
@given(DEPLOYMENTS, st.integers(1, 400), st.floats(64, 32768))
def test_cycle_is_bounded_by_its_parts_and_throughput_grows_with_batch(dep, batch: int,
                                                                       ctx: float) -> None:
    model, a, b, r = dep
    off = AttentionOffload.build(model, n_compute=a, n_memory=b, replicas=r)
    p = off.parts(batch, ctx)
    n = r + 1
    tbt = off.tbt_s(batch, ctx)
    assert tbt >= n * p.model_s / r - 1e-12 and tbt >= n * p.attention_s - 1e-12
    assert tbt >= p.chain_s - 1e-12 and p.overlap_s <= p.attention_s
    assert off.throughput(batch + 1, ctx) >= off.throughput(batch, ctx) * (1 - 1e-12)
    base = Homogeneous.build(model, n_gpus=max(a, 4) if model != "llama-3-8b" else 1)
    assert base.throughput(batch + 1, ctx) >= base.throughput(batch, ctx) * (1 - 1e-12)


def test_send_q_early_saves_at_most_the_kv_projection() -> None:
    on = AttentionOffload.build("llama-65b", n_compute=2, n_memory=4)
    off = AttentionOffload.build("llama-65b", n_compute=2, n_memory=4, send_q_early=False)
    a, b = on.parts(64, 4096), off.parts(64, 4096)
    assert 0 < a.overlap_s < a.model_s and a.chain_s < b.chain_s
    assert (a.model_s, a.attention_s) == (b.model_s, b.attention_s)


def test_table_5_configurations_cost_within_10_percent() -> None:
    for model, a, b, k in (("llama-33b", 1, 2, 2), ("llama-65b", 2, 4, 4),
                           ("llama-3-70b", 2, 4, 4)):
        lam = AttentionOffload.build(model, n_compute=a, n_memory=b).price_per_hour
        vllm = Homogeneous.build(model, n_gpus=k).price_per_hour
        assert abs(lam / vllm - 1) <= 0.10
    assert AttentionOffload.build("llama-33b", n_compute=1, n_memory=2,
                                  prices={"h100-sxm": 10.0, "h20": 1.0}).price_per_hour == 12.0
    # overriding one device keeps the paper's price of the other
    assert AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=4,
                                  prices={"h100-sxm": 11.06}).price_per_hour == 40.64


def test_evaluate_mix_names_what_fails() -> None:
    p = DeviceMixProblem(model="llama-3-70b", context_tokens=4096, tbt_slo_s=0.2,
                         max_memory=4, homogeneous=False)
    assert evaluate_mix(p, DeviceMix(2, 4, 1, 10)).feasible
    assert "out of range" in evaluate_mix(p, DeviceMix(2, 8, 1, 10)).reason
    assert "not allowed" in evaluate_mix(p, DeviceMix(4, 0, 1, 10)).reason
    assert "does not fit" in evaluate_mix(p, DeviceMix(1, 4, 1, 10)).reason
    assert "KV of" in evaluate_mix(p, DeviceMix(2, 4, 1, 10**5)).reason
    assert math.isinf(evaluate_mix(p, DeviceMix(2, 4, 1, 10**5)).usd_per_million_tokens)


@pytest.mark.parametrize(("build", "match"), [
    (lambda: AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=3), "'n_memory'"),
    (lambda: AttentionOffload.build("llama-3-70b", n_compute=0, n_memory=4), "'n_compute'"),
    (lambda: AttentionOffload.build("llama-3-70b", n_compute=4, n_memory=4, replicas=3),
     "'replicas'"),
    (lambda: AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=4,
                                    send_q_early=1), "'send_q_early'"),
    (lambda: AttentionOffload.build("nope", n_compute=2, n_memory=4), "Unknown model"),
    (lambda: AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=4,
                                    prices={"h20": -1.0}), r"prices\['h20'\]"),
    (lambda: AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=4).parts(-1, 10),
     "'batch'"),
    (lambda: AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=4).parts(1, math.nan),
     "'context_tokens'"),
    (lambda: NetworkStack(name="x", round_trip_s=0.0, efficiency=0.5), "'round_trip_s'"),
    (lambda: DeviceMixProblem(model="llama-3-70b", context_tokens=10, tbt_slo_s=-1),
     "'tbt_slo_s'"),
    (lambda: DeviceMixProblem(model="llama-3-70b", context_tokens=10, max_memory=0),
     "'max_memory'"),
    (lambda: DeviceMixProblem(model="llama-3-70b", context_tokens=10, stack="fhbn"),
     "'stack'"),
    (lambda: DeviceMixProblem(model="llama-3-70b", context_tokens=10, prices={"h20": -1}),
     r"prices\['h20'\]"),
    (lambda: DeviceMix(2, 4, 1, -3), "'batch'"),
    (lambda: DeviceMix(2, 4, 1, 1.5), "'batch'"),
])
def test_bad_input_names_the_field(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


@settings(max_examples=80, deadline=None, database=None, derandomize=True)
@given(st.integers(2, 6), st.integers(1, 8), st.floats(0.001, 0.1), st.floats(0.0005, 0.05),
       st.floats(0.0, 0.01))
def test_rotation_schedule_is_conflict_free_and_meets_the_cycle(n: int, layers: int, m: float,
                                                               a: float, w: float) -> None:
    """v2 §4.3: slice k of batch j on replica (j + k) mod (n - 1); no replica or pool ever runs
    two tasks at once; each batch's tasks run in sequence; the steady time between tokens is
    the closed form max(n t_m / (n - 1), n t_a, t_m + t_a + t_net)."""
    from schedlab.costmodel.attention_offload import DecodeParts, rotation_timeline

    t = rotation_timeline(n, layers, DecodeParts(m, a, w, 0.0), tokens=8)
    for res in np.unique(t.resource):
        k = t.resource == res
        order = np.argsort(t.start_s[k])
        assert (t.start_s[k][order][1:] >= t.end_s[k][order][:-1] - 1e-12).all()
    slices = t.resource >= 0
    g = t.token * layers + t.layer
    assert (t.resource[slices] == (t.batch[slices] + g[slices]) % (n - 1)).all()
    for j in range(n):
        b = np.flatnonzero(t.batch == j)
        assert (t.start_s[b][1:] >= t.end_s[b][:-1] - 1e-12).all()
    bound = max(n * m / (n - 1), n * a, m + a + w)
    assert t.period_s == pytest.approx(bound, rel=1e-9)


def test_balanced_rotation_has_no_bubble_and_tbt_matches_the_schedule() -> None:
    from schedlab.costmodel.attention_offload import DecodeParts, rotation_timeline

    for n in range(2, 6):  # t_a = t_m / (n - 1): every replica always busy
        t = rotation_timeline(n, 4, DecodeParts(0.04, 0.04 / (n - 1), 0.0, 0.0), tokens=8)
        assert t.period_s == pytest.approx(n * 0.04 / (n - 1))
    off = AttentionOffload.build("llama-3-70b", n_compute=4, n_memory=8, replicas=2,
                                 send_q_early=False)
    p = off.parts(96, 4096)
    sched = rotation_timeline(off.concurrent_batches, 80, p, tokens=6)
    assert off.tbt_s(96, 4096) == pytest.approx(sched.period_s, rel=1e-9)
    with pytest.raises(ValueError, match="'n_batches'"):
        rotation_timeline(1, 4, p)
