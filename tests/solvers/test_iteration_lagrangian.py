"""The Lagrangian bound, its reduced-cost fixing and the solver built on them (issue 20)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.solvers import (
    IterationProblem,
    lagrangian_bound,
    list_schedule,
    lp_bound,
    prefill_cuts,
    random_problem,
    run_costs,
    solve_cpsat,
    solve_lagrangian,
    verify,
)

pytestmark = pytest.mark.solver


def _optimum(p: IterationProblem):
    r = solve_cpsat(p, time_limit_s=20, lagrangian=False)
    assert r.status == "OPTIMAL"
    return r


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 7))
@settings(max_examples=25, deadline=None)
def test_the_bound_is_below_the_optimum_and_fixing_keeps_an_optimal_schedule(seed, n):
    p = random_problem(n, np.random.default_rng(seed))
    best = _optimum(p)
    lb = lagrangian_bound(p, time_limit_s=10)
    assert p.trivial_bound() <= lb.bound <= best.objective
    # reduced-cost fixing at the optimum's value keeps that schedule: every run it makes
    # has a reduced cost of at most the optimum
    costs = run_costs(p, lb)
    run = best.schedule.run_matrix()
    for j in range(p.n):
        for k, t in enumerate(np.flatnonzero(run[j])):
            assert costs[j][k, t - p.arrival_slot[j]] <= best.objective + 1e-6


def test_the_bound_meets_the_optimum_where_only_the_batch_binds():
    # without token or KV pressure the relaxation is tight on these instances
    rng = np.random.default_rng(0)
    for _ in range(3):
        q = random_problem(12, rng)
        p = IterationProblem(arrival_slot=q.arrival_slot, input_tokens=q.input_tokens,
                             output_tokens=q.output_tokens, max_batch_size=q.max_batch_size,
                             max_batch_tokens=10_000, kv_capacity_tokens=100_000)
        assert lagrangian_bound(p).bound == solve_cpsat(p, time_limit_s=20).objective


def test_it_is_stronger_than_the_lp_relaxation_on_the_benchmark_instances():
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = random_problem(20, rng)
        assert lagrangian_bound(p).bound >= lp_bound(p)


@given(sizes=st.lists(st.integers(1, 32), min_size=1, max_size=8), budget=st.integers(8, 40))
def test_prefill_cuts_hold_for_every_set_of_prompts_that_fits(sizes, budget):
    sizes = [min(s, budget) for s in sizes]
    p = IterationProblem(arrival_slot=[0] * len(sizes), input_tokens=sizes,
                         output_tokens=[1] * len(sizes), max_batch_size=8,
                         max_batch_tokens=budget, kv_capacity_tokens=10 * budget)
    w, cap = prefill_cuts(p)
    assert w.shape == (cap.size, len(sizes))
    for r in range(1, len(sizes) + 1):
        for subset in itertools.combinations(range(len(sizes)), r):
            decodes = budget - sum(sizes[i] for i in subset)
            if decodes >= 0:  # fits, with any number of decodes in the room left
                assert np.all(w[:, list(subset)].sum(axis=1) <= cap)


def test_no_two_prompts_above_half_the_budget_share_a_slot():
    p = IterationProblem(arrival_slot=[0, 0, 0], input_tokens=[17, 20, 5],
                         output_tokens=[1, 1, 1], max_batch_size=4, max_batch_tokens=40,
                         kv_capacity_tokens=200)
    # 17 + 20 fits the budget of 40, so no cut may forbid it; with a budget of 32 it does
    w, cap = prefill_cuts(p)
    assert np.all(w[:, [0, 1]].sum(axis=1) <= cap)
    q = IterationProblem(arrival_slot=[0, 0], input_tokens=[17, 20], output_tokens=[1, 1],
                         max_batch_size=4, max_batch_tokens=32, kv_capacity_tokens=200)
    w, cap = prefill_cuts(q)
    assert np.any(w.sum(axis=1) > cap)
    # so the bound sees the second prefill wait one slot: 1 + 2 = 3
    assert lagrangian_bound(q).bound == 3 == solve_cpsat(q).objective


def test_allowed_slots_restrict_the_bound():
    p = random_problem(10, np.random.default_rng(4))
    lb = lagrangian_bound(p)
    shapes = [c.shape for c in run_costs(p, lb)]
    everything = [np.ones(s, dtype=bool) for s in shapes]
    assert lagrangian_bound(p, allowed=everything).bound == lb.bound
    # forbid every slot but the last of request 0's first run: its JCT must grow
    late = [m.copy() for m in everything]
    late[0][0, :-1] = False
    assert lagrangian_bound(p, allowed=late).value > lb.value
    none = [m.copy() for m in everything]
    none[3][0, :] = False
    empty = lagrangian_bound(p, allowed=none)
    assert empty.stopped == "empty" and empty.value == np.inf
    assert np.isinf(run_costs(p, lb, none)[3][0]).all()


def test_solve_lagrangian_reports_a_checked_schedule_and_a_certified_gap():
    p = random_problem(150, np.random.default_rng(2))
    r = solve_lagrangian(p, time_limit_s=20, evaluations=3_000)
    v = verify(p, r.schedule)
    assert v.ok and v.objective == r.objective
    assert r.status == "FEASIBLE" and p.trivial_bound() < r.bound < r.objective
    assert r.gap == pytest.approx((r.objective - r.bound) / r.objective)
    listed = min(verify(p, list_schedule(p, rule)).objective for rule in ("fcfs", "srpt"))
    assert r.stats["list_schedule_objective"] == listed >= r.stats["guided_objective"]
    # the local search improves the best list schedule (2,272 -> 2,228 here)
    assert r.stats["guided_objective"] > r.objective
    assert r.stats["solution_source"] == "local-search"
    plain = solve_lagrangian(p, time_limit_s=20, evaluations=0)
    assert plain.objective == r.stats["guided_objective"] and plain.bound == r.bound


def test_a_tiny_time_limit_still_gives_a_valid_bound():
    p = random_problem(200, np.random.default_rng(1))
    lb = lagrangian_bound(p, time_limit_s=1e-4)
    assert lb.stopped == "time limit" and p.trivial_bound() <= lb.bound <= lb.upper_bound


def test_bad_arguments_name_the_parameter():
    p = random_problem(5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="'upper_bound' parameter of lagrangian_bound"):
        lagrangian_bound(p, upper_bound=1)
    with pytest.raises(ValueError, match="'max_iterations' parameter of lagrangian_bound"):
        lagrangian_bound(p, max_iterations=0)
    with pytest.raises(ValueError, match="'time_limit_s' parameter of lagrangian_bound"):
        lagrangian_bound(p, time_limit_s=-1)
    with pytest.raises(ValueError, match="'allowed' parameter of lagrangian_bound"):
        lagrangian_bound(p, allowed=[np.ones(3, dtype=bool)])
    with pytest.raises(ValueError, match="'problem' parameter of solve_lagrangian"):
        solve_lagrangian("five requests")
    with pytest.raises(ValueError, match="'evaluations' parameter of solve_lagrangian"):
        solve_lagrangian(p, evaluations=-1)
    with pytest.raises(ValueError, match="'seed' parameter of solve_lagrangian"):
        solve_lagrangian(p, seed=-1)
    with pytest.raises(ValueError, match="'priority' parameter of list_schedule"):
        list_schedule(p, priority=np.zeros(2))
