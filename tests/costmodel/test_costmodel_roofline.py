"""Roofline corrections and alpha-beta collectives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel import ops
from schedlab.costmodel.hardware import get_accelerator, get_interconnect
from schedlab.costmodel.models import get_model
from schedlab.costmodel.roofline import (
    Efficiency,
    all_gather_time_s,
    all_reduce_time_s,
    kv_transfer_time_s,
    op_is_compute_bound,
    op_time_s,
    roofline_time_s,
    send_recv_time_s,
)

A100 = get_accelerator("a100-80gb")
EFF = Efficiency()
LINKS = ["nvswitch-a100", "nvlink4", "pcie4-x16", "rdma-200g", "ethernet-100g"]


def _plain(op: ops.OpCost) -> np.ndarray:
    return np.maximum(op.flops / A100.peak_flops(), op.bytes / A100.hbm_bytes_per_s)


def test_corrections_match_the_measured_anchors() -> None:
    spec = get_model("llama-2-7b")
    # large GEMMs run 1.2x to 1.9x the plain roofline (README of the Vidur A100 profiles)
    for op in (ops.qkv_proj(spec, 4096), ops.mlp_up(spec, 4096), ops.mlp_down(spec, 2048)):
        ratio = float(op_time_s(op, A100) / _plain(op))
        assert 1.2 < ratio < 1.9, op.name
    # one-token element-wise kernels are launch-dominated: more than 10x the plain roofline
    small = ops.residual_add(spec, 1)
    assert float(op_time_s(small, A100) / _plain(small)) > 10
    # small all-reduces are latency-dominated: more than 10x bytes / bandwidth
    link = get_interconnect("nvswitch-a100")
    plain = 2 * 7 / 8 * 4096 / link.bytes_per_s
    assert all_reduce_time_s(4096, 8, link, efficiency=EFF) > 10 * plain


def test_gemm_efficiency_grows_with_rows() -> None:
    spec = get_model("llama-2-7b")
    t = np.array([256, 1024, 4096])
    op = ops.mlp_up(spec, t)
    achieved = op.flops / op_time_s(op, A100)
    assert np.all(np.diff(achieved) > 0)
    assert achieved[-1] < EFF.gemm_compute * A100.peak_flops()


def test_bound_classification() -> None:
    spec = get_model("llama-2-7b")
    assert not bool(op_is_compute_bound(ops.mlp_up(spec, 1), A100))
    assert bool(op_is_compute_bound(ops.mlp_up(spec, 4096), A100))
    assert not bool(op_is_compute_bound(ops.norm(spec, 4096), A100))


def test_zero_work_costs_nothing() -> None:
    t = roofline_time_s(flops=0, nbytes=0, rows=0, kind="gemm", gpu=A100, efficiency=EFF)
    assert float(t) == 0.0


@settings(max_examples=50, deadline=None)
@given(link=st.sampled_from(LINKS), n=st.integers(2, 64), nbytes=st.floats(0, 1e10),
       more=st.floats(1, 1e9))
def test_collectives_are_monotone(link: str, n: int, nbytes: float, more: float) -> None:
    lk = get_interconnect(link)
    for fn in (all_reduce_time_s, all_gather_time_s):
        t = fn(nbytes, n, lk, efficiency=EFF)
        assert t > 0
        assert fn(nbytes + more, n, lk, efficiency=EFF) > t
        assert fn(nbytes, n + 1, lk, efficiency=EFF) >= t
    p2p = send_recv_time_s(nbytes, lk, efficiency=EFF)
    assert send_recv_time_s(nbytes + more, lk, efficiency=EFF) > p2p > 0
    assert kv_transfer_time_s(nbytes + more, lk, efficiency=EFF) > kv_transfer_time_s(
        nbytes, lk, efficiency=EFF)


def test_ring_all_reduce_bandwidth_term() -> None:
    link = get_interconnect("nvswitch-a100")
    no_latency = Efficiency(collective_latency_s=0.0)
    big = 1e9
    t = all_reduce_time_s(big, 8, link, efficiency=no_latency) - 14 * link.latency_s
    bw = link.bytes_per_s * no_latency.scale_up_efficiency * no_latency.ring_efficiency
    assert t == pytest.approx(2 * 7 / 8 * big / bw)
    assert all_reduce_time_s(big, 1, link, efficiency=EFF) == 0.0
    arr = all_reduce_time_s(np.array([1e3, 1e6]), 4, link, efficiency=EFF)
    assert arr.shape == (2,) and arr[1] > arr[0]


def test_bad_arguments_name_the_field() -> None:
    link = get_interconnect("nvlink3")
    with pytest.raises(ValueError, match="'n' parameter of all_reduce_time_s"):
        all_reduce_time_s(1e6, 0, link, efficiency=EFF)
    with pytest.raises(ValueError, match="'nbytes'"):
        all_gather_time_s(-1.0, 2, link, efficiency=EFF)
    with pytest.raises(ValueError, match="'nbytes'"):
        send_recv_time_s(float("nan"), link, efficiency=EFF)
    with pytest.raises(ValueError, match="'ring_efficiency'"):
        Efficiency(ring_efficiency=0.0)
    with pytest.raises(ValueError, match="'launch_overhead_s'"):
        Efficiency(launch_overhead_s=-1e-6)
    with pytest.raises(ValueError, match="'role'"):
        EFF.link_efficiency("warp-drive")
    with pytest.raises(ValueError, match="'kind'"):
        EFF.memory_efficiency("fft")
    with pytest.raises(ValueError, match="unknown Efficiency parameters"):
        Efficiency.from_dict({"gemm_compute": 0.5, "typo": 1})


def test_launch_overhead_defaults_to_the_accelerator() -> None:
    assert EFF.launch_s(A100) == A100.kernel_launch_s
    assert Efficiency(launch_overhead_s=1e-6).launch_s(A100) == 1e-6
