"""AverSearch's asynchronous search (issue 18): the digest's invariants (§1.6) that hold for it —
one thread is the sequential search, no distance computed twice (atomic visited set), results
distinct, sorted and true, the threshold never increases, no candidate under it left unexpanded
at the end, the roles' busy time within the threads' time, a balancer pass leaves the
sub-queues within one entry of each other — and bad input named."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract.anns import SearchCosts
from schedlab.datasets import build_graph, digits_vectors
from schedlab.policies import ANN_SEARCHES, get_ann_search
from schedlab.policies.anns import beam_search
from schedlab.policies.aversearch import _balance, _Search, async_roles, async_search

V = digits_vectors(seed=0)
G = build_graph(V.base, degree=16)
COSTS = SearchCosts(expansion_s=2.3e-7, distance_s=4e-8, insert_s=1e-8, barrier_s=1e-6,
                    merge_entry_s=2e-9, handoff_s=6e-8)
#: high-dimensional vectors: distances cost many expansions, so one maintainer feeds many
SLOW = SearchCosts(expansion_s=2.3e-7, distance_s=3e-7, insert_s=1e-8, barrier_s=1e-6,
                   merge_entry_s=2e-9, handoff_s=6e-8)


@pytest.mark.parametrize("width", [10, 32, 64])
def test_one_thread_is_the_sequential_search(width):
    for q in V.queries[:15]:
        a = async_search(G, V.base, q, threads=1, costs=COSTS, beam_width=width).search
        s = beam_search(G, V.base, q, beam_width=width)
        assert np.array_equal(a.expanded, s.expanded) and np.array_equal(a.computed, s.computed)
        assert np.array_equal(a.ids, s.ids) and np.array_equal(a.parents, s.parents)


@pytest.mark.parametrize("threads", [2, 5, 8, 16, 64])
@pytest.mark.parametrize("costs", [COSTS, SLOW], ids=["fast", "slow"])
def test_invariants_of_every_search(threads, costs):
    for q in V.queries[:12]:
        tr = async_search(G, V.base, q, threads=threads, costs=costs, beam_width=32, k=32)
        s = tr.search
        assert np.unique(s.computed).shape[0] == s.work  # no distance computed twice
        assert np.unique(s.ids).shape[0] == s.ids.shape[0]  # distinct
        true = ((V.base[s.ids].astype(np.float64) - q) ** 2).sum(axis=1)
        assert np.allclose(true, s.distances) and (np.diff(s.distances) >= 0).all()
        assert (np.diff(tr.thresholds) <= 0).all()  # the L-threshold never increases
        # termination: every candidate of the final L nearest (k = L here) was expanded
        assert np.isin(s.ids, s.expanded).all() and np.isin(s.ids, s.computed).all()
        assert tr.maintainer_busy_s + tr.calculator_busy_s <= threads * tr.latency_s * (1 + 1e-9)
        assert s.found.sum() + 1 == s.work and (s.parents < np.arange(s.expansions)).all()
        assert (np.diff(tr.expansion_start_s) >= 0).all()
        m, c, b = tr.maintainers, tr.calculators, tr.balancer
        assert m + c + int(b) == threads and b == (m >= 2)


def test_a_beam_covering_the_graph_is_exact():
    sub = V.base[:200]
    g = build_graph(sub, degree=8)
    for q in V.queries[:8]:
        tr = async_search(g, sub, q, threads=8, costs=SLOW, beam_width=200, k=10)
        exact = np.argsort(((sub.astype(np.float64) - q) ** 2).sum(axis=1), kind="stable")[:10]
        assert sorted(tr.search.ids.tolist()) == sorted(exact.tolist())


def test_recall_matches_the_sequential_search_and_more_threads_answer_sooner():
    truth = V.ground_truth(10)
    rec = {t: [] for t in (1, 8)}
    lat = {t: [] for t in (1, 8)}
    for q, tt in zip(V.queries[:30], truth[:30], strict=True):
        for t in rec:
            tr = async_search(G, V.base, q, threads=t, costs=SLOW, beam_width=32)
            rec[t].append(np.isin(tt, tr.search.ids).mean())
            lat[t].append(tr.latency_s)
    assert np.mean(rec[8]) >= np.mean(rec[1]) - 0.02
    assert np.mean(lat[8]) < 0.5 * np.mean(lat[1])


def test_searches_are_deterministic_and_registered():
    a = async_search(G, V.base, V.queries[4], threads=16, costs=COSTS, beam_width=48)
    b = get_ann_search("aversearch")(G, V.base, V.queries[4], threads=16, costs=COSTS,
                                     beam_width=48)
    assert np.array_equal(a.search.computed, b.search.computed) and a.latency_s == b.latency_s
    assert set(ANN_SEARCHES) == {"sequential", "fork-join", "aversearch"}
    seq = get_ann_search("sequential")(G, V.base, V.queries[4], threads=1, beam_width=48)
    assert np.array_equal(seq.expanded, beam_search(G, V.base, V.queries[4],
                                                    beam_width=48).expanded)
    with pytest.raises(ValueError, match=r"'threads'.*must be 1"):
        get_ann_search("sequential")(G, V.base, V.queries[4], threads=2)
    with pytest.raises(ValueError, match="Unknown graph search"):
        get_ann_search("iqan")


@given(st.integers(1, 128), st.floats(0.5, 20))
@settings(max_examples=60, deadline=None)
def test_roles_split_every_thread(threads, ratio):
    m, c, b = async_roles(threads, ratio)
    assert m >= 1 and c >= 0 and m + c + int(b) == threads
    assert b == (m >= 2) and (threads == 1 or c >= 1)


@given(st.lists(st.lists(st.tuples(st.floats(0, 10), st.integers(0, 999)), max_size=12),
                min_size=2, max_size=6))
@settings(max_examples=60, deadline=None)
def test_a_balancer_pass_deals_the_candidates_evenly(queues):
    import heapq

    s = _Search(1000, 64, len(queues))
    seen = set()
    for i, q in enumerate(queues):
        for d, v in q:
            if v not in seen:
                seen.add(v)
                heapq.heappush(s.subq[i], (d, v, -1))
    before = sorted(e for sq in s.subq for e in sq)
    idle = [not sq for sq in s.subq]
    woken = []
    moved = _balance(s, idle, 0.0, lambda t, kind, payload: woken.append(payload[0]))
    sizes = [len(sq) for sq in s.subq]
    assert sorted(e for sq in s.subq for e in sq) == before  # nothing lost or made up
    if moved:
        assert max(sizes) - min(sizes) <= 1
        assert all(sq == sorted(sq) for sq in s.subq)  # still heaps
        assert all(not idle[i] for i in woken) and all(s.subq[i] for i in woken)
    else:
        assert min(len(q) for q in s.subq) > 0 or max(len(q) for q in s.subq) < 2


@pytest.mark.parametrize("kwargs,match", [
    ({"threads": 0}, "'threads'"),
    ({"costs": "fast"}, "'costs'"),
    ({"maintainers": 9}, "'maintainers'.*at most threads=8"),
    ({"maintainers": 7}, "'maintainers'.*no calculator"),
    ({"balance_period_s": -1.0}, "'balance_period_s'"),
    ({"beam_width": 5, "k": 10}, "'beam_width'"),
])
def test_bad_input_names_the_field(kwargs, match):
    args = {"threads": 8, "costs": COSTS} | kwargs
    with pytest.raises(ValueError, match=match):
        async_search(G, V.base, V.queries[0], **args)


@pytest.mark.parametrize("field,value", [("distance_s", float("nan")), ("expansion_s", 0.0),
                                         ("insert_s", -1.0), ("handoff_s", True),
                                         ("active_threads", 0)])
def test_search_costs_refuse_bad_values(field, value):
    args = dict(expansion_s=1e-7, distance_s=1e-7, insert_s=0.0, barrier_s=0.0,
                merge_entry_s=0.0) | {field: value}
    with pytest.raises(ValueError, match=field.split("_s")[0]):
        SearchCosts(**args)
