"""A proximity graph for graph ANNS, built in the repository (AverSearch, arXiv 2504.20461;
issue 18): exact k nearest neighbours blockwise, then Vamana/NSG-style robust pruning (DiskANN's
``RobustPrune``: keep the nearest candidate, drop every candidate it covers, ``alpha * d(kept,
c) <= d(v, c)``, until ``R`` are kept), reverse edges pruned again, an entry at the medoid and
every vertex reachable from it. Deterministic; the answer is a CSR :class:`Graph`.

[recon] One pass over exact candidates, not DiskANN's two passes of greedy-search candidates:
the same pruning rule on better candidates (the graph is for simulating searches, not for
serving billions of vectors). A vertex's out- and reverse edges are pruned together from its
``candidates`` nearest (NSG's cap), so a hub with hundreds of reverse edges costs no more.

>>> from schedlab.datasets.vectors import digits_vectors
>>> g = build_graph(digits_vectors().base, degree=16)
>>> g.n, int(g.out_degree.max()) <= 16, g.entry == g.medoid
(1697, True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedlab.datasets.vectors import exact_knn
from schedlab.errors import check_array, check_positive_float, check_positive_int

__all__ = ["Graph", "build_graph"]


@dataclass(frozen=True, slots=True)
class Graph:
    """Out-neighbours in CSR form (``indices[indptr[v]:indptr[v + 1]]``, nearest first), the
    search's entry vertex (the medoid) and the build's parameters."""

    indptr: np.ndarray
    indices: np.ndarray
    entry: int
    degree: int
    alpha: float

    @property
    def n(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def medoid(self) -> int:
        return self.entry

    @property
    def out_degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def neighbours(self, v: int) -> np.ndarray:
        return self.indices[self.indptr[v]:self.indptr[v + 1]]

    def reachable(self) -> np.ndarray:
        """Whether each vertex is reachable from the entry."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import breadth_first_order

        m = csr_matrix((np.ones(self.indices.shape[0]), self.indices, self.indptr),
                       shape=(self.n, self.n))
        seen = np.zeros(self.n, dtype=bool)
        seen[breadth_first_order(m, self.entry, directed=True, return_predecessors=False)] = True
        return seen


def _robust_prune(x: np.ndarray, cand: np.ndarray, cdist: np.ndarray, degree: int,
                  alpha: float) -> np.ndarray:
    """RobustPrune of each node's candidates (rows of ``cand``, nearest first, -1 padding; their
    squared distances ``cdist``): a mask of the kept ones."""
    b, k = cand.shape
    vec = x[np.maximum(cand, 0)]  # b x K x d
    sq = (vec.astype(np.float64) ** 2).sum(axis=2)
    pair = sq[:, :, None] - 2.0 * np.einsum("bid,bjd->bij", vec, vec, optimize=True) + sq[:, None]
    pair = np.sqrt(np.maximum(pair, 0.0))
    dv = np.sqrt(np.maximum(cdist.astype(np.float64), 0.0))
    alive = cand >= 0
    kept = np.zeros((b, k), dtype=bool)
    count = np.zeros(b, dtype=np.int64)
    for j in range(k):
        take = alive[:, j] & (count < degree)
        kept[:, j] = take
        count += take
        # the kept candidate covers the later ones it is (alpha times) closer to
        covered = alpha * pair[:, j, j + 1:] <= dv[:, j + 1:]
        alive[:, j + 1:] &= ~(covered & take[:, None])
    return kept


def _prune_all(x: np.ndarray, cand: np.ndarray, cdist: np.ndarray, degree: int, alpha: float,
               block: int) -> list[np.ndarray]:
    """Each vertex's pruned out-neighbours (nearest first)."""
    out: list[np.ndarray] = []
    for s in range(0, cand.shape[0], block):
        c, d = cand[s:s + block], cdist[s:s + block]
        kept = _robust_prune(x, c, d, degree, alpha)
        out.extend(row[m] for row, m in zip(c, kept, strict=True))
    return out


def build_graph(vectors: np.ndarray, *, degree: int = 32, alpha: float = 1.2,
                candidates: int | None = None, block: int = 512) -> Graph:
    """A proximity graph of ``vectors`` (see the module docstring): out-degree at most
    ``degree`` (``R``), pruning factor ``alpha`` (DiskANN's 1.2 by default), from the
    ``candidates`` exact nearest neighbours of each vertex (default ``2 * degree``), pruned in
    blocks of ``block`` vertices.
    """
    where = "build_graph"
    x = check_array(vectors, "vectors", where, dtype=np.float32, ndim=2)
    n = x.shape[0]
    r = check_positive_int(degree, "degree", where)
    a = check_positive_float(alpha, "alpha", where)
    if a < 1.0:
        raise ValueError(f"The 'alpha' parameter of {where} must be at least 1. Got {alpha!r}.")
    if n < 2:
        raise ValueError(f"The 'vectors' parameter of {where} must hold at least 2 vectors. "
                         f"Got {n}.")
    k = min(n - 1, check_positive_int(2 * r if candidates is None else candidates, "candidates",
                                      where))
    blk = check_positive_int(block, "block", where)
    ids, dist = exact_knn(x, x, k, exclude_self=True)
    forward = _prune_all(x, ids, dist, r, a, blk)
    # reverse edges join each vertex's candidates; the union, nearest first, is pruned again
    src = np.repeat(np.arange(n), [f.shape[0] for f in forward])
    dst = np.concatenate(forward)
    merged = np.concatenate([np.concatenate(forward), src])  # v's out-edges, then u -> v reversed
    owner = np.concatenate([src, dst])
    order = np.lexsort((merged, owner))
    owner, merged = owner[order], merged[order]
    keep = np.ones(owner.shape[0], dtype=bool)
    keep[1:] = (owner[1:] != owner[:-1]) | (merged[1:] != merged[:-1])  # drop duplicates
    owner, merged = owner[keep], merged[keep]
    dd = np.empty(owner.shape[0])
    for s in range(0, owner.shape[0], 1 << 18):  # squared distances of the pairs, in blocks
        diff = x[merged[s:s + (1 << 18)]].astype(np.float64) - x[owner[s:s + (1 << 18)]]
        dd[s:s + (1 << 18)] = (diff * diff).sum(axis=1)
    order = np.lexsort((merged, dd, owner))  # each vertex's candidates, nearest first
    owner, merged, dd = owner[order], merged[order], dd[order]
    counts = np.bincount(owner, minlength=n)
    rank = np.arange(owner.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    near = rank < k  # a hub's many reverse edges: its k nearest are pruned, as in NSG
    width = int(min(counts.max(), k))
    cand = np.full((n, width), -1, dtype=np.int64)
    d = np.full((n, width), np.inf)
    cand[owner[near], rank[near]] = merged[near]
    d[owner[near], rank[near]] = dd[near]
    final = _prune_all(x, cand, d, r, a, blk)
    centre = x.mean(axis=0, dtype=np.float64)
    medoid = int(np.argmin(((x - centre) ** 2).sum(axis=1)))
    graph = _csr(final, medoid, r, a)
    return _connect(graph, x, ids, r, a)


def _csr(rows: list[np.ndarray], entry: int, degree: int, alpha: float) -> Graph:
    indptr = np.concatenate(([0], np.cumsum([row.shape[0] for row in rows]))).astype(np.int64)
    indices = (np.concatenate(rows) if rows else np.zeros(0)).astype(np.int64)
    for a in (indptr, indices):
        a.flags.writeable = False
    return Graph(indptr=indptr, indices=indices, entry=entry, degree=degree, alpha=alpha)


def _connect(g: Graph, x: np.ndarray, knn: np.ndarray, degree: int, alpha: float) -> Graph:
    """Make every vertex reachable from the entry: an unreachable vertex gets an in-edge from
    its nearest reachable neighbour (replacing that neighbour's farthest edge when full),
    repeated until all are reachable."""
    rows = [g.neighbours(v).copy() for v in range(g.n)]
    seen = g.reachable()
    while not seen.all():
        v = int(np.flatnonzero(~seen)[0])
        near = [u for u in knn[v].tolist() if seen[u]]
        with_room = [u for u in near if rows[u].shape[0] < degree]
        if with_room or near:
            u = (with_room or near)[0]
        else:  # none of its neighbours is reachable: link it from the nearest reachable vertex
            reach = np.flatnonzero(seen)
            u = int(reach[np.argmin(((x[reach] - x[v]) ** 2).sum(axis=1))])
        # a full vertex gives up its farthest edge only if that target stays reachable another
        # way; otherwise it exceeds the degree by one (rare: a last resort that always ends)
        row = rows[u]
        if row.shape[0] >= degree and _reachable_without(rows, g.entry, u, int(row[-1])):
            row = row[:-1]
        rows[u] = np.append(row, v)
        g = _csr(rows, g.entry, degree, alpha)
        seen = g.reachable()
    return g


def _reachable_without(rows: list[np.ndarray], entry: int, u: int, w: int) -> bool:
    """Whether ``w`` stays reachable from ``entry`` once the edge ``u -> w`` is dropped."""
    trimmed = list(rows)
    trimmed[u] = rows[u][rows[u] != w]
    return bool(_csr(trimmed, entry, 0, 1.0).reachable()[w])
