"""Real and synthetic vectors for graph ANNS (AverSearch, arXiv 2504.20461; issue 18), offline:

- :func:`digits_vectors`: scikit-learn's bundled handwritten digits (1,797 x 64), for unit tests;
- :func:`image_descriptors`: SIFT-like 128-d descriptors (``kind="sift"``: gradient-orientation
  histograms over 4 x 4 cells of a 16 x 16 window, 8 bins each, normalised, clipped at 0.2 and
  normalised again, scaled to 0..255 as SIFT stores them) or raw 8 x 8 x 3 colour patches
  (``kind="patch"``, 192-d), computed at seeded random keypoints of scikit-learn's two bundled
  photographs (BSD-licensed with scikit-learn) at two scales [recon: SIFT's keypoint detector is
  replaced by random keypoints];
- :func:`clustered_vectors`: Gaussian clusters at any dimension (128, 960 and 1,536 for the
  bandwidth sweep).

Each returns a :class:`VectorSet`: base vectors, held-out queries and, on demand, the exact
nearest neighbours (:func:`exact_knn`, blockwise squared L2 with one matrix product per block).

>>> v = digits_vectors()
>>> v.base.shape, v.queries.shape
((1697, 64), (100, 64))
>>> gt = v.ground_truth(10)
>>> gt.shape, bool((gt[:, 0] >= 0).all())
((100, 10), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedlab.datasets.arrivals import as_generator
from schedlab.errors import check_array, check_positive_float, check_positive_int

__all__ = ["VectorSet", "clustered_vectors", "digits_vectors", "exact_knn", "image_descriptors"]


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, slots=True)
class VectorSet:
    """Base vectors (``n x d`` float32), held-out queries (``q x d``) and a name."""

    base: np.ndarray
    queries: np.ndarray
    name: str

    def __post_init__(self) -> None:
        b = check_array(self.base, "base", "VectorSet", dtype=np.float32, ndim=2)
        q = check_array(self.queries, "queries", "VectorSet", dtype=np.float32, ndim=2)
        if b.shape[0] == 0 or q.shape[1] != b.shape[1]:
            raise ValueError(f"The 'queries' parameter of VectorSet must have the base's "
                             f"dimension {b.shape[1]} (and the base at least one vector). Got "
                             f"{q.shape} against {b.shape}.")
        object.__setattr__(self, "base", _ro(b))
        object.__setattr__(self, "queries", _ro(q))

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])

    def ground_truth(self, k: int = 10) -> np.ndarray:
        """The exact ``k`` nearest base vectors of every query (ids, nearest first)."""
        return exact_knn(self.base, self.queries, k)[0]


def exact_knn(base: np.ndarray, queries: np.ndarray, k: int, *, block: int = 1024,
              exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest ``base`` vectors of each query by squared L2 (``|q|^2 - 2 q.b + |b|^2``,
    one matrix product per block of ``block`` queries), nearest first, ties by id:
    ``(ids, squared distances)``. ``exclude_self``: the queries are the base itself, and a
    vector is not its own neighbour.

    >>> b = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]], dtype=np.float32)
    >>> exact_knn(b, b, 1, exclude_self=True)[0].ravel().tolist()
    [1, 0, 1]
    """
    where = "exact_knn"
    kk = check_positive_int(k, "k", where)
    b = np.asarray(base, dtype=np.float32)
    q = np.asarray(queries, dtype=np.float32)
    n = b.shape[0]
    limit = n - 1 if exclude_self else n
    if kk > limit:
        raise ValueError(f"The 'k' parameter of {where} must be at most {limit} (the base has "
                         f"{n} vectors). Got {k}.")
    bn = (b.astype(np.float64) ** 2).sum(axis=1)
    ids = np.empty((q.shape[0], kk), dtype=np.int64)
    dist = np.empty((q.shape[0], kk), dtype=np.float32)
    for s in range(0, q.shape[0], block):
        qb = q[s:s + block]
        d = (qb.astype(np.float64) ** 2).sum(axis=1)[:, None] - 2.0 * (qb @ b.T) + bn[None, :]
        if exclude_self:
            d[np.arange(qb.shape[0]), np.arange(s, s + qb.shape[0])] = np.inf
        part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        pd = np.take_along_axis(d, part, axis=1)
        order = np.lexsort((part, pd), axis=1)  # by distance, ties by id
        ids[s:s + block] = np.take_along_axis(part, order, axis=1)
        dist[s:s + block] = np.maximum(np.take_along_axis(pd, order, axis=1), 0.0)
    return ids, dist


def _split(x: np.ndarray, n_queries: int, rng: np.random.Generator,
           name: str) -> VectorSet:
    """Hold out ``n_queries`` random rows as queries."""
    idx = rng.permutation(x.shape[0])
    return VectorSet(base=x[np.sort(idx[n_queries:])], queries=x[np.sort(idx[:n_queries])],
                     name=name)


def digits_vectors(n_queries: int = 100, *, seed: int = 0) -> VectorSet:
    """scikit-learn's digits (1,797 images of 8 x 8 pixels, values 0..16) as 64-d vectors,
    ``n_queries`` of them held out as queries."""
    from sklearn.datasets import load_digits

    q = check_positive_int(n_queries, "n_queries", "digits_vectors")
    x = load_digits().data.astype(np.float32)
    if q >= x.shape[0]:
        raise ValueError(f"The 'n_queries' parameter of digits_vectors must be below "
                         f"{x.shape[0]}. Got {n_queries}.")
    return _split(x, q, as_generator(seed, "digits_vectors"), "digits")


def _gray_pyramid() -> list[np.ndarray]:
    """The two photographs in grey (float), each at full and half resolution."""
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:
        g = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        out.append(g)
        h = g[: g.shape[0] // 2 * 2, : g.shape[1] // 2 * 2]
        out.append(h.reshape(h.shape[0] // 2, 2, h.shape[1] // 2, 2).mean(axis=(1, 3)))
    return out


def _sift(gray: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """SIFT-like descriptors of the 16 x 16 windows at top-left corners ``(ys, xs)``."""
    gy, gx = np.gradient(gray)
    mag = np.hypot(gx, gy)
    ori = np.mod(np.arctan2(gy, gx), 2 * np.pi)
    off = np.arange(16)
    rows = ys[:, None, None] + off[None, :, None]
    cols = xs[:, None, None] + off[None, None, :]
    m = mag[rows, cols]
    b = np.minimum((ori[rows, cols] / (2 * np.pi) * 8).astype(np.int64), 7)
    g = np.exp(-((off - 7.5) ** 2) / (2 * 8.0 ** 2))
    m = m * g[None, :, None] * g[None, None, :]  # SIFT's Gaussian window (sigma half the width)
    cell = (off // 4)[:, None] * 4 + (off // 4)[None, :]  # 4 x 4 cells
    n = ys.shape[0]
    flat = (np.arange(n)[:, None, None] * 128 + cell[None] * 8 + b).ravel()
    hist = np.bincount(flat, weights=m.ravel(), minlength=n * 128).reshape(n, 128)
    d: np.ndarray = hist / np.maximum(np.linalg.norm(hist, axis=1, keepdims=True), 1e-12)
    d = np.minimum(d, 0.2)
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    return np.minimum(np.round(d * 512.0), 255.0)


def image_descriptors(n: int = 32_000, n_queries: int = 1_000, *, kind: str = "sift",
                      seed: int = 0) -> VectorSet:
    """``n`` base and ``n_queries`` query descriptors from the two bundled photographs (see the
    module docstring): ``kind="sift"`` 128-d, ``"patch"`` 192-d colour patches.

    >>> v = image_descriptors(2_000, 100, seed=0)
    >>> v.dim, v.base.shape[0], float(v.base.max()) <= 255.0
    (128, 2000, True)
    """
    where = "image_descriptors"
    n = check_positive_int(n, "n", where)
    nq = check_positive_int(n_queries, "n_queries", where)
    if kind not in ("sift", "patch"):
        raise ValueError(f"The 'kind' parameter of {where} must be 'sift' or 'patch'. Got "
                         f"{kind!r} instead.")
    rng = as_generator(seed, where)
    total = n + nq
    if kind == "patch":
        from sklearn.datasets import load_sample_images

        images = [img.astype(np.float32) for img in load_sample_images().images]
        which = rng.integers(0, len(images), total)
        out = np.empty((total, 192), dtype=np.float32)
        for i, img in enumerate(images):
            sel = np.flatnonzero(which == i)
            ys = rng.integers(0, img.shape[0] - 8, sel.shape[0])
            xs = rng.integers(0, img.shape[1] - 8, sel.shape[0])
            off = np.arange(8)
            patch = img[ys[:, None, None] + off[None, :, None], xs[:, None, None]
                        + off[None, None, :]]
            out[sel] = patch.reshape(sel.shape[0], 192)
    else:
        levels = _gray_pyramid()
        which = rng.integers(0, len(levels), total)
        out = np.empty((total, 128), dtype=np.float32)
        for i, g in enumerate(levels):
            sel = np.flatnonzero(which == i)
            ys = rng.integers(0, g.shape[0] - 16, sel.shape[0])
            xs = rng.integers(0, g.shape[1] - 16, sel.shape[0])
            out[sel] = _sift(g, ys, xs)
    return _split(out, nq, rng, f"image-{kind}")


def clustered_vectors(n: int, dim: int, n_queries: int = 1_000, *, clusters: int = 64,
                      spread: float = 1.5, intrinsic_dim: int = 24, seed: int = 0) -> VectorSet:
    """``n`` base and ``n_queries`` query vectors in ``dim`` dimensions from ``clusters``
    Gaussian clusters in an ``intrinsic_dim``-dimensional latent space (centres uniform in the
    unit cube, standard deviation ``spread / sqrt(intrinsic_dim)`` per coordinate), mapped to
    ``dim`` dimensions by a random Gaussian matrix (scaled to keep lengths), plus noise of
    ``0.01 / sqrt(dim)`` per coordinate. Learned embeddings have a low intrinsic dimension
    whatever their width, which is what makes their nearest neighbours meaningful and a graph
    search converge; the width sets the bytes a search reads per vertex. ``intrinsic_dim=dim``
    gives isotropic clusters of full dimension, where nearest neighbours barely differ from
    the rest of their cluster. The default ``spread`` lets clusters overlap as embeddings do:
    well separated clusters (``spread=0.3``) leave a pruned graph few edges between them, and a
    search from the medoid stays in the entry's cluster (recall@10 about 0.3 on 8,000 vectors
    at 960 dimensions, against 0.98 at ``beam_width=16`` with the default).

    >>> clustered_vectors(500, 960, 20, seed=1).dim
    960
    """
    where = "clustered_vectors"
    n = check_positive_int(n, "n", where)
    d = check_positive_int(dim, "dim", where)
    nq = check_positive_int(n_queries, "n_queries", where)
    k = check_positive_int(clusters, "clusters", where)
    r = check_positive_int(intrinsic_dim, "intrinsic_dim", where)
    spread = check_positive_float(spread, "spread", where)
    rng = as_generator(seed, where)
    centres = rng.uniform(0.0, 1.0, (k, r))
    label = rng.integers(0, k, n + nq)
    z = centres[label] + rng.normal(0.0, spread / np.sqrt(r), (n + nq, r))
    x = z @ (rng.normal(0.0, 1.0, (r, d)) / np.sqrt(d)) + rng.normal(0.0, 0.01 / np.sqrt(d),
                                                                       (n + nq, d))
    return _split(x.astype(np.float32), nq, rng, f"clustered-{d}d")
