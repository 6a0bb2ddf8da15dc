"""Graph searches priced on a processor (issue 18): one thread of every design costs the
sequential search's time, the vectorised pricing equals one setting at a time, the sequential
search's task DAG bounds it exactly at one thread and is scheduled within CP-SAT's bounds, and
the table keeps its units (throughput = concurrent queries / loaded latency, loading never
speeds a query up)."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.costmodel.cpu import search_costs
from schedlab.datasets import build_graph, digits_vectors
from schedlab.policies.anns import beam_search, fork_join_search
from schedlab.policies.aversearch import async_search
from schedlab.sim.anns import (
    anns_table,
    search_latencies_s,
    search_latency_s,
    sequential_bound_s,
    sequential_dag,
)
from schedlab.solvers.expansion_dag import (
    list_schedule,
    solve_dag_schedule_cpsat,
    verify_dag_schedule,
    work_span_bound,
)

V = digits_vectors(seed=0)
G = build_graph(V.base, degree=16)


@pytest.fixture(scope="module")
def table():
    return anns_table(G, V, threads=(1, 4, 16), n_queries=6, beam_width=24,
                      processor="xeon-8380")


def test_one_thread_of_every_design_costs_the_sequential_time():
    c = search_costs("xeon-8380", dim=64, degree=16)
    for q in V.queries[:10]:
        s = beam_search(G, V.base, q, beam_width=32)
        seq = search_latency_s(s, c, beam_width=32)
        fj = fork_join_search(G, V.base, q, threads=1, beam_width=32)
        a = async_search(G, V.base, q, threads=1, costs=c, beam_width=32)
        assert search_latency_s(fj, c, beam_width=32) == pytest.approx(seq)
        assert a.latency_s == pytest.approx(seq) and search_latency_s(a, c, beam_width=32) == \
            a.latency_s
        assert sequential_bound_s(s, c, 1) == pytest.approx(seq)


def test_pricing_many_settings_at_once_equals_one_at_a_time():
    tr = fork_join_search(G, V.base, V.queries[2], threads=8, beam_width=32)
    costs = [search_costs("epyc-7763", dim=64, degree=16, threads=8, active_threads=a)
             for a in (8, 16, 32, 64)]
    many = search_latencies_s(tr, costs, beam_width=32)
    one = [search_latency_s(tr, c, beam_width=32) for c in costs]
    assert many == pytest.approx(one) and (np.diff(many) >= 0).all()
    with pytest.raises(ValueError, match="'costs'"):
        search_latencies_s(tr, [costs[0], "slow"], beam_width=32)


def test_a_fork_join_round_is_its_slowest_worker_plus_one_barrier_and_merge():
    import dataclasses

    tr = fork_join_search(G, V.base, V.queries[3], threads=4, beam_width=32)
    c = search_costs("xeon-8380", dim=64, degree=16, threads=4)
    base = search_latency_s(tr, c, beam_width=32)
    more = dataclasses.replace(c, barrier_s=c.barrier_s + 1e-6)
    assert search_latency_s(tr, more, beam_width=32) == pytest.approx(base + tr.rounds * 1e-6)
    slow = dataclasses.replace(c, merge_entry_s=c.merge_entry_s + 1e-9)
    assert search_latency_s(tr, slow, beam_width=32) == pytest.approx(
        base + tr.rounds * 4 * 32 * 1e-9)  # every worker's queue of the beam's width
    per_round = (tr.round_expansions * c.expansion_s
                 + tr.round_computations * (c.distance_s + c.insert_s)).max(axis=1)
    first = c.distance_s + c.expansion_time_s(tr.search.found[0])
    assert base == pytest.approx(first + per_round.sum()
                                 + tr.rounds * (c.barrier_s + 4 * 32 * c.merge_entry_s))


def test_the_task_dag_of_the_sequential_search():
    s = beam_search(G, V.base, V.queries[1], beam_width=16)
    c = search_costs("xeon-8380", dim=64, degree=16, threads=4)
    dag = sequential_dag(s, c, 4)
    assert dag.n == s.work + s.expansions and (dag.parents[1:] < np.arange(1, dag.n)).all()
    assert dag.durations_s.sum() == pytest.approx(search_latency_s(s, c, beam_width=16))
    r = solve_dag_schedule_cpsat(dag, time_limit_s=3.0, num_workers=1)
    assert r.has_solution and verify_dag_schedule(dag, r.schedule).valid
    bound = work_span_bound(dag)
    assert bound <= r.bound * (1 + 1e-9) and r.bound <= r.objective * (1 + 1e-9)
    assert r.objective <= list_schedule(dag).makespan_s * (1 + 1e-9)


def test_table_units_and_rows(table):
    assert table[["system", "threads"]].values.tolist() == [
        ["sequential", 1], ["fork-join", 1], ["fork-join", 4], ["fork-join", 16],
        ["aversearch", 1], ["aversearch", 4], ["aversearch", 16]]
    assert np.allclose(table.qps, table.concurrent / (table.loaded_latency_us * 1e-6))
    assert (table.loaded_latency_us >= table.latency_us * (1 - 1e-9)).all()
    one = table[table.threads == 1]
    assert np.allclose(one.latency_us, one.latency_us.iloc[0])  # one thread: one search
    assert np.allclose(one.efficiency, 1.0) and np.allclose(one.redundant_ratio, 0.0)
    assert table.concurrent.tolist() == [40, 40, 10, 2, 40, 10, 2]
    assert ((table.recall > 0.8) & (table.recall <= 1)).all()
    assert (table.effective_gbs <= 163.8 * (1 + 1e-9)).all()  # never above the socket's PMB
    fj = table[table.system == "fork-join"]
    assert fj.rounds.notna().all() and table[table.system != "fork-join"].rounds.isna().all()


@pytest.mark.parametrize("kwargs,match", [
    ({"threads": (1, 64)}, "'threads'.*cores=40"), ({"cores": 41}, "'cores'.*40 cores"),
    ({"systems": ("parlay",)}, "Unknown graph search"), ({"n_queries": 0}, "'n_queries'"),
])
def test_bad_table_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        anns_table(G, V, processor="xeon-8380", **kwargs)
