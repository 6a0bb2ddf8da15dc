"""Operator FLOPs and bytes: GQA, causal prefill, TP splits, MoE, MLA, published KV sizes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel import ops
from schedlab.costmodel.models import get_model


def test_kv_cache_per_token_matches_published_figures() -> None:
    # Llama-3-70B: 80 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes = 320 KiB per token in bf16
    # (e.g. the vLLM/LMCache KV-size tables; 2*80*8*128*2 = 327,680 bytes).
    spec = get_model("llama-3-70b")
    assert ops.kv_bytes_per_token_per_device(spec) * spec.num_layers == 327_680
    # Llama-2-7B (multi-head, 32 layers x 32 heads x 128): 0.5 MiB per token in fp16.
    spec = get_model("llama-2-7b")
    assert ops.kv_bytes_per_token_per_device(spec) * spec.num_layers == 524_288
    # DeepSeek-V3 MLA latent: 61 layers x (512 + 64) x 2 bytes = 70,272 bytes per token.
    spec = get_model("deepseek-v3")
    assert ops.kv_bytes_per_token_per_device(spec) * spec.num_layers == 70_272


def test_kv_bytes_scale_with_kv_heads_not_query_heads() -> None:
    spec = get_model("llama-2-7b")
    gqa = dataclasses.replace(spec, num_kv_heads=8)
    more_q = dataclasses.replace(gqa, num_heads=64)
    assert ops.kv_bytes_per_token_per_device(gqa) * 4 == ops.kv_bytes_per_token_per_device(spec)
    assert ops.kv_bytes_per_token_per_device(more_q) == ops.kv_bytes_per_token_per_device(gqa)
    d_mha = ops.attention_decode(spec, 8, 8000)
    d_gqa = ops.attention_decode(gqa, 8, 8000)
    assert float(d_gqa.flops) == float(d_mha.flops)  # same query heads, same math
    assert float(d_gqa.bytes) < 0.3 * float(d_mha.bytes)  # 4x fewer KV heads to read


def test_qkv_is_grouped_query_aware() -> None:
    spec = get_model("llama-3-8b")  # 32 q heads, 8 kv heads, head 128, hidden 4096
    op = ops.qkv_proj(spec, 1)
    assert float(op.flops) == 2 * 4096 * (32 + 2 * 8) * 128


def test_causal_prefill_flops_equal_the_pairwise_sum() -> None:
    spec = get_model("llama-2-7b")
    c, p = 37, 100
    pairs = sum(p + i + 1 for i in range(c))  # query i sees p + i + 1 keys
    op = ops.attention_prefill(spec, c, p)
    assert float(op.flops) == pytest.approx(4 * pairs * spec.num_heads * spec.head_dim)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8192), st.integers(0, 8192), st.sampled_from([1, 2, 4, 8]))
def test_tensor_parallel_divides_per_device_work(tokens: int, cached: int, tp: int) -> None:
    spec = get_model("llama-2-13b")  # 40 heads = 40 KV heads: divisible by 1, 2, 4, 8
    for fn in (ops.qkv_proj, ops.o_proj, ops.mlp_up, ops.mlp_down, ops.logits):
        one, split = fn(spec, tokens, 1), fn(spec, tokens, tp)
        assert float(split.flops) == pytest.approx(float(one.flops) / tp)
    one, split = ops.attention_prefill(spec, tokens, cached, 1), ops.attention_prefill(
        spec, tokens, cached, tp)
    assert float(split.flops) == pytest.approx(float(one.flops) / tp)
    assert float(split.bytes) == pytest.approx(float(one.bytes) / tp)
    w1 = ops.mlp_up(spec, 0, 1).bytes
    assert float(ops.mlp_up(spec, 0, tp).bytes) == pytest.approx(float(w1) / tp)


def test_kv_heads_replicate_when_fewer_than_tp() -> None:
    spec = get_model("llama-3-70b")  # 8 KV heads
    assert ops.kv_heads_per_device(spec, 16) == 1
    assert ops.kv_bytes_per_token_per_device(spec, 16) == ops.kv_bytes_per_token_per_device(spec, 8)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 4096), st.integers(0, 4096), st.integers(1, 512))
def test_costs_are_monotone_in_tokens_and_context(t: int, p: int, dt: int) -> None:
    spec = get_model("llama-3-8b")
    pairs = zip(ops.layer_linear_ops(spec, t), ops.layer_linear_ops(spec, t + dt), strict=True)
    for op_a, op_b in pairs:
        assert op_b.flops >= op_a.flops and op_b.bytes > op_a.bytes
    a, b = ops.attention_prefill(spec, t, p), ops.attention_prefill(spec, t, p + dt)
    assert b.flops >= a.flops and b.bytes > a.bytes
    a, b = ops.attention_decode(spec, 4, p), ops.attention_decode(spec, 4, p + dt)
    assert b.flops > a.flops and b.bytes > a.bytes


def test_moe_reads_only_touched_experts() -> None:
    spec = get_model("mixtral-8x7b")  # 8 experts, top-2
    one = {o.name: o for o in ops.moe(spec, 1)}
    many = {o.name: o for o in ops.moe(spec, 4096)}
    per_expert = 2 * spec.hidden_size * spec.moe_ffn_hidden * spec.dtype_bytes  # gate + up
    # one token touches exactly top_k=2 experts; 4096 tokens touch all 8
    assert float(one["expert_up"].bytes) == pytest.approx(2 * per_expert, rel=1e-3)
    assert float(many["expert_up"].bytes) > 8 * per_expert
    assert float(many["expert_up"].bytes) < 8 * per_expert * 1.1 + 4096 * 2 * 1e5
    # routed FLOPs are top-k per token, not all experts
    assert float(many["expert_up"].flops) == pytest.approx(
        2 * 4096 * 2 * spec.hidden_size * 2 * spec.moe_ffn_hidden)
    touched = spec.num_experts * (1 - (1 - spec.experts_top_k / spec.num_experts) ** 3)
    assert touched <= min(spec.num_experts, 3 * spec.experts_top_k)


def test_shared_experts_add_a_dense_mlp() -> None:
    spec = get_model("deepseek-v3")
    names = [o.name for o in ops.moe(spec, 16)]
    assert names.count("mlp_up") == 1 and "expert_up" in names


def test_mla_decode_is_far_more_compute_intense_than_gqa() -> None:
    mla = ops.attention_decode(get_model("deepseek-v3"), 1, 10_000)
    gqa = ops.attention_decode(get_model("llama-3-70b"), 1, 10_000)
    assert float(mla.flops / mla.bytes) > 100
    assert float(gqa.flops / gqa.bytes) < 10


def test_vectorised_over_arrays() -> None:
    spec = get_model("llama-2-7b")
    t = np.array([[1, 2], [3, 4]])
    op = ops.attention_prefill(spec, t, np.zeros_like(t))
    assert op.flops.shape == (2, 2)
    assert np.all(np.diff(op.flops.ravel()) > 0)


def test_bad_tp_names_the_parameter() -> None:
    spec = get_model("llama-2-7b")
    with pytest.raises(ValueError, match="'tp' parameter of qkv_proj"):
        ops.qkv_proj(spec, 1, tp=0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: ops.qkv_proj(s, -1), r"'tokens' parameter of qkv_proj .*element 0 is -1\.0"),
        (lambda s: ops.mlp_up(s, np.array([4.0, np.nan])), r"'tokens' .*mlp_up .*1 is nan"),
        (lambda s: ops.attention_decode(s, 2, -8), r"'context_sum' parameter of attention_decode"),
        (lambda s: ops.attention_prefill(s, "x", 0), r"'chunk_tokens' parameter of attention_pre"),
        (lambda s: ops.layer_linear_ops(s, [1, np.inf]), r"'tokens' parameter of layer_linear_ops"),
        (lambda s: ops.gemm("g", -1, 4, 4, 2), r"'rows' parameter of gemm"),
    ],
)
def test_bad_token_counts_name_the_parameter_and_the_op(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call(get_model("llama-3-8b"))
