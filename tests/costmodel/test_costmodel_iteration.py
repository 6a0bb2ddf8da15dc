"""RooflineIterationCost: protocol, monotonicity, closed-form decode sums, capacity, bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel import IterationCost, RooflineIterationCost, iteration_cost
from schedlab.costmodel.hardware import get_accelerator
from schedlab.costmodel.iteration import TABLE_TOKENS
from schedlab.costmodel.models import ModelSpec, get_model
from schedlab.costmodel.roofline import Efficiency

EMPTY = np.array([], dtype=np.int64)

# A small MLA model with many heads: its decode attention is memory-bound at small contexts (the
# per-request query/output traffic) and compute-bound at large ones, so N-step sums cross over.
TINY_MLA = ModelSpec(
    name="tiny-mla", num_layers=4, hidden_size=2048, num_heads=128, num_kv_heads=128, head_dim=64,
    ffn_hidden=5632, gated_mlp=True, vocab_size=32000, kv_lora_rank=512, qk_rope_head_dim=64,
    max_context=1 << 20, source="test",
)


@pytest.fixture(scope="module")
def costs() -> dict[str, RooflineIterationCost]:
    return {
        "mha": iteration_cost("llama-2-7b", "a100-80gb"),
        "gqa-tp2": iteration_cost("llama-3-8b", "h100-sxm", tp=2),
        "mla": iteration_cost(TINY_MLA, "a100-80gb"),
        "moe": iteration_cost("mixtral-8x7b", "h100-sxm", tp=4),
    }


def test_implements_the_protocol(costs: dict[str, RooflineIterationCost]) -> None:
    for cost in costs.values():
        assert isinstance(cost, IterationCost)


def _step(cost: RooflineIterationCost, batch: int, ctx: int) -> float:
    return cost.iteration_time_s(EMPTY, EMPTY, batch, ctx)


@settings(max_examples=50, deadline=None)
@given(kind=st.sampled_from(["mha", "gqa-tp2", "mla", "moe"]), batch=st.integers(1, 300),
       per_req=st.integers(1, 4000), n=st.integers(0, 200))
def test_closed_form_decode_sum_equals_step_by_step(
    costs: dict[str, RooflineIterationCost], kind: str, batch: int, per_req: int, n: int
) -> None:
    cost = costs[kind]
    s0 = batch * per_req
    loop = sum(_step(cost, batch, s0 + k * batch) for k in range(n))
    closed = cost.decode_steps_time_s(batch, s0, n)
    assert closed == pytest.approx(loop, rel=1e-9, abs=1e-12)
    vec = cost.decode_steps_time_s(batch, s0, np.array([n, 0, 1]))
    assert vec.shape == (3,)
    assert vec[0] == pytest.approx(loop, rel=1e-9, abs=1e-12)
    assert vec[1] == 0.0 and vec[2] == pytest.approx(_step(cost, batch, s0), rel=1e-12)


def test_closed_form_covers_the_compute_memory_crossover(
    costs: dict[str, RooflineIterationCost],
) -> None:
    cost = costs["mla"]
    batch, s0, n = 64, 64, 1500
    first = cost.decode_step_breakdown(batch, s0)
    last = cost.decode_step_breakdown(batch, s0 + (n - 1) * batch)
    assert not first["attention_compute_bound"] and last["attention_compute_bound"]
    loop = sum(_step(cost, batch, s0 + k * batch) for k in range(n))
    assert cost.decode_steps_time_s(batch, s0, n) == pytest.approx(loop, rel=1e-12)
    # each extra step adds exactly that step, on both sides of the crossover
    sums = cost.decode_steps_time_s(batch, s0, np.arange(n + 1))
    steps = np.array([_step(cost, batch, s0 + k * batch) for k in range(n)])
    np.testing.assert_allclose(np.diff(sums), steps, rtol=1e-9)


@settings(max_examples=50, deadline=None)
@given(kind=st.sampled_from(["mha", "gqa-tp2", "mla", "moe"]),
       chunks=st.lists(st.tuples(st.integers(1, 3000), st.integers(0, 6000)), max_size=4),
       batch=st.integers(0, 200), ctx=st.integers(0, 400_000),
       extra_tokens=st.integers(1, 500), extra_ctx=st.integers(1, 5000))
def test_times_are_positive_and_monotone(
    costs: dict[str, RooflineIterationCost], kind: str, chunks: list[tuple[int, int]], batch: int,
    ctx: int, extra_tokens: int, extra_ctx: int,
) -> None:
    cost = costs[kind]
    ctx = ctx if batch else 0
    pt = np.array([c for c, _ in chunks], dtype=np.int64)
    pc = np.array([p for _, p in chunks], dtype=np.int64)
    t = cost.iteration_time_s(pt, pc, batch, ctx)
    assert t >= 0 and (t > 0) == (pt.size > 0 or batch > 0)
    # more prefill tokens, more cached context, one more decode request, more decode context
    more_pt = np.append(pt, extra_tokens)
    assert cost.iteration_time_s(more_pt, np.append(pc, 0), batch, ctx) > t
    if pt.size:
        assert cost.iteration_time_s(pt + 1, pc, batch, ctx) > t
        assert cost.iteration_time_s(pt, pc + extra_ctx, batch, ctx) >= t
    assert cost.iteration_time_s(pt, pc, batch + 1, ctx + extra_ctx) > t
    if batch:
        assert cost.iteration_time_s(pt, pc, batch, ctx + extra_ctx) >= t


def test_prefill_time_matches_single_chunk_iterations(
    costs: dict[str, RooflineIterationCost],
) -> None:
    cost = costs["gqa-tp2"]
    prompts = np.array([1, 17, 512, 4096, TABLE_TOKENS + 5])
    vec = cost.prefill_time_s(prompts)
    for n, t in zip(prompts, vec, strict=True):
        assert t == pytest.approx(cost.iteration_time_s(np.array([n]), np.array([0]), 0, 0),
                                  rel=1e-9)
    assert np.all(np.diff(vec) > 0)
    assert cost.prefill_time_s(np.array([0]))[0] == 0.0
    assert cost.prefill_time_s(np.array([[8, 9]])).shape == (1, 2)


def test_decode_is_memory_bound_at_batch_one_and_crosses_near_the_ridge() -> None:
    for gpu_name in ("a100-80gb", "h100-sxm", "l40s"):
        cost = iteration_cost("llama-2-7b", gpu_name)
        gpu = get_accelerator(gpu_name)
        assert not cost.linear_is_compute_bound(1)
        batches = np.arange(1, 1024)
        flips = [b for b in batches if cost.linear_is_compute_bound(int(b))]
        # the GEMMs' intensity is about the batch size (bf16 weights): the crossover sits at the
        # ridge point, moved by the compute/memory efficiency ratio (0.7 / 0.8) and the rows ramp
        assert 0.5 * gpu.ridge_point() < flips[0] < 1.2 * gpu.ridge_point()
        assert all(cost.linear_is_compute_bound(int(b)) for b in (flips[0] + 50, 2000))


def test_tensor_parallel_shortens_linear_layers() -> None:
    one = iteration_cost("llama-2-13b", "h100-sxm", tp=1)
    four = iteration_cost("llama-2-13b", "h100-sxm", tp=4)
    t1 = one.prefill_time_s(np.array([4096]))[0]
    t4 = four.prefill_time_s(np.array([4096]))[0]
    assert 0.25 * t1 < t4 < 0.5 * t1   # a 4-way split plus all-reduces
    assert four.kv_capacity_tokens > 4 * one.kv_capacity_tokens


def test_kv_capacity_formula() -> None:
    cost = iteration_cost("llama-2-7b", "a100-80gb", gpu_memory_utilization=0.5)
    spec, gpu = get_model("llama-2-7b"), get_accelerator("a100-80gb")
    free = 0.5 * gpu.hbm_capacity_bytes - spec.weight_bytes() - cost.activation_reserve_bytes
    assert cost.kv_capacity_tokens == int(free // spec.kv_bytes_per_token())
    assert cost.kv_bytes_per_token == spec.kv_bytes_per_token()


def test_swap_time_scales_with_tokens(costs: dict[str, RooflineIterationCost]) -> None:
    cost = costs["mha"]
    assert cost.swap_time_s(0) == 0.0
    t = cost.swap_time_s(np.array([0, 1000, 2000]))
    assert t[0] == 0.0 and 0 < t[1] < t[2] < 2.01 * t[1]


def test_calibration_changes_the_times(tmp_path) -> None:
    slow = Efficiency(gemm_memory=0.4)
    base = iteration_cost("llama-2-7b", "a100-80gb")
    cal = iteration_cost("llama-2-7b", "a100-80gb", calibration=slow)
    assert _step(cal, 1, 100) > 1.5 * _step(base, 1, 100)
    path = tmp_path / "cal.json"
    slow.save(path)
    from_file = iteration_cost("llama-2-7b", "a100-80gb", calibration=str(path))
    assert _step(from_file, 1, 100) == _step(cal, 1, 100)
    assert json.loads(path.read_text())["efficiency"]["gemm_memory"] == 0.4


def test_weights_that_do_not_fit_raise_naming_model_gpu_and_tp() -> None:
    with pytest.raises(ValueError, match=r"llama-3-70b does not fit on 1 x a100-40gb \(tp=1\)"):
        iteration_cost("llama-3-70b", "a100-40gb")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.iteration_time_s(np.array([-1]), np.array([0]), 0, 0), "prefill_tokens"),
        (lambda c: c.iteration_time_s(np.array([np.nan]), np.array([0]), 0, 0), "prefill_tokens"),
        (lambda c: c.iteration_time_s(np.array([1]), np.array([-5]), 0, 0), "prefill_context"),
        (lambda c: c.iteration_time_s(np.array([1, 2]), np.array([0]), 0, 0), "prefill_context"),
        (lambda c: c.iteration_time_s(EMPTY, EMPTY, -1, 0), "decode_batch"),
        (lambda c: c.iteration_time_s(EMPTY, EMPTY, 1, -3), "decode_context_sum"),
        (lambda c: c.decode_steps_time_s(4, 100, -1), "n_steps"),
        (lambda c: c.decode_steps_time_s(4, 100, np.array([1, -1])), "n_steps"),
        (lambda c: c.decode_steps_time_s(4, 100, np.array([1.5])), "n_steps"),
        (lambda c: c.decode_steps_time_s(-4, 100, 3), "batch_size"),
        (lambda c: c.prefill_time_s(np.array([float("nan")])), "input_tokens"),
        (lambda c: c.prefill_time_s(np.array([-2])), "input_tokens"),
        (lambda c: c.swap_time_s(-1), "tokens"),
    ],
)
def test_bad_inputs_name_the_parameter(
    costs: dict[str, RooflineIterationCost], call, match
) -> None:
    with pytest.raises(ValueError, match=match):
        call(costs["mha"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "llama-9b", "gpu": "a100-80gb"}, "llama-9b"),
        ({"model": "llama-2-7b", "gpu": "a1000"}, "a1000"),
        ({"model": "llama-2-7b", "gpu": "a100-80gb", "tp": 0}, "'tp'"),
        ({"model": "llama-2-7b", "gpu": "a100-80gb", "gpu_memory_utilization": 0.0},
         "gpu_memory_utilization"),
        ({"model": "llama-2-7b", "gpu": "a100-80gb", "dtype": "fp8"}, "dtype"),
    ],
)
def test_bad_build_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RooflineIterationCost.build(**kwargs)


def test_is_frozen(costs: dict[str, RooflineIterationCost]) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        costs["mha"].tp = 2  # type: ignore[misc]


@pytest.mark.parametrize("model, tp", [("llama-2-7b", 3), ("llama-3-70b", 6), ("mixtral-8x7b", 12)])
def test_tp_must_split_the_heads(model, tp):
    with pytest.raises(ValueError, match=r"'tp' parameter .* split .* Got tp="):
        RooflineIterationCost.build(model, "h100-sxm", tp=tp)


def test_tp_may_replicate_kv_heads():
    # Llama-3-70B: 64 query heads, 8 KV heads; tp=16 splits the queries and replicates each KV
    # head on two devices.
    assert RooflineIterationCost.build("llama-3-70b", "h100-sxm", tp=16).kv_capacity_tokens > 0
