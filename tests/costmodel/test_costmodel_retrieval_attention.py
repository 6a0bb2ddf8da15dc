"""RetroInfer's decode cost: the default PCIe efficiency is the fit on Fig. 13a, the held-out
contexts land near the paper, full attention runs out of memory at 1M, a better hit rate or a
faster link never slows a step, and bad parameters are named."""

from __future__ import annotations

import dataclasses

import pytest

from schedlab.costmodel import get_accelerator, get_model
from schedlab.costmodel.retrieval_attention import (
    RetroInferParams,
    best_throughput,
    fit_pcie_efficiency,
    full_attention_step_s,
    max_batch_full,
    max_batch_retroinfer,
    retroinfer_step,
)

SPEC, GPU = get_model("llama-3-8b"), get_accelerator("a100-80gb")


def test_default_is_the_fit_and_held_out_contexts_land_near_the_paper() -> None:
    assert fit_pcie_efficiency(SPEC, GPU, 30_000, 4.1) == RetroInferParams().pcie_efficiency
    for ctx in (60_000, 120_000):  # Fig. 13b-c: 4.4x each
        full, _ = best_throughput(SPEC, GPU, ctx, retro=False)
        retro, _ = best_throughput(SPEC, GPU, ctx, retro=True)
        assert retro / full == pytest.approx(4.4, rel=0.1)


def test_one_million_tokens() -> None:
    assert max_batch_full(SPEC, GPU, 2 ** 20) == 0
    assert 1 <= max_batch_retroinfer(SPEC, GPU, 2 ** 20) <= 4  # the paper runs batch 1-4


def test_better_hits_and_links_never_slow_a_step() -> None:
    base = RetroInferParams()
    slow = retroinfer_step(SPEC, GPU, batch=16, context_tokens=120_000, params=base).total_s
    for change in ({"hit_rate": 0.94}, {"pcie_efficiency": 0.9}, {"host_link": "pcie5-x16"}):
        fast = retroinfer_step(SPEC, GPU, batch=16, context_tokens=120_000,
                               params=dataclasses.replace(base, **change)).total_s
        assert fast <= slow
    assert retroinfer_step(SPEC, GPU, batch=0, context_tokens=1000).total_s == 0.0
    assert full_attention_step_s(SPEC, GPU, batch=4, context_tokens=120_000) > \
        full_attention_step_s(SPEC, GPU, batch=4, context_tokens=30_000)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"retrieval_budget": 0.0}, "'retrieval_budget'"),
    ({"hit_rate": -0.1}, "'hit_rate'"),
    ({"cluster_tokens": 0}, "'cluster_tokens'"),
    ({"layer_overhead_s": float("nan")}, "'layer_overhead_s'"),
    ({"host_link": "pcie9"}, "Unknown interconnect"),
])
def test_bad_parameters_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RetroInferParams(**kwargs)


def test_bad_arguments_and_unreachable_fit() -> None:
    with pytest.raises(ValueError, match="'batch'"):
        retroinfer_step(SPEC, GPU, batch=-1, context_tokens=10)
    with pytest.raises(ValueError, match="'context_tokens'"):
        full_attention_step_s(SPEC, GPU, batch=1, context_tokens=0)
    with pytest.raises(ValueError, match="outside what PCIe efficiencies"):
        fit_pcie_efficiency(SPEC, GPU, 30_000, 100.0)
    with pytest.raises(ValueError, match="does not fit"):
        fit_pcie_efficiency(SPEC, GPU, 2 ** 20, 10.0)


def test_the_step_takes_the_dtype_of_its_peak() -> None:
    bf16 = retroinfer_step(SPEC, GPU, batch=16, context_tokens=120_000)
    assert retroinfer_step(SPEC, GPU, batch=16, context_tokens=120_000, dtype="bf16") == bf16
    fp32 = retroinfer_step(SPEC, GPU, batch=16, context_tokens=120_000, dtype="fp32")
    assert fp32.total_s > bf16.total_s  # fp32's peak is 16x lower: the linear layers slow down
    with pytest.raises(ValueError, match="dtype"):
        retroinfer_step(SPEC, GPU, batch=16, context_tokens=120_000, dtype="fp4")
