"""The expansion DAG of a graph search scheduled on T workers (AverSearch, issue 18): bad input
names its field; verify reports each broken rule; the list schedule is valid, fast and within
Graham's bound; the CP-SAT optimum passes verify, lies between its bound and the list schedule,
equals an exhaustive search on small DAGs (its bound never above it, even on a coarse tick),
is the sum of the durations on one worker and the critical path on as many workers as nodes;
a real beam-search trace becomes a DAG the solver proves optimal."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import schedlab.solvers
from schedlab.solvers import ScheduleInvalid
from schedlab.solvers.expansion_dag import (
    DagSchedule,
    ExpansionDag,
    list_schedule,
    solve_dag_schedule_cpsat,
    verify_dag_schedule,
    work_span_bound,
)

pytestmark = pytest.mark.solver

#: Relative slack for comparing sums of float durations computed in different orders.
TOL = 1e-9


@st.composite
def dags(draw: st.DrawFn, *, min_n: int = 1, max_n: int, workers: tuple[int, int] = (1, 4)
         ) -> ExpansionDag:
    """Random trees: node i's parent any earlier node, or (bushy) one in the first half;
    durations all whole (ties, twin leaves) or all arbitrary floats."""
    n = draw(st.integers(min_n, max_n))
    bushy = draw(st.booleans())
    parents = [-1] + [draw(st.integers(0, (i - 1) // 2 if bushy else i - 1))
                      for i in range(1, n)]
    whole = draw(st.booleans())
    duration = st.integers(1, 3).map(float) if whole else st.floats(0.5, 4.0)
    durations = draw(st.lists(duration, min_size=n, max_size=n))
    return ExpansionDag(durations_s=durations, parents=parents,
                        workers=draw(st.integers(*workers)))


def _critical_path(dag: ExpansionDag) -> float:
    end = dag.durations_s.tolist()
    for i in range(1, dag.n):
        end[i] += end[int(dag.parents[i])]
    return max(end)


def _brute_force(dag: ExpansionDag) -> float:
    """The least makespan over every topological order, each node placed on the worker where it
    can start earliest. Sorting an optimal schedule by start gives such an order, and placing its
    nodes that way starts each no later than the optimum does (the nodes running at that moment
    were running then in the optimum too, so a worker is free), so the minimum is the optimum."""
    d, parents, n, T = dag.durations_s.tolist(), dag.parents.tolist(), dag.n, dag.workers
    best = math.inf
    end = [0.0] * n
    done = [False] * n

    def place(count: int, free: list[float]) -> None:
        nonlocal best
        if count == n:
            best = min(best, max(end))
            return
        for i in range(n):
            if done[i] or (i > 0 and not done[parents[i]]):
                continue
            release = end[parents[i]] if i > 0 else 0.0
            w = min(range(T), key=lambda k: max(release, free[k]))
            start = max(release, free[w])
            if start + d[i] >= best:
                continue
            done[i], end[i] = True, start + d[i]
            place(count + 1, [start + d[i] if k == w else f for k, f in enumerate(free)])
            done[i] = False

    place(0, [0.0] * T)
    return best


def _example() -> ExpansionDag:
    """The module's example: the list schedule makes 7.0, the optimum 6.5."""
    return ExpansionDag.from_trace([-1, 0, 1, 1, 1, 0], [0, 3, 3, 2, 0, 4], workers=2,
                                   expansion_s=1.0, distance_s=0.5)


# ---------------------------------------------------------------------------- the records


@pytest.mark.parametrize(("kw", "match"), [
    ({"durations_s": [1.0, -2.0]}, r"'durations_s'.*> 0; element 1 is -2\.0"),
    ({"durations_s": [1.0, 0.0]}, r"'durations_s'.*> 0; element 1 is 0\.0"),
    ({"durations_s": [1.0, float("nan")]}, r"'durations_s'.*finite; element 1 is nan"),
    ({"durations_s": [1.0, float("inf")]}, r"'durations_s'.*finite; element 1 is inf"),
    ({"durations_s": []}, r"'durations_s'.*at least one node"),
    ({"parents": [0, 0]}, r"'parents'.*-1 at index 0.*Got 0 at index 0"),
    ({"parents": [-1, 1]}, r"'parents'.*0 <= parents\[i\] < i.*Got 1 at index 1"),
    ({"parents": [-1, -1]}, r"'parents'.*Got -1 at index 1"),
    ({"parents": [-1, 0, 0]}, r"'parents'.*length 2"),
    ({"parents": [-1, 0.5]}, r"'parents'.*integers"),
    ({"workers": 0}, r"'workers'.*\[1, inf\). Got 0"),
])
def test_bad_dag_names_the_field(kw: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"durations_s": [1.0, 2.0], "parents": [-1, 0], "workers": 2}
    with pytest.raises(ValueError, match=match):
        ExpansionDag(**{**base, **kw})  # type: ignore[arg-type]


def test_parents_after_their_index_are_named() -> None:
    with pytest.raises(ValueError, match=r"'parents'.*Got 3 at index 3"):
        ExpansionDag(durations_s=[1.0] * 5, parents=[-1, 0, 1, 3, 2], workers=1)


@pytest.mark.parametrize(("kw", "match"), [
    ({"found": [1, -1]}, r"'found'.*>= 0"),
    ({"found": [1, 1.5]}, r"'found'.*integers"),
    ({"expansion_s": 0.0}, r"'expansion_s'.*\(0, inf\)"),
    ({"distance_s": -1e-9}, r"'distance_s'.*\[0, inf\)"),
    ({"found": [1, 2, 3]}, r"'found'.*from_trace must have length 2"),
    ({"workers": 0}, r"'workers'"),
])
def test_bad_trace_names_the_field(kw: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"parents": [-1, 0], "found": [3, 0], "workers": 2,
                               "expansion_s": 1e-6, "distance_s": 2e-7}
    with pytest.raises(ValueError, match=match):
        ExpansionDag.from_trace(**{**base, **kw})  # type: ignore[arg-type]


def test_the_package_exports_the_module() -> None:
    from schedlab.solvers import expansion_dag

    for name in expansion_dag.__all__:
        exported = "dag_list_schedule" if name == "list_schedule" else name
        assert getattr(schedlab.solvers, exported) is getattr(expansion_dag, name)
        assert exported in schedlab.solvers.__all__
    assert schedlab.solvers.list_schedule is not list_schedule  # the iteration heuristic's


def test_a_trace_prices_each_expansion_and_its_distances() -> None:
    dag = ExpansionDag.from_trace(np.array([-1, 0, 0]), np.array([4, 2, 0]), workers=3,
                                  expansion_s=1.0, distance_s=0.25)
    assert dag.durations_s.tolist() == [2.0, 1.5, 1.0] and dag.parents.tolist() == [-1, 0, 0]
    assert dag.n == 3 and not dag.durations_s.flags.writeable and not dag.parents.flags.writeable
    with pytest.raises(ValueError, match=r"'end_s'.*length 2"):
        DagSchedule(start_s=[0.0, 1.0], end_s=[1.0], worker=[0, 0])
    with pytest.raises(ValueError, match=r"'worker'.*integers"):
        DagSchedule(start_s=[0.0], end_s=[1.0], worker=[0.5])


# ---------------------------------------------------------------------------- verify


def test_verify_reports_each_broken_rule() -> None:
    dag = ExpansionDag(durations_s=[1.0, 1.0, 2.0], parents=[-1, 0, 0], workers=2)
    good = DagSchedule(start_s=[0.0, 1.0, 1.0], end_s=[1.0, 2.0, 3.0], worker=[0, 0, 1])
    check = verify_dag_schedule(dag, good)
    assert check.valid and check.violations == [] and check.makespan_s == 3.0
    assert check.raise_if_invalid() is check

    def broken(start: list[float], worker: list[int], end: list[float] | None = None) -> list[str]:
        ends = end if end is not None else [s + d for s, d in zip(start, [1.0, 1.0, 2.0],
                                                                   strict=True)]
        return verify_dag_schedule(dag, DagSchedule(start_s=start, end_s=ends,
                                                    worker=worker)).violations

    assert broken([0.0, 0.5, 1.0], [0, 1, 0]) == [
        "node 1 starts at 0.5 s, before its parent 0 ends at 1 s"]
    assert broken([0.0, 1.0, 1.5], [0, 1, 1]) == [
        "nodes 1 and 2 overlap on worker 1: 2 starts at 1.5 s, before 1 ends at 2 s"]
    assert broken([0.0, 1.0, 1.0], [0, 2, -1]) == ["node 1 is on worker 2, not in [0, 2)",
                                                   "node 2 is on worker -1, not in [0, 2)"]
    assert broken([-1.0, 1.0, 1.0], [0, 0, 1]) == ["node 0 starts at -1 s, before 0"]
    assert broken([0.0, 1.0, 1.0], [0, 0, 1], end=[1.0, 2.0, 2.5]) == [
        "node 2 ends at 2.5 s, not its start 1 s plus its duration 2 s"]
    short = verify_dag_schedule(dag, DagSchedule(start_s=[0.0], end_s=[1.0], worker=[0]))
    assert short.violations == ["the schedule has 1 nodes; the DAG has 3"]
    assert math.isnan(short.makespan_s)
    with pytest.raises(ScheduleInvalid, match="before its parent"):
        verify_dag_schedule(dag, DagSchedule(start_s=[0.0, 0.5, 1.0], end_s=[1.0, 1.5, 3.0],
                                             worker=[0, 1, 0])).raise_if_invalid()


def test_verify_finds_nodes_inside_a_long_one() -> None:
    # Nodes 2 and 3 both run inside node 1's run on worker 1 (each overlap implies one between
    # neighbours in start order, which is what is reported).
    dag = ExpansionDag(durations_s=[1.0, 5.0, 1.0, 1.0], parents=[-1, 0, 0, 0], workers=2)
    s = DagSchedule(start_s=[0.0, 1.0, 2.0, 4.0], end_s=[1.0, 6.0, 3.0, 5.0], worker=[0, 1, 1, 1])
    assert verify_dag_schedule(dag, s).violations == [
        "nodes 1 and 2 overlap on worker 1: 2 starts at 2 s, before 1 ends at 6 s"]
    moved = DagSchedule(start_s=[0.0, 1.0, 2.0, 4.0], end_s=[1.0, 6.0, 3.0, 5.0],
                        worker=[0, 1, 0, 0])
    assert verify_dag_schedule(dag, moved).valid


def test_verify_within_a_relative_tolerance() -> None:
    dag = ExpansionDag(durations_s=[1e-6, 1e-6], parents=[-1, 0], workers=1)
    late = DagSchedule(start_s=[0.0, 1e-6 - 1e-17], end_s=[1e-6, 2e-6 - 1e-17], worker=[0, 0])
    assert verify_dag_schedule(dag, late).valid
    early = DagSchedule(start_s=[0.0, 0.99e-6], end_s=[1e-6, 1.99e-6], worker=[0, 0])
    assert not verify_dag_schedule(dag, early).valid


# ---------------------------------------------------------------------------- bounds and list


def test_work_span_bound_and_list_schedule_by_hand() -> None:
    dag = _example()
    assert work_span_bound(dag) == 6.0  # 12 s of work on 2 workers; the path 0-1-2 is 6 s
    s = list_schedule(dag)
    assert s.makespan_s == 7.0 and verify_dag_schedule(dag, s).valid
    # Highest bottom level first: node 3 (3 before its leaf 4) beats the lower-index leaves.
    chain = ExpansionDag(durations_s=[1.0, 1.0, 1.0, 1.0, 3.0], parents=[-1, 0, 0, 0, 3],
                         workers=2)
    s = list_schedule(chain)
    assert s.start_s.tolist() == [0.0, 1.0, 2.0, 1.0, 2.0]
    assert s.worker.tolist() == [0, 1, 1, 0, 0] and s.makespan_s == 5.0
    assert work_span_bound(ExpansionDag(durations_s=[1.0, 5.0, 1.0], parents=[-1, 0, 1],
                                        workers=3)) == 7.0


@settings(max_examples=150, deadline=None)
@given(dag=dags(max_n=12))
def test_list_schedule_is_valid_and_within_grahams_bound(dag: ExpansionDag) -> None:
    s = list_schedule(dag)
    check = verify_dag_schedule(dag, s)
    assert check.valid, check.violations
    assert check.makespan_s == s.makespan_s
    total, T, cp = float(dag.durations_s.sum()), dag.workers, _critical_path(dag)
    assert work_span_bound(dag) == max(total / T, cp)
    assert work_span_bound(dag) <= s.makespan_s * (1 + TOL)
    assert s.makespan_s <= (total / T + (1 - 1 / T) * cp) * (1 + TOL)
    if T == 1:
        assert s.makespan_s == pytest.approx(total, rel=TOL)
    if T >= dag.n:
        assert s.makespan_s == pytest.approx(cp, rel=TOL)


def test_list_schedule_of_ten_thousand_nodes_is_fast() -> None:
    rng = np.random.default_rng(0)
    n = 10_000
    parents = np.r_[-1, [int(rng.integers(max(0, i - 40), i)) for i in range(1, n)]]
    dag = ExpansionDag.from_trace(parents, rng.integers(0, 17, n), workers=8,
                                  expansion_s=1e-6, distance_s=2e-7)
    t0 = time.perf_counter()
    s = list_schedule(dag)
    assert time.perf_counter() - t0 < 1.0
    assert verify_dag_schedule(dag, s).valid


# ---------------------------------------------------------------------------- CP-SAT


def test_the_solver_beats_the_list_schedule_where_it_can() -> None:
    dag = _example()
    r = solve_dag_schedule_cpsat(dag, time_limit_s=10, num_workers=1)
    assert r.status == "OPTIMAL" and r.objective == 6.5 == _brute_force(dag)
    assert r.stats["resolution_s"] == 0.5 and r.stats["rounding"] == 0.0
    assert r.stats["hint_makespan_s"] == 7.0 and r.stats["makespan_ticks"] == 13
    assert verify_dag_schedule(dag, r.schedule).valid and r.schedule.makespan_s == 6.5
    assert work_span_bound(dag) <= r.bound <= r.objective
    again = solve_dag_schedule_cpsat(dag, time_limit_s=10, num_workers=1, hint=r.schedule)
    assert again.objective == 6.5
    cold = solve_dag_schedule_cpsat(dag, time_limit_s=10, num_workers=1, hint=False)
    assert cold.status == "OPTIMAL" and cold.objective == 6.5


def test_twin_leaves_may_run_together() -> None:
    # Three equal leaves on two workers: the list schedule (6 s) is optimal, above the work-span
    # bound (4 s), so the solver must prove it with two twins side by side.
    dag = ExpansionDag(durations_s=[2.0] * 4, parents=[-1, 0, 0, 0], workers=2)
    r = solve_dag_schedule_cpsat(dag, time_limit_s=10, num_workers=1)
    assert r.stats["cpsat_status"] == "OPTIMAL"
    assert r.status == "OPTIMAL" and r.objective == r.bound == 6.0


def test_a_coarse_tick_misleads_the_solver_but_not_its_bound() -> None:
    # Ticks of 0.5 s round 1.8, 2.2, 2.3, 2.8 and 2.7 s up by as much as 14%: the tick optimum
    # (8.5 s in ticks) re-times to 7.8 s against a true optimum of 7.7 s.
    dag = ExpansionDag(durations_s=[1.8, 2.2, 1.0, 2.3, 2.8, 2.7], parents=[-1, 0, 0, 0, 1, 1],
                       workers=2)
    best = _brute_force(dag)
    assert best == pytest.approx(7.7)
    r = solve_dag_schedule_cpsat(dag, time_limit_s=10, num_workers=1, resolution_s=0.5)
    eps = r.stats["rounding"]
    assert r.status == "OPTIMAL" and eps == pytest.approx(0.3 / 2.2)
    assert r.stats["bound_ticks"] * 0.5 > best  # the tick bound alone would be wrong
    assert best < r.objective <= best * (1 + eps) and r.bound <= best
    exact = solve_dag_schedule_cpsat(dag, time_limit_s=10, num_workers=1)
    assert exact.stats["resolution_s"] == pytest.approx(0.1) and exact.objective == best


@settings(max_examples=40, deadline=None)
@given(dag=dags(min_n=4, max_n=8, workers=(2, 3)), coarse=st.booleans())
def test_optimum_equals_exhaustive_search(dag: ExpansionDag, coarse: bool) -> None:
    # A coarse tick (a third of the shortest node) rounds durations up by up to a third: the
    # schedule must still be valid in seconds and the bound still below the true optimum.
    # Durations with no common tick get 1000 ticks for the shortest, where CP-SAT may need
    # longer than a test allows for a proof (the module docstring, stage 1): those are held to
    # soundness only.
    assume(list_schedule(dag).makespan_s > work_span_bound(dag) * (1 + TOL))  # CP-SAT runs
    res = float(dag.durations_s.min()) / 3 if coarse else None
    exact = bool((dag.durations_s == np.round(dag.durations_s)).all())
    r = solve_dag_schedule_cpsat(dag, time_limit_s=5 if coarse or exact else 0.5,
                                 num_workers=1, resolution_s=res)
    check = verify_dag_schedule(dag, r.schedule)
    assert check.valid, check.violations
    assert check.makespan_s == r.objective
    best = _brute_force(dag)
    eps = r.stats["rounding"]
    assert best * (1 - TOL) <= r.objective <= list_schedule(dag).makespan_s * (1 + TOL)
    assert work_span_bound(dag) <= r.bound * (1 + TOL) and r.bound <= best * (1 + TOL)
    if coarse or exact:
        assert r.status == "OPTIMAL", r.stats
    if r.status == "OPTIMAL":
        assert r.objective <= best * (1 + eps) * (1 + TOL)
    if exact and not coarse:
        assert eps < 1e-12 and r.objective == pytest.approx(best, rel=TOL)


@settings(max_examples=30, deadline=None)
@given(dag=dags(max_n=12))
def test_optimum_lies_between_its_bound_and_the_list_schedule(dag: ExpansionDag) -> None:
    r = solve_dag_schedule_cpsat(dag, time_limit_s=1, num_workers=1)
    check = verify_dag_schedule(dag, r.schedule)
    assert check.valid, check.violations
    assert r.status in ("OPTIMAL", "FEASIBLE")
    assert work_span_bound(dag) <= r.bound * (1 + TOL)
    assert r.bound <= r.objective <= list_schedule(dag).makespan_s * (1 + TOL)
    total, cp = float(dag.durations_s.sum()), _critical_path(dag)
    if dag.workers == 1:
        assert r.status == "OPTIMAL" and r.objective == pytest.approx(total, rel=TOL)
    if dag.workers >= dag.n:
        assert r.status == "OPTIMAL" and r.objective == pytest.approx(cp, rel=TOL)


def test_bad_solver_arguments_name_the_field() -> None:
    dag = _example()
    with pytest.raises(ValueError, match=r"'resolution_s'.*\(0, inf\)"):
        solve_dag_schedule_cpsat(dag, resolution_s=0.0)
    with pytest.raises(ValueError, match=r"'resolution_s'.*ticks"):
        solve_dag_schedule_cpsat(dag, resolution_s=1e-30)
    with pytest.raises(ValueError, match=r"'hint'.*valid schedule"):
        solve_dag_schedule_cpsat(dag, hint=DagSchedule(start_s=[0.0] * 6, end_s=[1.0] * 6,
                                                       worker=[0] * 6))
    with pytest.raises(ValueError, match=r"'problem'.*ExpansionDag"):
        solve_dag_schedule_cpsat(list_schedule(dag))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- a real trace


@pytest.fixture(scope="module")
def trace() -> tuple[np.ndarray, np.ndarray]:
    from schedlab.datasets import build_graph, digits_vectors
    from schedlab.policies.anns import beam_search

    v = digits_vectors()
    g = build_graph(v.base, degree=16)
    t = beam_search(g, v.base, v.queries[0], beam_width=16, k=5)
    return t.parents, t.found


@pytest.mark.parametrize("workers", [2, 4, 64])
def test_a_beam_search_trace_is_scheduled_optimally(trace: tuple[np.ndarray, np.ndarray],
                                                    workers: int) -> None:
    parents, found = trace
    dag = ExpansionDag.from_trace(parents, found, workers=workers, expansion_s=1e-6,
                                  distance_s=2e-7)
    assert dag.n == parents.shape[0] and dag.n > 10
    r = solve_dag_schedule_cpsat(dag, time_limit_s=20)
    assert r.status == "OPTIMAL"
    assert r.stats["resolution_s"] == pytest.approx(2e-7)  # (5 + found) ticks each, exactly
    assert verify_dag_schedule(dag, r.schedule).valid
    assert work_span_bound(dag) <= r.bound <= r.objective <= list_schedule(dag).makespan_s
    assert r.objective == pytest.approx(r.stats["makespan_ticks"] * 2e-7, rel=TOL)
    if workers >= dag.n:
        assert r.objective == pytest.approx(_critical_path(dag), rel=TOL)
