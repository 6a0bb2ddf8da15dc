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

import numpy as np

from schedlab.contract.anns import ForkJoinTrace, SearchTrace
from schedlab.datasets.vector_graph import Graph
from schedlab.errors import check_array, check_instance, check_positive_int

__all__ = ["ForkJoinTrace", "SearchTrace", "beam_search", "fork_join_search"]


def beam_search(graph: Graph, base: np.ndarray, query: np.ndarray, *, beam_width: int = 64,
                k: int = 10) -> SearchTrace:
    """Sequential best-first beam search of ``query`` on ``graph`` over ``base`` (see the
    module docstring): ``beam_width`` (``L``, at least ``k``) candidates, ``k`` results.

    Invariants (tests): results distinct and sorted by their true distance, each returned id
    computed, no distance computed twice, and with ``L >= n`` on a graph reachable from its
    entry every result exact.
    """
    x, q, width, kk = _check(graph, base, query, beam_width, k, "beam_search")
    return _fork_join(graph, x, q, 1, width, width, kk).search


def _check(graph: Graph, base: np.ndarray, query: np.ndarray, beam_width: int, k: int,
           where: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The searches' arguments, checked: ``(base, query as float64, beam_width, k)``."""
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
    return x, q.astype(np.float64), width, kk


def fork_join_search(graph: Graph, base: np.ndarray, query: np.ndarray, *, threads: int,
                     beam_width: int = 64, expansions_per_round: int | None = None,
                     k: int = 10) -> ForkJoinTrace:
    """iQAN-style fork-join intra-query parallel search (Zhang et al., PPoPP'23; the artifact's
    ``PSS_v5_distance_threshold_profiling``, the baseline AverSearch beats) [recon where the
    artifact's threads interleave]:

    1. the entry is expanded sequentially;
    2. each round, the master queue's unexpanded candidates are dealt to the ``threads``
       workers in turn; every worker holds a copy of the master queue (``beam_width`` long)
       and expands, nearest first, up to ``expansions_per_round`` (``X``, default
       ``max(1, beam_width // threads)``: the artifact's ``L_seq / T``) of the candidates it
       was dealt or found this round, computing the distances of unvisited neighbours; the
       workers' expansions are interleaved one each in turn over one visited set, so no vertex
       is computed twice [recon: the artifact's bitmap is shared but not atomic, so rare races
       compute a vertex twice];
    3. a barrier, then the master queue becomes the ``beam_width`` nearest of all the workers'
       queues (a candidate expanded by any worker is expanded);
    4. until no candidate of the master queue is unexpanded.

    With one worker the expansions are exactly :func:`beam_search`'s (tested).

    >>> from schedlab.datasets import build_graph, digits_vectors
    >>> v = digits_vectors()
    >>> g = build_graph(v.base, degree=16)
    >>> t = fork_join_search(g, v.base, v.queries[0], threads=4, beam_width=32)
    >>> t.round_computations.shape[1], t.rounds > 1
    (4, True)
    """
    where = "fork_join_search"
    n_threads = check_positive_int(threads, "threads", where)
    x, qq, width, kk = _check(graph, base, query, beam_width, k, where)
    x_per = max(1, width // n_threads) if expansions_per_round is None else check_positive_int(
        expansions_per_round, "expansions_per_round", where)
    return _fork_join(graph, x, qq, n_threads, width, x_per, kk)


def _fork_join(graph: Graph, x: np.ndarray, qq: np.ndarray, n_threads: int, width: int,
               x_per: int, k: int) -> ForkJoinTrace:
    """The search of :func:`fork_join_search` on checked arguments (one worker: the
    sequential search, its rounds cutting the one sequence of expansions)."""
    indptr, indices = graph.indptr, graph.indices
    seen = np.zeros(graph.n, dtype=bool)
    entry = graph.entry
    seen[entry] = True
    # the master queue: distance, vertex, parent expansion, expanded; sorted by (distance, vertex)
    md = np.array([float(((x[entry] - qq) ** 2).sum())])
    mv = np.array([entry], dtype=np.int64)
    mp = np.full(1, -1, dtype=np.int64)
    mdone = np.zeros(1, dtype=bool)
    computed = [np.array([entry], dtype=np.int64)]
    expanded: list[int] = []
    parents: list[int] = []
    hops: list[int] = []
    found: list[int] = []
    r_exp: list[list[int]] = []
    r_comp: list[list[int]] = []

    def expand(v: int, parent: int, visited: np.ndarray, queue: list[np.ndarray]) -> int:
        """Expand ``v`` (found by expansion ``parent``) into the queue arrays; returns the
        distances computed."""
        nb = indices[indptr[v]:indptr[v + 1]]
        nb = nb[~visited[nb]]
        me = len(expanded)
        expanded.append(v)
        parents.append(parent)
        hops.append(0 if parent < 0 else hops[parent] + 1)
        found.append(int(nb.shape[0]))
        if nb.shape[0] == 0:
            return 0
        visited[nb] = True
        computed.append(nb)
        diff = x[nb].astype(np.float64) - qq
        queue[0] = np.concatenate((queue[0], (diff * diff).sum(axis=1)))
        queue[1] = np.concatenate((queue[1], nb))
        queue[2] = np.concatenate((queue[2], np.full(nb.shape[0], me)))
        queue[3] = np.concatenate((queue[3], np.zeros(nb.shape[0], dtype=bool)))
        queue[4] = np.concatenate((queue[4], np.ones(nb.shape[0], dtype=bool)))
        order = np.lexsort((queue[1], queue[0]))[:width]
        for i in range(5):
            queue[i] = queue[i][order]
        return int(nb.shape[0])

    # 1. the entry, sequentially
    q0 = [md, mv, mp, mdone, np.ones(1, dtype=bool)]
    q0[3][0] = True
    expand(entry, -1, seen, q0)
    md, mv, mp, mdone = q0[0], q0[1], q0[2], q0[3]
    while True:
        open_ = np.flatnonzero(~mdone)
        if open_.shape[0] == 0:
            break
        queues = []
        for w in range(n_threads):  # 2. dealt in turn; each worker a copy of the master queue
            mine = np.zeros(md.shape[0], dtype=bool)
            mine[open_[w::n_threads]] = True
            queues.append([md.copy(), mv.copy(), mp.copy(), mdone.copy(), mine])
        exp_row, comp_row = [0] * n_threads, [0] * n_threads
        for _ in range(x_per):  # the workers' expansions interleaved, one each in turn
            busy = False
            for w, q in enumerate(queues):
                avail = np.flatnonzero(q[4] & ~q[3])
                if avail.shape[0] == 0:
                    continue
                j = int(avail[0])
                q[3][j] = True
                comp_row[w] += expand(int(q[1][j]), int(q[2][j]), seen, q)
                exp_row[w] += 1
                busy = True
            if not busy:
                break
        r_exp.append(exp_row)
        r_comp.append(comp_row)
        # 3. barrier and merge: the nearest of all queues; expanded anywhere is expanded
        d = np.concatenate([q[0] for q in queues])
        v = np.concatenate([q[1] for q in queues])
        p = np.concatenate([q[2] for q in queues])  # parents
        done = np.concatenate([q[3] for q in queues])
        order = np.lexsort((~done, v, d))  # per vertex, its expanded copy first
        d, v, p, done = d[order], v[order], p[order], done[order]
        first_copy = np.ones(v.shape[0], dtype=bool)
        _, idx = np.unique(v, return_index=True)
        first_copy[:] = False
        first_copy[idx] = True
        expanded_ids = np.unique(v[done])
        keep = np.flatnonzero(first_copy)
        md, mv, mp = d[keep], v[keep], p[keep]
        mdone = np.isin(mv, expanded_ids)
        order = np.lexsort((mv, md))[:width]
        md, mv, mp, mdone = md[order], mv[order], mp[order], mdone[order]
    search = SearchTrace(ids=mv[:k].copy(), distances=md[:k].copy(),
                         expanded=np.array(expanded, dtype=np.int64),
                         parents=np.array(parents, dtype=np.int64),
                         hops=np.array(hops, dtype=np.int64),
                         found=np.array(found, dtype=np.int64), computed=np.concatenate(computed))
    return ForkJoinTrace(search=search, round_expansions=np.array(r_exp, dtype=np.int64).reshape(
        -1, n_threads), round_computations=np.array(r_comp, dtype=np.int64).reshape(-1,
                                                                                     n_threads))
