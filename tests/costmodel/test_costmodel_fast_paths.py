"""The simulator's unchecked hot paths of RooflineIterationCost (compiled kernels) against the
validated public methods (exactly), the operator model in ``ops`` (an independent evaluation of
the same formulas), and a step-by-step loop of decode iterations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel import RooflineIterationCost, iteration_cost, ops
from schedlab.costmodel.iteration import TABLE_TOKENS, _head_time, _linear_time
from schedlab.costmodel.models import ModelSpec

EMPTY = np.array([], dtype=np.int64)

# MLA with many heads: decode attention is memory-bound at small contexts and compute-bound at
# large ones, so decode stretches cross over.
CROSSING_MLA = ModelSpec(
    name="crossing-mla", num_layers=4, hidden_size=2048, num_heads=128, num_kv_heads=128,
    head_dim=64, ffn_hidden=5632, gated_mlp=True, vocab_size=32000, kv_lora_rank=512,
    qk_rope_head_dim=64, max_context=1 << 20, source="test",
)
KINDS = ["mha", "gqa-tp2", "mla", "moe"]


@pytest.fixture(scope="module")
def costs() -> dict[str, RooflineIterationCost]:
    return {
        "mha": iteration_cost("llama-2-7b", "a100-80gb"),
        "gqa-tp2": iteration_cost("llama-3-8b", "h100-sxm", tp=2),
        "mla": iteration_cost(CROSSING_MLA, "a100-80gb"),
        "moe": iteration_cost("mixtral-8x7b", "h100-sxm", tp=4),
    }


def _reference_iteration_s(cost: RooflineIterationCost, pt: np.ndarray, pc: np.ndarray,
                           batch: int, ctx: int) -> float:
    """One iteration straight from the operator model: per-chunk ``ops.attention_prefill``
    summed, ``ops.attention_decode`` of the batch, the linear and head times recomputed."""
    spec, gpu, eff, tp = cost.model, cost.gpu, cost.efficiency, cost.tp
    tokens = batch + int(pt.sum())
    if tokens == 0:
        return 0.0
    rate = gpu.peak_flops(cost.dtype) * eff.compute_efficiency("attention")
    bw = gpu.hbm_bytes_per_s * eff.memory_efficiency("attention")
    launch = eff.launch_s(gpu) * spec.num_layers
    layers = spec.num_layers
    attention = 0.0
    if pt.sum():
        op = ops.attention_prefill(spec, pt.astype(float), pc.astype(float), tp)
        attention += max(float(op.flops.sum()) * layers / rate,
                         float(op.bytes.sum()) * layers / bw) + launch
    if batch:
        op = ops.attention_decode(spec, float(batch), float(ctx), tp)
        attention += max(float(op.flops) * layers / rate, float(op.bytes) * layers / bw) + launch
    rows = batch + int(np.count_nonzero(pt))
    args = (spec, gpu, tp, cost.dtype, eff)
    return (float(_linear_time(*args, np.array([float(tokens)]))[0])
            + float(_head_time(*args, np.array([float(rows)]))[0]) + attention)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(KINDS),
       chunks=st.lists(st.tuples(st.integers(0, 9000), st.integers(0, 60_000)), max_size=5),
       batch=st.integers(0, 400) | st.integers(TABLE_TOKENS - 10, TABLE_TOKENS + 10),
       per_req=st.integers(0, 8000))
def test_iteration_fast_path_matches_public_method_and_operator_model(
    costs: dict[str, RooflineIterationCost], kind: str, chunks: list[tuple[int, int]],
    batch: int, per_req: int,
) -> None:
    cost = costs[kind]
    pt = np.array([c for c, _ in chunks], dtype=np.int64)
    pc = np.array([p for _, p in chunks], dtype=np.int64)
    ctx = batch * per_req
    fast = cost.fast_iteration_time_s(pt, pc, batch, ctx)
    assert type(fast) is float
    # the public method validates, then runs the same code: identical numbers, any int dtype
    assert cost.iteration_time_s(pt, pc, batch, ctx) == fast
    assert cost.iteration_time_s(pt.astype(np.int32), pc.astype(np.uint32), batch, ctx) == fast
    assert cost.iteration_time_s(pt[::-1], pc[::-1], batch, ctx) == fast  # strided, reordered
    assert fast == pytest.approx(_reference_iteration_s(cost, pt, pc, batch, ctx), rel=1e-9)


def test_iteration_of_nothing_is_zero(costs: dict[str, RooflineIterationCost]) -> None:
    for cost in costs.values():
        assert cost.fast_iteration_time_s(EMPTY, EMPTY, 0, 0) == 0.0
        zeros = np.zeros(3, dtype=np.int64)
        assert cost.fast_iteration_time_s(zeros, np.array([5, 0, 7]), 0, 0) == 0.0
        assert cost.iteration_time_s(np.array([]), np.array([]), 0, 0) == 0.0  # float, empty


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(KINDS),
       batch=st.integers(1, 400) | st.integers(TABLE_TOKENS - 3, TABLE_TOKENS + 3),
       per_req=st.integers(0, 6000), m=st.integers(1, 120))
def test_decode_steps_fast_path_matches_public_method_and_step_loop(
    costs: dict[str, RooflineIterationCost], kind: str, batch: int, per_req: int, m: int,
) -> None:
    cost = costs[kind]
    s0 = batch * per_req
    n = np.arange(1.0, m + 1.0)
    fast = cost.fast_decode_steps_time_s(batch, s0, n)
    assert fast.dtype == np.float64 and fast.shape == (m,)
    # the public method (int step counts, any shape; or one count) gives the very same floats
    np.testing.assert_array_equal(cost.decode_steps_time_s(batch, s0, np.arange(1, m + 1)), fast)
    grid = cost.decode_steps_time_s(batch, s0, np.arange(1, m + 1).reshape(1, m))
    np.testing.assert_array_equal(grid, fast[None, :])
    assert cost.decode_steps_time_s(batch, s0, m) == fast[-1]
    # and the cumulative sums of the decode iterations one by one
    steps = [cost.fast_iteration_time_s(EMPTY, EMPTY, batch, s0 + k * batch)
             for k in range(m)]
    np.testing.assert_allclose(fast, np.cumsum(steps), rtol=1e-10)
    # the step counts need not be consecutive or sorted
    picked = n[::-3].copy()
    np.testing.assert_array_equal(cost.fast_decode_steps_time_s(batch, s0, picked), fast[::-3])


def test_decode_stretches_that_cross_from_memory_to_compute_bound(
    costs: dict[str, RooflineIterationCost],
) -> None:
    cost = costs["mla"]
    batch, s0, m = 64, 64, 1500
    assert not cost.decode_step_breakdown(batch, s0)["attention_compute_bound"]
    assert cost.decode_step_breakdown(batch, s0 + (m - 1) * batch)["attention_compute_bound"]
    fast = cost.fast_decode_steps_time_s(batch, s0, np.arange(1.0, m + 1.0))
    steps = [cost.fast_iteration_time_s(EMPTY, EMPTY, batch, s0 + k * batch)
             for k in range(m)]
    np.testing.assert_allclose(fast, np.cumsum(steps), rtol=1e-10)
    np.testing.assert_allclose(np.diff(fast), steps[1:], rtol=1e-8)
    assert cost.fast_decode_steps_time_s(batch, s0, np.array([0.0]))[0] == 0.0
