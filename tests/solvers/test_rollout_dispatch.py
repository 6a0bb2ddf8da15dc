"""Rollout dispatch (StreamRL skew-aware dispatch, rollout digest §2.8): the CP-SAT optimum
passes verify and lies between the lower bound and LPT, equals brute force on tiny batches, is
never below the free optimum when groups are atomic, and keeps classical LPT within Graham's
4/3 - 1/(3N) when B = 1; verify reports each broken rule, and bad input names its field."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.solvers import (
    RolloutDispatchProblem,
    RolloutDispatchSchedule,
    dispatch_lower_bound,
    dispatch_makespan,
    instance_times,
    lpt_dispatch,
    random_rollout_dispatch_problem,
    solve_rollout_dispatch_cpsat,
    verify_rollout_dispatch,
)

pytestmark = pytest.mark.solver

#: Relative slack for comparing seconds: the solver is optimal on an integer grid whose rounding
#: costs at most (B + 1) * 2**-23 relative (module docstring, stage 2; B <= 32 here).
TOL = 1e-5


def _problem(**kw: object) -> RolloutDispatchProblem:
    base: dict[str, object] = dict(output_tokens=[5, 3, 2, 2], group_id=[0, 0, 1, 1],
                                   n_instances=2, max_batch_size=2, ptl_base_s=1.0,
                                   ptl_per_request_s=0.5)
    base.update(kw)
    return RolloutDispatchProblem(**base)  # type: ignore[arg-type]


def _brute_force(p: RolloutDispatchProblem) -> float:
    """The optimal makespan by enumerating every dispatch (group-consistent ones when atomic)."""
    if p.group_atomic:
        assert p.group_id is not None
        _, item = np.unique(p.group_id, return_inverse=True)
        k = int(item.max()) + 1
    else:
        item, k = np.arange(p.n), p.n
    return min(dispatch_makespan(p, np.asarray(a)[item])
               for a in itertools.product(range(p.n_instances), repeat=k))


def _lpt_b1(lengths: np.ndarray, n_instances: int) -> np.ndarray:
    """Textbook LPT: longest job first, onto the least-loaded machine."""
    load = [0] * n_instances
    out = np.zeros(lengths.size, np.int64)
    for s in np.argsort(-lengths, kind="stable").tolist():
        m = min(range(n_instances), key=load.__getitem__)
        out[s] = m
        load[m] += int(lengths[s])
    return out


# ---------------------------------------------------------------------------- the model


def test_instance_times_follow_the_fluid_surrogate() -> None:
    p = _problem(group_id=None)
    # instance 0: L = 5, 3 -> steps max(5, 8/2) = 5, 1*5 + 0.5*8; instance 1: 2, 2 -> max(2, 2)
    assert instance_times(p, [0, 0, 1, 1]).tolist() == [9.0, 4.0]
    assert dispatch_makespan(p, RolloutDispatchSchedule(instance=[0, 1, 1, 1])) == 7.5
    with pytest.raises(ValueError, match="instance"):
        instance_times(p, [0, 0, 2, 1])
    with pytest.raises(ValueError, match="instance"):
        instance_times(p, [0, 0, 1])


def test_one_sample_at_a_time_is_p_cmax() -> None:
    p = random_rollout_dispatch_problem(12, 3, seed=2, max_batch_size=1)
    inst = np.arange(12) % 3
    load = np.bincount(inst, weights=p.output_tokens, minlength=3)
    expected = (p.ptl_base_s + p.ptl_per_request_s) * load
    assert np.allclose(instance_times(p, inst), expected, rtol=1e-12)


def test_problem_arrays_are_read_only_copies() -> None:
    tokens = np.array([5, 3, 2, 2])
    p = _problem(output_tokens=tokens)
    tokens[0] = 100
    assert p.output_tokens.tolist() == [5, 3, 2, 2] and p.output_tokens.dtype == np.int64
    assert not p.output_tokens.flags.writeable and not p.group_id.flags.writeable


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"output_tokens": [5, 0, 2, 2]}, "output_tokens"),
        ({"output_tokens": [5, 3.5, 2, 2]}, "output_tokens"),
        ({"output_tokens": [[5, 3], [2, 2]]}, "output_tokens"),
        ({"output_tokens": []}, "output_tokens"),
        ({"n_instances": 0}, "n_instances"),
        ({"max_batch_size": 2.5}, "max_batch_size"),
        ({"ptl_base_s": float("nan")}, "ptl_base_s"),
        ({"ptl_per_request_s": -1e-4}, "ptl_per_request_s"),
        ({"ptl_base_s": 0.0, "ptl_per_request_s": 0.0}, "ptl_base_s"),
        ({"group_id": [0, 0, 1]}, "group_id"),
        ({"group_id": [0, -1, 1, 1]}, "group_id"),
        ({"group_id": None, "group_atomic": True}, "group_atomic"),
        ({"group_atomic": "yes"}, "group_atomic"),
    ],
)
def test_bad_problems_name_the_field(kw: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _problem(**kw)


def test_bad_solver_arguments_name_the_parameter() -> None:
    p = _problem()
    for kw, name in [({"time_limit_s": 0}, "time_limit_s"), ({"num_workers": 0}, "num_workers"),
                     ({"hint": [0, 1, 0, 1]}, "hint"),
                     ({"hint": RolloutDispatchSchedule(instance=[0, 0, 5, 1])}, "hint")]:
        with pytest.raises(ValueError, match=name):
            solve_rollout_dispatch_cpsat(p, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="groups"):
        random_rollout_dispatch_problem(10, 2, seed=0, groups=3)


# ---------------------------------------------------------------------------- verify


def test_verify_reports_missing_double_and_out_of_range_assignments() -> None:
    p = _problem()
    check = verify_rollout_dispatch(p, [[0, 1, 1], [2, 7]])
    assert not check.valid
    assert check.violations == ["instance 1 lists sample 7, not in [0, 4)",
                                "sample 3 is on no instance",
                                "sample 1 is listed 2 times, on instances [0, 0]"]
    # the makespan counts what was listed: sample 1 twice on instance 0
    assert check.instance_s.tolist() == [1.0 * 11 / 2 + 0.5 * 11, 1.0 * 2 + 0.5 * 2]
    per_sample = verify_rollout_dispatch(p, RolloutDispatchSchedule(instance=[0, -1, 2, 1]))
    assert per_sample.violations == [
        "sample 1 is on no instance (instance -1 is not in [0, 2))",
        "sample 2 is on no instance (instance 2 is not in [0, 2))"]
    with pytest.raises(ValueError, match="breaks"):
        per_sample.raise_if_invalid()


def test_verify_reports_split_groups_only_when_atomic() -> None:
    split = RolloutDispatchSchedule(instance=[0, 1, 1, 1])
    assert verify_rollout_dispatch(_problem(), split).valid
    check = verify_rollout_dispatch(_problem(group_atomic=True), split)
    assert check.violations == ["group 0 is split across instances [0, 1]"]
    assert check.makespan_s == dispatch_makespan(_problem(), split)
    whole = verify_rollout_dispatch(_problem(group_atomic=True), [[0, 1], [2, 3]])
    assert whole.valid and whole.raise_if_invalid() is whole


@pytest.mark.parametrize("bad", [RolloutDispatchSchedule(instance=[0, 1, 0]), [[0, 1, 2, 3]],
                                 {"0": [0, 1]}, "0101", np.array([0, 1, 0, 1])])
def test_verify_raises_on_a_schedule_of_the_wrong_length_or_type(bad: object) -> None:
    with pytest.raises(ValueError, match="schedule"):
        verify_rollout_dispatch(_problem(), bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- the optimum


@pytest.mark.parametrize(
    ("n", "N", "B", "groups", "seed"),
    [(40, 4, 1, None, 0), (40, 4, 2, None, 1), (40, 3, 4, None, 2), (30, 4, 32, None, 3),
     (40, 4, 4, 10, 4), (36, 3, 2, 12, 5), (24, 2, 1, 8, 6)],
)
def test_optimum_is_valid_between_bound_and_lpt(n: int, N: int, B: int, groups: int | None,
                                                seed: int) -> None:
    p = random_rollout_dispatch_problem(n, N, seed=seed, max_batch_size=B, groups=groups,
                                        group_atomic=groups is not None)
    r = solve_rollout_dispatch_cpsat(p, time_limit_s=20)
    assert r.status == "OPTIMAL" and r.gap == 0.0
    check = verify_rollout_dispatch(p, r.schedule)
    assert check.valid and check.makespan_s == r.objective
    lpt = dispatch_makespan(p, lpt_dispatch(p))
    assert lpt == r.stats["hint_makespan_s"]
    assert dispatch_lower_bound(p) <= r.objective * (1 + TOL)
    assert r.bound <= r.objective <= lpt
    assert r.objective <= r.bound * (1 + TOL)  # optimal at the model's resolution
    assert {"n_variables", "n_constraints", "branches"} <= set(r.stats)


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 60), min_size=1, max_size=7),
    n_instances=st.integers(1, 3),
    batch=st.integers(1, 4),
    ptl=st.sampled_from([(1.0, 0.0), (0.0, 1.0), (0.02, 0.001), (0.5, 0.25)]),
    group_seed=st.integers(0, 2**16),
)
def test_optimum_equals_brute_force(lengths: list[int], n_instances: int, batch: int,
                                    ptl: tuple[float, float], group_seed: int) -> None:
    groups = np.random.default_rng(group_seed).integers(0, 3, len(lengths))
    free = RolloutDispatchProblem(output_tokens=lengths, group_id=groups,
                                  n_instances=n_instances, max_batch_size=batch,
                                  ptl_base_s=ptl[0], ptl_per_request_s=ptl[1])
    atomic = RolloutDispatchProblem(output_tokens=lengths, group_id=groups,
                                    n_instances=n_instances, max_batch_size=batch,
                                    ptl_base_s=ptl[0], ptl_per_request_s=ptl[1],
                                    group_atomic=True)
    optima = []
    for p in (free, atomic):
        r = solve_rollout_dispatch_cpsat(p, time_limit_s=10, num_workers=1)
        best = _brute_force(p)
        assert r.status == "OPTIMAL" and verify_rollout_dispatch(p, r.schedule).valid
        assert math.isclose(r.objective, best, rel_tol=TOL)
        assert r.bound <= best * (1 + 1e-12) and dispatch_lower_bound(p) <= best * (1 + 1e-12)
        assert r.stats["split_bound_s"] <= best
        optima.append(best)
    assert optima[1] >= optima[0]  # keeping groups whole never helps


@pytest.mark.parametrize("seed", range(3))
def test_group_atomic_optimum_is_never_below_the_free_one(seed: int) -> None:
    free = random_rollout_dispatch_problem(32, 3, seed=seed, groups=8, max_batch_size=2)
    atomic = random_rollout_dispatch_problem(32, 3, seed=seed, groups=8, max_batch_size=2,
                                             group_atomic=True)
    r_free = solve_rollout_dispatch_cpsat(free, time_limit_s=10)
    r_atomic = solve_rollout_dispatch_cpsat(atomic, time_limit_s=10)
    assert r_free.status == r_atomic.status == "OPTIMAL"
    assert r_atomic.objective >= r_free.objective * (1 - TOL)
    # the atomic optimum is a valid free dispatch too
    assert verify_rollout_dispatch(free, r_atomic.schedule).valid


@pytest.mark.parametrize(("n", "N", "seed"), [(9, 2, 0), (13, 3, 1), (20, 4, 2), (30, 4, 3)])
def test_lpt_is_within_grahams_bound_when_batches_hold_one(n: int, N: int, seed: int) -> None:
    p = random_rollout_dispatch_problem(n, N, seed=seed, max_batch_size=1, max_tokens=512)
    r = solve_rollout_dispatch_cpsat(p, time_limit_s=10)
    assert r.status == "OPTIMAL"
    mine = dispatch_makespan(p, _lpt_b1(p.output_tokens, N))
    assert math.isclose(mine, dispatch_makespan(p, lpt_dispatch(p)), rel_tol=1e-12)
    assert r.objective <= mine <= (4 / 3 - 1 / (3 * N)) * r.bound * (1 + TOL)


def test_lpt_meets_grahams_worst_case_on_its_classic_instance() -> None:
    # 2N+1 jobs: two each of 2N-1, ..., N+1 and three of N; LPT = 4N - 1, OPT = 3N
    N = 3
    lengths = [5, 5, 4, 4, 3, 3, 3]
    p = RolloutDispatchProblem(output_tokens=lengths, n_instances=N, max_batch_size=1,
                               ptl_base_s=1.0, ptl_per_request_s=0.0)
    r = solve_rollout_dispatch_cpsat(p, time_limit_s=10)
    lpt = dispatch_makespan(p, _lpt_b1(np.array(lengths), N))
    assert (lpt, round(r.objective, 9)) == (11.0, 9.0)
    assert r.objective <= lpt  # the solver did not stop at its LPT hint


def test_a_time_limited_solve_reports_a_valid_bound_and_gap() -> None:
    p = random_rollout_dispatch_problem(300, 8, seed=1, max_batch_size=4)
    r = solve_rollout_dispatch_cpsat(p, time_limit_s=1.0, num_workers=2)
    assert r.status in ("OPTIMAL", "FEASIBLE") and r.wall_s < 5
    assert verify_rollout_dispatch(p, r.schedule).valid
    assert dispatch_lower_bound(p) * (1 - TOL) <= r.bound <= r.objective
    assert r.objective <= r.stats["hint_makespan_s"]
    assert (r.status == "OPTIMAL") == (r.gap == 0.0)


def test_a_given_hint_or_none_reaches_the_same_optimum() -> None:
    p = random_rollout_dispatch_problem(20, 3, seed=7, max_batch_size=2)
    start = RolloutDispatchSchedule(instance=np.arange(20) % 3)
    results = [solve_rollout_dispatch_cpsat(p, time_limit_s=10, hint=h)
               for h in (None, False, start)]
    assert all(r.status == "OPTIMAL" for r in results)
    assert max(r.objective for r in results) <= min(r.objective for r in results) * (1 + TOL)


def test_a_bound_that_meets_the_hint_skips_the_search() -> None:
    # B = 32, about 8 samples per instance: the longest sample's instance decides the makespan
    p = random_rollout_dispatch_problem(30, 4, seed=3)
    quick = solve_rollout_dispatch_cpsat(p, time_limit_s=10)
    searched = solve_rollout_dispatch_cpsat(p, time_limit_s=10, hint=False)
    assert quick.stats["cpsat_status"] == "not run" and quick.status == "OPTIMAL"
    assert searched.stats["cpsat_status"] == "OPTIMAL"
    assert math.isclose(quick.objective, searched.objective, rel_tol=TOL)


def test_random_problems_are_heavy_tailed_and_grouped_on_request() -> None:
    p = random_rollout_dispatch_problem(2000, 8, seed=0)
    x = np.sort(p.output_tokens)
    assert p.group_id is None and x[-1] <= 8192 and x[0] >= 64
    assert x[-200:].sum() / x.sum() > 0.35  # the longest 10% hold a large share of tokens
    g = random_rollout_dispatch_problem(12, 2, seed=0, groups=3)
    assert g.group_id is not None and np.bincount(g.group_id).tolist() == [4, 4, 4]
    again = random_rollout_dispatch_problem(12, 2, seed=0, groups=3)
    assert np.array_equal(again.output_tokens, g.output_tokens)
