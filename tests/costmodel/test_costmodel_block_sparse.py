"""MoBA's cost model: the closed-form pair count is the contract's rule, dense is the limit,
the defaults are the fit on Fig. 2a, held-out points land near the paper, bad input is named."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract.block_attention import BlockView, attended_tokens
from schedlab.costmodel import get_accelerator, get_model
from schedlab.costmodel.block_sparse import (
    MOBA_FIG2,
    BlockSparseEfficiency,
    _selected_blocks,
    fit_block_sparse,
    full_prefill_time_s,
    moba_attended_pairs,
    moba_decode_time_s,
    moba_prefill_time_s,
    moba_prefill_work,
)
from schedlab.policies.moba import moba_gate

HEAD, GPU = get_model("llama-3-8b"), get_accelerator("h800")


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(st.integers(0, 70), st.integers(1, 12), st.integers(1, 9))
def test_pairs_and_blocks_are_the_contracts_counts(n: int, b: int, k: int) -> None:
    if n == 0:
        assert moba_attended_pairs(0, b, k) == 0.0
        return
    v = BlockView.from_arrays(queries=np.zeros((n, 1)), keys=np.zeros((n, 1)), block_tokens=b)
    s = moba_gate(v, top_k=k)
    assert moba_attended_pairs(n, b, k) == attended_tokens(v, s).sum()
    assert _selected_blocks(np.float64(n), np.float64(b), np.float64(k)) == s.counts.sum()


def test_pairs_reach_dense_and_grow_with_k() -> None:
    n = np.array([1, 100, 4097, 10**6])
    assert (moba_attended_pairs(n, 512, 10**6) == n * (n + 1) / 2).all()
    ks = [moba_attended_pairs(10**5, 512, k) for k in range(1, 300, 7)]
    assert all(a <= b for a, b in itertools.pairwise(ks))


def test_defaults_are_the_fit_on_fig_2a_and_held_out_points_land_near_the_paper() -> None:
    assert fit_block_sparse(MOBA_FIG2["2a"][:2], HEAD, GPU, tp=32) == BlockSparseEfficiency()
    n, b, k, dense, moba = MOBA_FIG2["2a"][2]  # 1M tokens: not fitted
    t_full = float(full_prefill_time_s(HEAD, GPU, n, tp=32))
    t_moba = float(moba_prefill_time_s(HEAD, GPU, n, block_tokens=b, top_k=k, tp=32))
    assert t_full == pytest.approx(dense, rel=0.05) and t_moba == pytest.approx(moba, rel=0.05)
    for n, b, k, dense, moba in MOBA_FIG2["2b"]:  # another setting, never fitted
        t_full = float(full_prefill_time_s(HEAD, GPU, n, tp=32))
        t_moba = float(moba_prefill_time_s(HEAD, GPU, n, block_tokens=b, top_k=k, tp=32))
        assert t_full == pytest.approx(dense, rel=0.1)
        assert t_moba == pytest.approx(moba, rel=0.35)  # 10M: 7.4 s against 5.8 s


def test_moba_pays_off_only_for_long_sequences_and_block_kernels_ramp() -> None:
    n = np.array([2 ** 10, 2 ** 13, 2 ** 20])
    speedup = full_prefill_time_s(HEAD, GPU, n, tp=32) / moba_prefill_time_s(
        HEAD, GPU, n, block_tokens=4096, top_k=12, tp=32)
    assert speedup[0] < 1.0 < speedup[2]  # one block: MoBA's extra kernels only cost
    e = BlockSparseEfficiency()
    assert e.block_compute(64) < e.block_compute(4096) < e.block_compute(10**6) < \
        e.attention_compute


def test_work_scales_with_heads_and_decode_reads_fewer_bytes() -> None:
    one = moba_prefill_work(HEAD, 2 ** 16, block_tokens=4096, top_k=12, tp=32)
    all_heads = moba_prefill_work(HEAD, 2 ** 16, block_tokens=4096, top_k=12, tp=1)
    assert all_heads.attention_flops == pytest.approx(32 * one.attention_flops)
    dense, moba = moba_decode_time_s(HEAD, GPU, [10**6, 10**6], top_k=[10**6, 12])
    assert dense > 5 * moba
    short = moba_decode_time_s(HEAD, GPU, [100, 100], top_k=[1, 12])
    assert short[1] <= short[0] * 3  # one block: MoBA only adds its gate kernels


@pytest.mark.parametrize(("fn", "kwargs", "match"), [
    (moba_attended_pairs, {"n_tokens": -1, "block_tokens": 4, "top_k": 2}, "'n_tokens'"),
    (moba_attended_pairs, {"n_tokens": 8, "block_tokens": 0, "top_k": 2}, "'block_tokens'"),
    (moba_attended_pairs, {"n_tokens": 8, "block_tokens": 4, "top_k": 0}, "'top_k'"),
    (moba_attended_pairs, {"n_tokens": 8.5, "block_tokens": 4, "top_k": 1}, "'n_tokens'"),
    (moba_attended_pairs, {"n_tokens": np.nan, "block_tokens": 4, "top_k": 1}, "'n_tokens'"),
])
def test_bad_counts_name_the_parameter(fn, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(**kwargs)


def test_bad_efficiency_tp_and_points() -> None:
    with pytest.raises(ValueError, match="block_half_tokens"):
        BlockSparseEfficiency(block_half_tokens=-1.0)
    with pytest.raises(ValueError, match="memory must be a float in"):
        BlockSparseEfficiency(memory=1.5)
    with pytest.raises(ValueError, match="'tp' parameter"):
        moba_prefill_time_s(HEAD, GPU, 10, tp=0)
    with pytest.raises(ValueError, match="'efficiency' parameter"):
        full_prefill_time_s(HEAD, GPU, 10, efficiency=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'points' parameter"):
        fit_block_sparse([(1, 2, 3, 4)], HEAD, GPU)
    with pytest.raises(ValueError, match="two token counts"):
        fit_block_sparse([MOBA_FIG2["2a"][0]] * 2, HEAD, GPU)
    with pytest.raises(ValueError, match="'context_tokens'"):
        moba_decode_time_s(HEAD, GPU, 0)
    with pytest.raises(ValueError, match="at most llama-3-8b's 32 query heads"):
        moba_prefill_time_s(HEAD, GPU, 10, tp=64)
    with pytest.raises(ValueError, match="check their units"):
        fit_block_sparse([(2 ** 18, 4096, 12, 1e-9, 0.027), (2 ** 19, 4096, 12, 2e-9, 0.061)],
                         HEAD, GPU, tp=32)


def test_decode_takes_the_dtype_of_its_peak() -> None:
    import dataclasses

    spec, gpu = get_model("llama-3-8b"), get_accelerator("h800")
    # decode attention is memory-bound: only a part whose fp32 peak is tiny makes fp32 slower
    slow_fp32 = dataclasses.replace(gpu, peak_flops_per_s={**gpu.peak_flops_per_s, "fp32": 1e9})
    bf16, fp32 = (float(moba_decode_time_s(spec, slow_fp32, 2 ** 20, dtype=d))
                  for d in ("bf16", "fp32"))
    assert fp32 > 10 * bf16
    assert float(moba_decode_time_s(spec, gpu, 2 ** 20)) == float(
        moba_decode_time_s(spec, gpu, 2 ** 20, dtype="bf16"))
    with pytest.raises(ValueError, match="dtype"):
        moba_decode_time_s(spec, gpu, 2 ** 20, dtype="fp4")
