"""The sequential beam search (graph ANNS baseline, issue 18): the digest's invariants that hold
for it (§1.6: results distinct and sorted by true distance, each computed, no duplicate
computation, exact with a beam covering the graph), determinism, and bad input named."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.datasets import build_graph, digits_vectors
from schedlab.policies.anns import beam_search

V = digits_vectors(seed=0)
G = build_graph(V.base, degree=16)


@pytest.mark.parametrize("width,k", [(10, 10), (32, 5), (64, 10)])
def test_results_are_distinct_sorted_computed_and_true(width, k):
    truth = V.ground_truth(10)
    recalls = []
    for q, t in zip(V.queries[:40], truth[:40], strict=True):
        tr = beam_search(G, V.base, q, beam_width=width, k=k)
        assert np.unique(tr.ids).shape[0] == k  # distinct
        again = ((V.base[tr.ids].astype(np.float64) - q) ** 2).sum(axis=1)
        assert np.allclose(tr.distances, again)  # each distance is the true one
        assert (np.diff(tr.distances) >= 0).all()  # sorted
        assert np.isin(tr.ids, tr.computed).all()  # every result was computed
        assert np.unique(tr.computed).shape[0] == tr.work  # no distance computed twice
        assert tr.expansions <= tr.work and tr.span <= tr.expansions
        assert tr.hops[0] == 0 and tr.expanded[0] == G.entry
        recalls.append(len(set(tr.ids.tolist()) & set(t[:k].tolist())) / k)
    if width >= 32:
        assert np.mean(recalls) > 0.9


def test_a_beam_covering_the_graph_is_exact():
    sub = V.base[:200]
    g = build_graph(sub, degree=8)
    for q in V.queries[:10]:
        tr = beam_search(g, sub, q, beam_width=200, k=10)
        exact = np.argsort(((sub.astype(np.float64) - q) ** 2).sum(axis=1), kind="stable")[:10]
        assert sorted(tr.ids.tolist()) == sorted(exact.tolist())


def test_searches_are_deterministic():
    a = beam_search(G, V.base, V.queries[3], beam_width=48)
    b = beam_search(G, V.base, V.queries[3], beam_width=48)
    assert np.array_equal(a.expanded, b.expanded) and np.array_equal(a.computed, b.computed)


@pytest.mark.parametrize("kwargs,match", [
    ({"beam_width": 5, "k": 10}, "'beam_width'.*at least k=10"),
    ({"k": 0}, "'k'"),
    ({"query": np.zeros(3, dtype=np.float32)}, "'query'"),
    ({"base": V.base[:10]}, "'base'.*1697"),
])
def test_bad_input_names_the_field(kwargs, match):
    args = {"query": V.queries[0], "base": V.base}
    args.update({k: v for k, v in kwargs.items() if k in args})
    rest = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(ValueError, match=match):
        beam_search(G, args["base"], args["query"], **rest)


def _sequential(g, x, q, width):
    """A plain best-first beam search written independently (expansion order), ties by id."""
    q = q.astype(np.float64)
    pool = [(float(((x[g.entry] - q) ** 2).sum()), g.entry, False)]
    seen, order = {g.entry}, []
    while True:
        pool.sort(key=lambda e: (e[0], e[1]))
        pool = pool[:width]
        j = next((i for i, e in enumerate(pool) if not e[2]), None)
        if j is None:
            return order, [v for _, v, _ in pool]
        d, v, _ = pool[j]
        pool[j] = (d, v, True)
        order.append(v)
        for u in g.neighbours(v).tolist():
            if u not in seen:
                seen.add(u)
                pool.append((float(((x[u] - q) ** 2).sum()), u, False))


def test_one_worker_fork_join_is_the_sequential_search():
    """Invariant 1 of the digest (§1.6): T = 1 gives the sequential search exactly."""
    from schedlab.policies.anns import fork_join_search

    for q in V.queries[:25]:
        seq = beam_search(G, V.base, q, beam_width=32)
        fj = fork_join_search(G, V.base, q, threads=1, beam_width=32,
                              expansions_per_round=5)
        order, pool = _sequential(G, V.base, q, 32)
        assert np.array_equal(seq.expanded, fj.search.expanded)
        assert np.array_equal(seq.ids, fj.search.ids)
        assert seq.expanded.tolist() == order and seq.ids.tolist() == pool[:10]


@pytest.mark.parametrize("threads", [2, 4, 8, 16])
def test_fork_join_rounds_bounds_and_redundant_work(threads):
    from schedlab.policies.anns import fork_join_search

    width = 64
    x = max(1, width // threads)
    extra = []
    for q in V.queries[:20]:
        fj = fork_join_search(G, V.base, q, threads=threads, beam_width=width)
        t = fj.search
        assert fj.round_expansions.shape == fj.round_computations.shape == (fj.rounds, threads)
        assert (fj.round_expansions <= x).all()  # X expansions a worker a round at most
        assert fj.round_expansions.sum() + 1 == t.expansions  # plus the entry's
        assert np.unique(t.computed).shape[0] == t.work  # one visited set: no duplicates
        assert np.unique(t.ids).shape[0] == t.ids.shape[0] and (np.diff(t.distances) >= 0).all()
        extra.append(t.work / beam_search(G, V.base, q, beam_width=width).work)
    assert np.mean(extra) > 1.0  # speculative expansions: fork-join computes more


def test_fork_join_bad_input_names_the_field():
    from schedlab.policies.anns import fork_join_search

    with pytest.raises(ValueError, match="'threads'"):
        fork_join_search(G, V.base, V.queries[0], threads=0)
    with pytest.raises(ValueError, match="'expansions_per_round'"):
        fork_join_search(G, V.base, V.queries[0], threads=2, expansions_per_round=0)
