"""The exact split of a draft budget (rollout digest §1.9(c); Seer arXiv 2511.14617, Algorithm
1's problem): the enumeration is never below the MBA greedy under any reading, equals it and a
hand count where the answer can be worked out, respects the same bounds and switch, measures the
greedy's loss, and names the field of bad input."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.policies.speculation import BENEFITS, COMPARISONS, mba_allocation
from schedlab.solvers import (
    DraftAllocation,
    draft_objective,
    greedy_loss,
    solve_draft_allocation,
)

FAST = settings(max_examples=80, deadline=None, database=None)
READINGS = list(itertools.product(BENEFITS, COMPARISONS))

betas = st.lists(st.floats(0.0, 1.0), min_size=8, max_size=8)


def _accepted(beta: list[float], g: int) -> float:
    return sum(math.prod(beta[:k]) for k in range(1, g + 1))


@FAST
@given(bh=st.integers(0, 64), bl=st.integers(0, 64), beta=betas, gs=st.integers(0, 10),
       lam=st.floats(0.25, 8.0), reading=st.sampled_from(READINGS))
def test_exact_is_never_below_the_greedy(bh, bl, beta, gs, lam, reading):
    exact = solve_draft_allocation(bh, bl, beta, gamma_star=gs, lam=lam)
    greedy = mba_allocation(bh, bl, beta, gamma_star=gs, lam=lam, benefit=reading[0],
                            comparison=reading[1])
    value = draft_objective(bh, bl, beta, *greedy, lam=lam)
    assert exact.objective >= value - 1e-9 * max(1.0, value)
    loss = greedy_loss(bh, bl, beta, greedy, gamma_star=gs, lam=lam)
    assert loss >= 0.0
    assert loss == pytest.approx(max(0.0, exact.objective - value), abs=1e-9)


@FAST
@given(bh=st.integers(0, 16), bl=st.integers(0, 16), beta=betas, gs=st.integers(0, 10),
       gmax=st.integers(1, 8), lam=st.floats(0.25, 8.0))
def test_exact_matches_a_plain_double_loop_and_keeps_the_bounds(bh, bl, beta, gs, gmax, lam):
    r = solve_draft_allocation(bh, bl, beta, gamma_star=gs, gamma_max=gmax, lam=lam)
    budget = gs * (bh + bl)
    if bh + bl == 0 or budget < bh + bl:
        assert r == DraftAllocation(g_high=0, g_low=0, objective=0.0)
        return
    best = max(bh * lam * _accepted(beta, h) + bl * _accepted(beta, low)
               for h in range(gmax + 1) for low in range(gmax + 1) if bh * h + bl * low <= budget)
    assert r.objective == pytest.approx(best, rel=1e-9, abs=1e-12)
    assert 0 <= r.g_high <= gmax and 0 <= r.g_low <= gmax
    assert bh * r.g_high + bl * r.g_low <= budget


def test_hand_count_all_accepted():
    """Every draft accepted, so A(g) = g: maximise 2 g_h + g_l with g_h + g_l <= 4; the probes
    take the whole budget, objective 8, and the greedy (gain, intent) finds the same."""
    beta = [1.0] * 8
    assert solve_draft_allocation(1, 1, beta, gamma_star=2) == DraftAllocation(
        g_high=4, g_low=0, objective=8.0)
    greedy = mba_allocation(1, 1, beta, gamma_star=2, benefit="gain", comparison="intent")
    assert greedy == (4, 0)
    assert greedy_loss(1, 1, beta, greedy, gamma_star=2) == 0.0


def test_hand_count_where_the_printed_greedy_loses():
    """Constant acceptance 0.9, B_h = B_l = 1, gamma* = 2 (budget 4). As printed (drop, paper)
    the drop is 0 past the first position, so the others take the three steps: (1, 3), worth
    2 * 0.9 + (0.9 + 0.81 + 0.729) = 4.239. The optimum gives the probes all four,
    2 * (0.9 + 0.81 + 0.729 + 0.6561) = 6.1902: a loss of 1.9512."""
    beta = [0.9] * 8
    greedy = mba_allocation(1, 1, beta, gamma_star=2)
    assert greedy == (1, 3)
    assert draft_objective(1, 1, beta, *greedy) == pytest.approx(4.239)
    exact = solve_draft_allocation(1, 1, beta, gamma_star=2)
    assert (exact.g_high, exact.g_low) == (4, 0)
    assert exact.objective == pytest.approx(6.1902)
    assert greedy_loss(1, 1, beta, greedy, gamma_star=2) == pytest.approx(1.9512)


def test_ties_go_to_fewer_draft_tokens():
    """Nothing past the first position is accepted: a second draft token adds nothing."""
    beta = [0.8] + [0.0] * 7
    r = solve_draft_allocation(2, 3, beta, gamma_star=4)
    assert (r.g_high, r.g_low) == (1, 1)
    assert r.objective == pytest.approx(2 * 2 * 0.8 + 3 * 0.8)


def test_disabled_like_algorithm_1():
    assert solve_draft_allocation(3, 5, [0.9] * 8, gamma_star=0) == DraftAllocation(
        g_high=0, g_low=0, objective=0.0)
    assert solve_draft_allocation(0, 0, [0.9] * 8, gamma_star=3).objective == 0.0
    assert greedy_loss(3, 5, [0.9] * 8, (0, 0), gamma_star=0) == 0.0


def test_the_record_is_frozen():
    r = solve_draft_allocation(1, 1, [0.5] * 8, gamma_star=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.g_high = 3  # type: ignore[misc]


@pytest.mark.parametrize(("call", "field"), [
    (lambda: solve_draft_allocation(-1, 1, [0.5] * 8, gamma_star=1), "batch_high"),
    (lambda: solve_draft_allocation(1, -1, [0.5] * 8, gamma_star=1), "batch_low"),
    (lambda: solve_draft_allocation(1, 1, [0.5] * 7, gamma_star=1), "beta"),
    (lambda: solve_draft_allocation(1, 1, [1.5] * 8, gamma_star=1), "beta"),
    (lambda: solve_draft_allocation(1, 1, [0.5] * 8, gamma_star=-1), "gamma_star"),
    (lambda: solve_draft_allocation(1, 1, [0.5] * 8, gamma_star=1, lam=0.0), "lam"),
    (lambda: draft_objective(1, 1, [0.5] * 8, 9, 0), "g_high"),
    (lambda: draft_objective(1, 1, [0.5] * 8, 0, -1), "g_low"),
    (lambda: greedy_loss(1, 1, [0.5] * 8, (3, 3), gamma_star=2), "greedy"),   # over budget
    (lambda: greedy_loss(1, 1, [0.5] * 8, (9, 0), gamma_star=8), "greedy"),   # past gamma_max
    (lambda: greedy_loss(1, 1, [0.5] * 8, (1, 0), gamma_star=0), "greedy"),   # speculation off
    (lambda: greedy_loss(1, 1, [0.5] * 8, [1, 0], gamma_star=2), "greedy"),   # not a pair
    (lambda: greedy_loss(-1, 1, [0.5] * 8, (1, 0), gamma_star=2), "batch_high"),
])
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=f"'{field}'"):
        call()
