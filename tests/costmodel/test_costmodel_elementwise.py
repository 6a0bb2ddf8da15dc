"""The element-wise kernels: HBM- or SM-bound from datasheet figures, cache residency, transfer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel import cross_validate, get_accelerator, load_profile
from schedlab.costmodel.hardware import ACCELERATORS, Accelerator
from schedlab.costmodel.roofline import (
    ELEMENTWISE_KINDS,
    L2_KINDS,
    REFERENCE_BYTES_PER_SM_CYCLE,
    Efficiency,
    elementwise_rate,
    memory_time_s,
    roofline_time_s,
    sm_cycles_per_s,
)

EFF = Efficiency()
A100 = get_accelerator("a100-80gb")


def test_every_catalog_gpu_has_its_chip_figures_with_a_source() -> None:
    for gpu in ACCELERATORS.values():
        assert gpu.sm_count and gpu.sm_clock_hz and gpu.l2_bytes, gpu.name
        assert "L2" in gpu.source or "Cache" in gpu.source, gpu.name
        assert 0.5e9 < gpu.sm_clock_hz < 3e9 and 2**20 <= gpu.l2_bytes <= 2**30
    assert A100.sm_cycles_per_s() == 108 * 1.41e9
    assert A100.l2_bytes == 40 * 2**20


def test_a_gpu_without_chip_figures_takes_the_a100_balance() -> None:
    bare = dataclasses.replace(A100, sm_count=None, sm_clock_hz=None, l2_bytes=None)
    assert sm_cycles_per_s(bare) == pytest.approx(A100.hbm_bytes_per_s
                                                  / REFERENCE_BYTES_PER_SM_CYCLE)
    for kind in ELEMENTWISE_KINDS:  # the same rates as the A100's (108 x 1.41 GHz is the balance)
        assert elementwise_rate(kind, bare, EFF) == pytest.approx(elementwise_rate(kind, A100, EFF))
    # no cache figure: no residency
    assert float(memory_time_s(1e6, "add", bare, EFF)) == pytest.approx(
        1e6 / elementwise_rate("add", bare, EFF))


def test_bad_chip_figures_are_named() -> None:
    for field, value in (("sm_count", 0), ("sm_clock_hz", -1.0), ("l2_bytes", float("nan"))):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(A100, **{field: value})
    with pytest.raises(ValueError, match="l2_speedup"):
        Efficiency(l2_speedup=0.5)
    with pytest.raises(ValueError, match="norm_bytes_per_cycle"):
        Efficiency(norm_bytes_per_cycle=0)
    with pytest.raises(ValueError, match="l2_share"):
        Efficiency(l2_share=1.5)
    with pytest.raises(ValueError, match="kind"):
        elementwise_rate("gemm", A100, EFF)


def test_sm_bound_kinds_follow_the_sm_clock_and_the_add_follows_hbm() -> None:
    h100 = get_accelerator("h100-sxm")
    cycles = h100.sm_cycles_per_s() / A100.sm_cycles_per_s()
    for kind in ("norm", "rope", "act", "gather"):  # SM-bound on both
        ratio = elementwise_rate(kind, h100, EFF) / elementwise_rate(kind, A100, EFF)
        assert ratio == pytest.approx(cycles), kind
    ratio = elementwise_rate("add", h100, EFF) / elementwise_rate("add", A100, EFF)
    assert ratio == pytest.approx(h100.hbm_bytes_per_s / A100.hbm_bytes_per_s)
    # never faster than the HBM cap, on any catalog GPU
    for gpu in ACCELERATORS.values():
        for kind in ELEMENTWISE_KINDS:
            assert elementwise_rate(kind, gpu, EFF) <= EFF.elementwise_memory * gpu.hbm_bytes_per_s


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ELEMENTWISE_KINDS), st.floats(0, 2e9), st.floats(0, 2e9),
       st.sampled_from(sorted(ACCELERATORS)))
def test_memory_time_is_monotone_and_bounded_by_the_cache(kind: str, a: float, b: float,
                                                          name: str) -> None:
    gpu = ACCELERATORS[name]
    lo, hi = sorted((a, b))
    t_lo, t_hi = memory_time_s([lo, hi], kind, gpu, EFF)
    assert t_lo <= t_hi + 1e-15
    rate = elementwise_rate(kind, gpu, EFF)
    speedup = EFF.l2_speedup if kind in L2_KINDS else 1.0
    assert hi / (speedup * rate) * (1 - 1e-12) <= t_hi <= hi / rate * (1 + 1e-12)
    # a larger cache never makes a kernel slower
    bigger = dataclasses.replace(gpu, l2_bytes=2 * gpu.l2_bytes)
    assert float(memory_time_s(hi, kind, bigger, EFF)) <= float(t_hi) + 1e-15


def test_roofline_time_is_launch_plus_memory_time() -> None:
    b = np.array([0.0, 1e3, 1e8])
    t = roofline_time_s(flops=0 * b, nbytes=b, rows=b, kind="norm", gpu=A100, efficiency=EFF)
    assert t[0] == 0.0
    assert t[2] == pytest.approx(EFF.launch_s(A100) + float(memory_time_s(1e8, "norm", A100, EFF)))


# ---------------------------------------------------------------- measured: the A100 profiles
def _a100(shared_dir: Path):
    return load_profile(shared_dir / "costmodel" / "vidur-profiling", "a100-80gb")


#: Median ratios (the model before this one / measured) that issue 17 reports on two GPUs whose
#: profiles are kept out of ../shared: an A40 (GDDR6, PCIe) and an H100.
ISSUE_RATIOS = {
    ("a40", "emb"): 3.3, ("a40", "input_layernorm"): 1.7, ("a40", "post_attention_layernorm"): 1.7,
    ("a40", "attn_rope"): 1.7, ("a40", "mlp_act"): 1.7,
    ("h100-sxm", "add"): 1.56, ("h100-sxm", "input_layernorm"): 1.34,
}
#: That earlier model: a fixed fraction of HBM bandwidth per kind and a 4 us launch.
_EARLIER = {"norm": 0.35, "rope": 0.45, "act": 0.50, "add": 0.85, "gather": 0.15}


@pytest.mark.shared
def test_transfer_moves_the_way_the_withheld_gpus_measured(shared_dir: Path) -> None:
    """On the A100 profile's shapes, the earlier model's time over this one's, per op, on the
    A40 and the H100, against the earlier model's time over the measured one that the issue
    reports on those GPUs. A coarse check: the shapes are the A100 profile's, and the issue gives
    medians. Each ratio lands within 1.5x of the reported one (the earlier model was within 1.5x
    of 1 on none but the H100's two), so this model's median error on those ops would be under
    50%: 42% on the A40's norms, under 25% on the others."""
    prof = _a100(shared_dir)
    for (name, op), reported in ISSUE_RATIOS.items():
        gpu = get_accelerator(name)
        m = prof.op == op
        kind = str(prof.kind[m][0])
        ours = roofline_time_s(flops=prof.flops[m], nbytes=prof.nbytes[m], rows=prof.rows[m],
                               kind=kind, gpu=gpu, efficiency=EFF, kernels=prof.kernels[m])
        earlier = 4e-6 * prof.kernels[m] + prof.nbytes[m] / (_EARLIER[kind] * gpu.hbm_bytes_per_s)
        ratio = float(np.median(earlier / ours))
        assert reported / 1.5 < ratio < reported * 1.5, (name, op, ratio, reported)


@pytest.mark.shared
def test_leave_one_model_out_on_the_a100(shared_dir: Path) -> None:
    reports = cross_validate(_a100(shared_dir), groups=["Llama-2-70b-hf"], max_rows_per_op=400)
    report = reports["Llama-2-70b-hf"]
    assert report.overall["median_ape"] < 0.10
    assert set(report.ops) == {"emb", "input_layernorm", "attn_pre_proj", "attn_rope",
                               "attn_post_proj", "post_attention_layernorm", "mlp_up_proj",
                               "mlp_act", "mlp_down_proj", "add"}
    with pytest.raises(ValueError, match="does not hold"):
        cross_validate(_a100(shared_dir), groups=["no-such-model"])


def test_accelerator_from_datasheet_takes_the_chip_figures() -> None:
    gpu = Accelerator.from_datasheet(
        name="x", tflops={"bf16": 100}, hbm_tb_per_s=1.0, hbm_gb=16, price_per_hour=1.0,
        host_link="pcie4", scale_up_link="pcie4-x16", vendor="v", source="s", sms=50,
        boost_mhz=2000, l2_mib=32)
    assert gpu.sm_cycles_per_s() == 50 * 2e9 and gpu.l2_bytes == 32 * 2**20
    assert hash(gpu) != hash(dataclasses.replace(gpu, l2_bytes=16 * 2**20))
