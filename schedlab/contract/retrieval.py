"""The retrieval-attention contract (RetroInfer): the clustered KV index a decode step reads
(:class:`WaveIndex`), what a zone policy sees (:class:`RetrievalView`) and answers
(:class:`Zones`), the rules every answer keeps (:func:`validate_zones`), the attention the zones
define (:func:`zone_attention`), and the GPU cache's view and rules (:class:`CacheView`,
:func:`validate_eviction`): written once for the policies, the engine, the optimum and the tests.

RetroInfer (arXiv 2505.02922) keeps the KV of a long context as a vector store: the keys of
each head are clustered (the *wave index*: a centroid, a size and a value sum per cluster),
a few tokens stay exact (the *steady zone*: 4 sink and 64 recent tokens), and each decode step
splits the clusters by their centroid's score into three zones: *retrieval* (exact attention
over their tokens), *estimation* (every token of the cluster taken as its centroid) and
dropped (the rest).

>>> import numpy as np
>>> keys = np.array([[1.0], [1.0], [-1.0], [-1.0], [0.0]])
>>> idx = WaveIndex.from_assignment(keys, keys, np.array([0, 0, 1, 1, -1]))
>>> idx.sizes.tolist(), idx.centroids.ravel().tolist(), idx.steady_tokens().tolist()
([2, 2], [1.0, -1.0], [4])
>>> v = RetrievalView(query=np.array([2.0]), index=idx)
>>> z = Zones(retrieval=np.array([0]), estimation=np.array([1]))
>>> validate_zones(v, z)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CacheView",
    "InvalidEviction",
    "InvalidZones",
    "RetrievalView",
    "WaveIndex",
    "Zones",
    "access_trace",
    "cluster_count",
    "cluster_masses",
    "validate_eviction",
    "validate_zones",
    "zone_attention",
    "zone_sizes",
]


def _ro(a: Any, dtype: Any, name: str, ndim: int) -> np.ndarray:
    raw = np.asarray(a)
    if np.dtype(dtype).kind == "i" and raw.size and raw.dtype.kind not in "iub":
        if raw.dtype.kind != "f" or not np.isfinite(raw).all() or (raw != np.round(raw)).any():
            raise ValueError(f"{name} must hold integers. Got {raw.ravel()[:5].tolist()}.")
    arr = np.array(raw, dtype=dtype, copy=True)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional. Got shape {arr.shape}.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite. Got a non-finite entry at "
                         f"{np.argwhere(~np.isfinite(arr))[0].tolist()}.")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class WaveIndex:
    """One head's clustered KV: per cluster its ``centroids`` ``(m, d)`` (the mean key),
    ``sizes`` ``(m,)`` and ``value_sums`` ``(m, dv)``; ``cluster_of`` ``(n,)`` gives each token's
    cluster, ``-1`` for the steady zone (tokens kept exact). Build it from an assignment with
    :meth:`from_assignment` (the rule: centroids are means, value sums are sums)."""

    centroids: np.ndarray
    sizes: np.ndarray
    value_sums: np.ndarray
    cluster_of: np.ndarray

    def __post_init__(self) -> None:
        c = _ro(self.centroids, np.float64, "WaveIndex.centroids", 2)
        s = _ro(self.sizes, np.int64, "WaveIndex.sizes", 1)
        vs = _ro(self.value_sums, np.float64, "WaveIndex.value_sums", 2)
        of = _ro(self.cluster_of, np.int64, "WaveIndex.cluster_of", 1)
        m = c.shape[0]
        if s.shape[0] != m or vs.shape[0] != m:
            raise ValueError(f"WaveIndex: {m} centroids but {s.shape[0]} sizes and "
                             f"{vs.shape[0]} value sums.")
        if ((of < -1) | (of >= m)).any():
            raise ValueError(f"WaveIndex.cluster_of must hold cluster ids in [0, {m}) or -1.")
        if not np.array_equal(np.bincount(of[of >= 0], minlength=m), s):
            raise ValueError("WaveIndex.sizes must count the tokens cluster_of puts in each "
                             "cluster.")
        for name, val in (("centroids", c), ("sizes", s), ("value_sums", vs),
                          ("cluster_of", of)):
            object.__setattr__(self, name, val)

    @classmethod
    def from_assignment(cls, keys: Any, values: Any, cluster_of: Any,
                        n_clusters: int | None = None) -> WaveIndex:
        """The index of ``keys`` and ``values`` under an assignment (``-1``: steady zone), with
        ``n_clusters`` clusters (default: one past the largest id; the others are empty)."""
        k = np.asarray(keys, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        of = np.asarray(cluster_of, dtype=np.int64)
        if k.ndim != 2 or v.ndim != 2 or k.shape[0] != v.shape[0] or of.shape != (k.shape[0],):
            raise ValueError(f"WaveIndex.from_assignment needs keys (n, d), values (n, dv) and "
                             f"cluster_of (n,). Got {k.shape}, {v.shape} and {of.shape}.")
        m = int(of.max()) + 1 if of.shape[0] and of.max() >= 0 else 0
        if n_clusters is not None:
            if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) \
                    or n_clusters < m:
                raise ValueError(f"The 'n_clusters' parameter of WaveIndex.from_assignment must "
                                 f"be an int >= {m} (the ids used). Got {n_clusters!r}.")
            m = int(n_clusters)
        inside = of >= 0
        sizes = np.bincount(of[inside], minlength=m)
        sums = np.zeros((m, k.shape[1]))
        np.add.at(sums, of[inside], k[inside])
        vsum = np.zeros((m, v.shape[1]))
        np.add.at(vsum, of[inside], v[inside])
        cent = sums / np.maximum(sizes, 1)[:, None]
        return cls(centroids=cent, sizes=sizes, value_sums=vsum, cluster_of=of)

    @property
    def n_clusters(self) -> int:
        """Clusters ``m``."""
        return int(self.centroids.shape[0])

    def steady_tokens(self) -> np.ndarray:
        """Tokens kept exact on every step."""
        return np.flatnonzero(self.cluster_of < 0)

    def members(self, clusters: Any) -> np.ndarray:
        """The tokens of ``clusters``, ascending."""
        return np.flatnonzero(np.isin(self.cluster_of, np.asarray(clusters, dtype=np.int64)))


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalView:
    """What a zone policy sees at one decode step of one head: the ``query`` ``(d,)`` and the
    head's :class:`WaveIndex`."""

    query: np.ndarray
    index: WaveIndex

    def __post_init__(self) -> None:
        q = _ro(self.query, np.float64, "RetrievalView.query", 1)
        if q.shape[0] != self.index.centroids.shape[1]:
            raise ValueError(f"RetrievalView.query has {q.shape[0]} dimensions, the index's "
                             f"centroids {self.index.centroids.shape[1]}.")
        object.__setattr__(self, "query", q)


@dataclass(frozen=True, slots=True)
class Zones:
    """A zone policy's answer: the clusters attended exactly (``retrieval``) and those
    estimated from their centroid (``estimation``); every other cluster is dropped."""

    retrieval: np.ndarray
    estimation: np.ndarray

    def __post_init__(self) -> None:
        for name in ("retrieval", "estimation"):
            a = np.array(getattr(self, name), copy=True)
            if a.ndim != 1 or (a.shape[0] and a.dtype.kind not in "iu"):
                raise ValueError(f"Zones.{name} must be a one-dimensional array of cluster ids. "
                                 f"Got dtype {a.dtype} and shape {a.shape}.")
            a = a.astype(np.int64)
            a.flags.writeable = False
            object.__setattr__(self, name, a)


class InvalidZones(ValueError):
    """Zones break a rule of the contract; ``rule`` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def validate_zones(view: RetrievalView, zones: Zones) -> None:
    """Check ``zones`` against ``view``; raises :class:`InvalidZones` naming the rule.

    Rules: cluster ids in range; no cluster twice; retrieval and estimation disjoint (with the
    steady zone and the dropped clusters they partition the tokens, RetroInfer's zone
    partition); at least one retrieved cluster when the index has a non-empty one.

    >>> idx = WaveIndex.from_assignment([[0.0]] * 2, [[0.0]] * 2, [0, 1])
    >>> validate_zones(RetrievalView(query=[1.0], index=idx),
    ...                Zones(retrieval=np.array([0]), estimation=np.array([0])))
    Traceback (most recent call last):
    ...
    schedlab.contract.retrieval.InvalidZones: overlap: cluster 0 is retrieved and estimated
    """
    m = view.index.n_clusters
    for name, ids in (("retrieval", zones.retrieval), ("estimation", zones.estimation)):
        bad = ids[(ids < 0) | (ids >= m)]
        if bad.shape[0]:
            raise InvalidZones("out of range", f"{name} holds cluster {int(bad[0])}, not in "
                                               f"[0, {m})")
        if np.unique(ids).shape[0] != ids.shape[0]:
            raise InvalidZones("repeated cluster", f"{name} lists a cluster twice")
    both = np.intersect1d(zones.retrieval, zones.estimation)
    if both.shape[0]:
        raise InvalidZones("overlap", f"cluster {int(both[0])} is retrieved and estimated")
    if (view.index.sizes > 0).any() and not (view.index.sizes[zones.retrieval] > 0).any():
        raise InvalidZones("nothing retrieved", "at least one non-empty cluster must be "
                                                "retrieved")


def cluster_count(clustered_tokens: int, *, cluster_tokens: int = 16,
                  segment_tokens: int = 8192) -> tuple[int, int]:
    """``(clusters, segments)`` of RetroInfer's index over ``clustered_tokens`` keys: segments
    of about ``segment_tokens``, about ``cluster_tokens`` keys a cluster, the count a multiple of
    ``lcm(8, segments)`` (code ``config.py``). The one rule of the index's size, for the index
    builder and the cost model.

    >>> cluster_count(120_000 - 68), cluster_count(131_072 - 68)
    ((7440, 15), (8192, 16))
    """
    n = int(clustered_tokens)
    if n < 0 or cluster_tokens < 1 or segment_tokens < 1:
        raise ValueError(f"cluster_count needs clustered_tokens >= 0 and cluster_tokens, "
                         f"segment_tokens >= 1. Got {clustered_tokens!r}, {cluster_tokens!r}, "
                         f"{segment_tokens!r}.")
    if n == 0:
        return 0, 0
    seg = max(round(n / segment_tokens), 1)
    step = math.lcm(8, seg)
    return max(step, round(n / cluster_tokens / step) * step), seg


def zone_sizes(n_clusters: int, retrieval_budget: float,
               estimation_budget: float) -> tuple[int, int]:
    """``(nprobe, n_est)``: clusters retrieved, ``max(round(m * retrieval_budget), 1)``, and
    estimated, ``min(round(m * estimation_budget), m - nprobe)`` (code
    ``retroinfer_cache.py``); ``(0, 0)`` without clusters. The one rule of the zones' sizes.

    >>> zone_sizes(7440, 0.018, 0.232)
    (134, 1726)
    """
    m = int(n_clusters)
    if m <= 0:
        return 0, 0
    nprobe = min(max(round(m * retrieval_budget), 1), m)
    return nprobe, min(round(m * estimation_budget), m - nprobe)


def _logits(q: np.ndarray, k: np.ndarray, scale: float | None) -> np.ndarray:
    return (k @ q) * (1.0 / np.sqrt(q.shape[0]) if scale is None else scale)


def _rows(view: RetrievalView, a: Any, name: str, where: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    n = view.index.cluster_of.shape[0]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"The {name!r} parameter of {where} must have one row per token of the "
                         f"index ({n}). Got shape {arr.shape}.")
    return arr


def zone_attention(view: RetrievalView, keys: Any, values: Any, zones: Zones, *,
                   scale: float | None = None) -> np.ndarray:
    """RetroInfer's tripartite attention output ``(dv,)``: one softmax over the steady and
    retrieved tokens (exact) and the estimated clusters, each counted as ``size`` tokens whose
    key is its centroid: a cluster adds ``exp(q . C * scale) * value_sum`` to the numerator and
    ``size * exp(q . C * scale)`` to the normaliser (paper §4, Fig. 5). Dropped clusters add
    nothing.

    >>> keys = np.array([[1.0], [1.0], [-1.0]])
    >>> idx = WaveIndex.from_assignment(keys, [[1.0], [3.0], [5.0]], [0, 0, -1])
    >>> v = RetrievalView(query=[0.0], index=idx)
    >>> zone_attention(v, keys, [[1.0], [3.0], [5.0]], Zones(retrieval=np.array([0]),
    ...                estimation=np.array([], dtype=int))).tolist()     # all scores equal
    [3.0]
    """
    validate_zones(view, zones)
    k, v = _rows(view, keys, "keys", "zone_attention"), _rows(view, values, "values",
                                                               "zone_attention")
    idx, q = view.index, view.query
    exact = np.union1d(idx.steady_tokens(), idx.members(zones.retrieval))
    le = _logits(q, k[exact], scale)
    est = zones.estimation[idx.sizes[zones.estimation] > 0]
    lc = _logits(q, idx.centroids[est], scale)
    top = max(le.max(initial=-np.inf), lc.max(initial=-np.inf))
    we, wc = np.exp(le - top), np.exp(lc - top)
    num = we @ v[exact] + wc @ idx.value_sums[est]
    den = we.sum() + (wc * idx.sizes[est]).sum()
    return num / den


def cluster_masses(view: RetrievalView, keys: Any, *,
                   scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster, ``(exact, estimated)`` unnormalised attention mass, both divided by the same
    ``exp(max logit)``: ``sum over members of exp(q . k * scale)`` and ``size * exp(q . C *
    scale)``. Since ``C`` is the members' mean and ``exp`` is convex, Jensen's inequality gives
    ``estimated <= exact`` (the paper's accuracy bound; equal for clusters of one token).

    >>> keys = np.array([[0.0], [2.0]])
    >>> idx = WaveIndex.from_assignment(keys, keys, [0, 0])
    >>> exact, est = cluster_masses(RetrievalView(query=[1.0], index=idx), keys, scale=1.0)
    >>> bool(est[0] < exact[0])
    True
    """
    k = _rows(view, keys, "keys", "cluster_masses")
    idx, q = view.index, view.query
    inside = idx.cluster_of >= 0
    lt = _logits(q, k[inside], scale)
    lc = _logits(q, idx.centroids, scale)
    top = max(lt.max(initial=-np.inf), lc.max(initial=-np.inf))
    exact = np.bincount(idx.cluster_of[inside], np.exp(lt - top), minlength=idx.n_clusters)
    return exact, idx.sizes * np.exp(lc - top)


# ------------------------------------------------------------------------------ GPU cache
def access_trace(trace: Any, where: str) -> list[np.ndarray]:
    """A GPU cache's access trace, checked: one array of distinct cluster ids (>= 0) per decode
    step, in score order. The one rule of a trace for the cache's replay and its optimum;
    ``where`` names the caller in the ``ValueError``.

    >>> access_trace([[3, 1], []], "demo")[0].tolist()
    [3, 1]
    >>> access_trace([[1, 1]], "demo")
    Traceback (most recent call last):
    ...
    ValueError: The 'trace' parameter of demo: trace[0] requests a cluster twice.
    """
    try:
        steps = list(trace)
    except TypeError:
        raise ValueError(f"The 'trace' parameter of {where} must be a sequence of arrays of "
                         f"cluster ids, one per step. Got {trace!r:.80}.") from None
    out = []
    for t, req in enumerate(steps):
        a = np.asarray(req)
        if a.shape[0:1] == (0,) and a.ndim == 1:
            out.append(np.zeros(0, dtype=np.int64))
            continue
        if a.ndim != 1 or a.dtype.kind not in "iu" or a.min() < 0:
            raise ValueError(f"The 'trace' parameter of {where}: trace[{t}] must be a "
                             f"one-dimensional array of cluster ids >= 0. Got {req!r:.80}.")
        if np.unique(a).shape[0] != a.shape[0]:
            raise ValueError(f"The 'trace' parameter of {where}: trace[{t}] requests a cluster "
                             f"twice.")
        out.append(a.astype(np.int64))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheView:
    """What a replacement policy of RetroInfer's GPU cache sees after a decode step: the cache's
    ``capacity`` (clusters), the clusters ``resident`` with the step each was ``last_used`` and
    ``admitted`` at, the clusters ``requested`` this step, and ``admitting``, the step's misses
    to insert (at most ``capacity``). The policy answers the resident clusters to evict."""

    step: int
    capacity: int
    resident: np.ndarray
    last_used: np.ndarray
    admitted: np.ndarray
    requested: np.ndarray
    admitting: np.ndarray

    def __post_init__(self) -> None:
        for name in ("resident", "last_used", "admitted", "requested", "admitting"):
            object.__setattr__(self, name, _ro(getattr(self, name), np.int64,
                                               f"CacheView.{name}", 1))
        if not self.resident.shape == self.last_used.shape == self.admitted.shape:
            raise ValueError("CacheView.resident, last_used and admitted must have one length.")
        for name in ("step", "capacity"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"CacheView.{name} must be an int >= 0. Got {v!r}.")
        if np.unique(self.resident).shape[0] != self.resident.shape[0]:
            raise ValueError("CacheView.resident lists a cluster twice.")
        if not np.isin(self.admitting, self.requested).all() or \
                np.isin(self.admitting, self.resident).any():
            raise ValueError("CacheView.admitting must be requested clusters not resident (the "
                             "step's misses).")
        if self.admitting.shape[0] > self.capacity:
            raise ValueError(f"CacheView.capacity must be >= 0 and hold every admitted cluster. "
                             f"Got {self.capacity} for {self.admitting.shape[0]}.")

    @property
    def must_evict(self) -> int:
        """How many resident clusters must go to make room."""
        return max(0, self.resident.shape[0] + self.admitting.shape[0] - self.capacity)


class InvalidEviction(ValueError):
    """An eviction breaks a rule of the contract; ``rule`` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def validate_eviction(view: CacheView, victims: Any) -> None:
    """Check a replacement policy's ``victims``: resident clusters, none twice, exactly
    :attr:`CacheView.must_evict` of them (a cache never holds more than its capacity, and never
    evicts without need).

    >>> v = CacheView(step=3, capacity=2, resident=[4, 5], last_used=[1, 2], admitted=[0, 1],
    ...               requested=[6], admitting=[6])
    >>> validate_eviction(v, [7])
    Traceback (most recent call last):
    ...
    schedlab.contract.retrieval.InvalidEviction: not resident: cluster 7 is not in the cache
    """
    vic = np.asarray(victims, dtype=np.int64).ravel()
    missing = np.setdiff1d(vic, view.resident)
    if missing.shape[0]:
        raise InvalidEviction("not resident", f"cluster {int(missing[0])} is not in the cache")
    if np.unique(vic).shape[0] != vic.shape[0]:
        raise InvalidEviction("repeated victim", "a cluster is evicted twice")
    if vic.shape[0] != view.must_evict:
        raise InvalidEviction("wrong count", f"evicted {vic.shape[0]}, the admission needs "
                                             f"exactly {view.must_evict}")
