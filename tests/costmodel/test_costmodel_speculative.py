"""Speculative decoding on the cost model (Seer arXiv 2511.14617, §3.4.1; rollout digest §0 and
§1.8 invariant 9): the verify step is a plain decode step at gamma = 0 and never decreases in
gamma or the batch; E(gamma) lies in [1, gamma + 1]; T_SD(B, 0) is the plain decode step; the best
draft length is never slower than no speculation, and shrinks as the batch grows on dense models;
Seer's grouped acceptance is calibrated as documented; bad input names its field."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel import ConstantIterationCost, iteration_cost
from schedlab.costmodel.base import SequenceOverheadCost
from schedlab.costmodel.speculative import (
    ALPHA0,
    ALPHA_INF,
    acceptance,
    best_gamma,
    expected_tokens,
    expected_tokens_curve,
    position_acceptance,
    sd_time_per_token,
    verify_batch_s,
    verify_step_s,
    verify_times_s,
)

FAST = settings(max_examples=60, deadline=None, database=None)

DENSE_72B = iteration_cost("qwen2.5-72b", "h800", tp=8)
DENSE_7B = iteration_cost("llama-2-7b", "a100-80gb")
MOE = iteration_cost("moonlight-16b-a3b", "h800")
COSTS = {
    "qwen2.5-72b/h800x8": DENSE_72B,
    "llama-2-7b/a100": DENSE_7B,
    "moonlight-16b-a3b/h800": MOE,
    "constant": ConstantIterationCost(slot_s=0.02),
    "overhead(llama-2-7b)": SequenceOverheadCost(cost=DENSE_7B, per_sequence_s=2e-5),
}

batches = st.integers(1, 2048)
contexts = st.integers(0, 60_000)           # tokens per request
alphas = st.floats(0.0, 1.0)
betas = st.lists(st.floats(0.0, 1.0), min_size=8, max_size=8)


def _plain_step(cost, batch: int, context: int) -> float:
    return float(cost.fast_decode_steps_time_s(batch, context, np.array([1.0]))[0])


# ------------------------------------------------------------------ the verify step
@pytest.mark.parametrize("name", sorted(COSTS))
@pytest.mark.parametrize(("batch", "per_request"), [(1, 0), (1, 500), (16, 20_000), (1024, 1000)])
def test_gamma_zero_is_exactly_a_plain_decode_step(name, batch, per_request):
    cost = COSTS[name]
    s = batch * per_request
    assert verify_step_s(cost, batch, 0, s) == _plain_step(cost, batch, s)


@pytest.mark.parametrize("name", sorted(COSTS))
@FAST
@given(batch=batches, extra=st.integers(0, 512), per_request=contexts, gamma=st.integers(0, 15))
def test_verify_step_is_non_decreasing_in_gamma_and_batch(name, batch, extra, per_request, gamma):
    cost = COSTS[name]
    s = batch * per_request
    t = verify_step_s(cost, batch, gamma, s)
    assert t >= _plain_step(cost, batch, s)
    assert verify_step_s(cost, batch, gamma + 1, s) >= t
    assert verify_step_s(cost, batch + extra, gamma, s) >= t


@pytest.mark.parametrize("name", sorted(COSTS))
@FAST
@given(gammas=st.lists(st.integers(0, 8), min_size=1, max_size=64), per_request=contexts,
       j=st.integers(0, 63))
def test_mixed_drafts_verify_between_the_uniform_extremes(name, gammas, per_request, j):
    """A batch whose requests draft different lengths (MBA) costs at least the plain step, no
    more than everyone drafting the longest, and never less when one request drafts more."""
    cost = COSTS[name]
    g = np.array(gammas)
    b, s = g.shape[0], g.shape[0] * per_request
    t = verify_batch_s(cost, g, s)
    assert _plain_step(cost, b, s) <= t <= verify_step_s(cost, b, int(g.max()), s) * (1 + 1e-12)
    assert verify_batch_s(cost, np.full(b, g[0]), s) == verify_step_s(cost, b, int(g[0]), s)
    more = g.copy()
    more[j % b] += 1
    assert verify_batch_s(cost, more, s) >= t


def test_verify_batch_bad_input_names_the_field():
    with pytest.raises(ValueError, match="'gamma' parameter of verify_batch_s"):
        verify_batch_s(DENSE_7B, [1, -1], 1000)
    with pytest.raises(ValueError, match="'context_tokens' parameter of verify_batch_s"):
        verify_batch_s(DENSE_7B, [1, 1], -5)


def test_verify_step_is_flat_while_memory_bound_and_grows_when_compute_bound():
    """The shape of Seer's profiled T(B, gamma): a few long-context requests read KV and weights
    once for all their drafts; a large short-context batch is compute-bound."""
    small = verify_times_s(DENSE_72B, 4, 4 * 20_000, gamma_max=8)
    large = verify_times_s(DENSE_72B, 1024, 1024 * 1000, gamma_max=8)
    assert small[8] / small[0] < 1.10
    assert large[8] / large[0] > 5.0
    assert np.all(np.diff(small) >= 0) and np.all(np.diff(large) >= 0)


def test_verify_counts_every_query_token_in_linear_layers_and_head():
    """With no context the attention is the per-token traffic only, so the step is one iteration
    of B (gamma + 1) decode tokens: the same token-linear layers and LM head."""
    b, g = 32, 3
    plain_n = DENSE_7B.fast_iteration_time_s(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                             b * (g + 1), 0)
    assert verify_step_s(DENSE_7B, b, g, 0) == pytest.approx(plain_n, rel=1e-12)


def test_overhead_cost_adds_its_per_request_overhead_once_per_step():
    inner = verify_step_s(DENSE_7B, 8, 4, 8000)
    outer = verify_step_s(COSTS["overhead(llama-2-7b)"], 8, 4, 8000)
    assert outer == pytest.approx(inner + 8 * 2e-5, rel=1e-12)


def test_empty_batch_costs_nothing():
    assert verify_step_s(DENSE_7B, 0, 4, 0) == 0.0
    assert verify_times_s(DENSE_7B, 0, 0, gamma_max=3).tolist() == [0.0] * 4


# ------------------------------------------------------------------ expected tokens
@FAST
@given(alpha=alphas, gamma=st.integers(0, 32))
def test_expected_tokens_lies_in_one_to_gamma_plus_one(alpha, gamma):
    e = expected_tokens(alpha, gamma)
    assert 1.0 <= e <= gamma + 1 + 1e-12
    if alpha < 0.99:
        assert e == pytest.approx((1 - alpha ** (gamma + 1)) / (1 - alpha), rel=1e-12)
    assert expected_tokens(alpha, gamma + 1) >= e
    assert expected_tokens([alpha] * max(gamma, 1), gamma) == pytest.approx(e, rel=1e-12)


@FAST
@given(beta=betas, gamma=st.integers(0, 8))
def test_expected_tokens_of_a_vector_is_one_plus_the_survival_sum(beta, gamma):
    want = 1.0 + sum(math.prod(beta[:k]) for k in range(1, gamma + 1))
    e = expected_tokens(beta, gamma)
    assert e == pytest.approx(want, rel=1e-12)
    assert 1.0 <= e <= gamma + 1 + 1e-12
    assert expected_tokens_curve(beta, 8)[gamma] == pytest.approx(e, rel=1e-12)


def test_expected_tokens_edges():
    assert expected_tokens(1.0, 8) == 9.0
    assert expected_tokens(0.0, 8) == 1.0
    assert expected_tokens(0.5, 0) == 1.0
    assert expected_tokens([0.5, 0.5], 0) == 1.0
    assert expected_tokens(1 - 1e-12, 4) == pytest.approx(5.0, rel=1e-9)   # no cancellation


# ------------------------------------------------------------------ time per token (invariant 9)
@pytest.mark.parametrize("name", sorted(COSTS))
@FAST
@given(batch=batches, per_request=contexts, alpha=alphas)
def test_sd_time_with_no_drafts_is_a_plain_decode_step(name, batch, per_request, alpha):
    cost = COSTS[name]
    s = batch * per_request
    t0 = sd_time_per_token(verify_step_s(cost, batch, 0, s), 0.0, expected_tokens(alpha, 0))
    assert t0 == _plain_step(cost, batch, s)


def test_sd_time_per_token_formula():
    assert sd_time_per_token(0.03, 0.01, 2.0) == pytest.approx(0.02)


# ------------------------------------------------------------------ the best draft length
@FAST
@given(times=st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=12), alpha=alphas,
       draft=st.floats(0.0, 0.05))
def test_best_gamma_is_the_argmin_and_never_slower_than_no_speculation(times, alpha, draft):
    t = np.maximum.accumulate(np.array(times))        # a profile non-decreasing in gamma
    g = best_gamma(t, alpha, draft_s=draft)
    per_token = [sd_time_per_token(t[k], k * draft, expected_tokens(alpha, k))
                 for k in range(t.size)]
    assert 0 <= g < t.size
    assert per_token[g] == min(per_token)
    assert per_token[g] <= t[0]
    assert all(per_token[k] > per_token[g] for k in range(g))   # ties go to the shorter draft


@pytest.mark.parametrize("name", sorted(COSTS))
@FAST
@given(batch=batches, per_request=contexts, n_ref=st.integers(0, 15))
def test_best_gamma_on_the_cost_model_never_slows_decoding(name, batch, per_request, n_ref):
    cost = COSTS[name]
    t = verify_times_s(cost, batch, batch * per_request)
    alpha = acceptance(n_ref)
    g = best_gamma(t, alpha)
    assert sd_time_per_token(t[g], 0.0, expected_tokens(alpha, g)) <= t[0]


def test_best_gamma_is_zero_when_no_draft_length_pays():
    assert best_gamma([0.02, 0.05, 0.08], 0.9) == 0
    assert best_gamma([0.02, 0.021, 0.022], 0.9, draft_s=0.5) == 0   # a slow draft model
    assert best_gamma([0.02, 0.02, 0.02], 0.0) == 0                   # nothing is ever accepted
    assert best_gamma([0.02], 0.9) == 0


@pytest.mark.parametrize("cost", [DENSE_72B, DENSE_7B], ids=["qwen2.5-72b", "llama-2-7b"])
@FAST
@given(b1=batches, b2=batches, per_request=st.integers(100, 40_000), alpha=st.floats(0.2, 0.95),
       decay=st.floats(0.6, 1.0))
def test_best_gamma_shrinks_as_the_batch_grows_on_dense_models(cost, b1, b2, per_request, alpha,
                                                               decay):
    """Invariant 8's monotonicity where it comes from: more concurrency, shorter drafts."""
    lo, hi = sorted((b1, b2))
    beta = position_acceptance(alpha, 8, decay=decay)
    g_lo = best_gamma(verify_times_s(cost, lo, lo * per_request), beta)
    g_hi = best_gamma(verify_times_s(cost, hi, hi * per_request), beta)
    assert g_hi <= g_lo


def test_moe_best_gamma_can_rise_with_small_batches():
    """Documented exception: on a MoE model a small batch's drafts route to experts a plain step
    did not read, so verification is dear at B = 1 and the best draft length first rises."""
    alpha = acceptance(15)
    g = [best_gamma(verify_times_s(MOE, b, b * 8000), alpha) for b in (1, 8, 1024)]
    assert g[0] < g[1] and g[2] < g[1]


# ------------------------------------------------------------------ Seer's grouped acceptance
def test_acceptance_calibration_matches_the_documented_anchors():
    e8 = {n: expected_tokens(acceptance(n), 8) for n in (0, 1, 5, 15)}
    assert e8[0] == pytest.approx(1.54, abs=0.005)
    assert e8[1] == pytest.approx(1.70, abs=0.005)       # "about 1.7"
    assert e8[5] == pytest.approx(2.24, abs=0.005)
    assert e8[15] == pytest.approx(2.73, abs=0.005)
    assert expected_tokens(acceptance(math.inf), 8) == pytest.approx(2.80, abs=0.005)  # "2.8"
    # the paper's +0.22 mean acceptance length lies between one and two siblings
    gain = [expected_tokens(acceptance(n), 8) - e8[0] for n in (1, 2)]
    assert gain[0] < 0.22 < gain[1]


@FAST
@given(n=st.floats(0.0, 1e6), m=st.floats(0.0, 1e6))
def test_acceptance_rises_with_siblings_between_its_bounds(n, m):
    lo, hi = sorted((n, m))
    assert ALPHA0 <= acceptance(lo) <= acceptance(hi) <= ALPHA_INF
    arr = acceptance(np.array([lo, hi]))
    assert arr.tolist() == pytest.approx([acceptance(lo), acceptance(hi)], rel=1e-15)


def test_position_acceptance_is_geometric():
    assert position_acceptance(0.6, 3).tolist() == pytest.approx([0.6, 0.6, 0.6])
    assert position_acceptance(0.6, 0).size == 0


# ------------------------------------------------------------------ bad input names its field
@pytest.mark.parametrize(("call", "field"), [
    (lambda: verify_step_s(DENSE_7B, -1, 1, 0), "batch"),
    (lambda: verify_step_s(DENSE_7B, 1, 1.5, 0), "gamma"),
    (lambda: verify_step_s(DENSE_7B, 1, 1, -5), "context_tokens"),
    (lambda: verify_times_s(DENSE_7B, 1, 0, gamma_max=-1), "gamma_max"),
    (lambda: expected_tokens(1.5, 2), "acceptance"),
    (lambda: expected_tokens([0.5], 3), "acceptance"),
    (lambda: expected_tokens([0.5, -0.1], 2), "acceptance"),
    (lambda: expected_tokens(0.5, -1), "gamma"),
    (lambda: sd_time_per_token(-1.0, 0.0, 1.0), "verify_s"),
    (lambda: sd_time_per_token(1.0, -1.0, 1.0), "draft_s"),
    (lambda: sd_time_per_token(1.0, 0.0, 0.5), "expected"),
    (lambda: acceptance(-1.0), "n_ref"),
    (lambda: acceptance(np.array([1.0, -1.0])), "n_ref"),
    (lambda: acceptance(1.0, alpha0=1.2), "alpha0"),
    (lambda: acceptance(1.0, alpha_inf=-0.1), "alpha_inf"),
    (lambda: acceptance(1.0, kappa=0.0), "kappa"),
    (lambda: position_acceptance(0.5, 4, decay=1.5), "decay"),
    (lambda: best_gamma([], 0.5), "verify_s"),
    (lambda: best_gamma([0.1, -0.2], 0.5), "verify_s"),
    (lambda: best_gamma([0.1, 0.2, 0.3], [0.5]), "acceptance"),
    (lambda: best_gamma([0.1, 0.2], 0.5, draft_s=-1.0), "draft_s"),
])
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=f"'{field}'"):
        call()


def test_speculative_decoding_cost_speeds_decode_steps_only():
    from schedlab.costmodel import iteration_cost
    from schedlab.costmodel.speculative import SpeculativeDecodingCost, acceptance

    base = iteration_cost("qwen2.5-7b", "h800")
    sd = SpeculativeDecodingCost(cost=base, acceptance=acceptance(7))
    steps = np.array([1.0, 2.0, 3.0])
    for b, ctx in ((1, 2000), (64, 64 * 8000), (512, 512 * 1000)):
        plain = base.fast_decode_steps_time_s(b, ctx, steps)
        fast = sd.fast_decode_steps_time_s(b, ctx, steps)
        assert (fast <= plain + 1e-15).all()  # never slower than a plain step
        assert fast[-1] == pytest.approx(plain[-1] / sd.speedup(b, ctx))
    none = SpeculativeDecodingCost(cost=base, acceptance=0.0)  # nothing accepted: no speed-up
    assert none.speedup(16, 16 * 4000) == pytest.approx(1.0)
    assert sd.speedup(16, 16 * 4000) > SpeculativeDecodingCost(
        cost=base, acceptance=acceptance(0)).speedup(16, 16 * 4000)  # grouped beats vanilla
    p = np.array([100, 2000])
    assert np.array_equal(sd.prefill_time_s(p), base.prefill_time_s(p))
    assert sd.kv_capacity_tokens == base.kv_capacity_tokens
    with pytest.raises(ValueError, match="acceptance"):
        SpeculativeDecodingCost(cost=base, acceptance=1.5)
    with pytest.raises(ValueError, match="cost"):
        SpeculativeDecodingCost(cost=object(), acceptance=0.5)
