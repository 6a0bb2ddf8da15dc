"""Vectors for graph ANNS and the in-repo graph builder (issue 18): exact neighbours agree with a
brute force, descriptors look like SIFT's, the graph is deterministic, within its degree, fully
reachable from the medoid (checked with networkx), and good enough that a plain beam search
finds the true neighbours."""

from __future__ import annotations

import heapq

import networkx as nx
import numpy as np
import pytest

from schedlab.datasets.vector_graph import build_graph
from schedlab.datasets.vectors import (
    VectorSet,
    clustered_vectors,
    digits_vectors,
    exact_knn,
    image_descriptors,
)


def _beam(g, x, q, width, k):
    """Plain best-first beam search (the sequential baseline), for the graph's quality only."""
    d0 = float(((x[g.entry] - q) ** 2).sum())
    pool = [(d0, g.entry)]
    seen = {g.entry}
    expanded = set()
    while True:
        best = next(((d, v) for d, v in sorted(pool) if v not in expanded), None)
        if best is None:
            break
        expanded.add(best[1])
        for u in g.neighbours(best[1]).tolist():
            if u not in seen:
                seen.add(u)
                pool.append((float(((x[u] - q) ** 2).sum()), u))
        pool = heapq.nsmallest(width, pool)
    return [v for _, v in sorted(pool)[:k]]


def test_exact_knn_matches_a_brute_force():
    rng = np.random.default_rng(0)
    b = rng.normal(size=(300, 16)).astype(np.float32)
    q = rng.normal(size=(40, 16)).astype(np.float32)
    ids, dist = exact_knn(b, q, 5, block=7)
    full = ((q[:, None, :].astype(np.float64) - b[None]) ** 2).sum(axis=2)
    assert np.array_equal(ids, np.argsort(full, axis=1, kind="stable")[:, :5])
    assert np.allclose(dist, np.sort(full, axis=1)[:, :5], rtol=1e-4, atol=1e-3)
    self_ids, _ = exact_knn(b, b, 3, exclude_self=True)
    assert not (self_ids == np.arange(300)[:, None]).any()


def test_vector_sets_hold_out_queries_and_check_their_shapes():
    v = digits_vectors(n_queries=50, seed=1)
    assert v.base.shape == (1747, 64) and v.queries.shape == (50, 64)
    assert not v.base.flags.writeable
    with pytest.raises(ValueError, match="'queries'"):
        VectorSet(base=np.zeros((3, 4)), queries=np.zeros((2, 5)), name="bad")
    with pytest.raises(ValueError, match="'n_queries'"):
        digits_vectors(n_queries=5000)
    with pytest.raises(ValueError, match="'kind'"):
        image_descriptors(100, 10, kind="surf")
    with pytest.raises(ValueError, match="'k'"):
        exact_knn(v.base[:3], v.queries, 3, exclude_self=True)


@pytest.mark.parametrize("kind,dim", [("sift", 128), ("patch", 192)])
def test_image_descriptors_are_seeded_and_sift_like(kind, dim):
    a = image_descriptors(3_000, 200, kind=kind, seed=3)
    b = image_descriptors(3_000, 200, kind=kind, seed=3)
    assert a.dim == dim and np.array_equal(a.base, b.base) and np.array_equal(a.queries,
                                                                               b.queries)
    assert 0.0 <= float(a.base.min()) and float(a.base.max()) <= 255.0
    if kind == "sift":  # SIFT's normalisation: unit length (x 512) after clipping at 0.2;
        # a window whose gradients fall in one or two bins saturates at 255, as SIFT's bytes do
        norm = np.linalg.norm(a.base, axis=1)
        assert np.mean(np.abs(norm / 512.0 - 1.0) < 0.01) > 0.95
        assert np.median(a.base.max(axis=1)) < 0.3 * 512


def test_clustered_vectors_at_high_dimension():
    v = clustered_vectors(400, 1536, 30, clusters=8, seed=2)
    assert v.dim == 1536 and v.base.shape == (400, 1536)
    with pytest.raises(ValueError, match="'intrinsic_dim'"):
        clustered_vectors(400, 1536, intrinsic_dim=0)
    with pytest.raises(ValueError, match="'spread'"):
        clustered_vectors(400, 1536, spread=-1.0)


def test_embedding_like_vectors_are_searchable():
    """Low intrinsic dimension whatever the width: a graph search finds the true neighbours
    (isotropic full-dimension clusters, intrinsic_dim=dim, barely can)."""
    from schedlab.policies.anns import beam_search

    v = clustered_vectors(1_500, 960, 20, seed=3)
    g = build_graph(v.base, degree=24)
    truth = v.ground_truth(10)
    hits = [np.isin(t, beam_search(g, v.base, q, beam_width=32).ids).mean()
            for q, t in zip(v.queries, truth, strict=True)]
    assert np.mean(hits) > 0.9


@pytest.mark.parametrize("degree,alpha", [(8, 1.0), (16, 1.2), (32, 1.2)])
def test_graph_is_bounded_reachable_and_deterministic(degree, alpha):
    x = digits_vectors().base
    g = build_graph(x, degree=degree, alpha=alpha)
    again = build_graph(x, degree=degree, alpha=alpha)
    assert np.array_equal(g.indices, again.indices) and g.entry == again.entry
    assert int(g.out_degree.max()) <= degree + 1  # +1 only for a connectivity repair
    assert (g.out_degree > 0).all()
    for v in range(0, g.n, 97):
        row = g.neighbours(v)
        assert v not in row and np.unique(row).shape[0] == row.shape[0]
    dg = nx.DiGraph()
    dg.add_nodes_from(range(g.n))
    dg.add_edges_from((v, int(u)) for v in range(g.n) for u in g.neighbours(v))
    assert len(nx.descendants(dg, g.entry)) + 1 == g.n  # everything reachable from the medoid
    assert g.reachable().all()


def test_a_beam_search_on_the_graph_finds_the_true_neighbours():
    v = digits_vectors(seed=0)
    g = build_graph(v.base, degree=16)
    truth = v.ground_truth(10)
    hits = [len(set(_beam(g, v.base, q, 64, 10)) & set(t.tolist()))
            for q, t in zip(v.queries, truth, strict=True)]
    assert np.mean(hits) / 10 > 0.95  # recall@10 at beam width 64


@pytest.mark.parametrize("kwargs,match", [
    ({"degree": 0}, "'degree'"), ({"alpha": 0.9}, "'alpha'"), ({"candidates": 0}, "candidates"),
])
def test_bad_graph_parameters_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_graph(digits_vectors().base[:50], **kwargs)
    with pytest.raises(ValueError, match="at least 2 vectors"):
        build_graph(np.zeros((1, 4), dtype=np.float32))
