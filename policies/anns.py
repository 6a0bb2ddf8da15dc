"""Graph ANNS search as pure functions with traces (AverSearch, arXiv 2504.20461, and the
sequential baseline it parallelises; issue 18).

:func:`beam_search` is the sequential best-first beam search every graph index serves (DiskANN's
``GreedySearch``, NSG's and iQAN's single-thread path): a candidate list of the ``beam_width``
(``L``) nearest vertices found so far, expanding the nearest unexpanded one, computing the
distances of its unvisited neighbours, until every candidate is expanded. Ties are broken by
vertex id, so the search is deterministic. It returns a :class:`SearchTrace`: the answer and the
events a cost model prices (each expansion with its hop depth, each distance computation), from
which the parallel designs' work and span are measured.

>>> from schedlab.datasets import build_graph, digits_vectors
>>> v = digits_vectors()
>>> g = build_graph(v.base, degree=16)
>>> t = beam_search(g, v.base, v.queries[0], beam_width=32, k=5)
>>> t.ids.shape, bool((np.diff(t.distances) >= 0).all()), t.work >= t.expansions
((5,), True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedlab.datasets.vector_graph import Graph
from schedlab.errors import check_array, check_instance, check_positive_int

__all__ = ["SearchTrace", "beam_search"]


@dataclass(frozen=True, slots=True)
class SearchTrace:
    """One query's search: ``ids`` and squared ``distances`` of the ``k`` results (nearest
    first, ties by id); ``expanded`` the vertices expanded, in order, with their hop depth
    ``hops`` (the entry is 0; a vertex is one more than the expansion that found it);
    ``computed`` every vertex whose distance was computed, in order (the entry first)."""

    ids: np.ndarray
    distances: np.ndarray
    expanded: np.ndarray
    hops: np.ndarray
    computed: np.ndarray

    @property
    def work(self) -> int:
        """Distance computations (each reads one vertex's vector and neighbour list)."""
        return int(self.computed.shape[0])

    @property
    def expansions(self) -> int:
        return int(self.expanded.shape[0])

    @property
    def span(self) -> int:
        """The deepest expansion's hop depth plus one: the expansions that must follow one
        another whatever the parallelism (each depends on a distance the one before
        computed)."""
        return int(self.hops.max()) + 1 if self.hops.shape[0] else 0


def beam_search(graph: Graph, base: np.ndarray, query: np.ndarray, *, beam_width: int = 64,
                k: int = 10) -> SearchTrace:
    """Sequential best-first beam search of ``query`` on ``graph`` over ``base`` (see the
    module docstring): ``beam_width`` (``L``, at least ``k``) candidates, ``k`` results.

    Invariants (tests): results distinct and sorted by their true distance, each returned id
    computed, no distance computed twice, and with ``L >= n`` on a graph reachable from its
    entry every result exact.
    """
    where = "beam_search"
    check_instance(graph, Graph, "graph", where)
    x = check_array(base, "base", where, dtype=np.float32, ndim=2)
    q = check_array(query, "query", where, dtype=np.float32, ndim=1, length=x.shape[1])
    if x.shape[0] != graph.n:
        raise ValueError(f"The 'base' parameter of {where} must hold the graph's {graph.n} "
                         f"vectors. Got {x.shape[0]}.")
    kk = check_positive_int(k, "k", where)
    width = check_positive_int(beam_width, "beam_width", where)
    if width < kk:
        raise ValueError(f"The 'beam_width' parameter of {where} must be at least k={kk}. "
                         f"Got {beam_width}.")
    qq = q.astype(np.float64)
    seen = np.zeros(graph.n, dtype=bool)
    entry = graph.entry
    seen[entry] = True
    pool_d = np.array([float(((x[entry] - qq) ** 2).sum())])
    pool_v = np.array([entry], dtype=np.int64)
    pool_h = np.zeros(1, dtype=np.int64)
    done = np.zeros(1, dtype=bool)
    computed = [np.array([entry], dtype=np.int64)]
    expanded: list[int] = []
    hops: list[int] = []
    indptr, indices = graph.indptr, graph.indices
    while True:
        open_ = np.flatnonzero(~done)
        if open_.shape[0] == 0:
            break
        j = int(open_[0])  # the pool is sorted: the nearest unexpanded candidate
        v, h = int(pool_v[j]), int(pool_h[j])
        done[j] = True
        expanded.append(v)
        hops.append(h)
        nb = indices[indptr[v]:indptr[v + 1]]
        nb = nb[~seen[nb]]
        if nb.shape[0] == 0:
            continue
        seen[nb] = True
        computed.append(nb)
        diff = x[nb].astype(np.float64) - qq
        pool_d = np.concatenate((pool_d, (diff * diff).sum(axis=1)))
        pool_v = np.concatenate((pool_v, nb))
        pool_h = np.concatenate((pool_h, np.full(nb.shape[0], h + 1)))
        done = np.concatenate((done, np.zeros(nb.shape[0], dtype=bool)))
        order = np.lexsort((pool_v, pool_d))[:width]
        pool_d, pool_v, pool_h, done = pool_d[order], pool_v[order], pool_h[order], done[order]
    return SearchTrace(ids=pool_v[:kk].copy(), distances=pool_d[:kk].copy(),
                       expanded=np.array(expanded, dtype=np.int64),
                       hops=np.array(hops, dtype=np.int64), computed=np.concatenate(computed))
