"""RetroInfer's decisions as pure functions: the wave index (segmented clustering of a head's
keys), the tripartite zones of a decode step, and the GPU cache's replacement (LRU, FIFO).

Seed paper: RetroInfer, Chen et al., "RetroInfer: A Vector-Storage Approach for Scalable
Long-Context LLM Inference" (arXiv 2505.02922; VLDB'26), §4-§5; the authors' code
(microsoft/RetrievalAttention, ``retroinfer_cache.py``, ``kmeans.py``, ``wave_buffer_cpu.cpp``)
settles the parameters. The records are :mod:`schedlab.contract.retrieval`'s; Belady's optimal
replacement on the same access trace is :func:`schedlab.solvers.solve_cache_replacement`.

>>> import numpy as np
>>> from schedlab.contract.retrieval import RetrievalView
>>> rng = np.random.default_rng(0)
>>> keys = rng.normal(size=(4096, 16))
>>> idx = build_wave_index(keys, keys)
>>> idx.n_clusters, idx.steady_tokens().shape[0]          # ~16 tokens a cluster; 4 + 64 exact
(248, 68)
>>> z = retroinfer_zones(RetrievalView(query=keys[-1], index=idx))
>>> z.retrieval.shape[0], z.estimation.shape[0]            # 1.8% and 23.2% of the clusters
(4, 58)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schedlab.contract.retrieval import (
    CacheView,
    RetrievalView,
    WaveIndex,
    Zones,
    cluster_count,
    zone_sizes,
)
from schedlab.errors import check_fraction, check_nonneg_int, check_positive_int

__all__ = ["build_wave_index", "fifo_victims", "lru_victims", "retroinfer_zones"]


def build_wave_index(keys: Any, values: Any, *, cluster_tokens: int = 16,
                     segment_tokens: int = 8192, iterations: int = 10, sink_tokens: int = 4,
                     local_tokens: int = 64) -> WaveIndex:
    """RetroInfer's wave index of one head (§4.1; code ``kmeans.py``): the first
    ``sink_tokens`` and last ``local_tokens`` stay exact (the steady zone); the other keys,
    centred on their mean, are clustered by spherical k-means (inner-product assignment,
    normalised centroids) inside segments of about ``segment_tokens``, from evenly strided
    seeds, for ``iterations - 1`` rounds; the last round assigns every key to its best centroid
    over all segments. The index keeps each cluster's mean key, size and value sum. No
    randomness: the seeds are strided.

    Parameters (the code's defaults): ``cluster_tokens`` 16 (two pages of 8), ``segment_tokens``
    8192, ``iterations`` 10, ``sink_tokens`` 4, ``local_tokens`` 64.

    Invariants checked by the property tests: the clusters and the steady zone partition the
    tokens; sizes count the members, centroids are their mean keys and value sums their
    summed values.
    """
    where = "build_wave_index"
    k = np.asarray(keys, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if k.ndim != 2 or v.ndim != 2 or k.shape[0] != v.shape[0] or k.shape[0] < 1:
        raise ValueError(f"The 'keys' and 'values' parameters of {where} must be (n, d) and "
                         f"(n, dv) arrays with n >= 1. Got {k.shape} and {v.shape}.")
    rounds = check_positive_int(iterations, "iterations", where)
    check_positive_int(cluster_tokens, "cluster_tokens", where)
    check_positive_int(segment_tokens, "segment_tokens", where)
    sink = check_nonneg_int(sink_tokens, "sink_tokens", where)
    local = check_nonneg_int(local_tokens, "local_tokens", where)
    n = k.shape[0]
    lo, hi = min(sink, n), max(min(sink, n), n - local)
    m, n_seg = cluster_count(hi - lo, cluster_tokens=cluster_tokens,
                             segment_tokens=segment_tokens)
    cluster_of = np.full(n, -1, dtype=np.int64)
    if m == 0:
        return WaveIndex.from_assignment(k, v, cluster_of)
    x = k[lo:hi] - k[lo:hi].mean(axis=0)
    bounds = np.linspace(0, x.shape[0], n_seg + 1).astype(np.int64)
    per_seg = m // n_seg
    cent = np.empty((m, x.shape[1]))
    for s in range(n_seg):
        a, b = int(bounds[s]), int(bounds[s + 1])
        seg = x[a:b]
        c = seg[np.linspace(0, seg.shape[0] - 1, per_seg).astype(np.int64)].copy()
        for _ in range(rounds - 1):
            c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
            lab = np.argmax(seg @ c.T, axis=1)
            sums = np.zeros_like(c)
            np.add.at(sums, lab, seg)
            cnt = np.bincount(lab, minlength=per_seg)
            keep = cnt > 0
            c[keep] = sums[keep] / cnt[keep, None]
        cent[s * per_seg:(s + 1) * per_seg] = c
    unit = cent / np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    assign = np.argmax(x @ unit.T, axis=1)  # the last round: every centroid
    cluster_of[lo:hi] = assign
    return WaveIndex.from_assignment(k, v, cluster_of, n_clusters=m)


def retroinfer_zones(view: RetrievalView, /, *, retrieval_budget: float = 0.018,
                     estimation_budget: float = 0.232) -> Zones:
    """RetroInfer's zones for one decode step (§4.2; code ``retroinfer_cache.py``): rank the
    non-empty clusters by ``q . C`` (the code ranks by softmax over the centroids, the same
    order for one query head), retrieve the best ``nprobe = max(round(m *
    retrieval_budget), 1)`` exactly, estimate the next ``min(round(m * estimation_budget),
    m - nprobe)``, drop the rest (``m`` counts every cluster; ties: the lowest id).

    Parameters (the paper's defaults, Fig. 18): ``retrieval_budget`` 0.018,
    ``estimation_budget`` 0.232.

    Invariants checked by the property tests: the contract's rules
    (:func:`~schedlab.contract.retrieval.validate_zones`); every retrieved cluster scores at
    least every estimated one, which scores at least every dropped one; a retrieval budget of 1
    gives exact attention.
    """
    where = "retroinfer_zones"
    rb = check_fraction(retrieval_budget, "retrieval_budget", where)
    eb = check_fraction(estimation_budget, "estimation_budget", where, open_low=False)
    idx = view.index
    nprobe, n_est = zone_sizes(idx.n_clusters, rb, eb)
    score = np.where(idx.sizes > 0, idx.centroids @ view.query, -np.inf)
    order = np.argsort(-score, kind="stable")
    order = order[np.isfinite(score[order])]
    return Zones(retrieval=order[:nprobe], estimation=order[nprobe:nprobe + n_est])


def lru_victims(view: CacheView, /) -> np.ndarray:
    """RetroInfer's replacement (§5, the best of the policies the paper tried; code
    ``wave_buffer_cpu.cpp``): evict the least recently used clusters, as many as the step's
    admissions need (ties: earlier admitted, then lower id).

    >>> v = CacheView(step=5, capacity=3, resident=[7, 8, 9], last_used=[4, 2, 5],
    ...               admitted=[0, 1, 2], requested=[9, 3], admitting=[3])
    >>> lru_victims(v).tolist()
    [8]
    """
    order = np.lexsort((view.resident, view.admitted, view.last_used))
    return view.resident[order[: view.must_evict]]


def fifo_victims(view: CacheView, /) -> np.ndarray:
    """First in, first out: evict the earliest admitted clusters (ties: lower id).

    >>> v = CacheView(step=5, capacity=3, resident=[7, 8, 9], last_used=[4, 2, 5],
    ...               admitted=[0, 1, 2], requested=[9, 3], admitting=[3])
    >>> fifo_victims(v).tolist()
    [7]
    """
    order = np.lexsort((view.resident, view.admitted))
    return view.resident[order[: view.must_evict]]
