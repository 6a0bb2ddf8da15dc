"""scikit-learn compatible output-length estimators.

Every estimator here follows scikit-learn's contract (``fit(X, y)`` returns ``self``, ``predict``
after fitting, parameters set in ``__init__`` and checked in ``fit``, fitted state in attributes
ending in ``_``) and passes its ``parametrize_with_checks`` suite (``tests/predictors``). ``X`` is a
2-D numeric matrix, typically :func:`schedlab.predictors.length_features`; ``y`` holds true output
lengths in tokens (finite, ``>= 0``; a negative or NaN length raises ``ValueError`` naming ``y``).
Policies take the *predictions* as plain arrays, never an estimator.

============================  =================================================================
name (:data:`PREDICTORS`)     what it predicts
============================  =================================================================
``"regressor"``               :class:`LengthRegressor`: the length (LightGBM or sklearn boosting)
``"bucket-classifier"``       :class:`LengthBucketClassifier`: a length bucket, or its median
``"ranker"``                  :class:`LengthRanker`: a score whose order is the length order
``"history-percentile"``      :class:`HistoryPercentile`: a percentile of past lengths (StreamRL)
``"group-context"``           :class:`GroupContextEstimator`: the longest finished sibling (Seer)
``"noisy-oracle"``            :class:`NoisyOracle`: the true length with log-normal error
============================  =================================================================

LightGBM is imported on the first ``fit`` that needs it, never on import. LightGBM backends
run single-threaded (``n_jobs=1``) unless given ``n_jobs``: sweeps run one process per core
(joblib), and LightGBM's OpenMP threads on an oversubscribed machine can turn a 0.1 s fit into
20 s (measured on the shared 2-core machine). Pass ``n_jobs=2`` (or more) on an idle machine.

References
----------
StreamRL, arXiv 2504.15930 (2025): an output-length *ranker* (only the order matters),
reported to recall about 87% of the longest 20% of samples (the figure two secondary summaries
agree on; see ``shared/papers``), and history percentiles (p90 for the long-tail pool, p50 for
the regular pool) as length proxies.
Seer, arXiv 2511.14617 (2025), §3.3 context-aware scheduling: a group's length estimate is the
longest finished response of the group, ``max_tokens`` until one finishes.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.uniform(0, 1, size=(200, 2))
>>> y = np.round(1000 * X[:, 0] + 10)
>>> reg = make_predictor("regressor", backend="hist-gradient-boosting").fit(X, y)
>>> bool(np.corrcoef(reg.predict(X), y)[0, 1] > 0.9)
True
>>> HistoryPercentile(q=50).fit(X, y).predict(X[:2]).tolist() == [np.percentile(y, 50)] * 2
True
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from numbers import Integral, Real
from types import MappingProxyType
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from schedlab.errors import check_array, unknown_name_error
from schedlab.predictors.metrics import kendall_tau

__all__ = [
    "LengthRegressor",
    "LengthBucketClassifier",
    "LengthRanker",
    "HistoryPercentile",
    "GroupContextEstimator",
    "NoisyOracle",
    "group_context_estimate",
    "PREDICTORS",
    "make_predictor",
    "LIGHTGBM_MAX_QUERY_ROWS",
]

#: LightGBM refuses a lambdarank query of more rows than this ("Number of rows ... exceeds upper
#: limit of 10000 for a query", LightGBM 4.x); :class:`LengthRanker` splits larger queries.
LIGHTGBM_MAX_QUERY_ROWS = 10_000


# --------------------------------------------------------------------------- shared helpers
def _lengths(y: Any, where: str, *, name: str = "y") -> np.ndarray:
    """``y`` as a float64 array of lengths: finite and ``>= 0`` (ValueError naming ``name``)."""
    return check_array(y, name, where, dtype=np.float64, min_value=0.0)


def _choice(value: object, name: str, where: str, known: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in known:
        if isinstance(value, str):
            raise unknown_name_error(f"{where} {name}", value, known)
        raise ValueError(
            f"The {name!r} parameter of {where} must be one of "
            f"{', '.join(map(repr, known))}. Got {value!r} instead."
        )
    return value


def _int_in(value: object, low: int, high: int | None, name: str, where: str) -> int:
    ok = isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))
    v = int(value) if ok else low - 1  # type: ignore[call-overload]
    if v < low or (high is not None and v > high):
        top = "inf)" if high is None else f"{high}]"
        raise ValueError(
            f"The {name!r} parameter of {where} must be an int in [{low}, {top}. "
            f"Got {value!r} instead."
        )
    return v


def _real_in(value: object, low: float, high: float, name: str, where: str) -> float:
    ok = isinstance(value, Real) and not isinstance(value, (bool, np.bool_))
    v = float(value) if ok else math.nan  # type: ignore[arg-type]
    if not (low <= v <= high):
        raise ValueError(
            f"The {name!r} parameter of {where} must be a float in [{low:g}, {high:g}]. "
            f"Got {value!r} instead."
        )
    return v


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray, default: float) -> np.ndarray:
    """``values`` at the positions of ``query`` in the sorted ``keys``; ``default`` elsewhere."""
    out = np.full(query.shape[0], default, dtype=np.float64)
    if keys.size:
        pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
        hit = keys[pos] == query
        out[hit] = values[pos[hit]]
    return out


class _BackendParams(BaseEstimator):
    """Keyword parameters passed through to a backend model, kept by ``get_params``/``clone``
    (the way LightGBM's own estimators keep theirs)."""

    def __init__(self, **params: Any) -> None:
        self._backend_params = dict(params)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        out = super().get_params(deep=deep)
        out.update(self._backend_params)
        return out

    def set_params(self, **params: Any) -> _BackendParams:
        own = set(self._get_param_names())
        extra = {k: v for k, v in params.items() if k not in own}
        self._backend_params = {**self._backend_params, **extra}
        super().set_params(**{k: v for k, v in params.items() if k in own})
        return self

    def _make_backend(self, kind: str, backend: str, random_state: Any, **fixed: Any) -> Any:
        """A new backend model of ``kind`` ("regressor", "classifier", "ranker")."""
        params = {**fixed, **self._backend_params}
        where = type(self).__name__
        try:
            if backend == "lightgbm":
                import lightgbm

                cls = {"regressor": lightgbm.LGBMRegressor, "classifier": lightgbm.LGBMClassifier,
                       "ranker": lightgbm.LGBMRanker}[kind]
                return cls(**{"random_state": random_state, "verbose": -1, "n_jobs": 1,
                              **params})
            if backend == "hist-gradient-boosting":
                from sklearn.ensemble import (
                    HistGradientBoostingClassifier,
                    HistGradientBoostingRegressor,
                )

                hgb = (HistGradientBoostingRegressor if kind == "regressor"
                       else HistGradientBoostingClassifier)
                return hgb(**{"random_state": random_state, **params})
            from sklearn.linear_model import Ridge

            return Ridge(**params)
        except TypeError as exc:  # an unknown keyword of the backend
            raise ValueError(f"{where}(backend={backend!r}) does not take {exc}.") from None


# --------------------------------------------------------------------------- regression
class LengthRegressor(RegressorMixin, _BackendParams):
    """Regress output length on request features (log target by default).

    Parameters
    ----------
    backend : ``"lightgbm"`` (:class:`lightgbm.LGBMRegressor`, ``verbose=-1``),
        ``"hist-gradient-boosting"`` (:class:`sklearn.ensemble.HistGradientBoostingRegressor`)
        or ``"linear"`` (:class:`sklearn.linear_model.Ridge`).
    log_target : fit ``log1p(y)`` and predict ``expm1`` of the model's output. Lengths are
        heavy-tailed: on the log scale the squared loss weighs a 2x error the same at 50 and at
        5,000 tokens, and the prediction is close to the conditional *median* length.
    random_state : seed of the backend (ignored by ``"linear"``).
    **params : passed to the backend model (e.g. ``n_estimators=200``, ``max_iter=200``).

    Predictions are clipped to ``>= 0``.

    >>> import numpy as np
    >>> X = np.arange(100.0)[:, None]
    >>> y = 3 * X[:, 0] + 5
    >>> r = LengthRegressor(backend="linear", log_target=False).fit(X, y)
    >>> np.round(r.predict([[10.0], [-100.0]]), 1).tolist()
    [35.0, 0.0]
    """

    _BACKENDS = ("lightgbm", "hist-gradient-boosting", "linear")

    def __init__(
        self,
        backend: str = "lightgbm",
        log_target: bool = True,
        random_state: int | None = 0,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.backend = backend
        self.log_target = log_target
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> LengthRegressor:
        """Fit on features ``X`` (n, p) and true lengths ``y`` (n,)."""
        where = "LengthRegressor.fit"
        backend = _choice(self.backend, "backend", "LengthRegressor", self._BACKENDS)
        X, y = validate_data(self, X, y, y_numeric=True)
        y = _lengths(y, where)
        target = np.log1p(y) if self.log_target else y
        self.estimator_ = self._make_backend("regressor", backend, self.random_state)
        self.estimator_.fit(X, target)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted output lengths (float64, ``>= 0``)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        pred = np.asarray(self.estimator_.predict(X), dtype=np.float64)
        if self.log_target:
            pred = np.expm1(np.minimum(pred, 700.0))
        return np.maximum(pred, 0.0)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


# --------------------------------------------------------------------------- buckets
class LengthBucketClassifier(_BackendParams):
    """Classify requests into output-length buckets.

    Bucket ``k`` holds the lengths ``edges[k-1] <= y < edges[k]`` (bucket 0: ``y < edges[0]``;
    the last bucket, ``len(edges)``: ``y >= edges[-1]``), as ``numpy.searchsorted(edges, y,
    side="right")``. A bucket classifier is the usual cheap proxy model (a small BERT classifier
    with five buckets produced ``datasets/length_stats/ssjf_*``); ``predict`` returns the bucket
    index and ``predict_length`` the median training length of the predicted bucket.

    It is not a scikit-learn *classifier*: ``fit`` takes lengths, not labels, so it declares no
    classifier tags (stratified splitting on raw lengths would be wrong).

    Parameters
    ----------
    edges : strictly increasing positive bucket boundaries in tokens.
    backend : ``"lightgbm"`` (:class:`lightgbm.LGBMClassifier`) or ``"hist-gradient-boosting"``.
    random_state : seed of the backend.
    **params : passed to the backend model.

    Attributes
    ----------
    classes_ : the buckets seen in training (sorted); ``predict`` returns only these.
    bucket_median_ : the median training length of each bucket of ``classes_``.

    >>> import numpy as np
    >>> X = np.r_[np.zeros(30), np.ones(30)][:, None]
    >>> y = np.r_[np.full(30, 20), np.full(30, 700)]
    >>> clf = LengthBucketClassifier(edges=(64, 512), backend="hist-gradient-boosting").fit(X, y)
    >>> clf.classes_.tolist(), clf.predict([[0.0], [1.0]]).tolist()
    ([0, 2], [0, 2])
    >>> clf.predict_length([[1.0]]).tolist()
    [700.0]
    """

    _BACKENDS = ("lightgbm", "hist-gradient-boosting")

    def __init__(
        self,
        edges: Sequence[float] = (64, 256, 1024, 4096, 16384),
        backend: str = "lightgbm",
        random_state: int | None = 0,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.edges = edges
        self.backend = backend
        self.random_state = random_state

    def _check_edges(self) -> np.ndarray:
        where = "LengthBucketClassifier"
        edges = check_array(self.edges, "edges", where, dtype=np.float64, min_value=0.0)
        if edges.size == 0 or np.any(edges <= 0) or np.any(np.diff(edges) <= 0):
            raise ValueError(
                f"The 'edges' parameter of {where} must be a non-empty, strictly increasing "
                f"sequence of positive lengths. Got {list(np.asarray(self.edges).tolist())!r}."
            )
        return edges

    def buckets(self, y: Any) -> np.ndarray:
        """The bucket index of each length in ``y`` (usable before fitting).

        >>> LengthBucketClassifier(edges=(10, 100)).buckets([0, 9, 10, 99, 100, 5000]).tolist()
        [0, 0, 1, 1, 2, 2]
        """
        edges = self._check_edges()
        y = _lengths(y, "LengthBucketClassifier.buckets")
        return np.searchsorted(edges, y, side="right").astype(np.int64)

    def fit(self, X: Any, y: Any) -> LengthBucketClassifier:
        """Fit on features ``X`` (n, p) and true lengths ``y`` (n,)."""
        backend = _choice(self.backend, "backend", "LengthBucketClassifier", self._BACKENDS)
        X, y = validate_data(self, X, y, y_numeric=True)
        y = _lengths(y, "LengthBucketClassifier.fit")
        self.edges_ = self._check_edges()
        labels = np.searchsorted(self.edges_, y, side="right").astype(np.int64)
        self.classes_, inverse = np.unique(labels, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(inverse))]
        self.bucket_median_ = np.array(
            [np.median(y[order[a:b]]) for a, b in pairwise(bounds)]
        )
        if self.classes_.size == 1:  # one bucket: nothing to learn, and backends refuse it
            self.estimator_ = None
        else:
            self.estimator_ = self._make_backend("classifier", backend, self.random_state)
            self.estimator_.fit(X, labels)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each bucket of ``classes_`` (columns in that order)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        if self.estimator_ is None:
            return np.ones((X.shape[0], 1))
        return np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The most likely bucket index of each row (int64)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)].astype(np.int64)

    def predict_length(self, X: Any) -> np.ndarray:
        """The median training length of each row's predicted bucket (float64)."""
        bucket = self.predict(X)
        return self.bucket_median_[np.searchsorted(self.classes_, bucket)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of the predicted buckets against the buckets of true lengths ``y``."""
        return float(np.mean(self.predict(X) == self.buckets(y)))

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.positive_only = True
        return tags


# --------------------------------------------------------------------------- ranking
class LengthRanker(_BackendParams):
    """Rank requests by output length with LightGBM's LambdaRank (StreamRL's length ranker).

    StreamRL (arXiv 2504.15930) dispatches the prompts predicted longest to a long-tail pool
    and needs only their *order*, not their lengths; it reports about 0.87 recall of the
    longest 20%. ``predict`` returns scores: higher means longer; only their order carries
    meaning (compare with :func:`schedlab.predictors.top_alpha_recall`,
    :func:`~schedlab.predictors.kendall_tau`).

    Training data for :class:`lightgbm.LGBMRanker` (``objective="lambdarank"``):

    - *Relevance labels.* LambdaRank needs small integer labels, so each row's length becomes
      a quantile level within its query: ``level = floor(n_levels * r / n_q)``, with ``r`` the
      number of rows of the query strictly shorter and ``n_q`` the query's rows. Equal lengths
      share a level; the longest ``1/n_levels`` of a query get ``n_levels - 1``. Levels are per
      query because a query is a set whose order matters (a rollout batch), and a global rule
      would be the same thing for ``group=None``. LightGBM's default gains ``2**level - 1``
      weigh the longest levels most, where StreamRL's long-tail pool is chosen.
    - *Queries.* ``group`` gives each row's query id (e.g. its rollout batch; not LightGBM's
      list of query sizes). ``group=None`` makes all rows one query. A query larger than
      ``max_query_size`` rows is shuffled (with ``random_state``) and dealt into
      ``ceil(n_q / max_query_size)`` near-equal chunks that keep the whole query's levels.
      LightGBM refuses queries above 10,000 rows (:data:`LIGHTGBM_MAX_QUERY_ROWS`), and the cost
      of a boosting round grows with query size times the truncation level. Random queries of
      ~128 rows with every position in the NDCG (``lambdarank_truncation_level`` = the query
      size, the default here) learned the global order better than larger queries in our
      experiment on rollout-style data (100,000 rows, an informative feature: top-20% recall
      0.81 against 0.77 for 10,000-row queries truncated at 30 positions), and fit in about
      10 s on one thread (``benchmarks/bench_predictors.py``).

    Parameters
    ----------
    n_levels : number of relevance levels, in [2, 31] (LightGBM's default ``label_gain`` has 31
        entries; pass your own ``label_gain`` for more).
    max_query_size : the most rows per LightGBM query, in [2, 10,000].
    random_state : seed of the chunk shuffle and of LightGBM.
    **params : passed to :class:`lightgbm.LGBMRanker` (e.g. ``n_estimators``, ``num_leaves``,
        ``lambdarank_truncation_level``).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(400, 2))
    >>> y = np.round(100 * np.exp(3 * X[:, 0]))           # length grows with feature 0
    >>> rk = LengthRanker(n_estimators=20).fit(X, y)
    >>> s = rk.predict(X)
    >>> bool(s[np.argmax(y)] > np.median(s)), rk.score(X, y) > 0.8
    (True, True)
    """

    def __init__(
        self,
        n_levels: int = 10,
        max_query_size: int = 128,
        random_state: int | None = 0,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.n_levels = n_levels
        self.max_query_size = max_query_size
        self.random_state = random_state

    def _queries(self, group: Any, n: int, where: str) -> np.ndarray:
        """Dense query index (0..Q-1) of each row."""
        if group is None:
            return np.zeros(n, dtype=np.int64)
        g = np.asarray(group)
        if g.ndim != 1 or g.shape[0] != n:
            raise ValueError(
                f"The 'group' parameter of {where} must hold one query id per row of X "
                f"({n}), not LightGBM's list of query sizes. Got shape {g.shape}."
            )
        if g.dtype.kind == "f" and not np.isfinite(g).all():
            raise ValueError(f"The 'group' parameter of {where} must be finite (no NaN).")
        return np.unique(g, return_inverse=True)[1].ravel().astype(np.int64)

    def relevance(self, y: Any, group: Any = None) -> np.ndarray:
        """The integer relevance level of each row (see the class docstring).

        >>> LengthRanker(n_levels=4).relevance([10, 40, 20, 30, 30, 5, 50, 60]).tolist()
        [0, 2, 1, 1, 1, 0, 3, 3]
        >>> LengthRanker(n_levels=2).relevance([1, 2, 3, 4], group=[0, 0, 1, 1]).tolist()
        [0, 1, 0, 1]
        """
        where = "LengthRanker.relevance"
        y = _lengths(y, where)
        levels = _int_in(self.n_levels, 2, None, "n_levels", "LengthRanker")
        qid = self._queries(group, y.shape[0], where)
        return self._levels(y, qid, levels)

    @staticmethod
    def _levels(y: np.ndarray, qid: np.ndarray, levels: int) -> np.ndarray:
        n = y.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        order = np.lexsort((y, qid))
        ys, qs = y[order], qid[order]
        idx = np.arange(n)
        new_query = np.r_[True, qs[1:] != qs[:-1]]
        new_run = new_query | np.r_[True, ys[1:] != ys[:-1]]
        query_start = np.maximum.accumulate(np.where(new_query, idx, 0))
        run_start = np.maximum.accumulate(np.where(new_run, idx, 0))
        sizes = np.bincount(qid)
        shorter = run_start - query_start  # rows of the query strictly shorter
        out = np.empty(n, dtype=np.int64)
        out[order] = (levels * shorter) // sizes[qs]
        return out

    def fit(self, X: Any, y: Any, group: Any = None) -> LengthRanker:
        """Fit on features ``X`` (n, p), true lengths ``y`` (n,) and optional per-row query ids
        ``group`` (n,); see the class docstring for the labels and the query split."""
        where = "LengthRanker.fit"
        levels = _int_in(self.n_levels, 2, None, "n_levels", "LengthRanker")
        if levels > 31 and "label_gain" not in self._backend_params:
            raise ValueError(
                f"The 'n_levels' parameter of LengthRanker must be <= 31 unless label_gain is "
                f"given (LightGBM's default label_gain has 31 entries). Got {levels}."
            )
        size = _int_in(self.max_query_size, 2, LIGHTGBM_MAX_QUERY_ROWS, "max_query_size",
                       "LengthRanker")
        X, y = validate_data(self, X, y, y_numeric=True)
        y = _lengths(y, where)
        n = y.shape[0]
        qid = self._queries(group, n, where)
        labels = self._levels(y, qid, levels)
        # Deal each query's rows, shuffled, into ceil(n_q / size) chunks of near-equal size.
        rng = np.random.default_rng(self.random_state)
        shuffled = np.lexsort((rng.permutation(n), qid))
        counts = np.bincount(qid)
        pos = np.empty(n, dtype=np.int64)
        pos[shuffled] = np.arange(n) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
        chunks = -(-counts // size)
        chunk = pos % chunks[qid]
        order = np.lexsort((chunk, qid))
        sizes = np.unique(qid[order] * (int(chunks.max()) + 1) + chunk[order],
                          return_counts=True)[1]
        self.n_queries_ = int(sizes.size)
        fixed = {"objective": "lambdarank",
                 "lambdarank_truncation_level": int(sizes.max())}
        self.estimator_ = self._make_backend("ranker", "lightgbm", self.random_state, **fixed)
        self.estimator_.fit(X[order], labels[order], group=sizes)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Ranking scores (float64): higher means a longer predicted output."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return np.asarray(self.estimator_.predict(X), dtype=np.float64)

    def score(self, X: Any, y: Any) -> float:
        """Kendall's tau-b between the scores of ``X`` and the true lengths ``y``."""
        return kendall_tau(y, self.predict(X))

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.positive_only = True
        return tags


# --------------------------------------------------------------------------- history
class HistoryPercentile(RegressorMixin, BaseEstimator):
    """Predict the ``q``-th percentile of past lengths for every request (StreamRL's proxy).

    StreamRL (arXiv 2504.15930) sizes its pools from the length history: the p90 of past
    lengths stands for the long-tail pool's requests and the p50 for the regular pool's.
    With ``by``, percentiles are kept per value of feature column ``by`` (a task, a dataset, a
    prompt id); a value seen fewer than ``min_samples`` times in training, or not at all, gets
    the global percentile. Percentiles use numpy's default (linear) interpolation.

    Parameters
    ----------
    q : the percentile, in [0, 100].
    by : index of a categorical feature column of ``X`` to key the percentiles by, or ``None``.
    min_samples : the fewest training rows a key needs to get its own percentile.

    Attributes
    ----------
    percentile_ : the global percentile of the training lengths.
    keys_, key_percentile_ : the keys with their own percentile (sorted) and those percentiles.

    >>> import numpy as np
    >>> X = np.array([[0.0], [0.0], [0.0], [1.0], [1.0], [1.0]])
    >>> y = [10, 20, 30, 100, 200, 300]
    >>> HistoryPercentile(q=50).fit(X, y).predict([[0.0], [7.0]]).tolist()
    [65.0, 65.0]
    >>> HistoryPercentile(q=50, by=0).fit(X, y).predict([[0.0], [1.0], [7.0]]).tolist()
    [20.0, 200.0, 65.0]
    """

    def __init__(self, q: float = 90.0, by: int | None = None, min_samples: int = 1) -> None:
        self.q = q
        self.by = by
        self.min_samples = min_samples

    def fit(self, X: Any, y: Any) -> HistoryPercentile:
        """Record the percentiles of past lengths ``y`` (keyed by ``X[:, by]`` when ``by``)."""
        q = _real_in(self.q, 0.0, 100.0, "q", "HistoryPercentile")
        least = _int_in(self.min_samples, 1, None, "min_samples", "HistoryPercentile")
        X, y = validate_data(self, X, y, y_numeric=True)
        y = _lengths(y, "HistoryPercentile.fit")
        self.percentile_ = float(np.percentile(y, q))
        self.keys_ = np.zeros(0)
        self.key_percentile_ = np.zeros(0)
        if self.by is not None:
            col = _int_in(self.by, 0, X.shape[1] - 1, "by", "HistoryPercentile")
            keys, inv, counts = np.unique(X[:, col], return_inverse=True, return_counts=True)
            inv = inv.ravel()
            order = np.lexsort((y, inv))
            ys = y[order]
            start = np.r_[0, np.cumsum(counts)[:-1]]
            pos = q / 100.0 * (counts - 1)  # numpy's linear method, per key
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, counts - 1)
            value = ys[start + lo] + (pos - lo) * (ys[start + hi] - ys[start + lo])
            keep = counts >= least
            self.keys_, self.key_percentile_ = keys[keep], value[keep]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The percentile for each row (its key's, or the global one)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        if self.by is None:
            return np.full(X.shape[0], self.percentile_)
        return _lookup(self.keys_, self.key_percentile_, X[:, int(self.by)], self.percentile_)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        if tags.regressor_tags is not None:
            tags.regressor_tags.poor_score = True  # a percentile, by design not a fit of y
        return tags


# --------------------------------------------------------------------------- group context
def group_context_estimate(
    group_id: Any, finished: Any, lengths: Any, max_tokens: int
) -> np.ndarray:
    """Seer's group-context length estimate of every request.

    Seer (arXiv 2511.14617, §3.3 context-aware scheduling) keeps one estimate per rollout group
    ``g``: ``L_hat_g = max{length of r : r in g finished}``, initialised to ``max_tokens`` (a
    group with no finished response is treated as a potential long tail). Samples of one prompt
    have strongly correlated lengths, so the longest finished sibling predicts the rest; the
    estimate only grows as more siblings finish, and never falls below a finished length.

    Parameters
    ----------
    group_id : the group of each request (integers).
    finished : bool, whether each request has finished.
    lengths : the final length of each finished request (``>= 0``); entries of unfinished
        requests are ignored (they may be NaN).
    max_tokens : the generation limit, the estimate of a group with nothing finished.

    Returns
    -------
    ``L_hat`` of each request's group, float64 (finished requests get their group's too).

    >>> group_context_estimate([0, 0, 0, 1, 1], [True, True, False, False, False],
    ...                        [120, 300, np.nan, np.nan, np.nan], max_tokens=4096).tolist()
    [300.0, 300.0, 300.0, 4096.0, 4096.0]
    """
    where = "group_context_estimate"
    gid = check_array(group_id, "group_id", where, dtype=np.int64, integer=True)
    n = gid.shape[0]
    done = np.asarray(finished)
    if done.dtype != np.bool_ or done.shape != (n,):
        raise ValueError(
            f"The 'finished' parameter of {where} must be a bool array of shape ({n},). "
            f"Got dtype {done.dtype}, shape {done.shape}."
        )
    lens = check_array(lengths, "lengths", where, length=n, allow_nan=True)
    bad = done & ~(lens >= 0)  # NaN or negative among the finished
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"The 'lengths' parameter of {where} must be finite and >= 0 for finished "
            f"requests; element {i} is {lens[i].item()!r}."
        )
    cap = _int_in(max_tokens, 1, None, "max_tokens", where)
    keys, inv = np.unique(gid, return_inverse=True)
    inv = inv.ravel()
    best = np.full(keys.size, -np.inf)
    np.maximum.at(best, inv[done], lens[done])
    return np.where(np.isneginf(best), float(cap), best)[inv]


class GroupContextEstimator(RegressorMixin, BaseEstimator):
    """Seer's group-context estimator as a scikit-learn regressor.

    ``fit(X, y)`` (and ``partial_fit``, as more responses finish) observes *finished*
    requests: their group id ``X[:, group_column]`` and their lengths ``y``. ``predict(X)``
    gives each row the longest finished length of its group, or ``max_tokens`` for a group
    with none finished (see :func:`group_context_estimate`; Seer arXiv 2511.14617 §3.3).
    Group ids are compared as exact float values.

    Parameters
    ----------
    max_tokens : the generation limit; observed lengths above it raise ``ValueError``.
    group_column : the column of ``X`` that holds group ids.

    Attributes
    ----------
    groups_, group_max_ : the groups seen (sorted) and their longest finished length.

    >>> import numpy as np
    >>> est = GroupContextEstimator(max_tokens=8192).fit([[0], [0], [1]], [100, 250, 40])
    >>> est.predict([[0], [1], [2]]).tolist()
    [250.0, 40.0, 8192.0]
    >>> est.partial_fit([[2], [1]], [900, 30]).predict([[0], [1], [2]]).tolist()
    [250.0, 40.0, 900.0]
    """

    groups_: np.ndarray
    group_max_: np.ndarray

    def __init__(self, max_tokens: int = 32768, group_column: int = 0) -> None:
        self.max_tokens = max_tokens
        self.group_column = group_column

    def _observe(self, X: Any, y: Any, *, reset: bool, where: str) -> GroupContextEstimator:
        cap = _int_in(self.max_tokens, 1, None, "max_tokens", "GroupContextEstimator")
        X, y = validate_data(self, X, y, y_numeric=True, reset=reset)
        col = _int_in(self.group_column, 0, X.shape[1] - 1, "group_column",
                      "GroupContextEstimator")
        y = check_array(y, "y", where, min_value=0.0, max_value=float(cap))
        keys, inv = np.unique(X[:, col], return_inverse=True)
        inv = inv.ravel()
        best = np.zeros(keys.size)
        np.maximum.at(best, inv, y)
        if not reset:
            keys = np.r_[self.groups_, keys]
            best = np.r_[self.group_max_, best]
            keys, inv = np.unique(keys, return_inverse=True)
            merged = np.zeros(keys.size)
            np.maximum.at(merged, inv.ravel(), best)
            best = merged
        self.groups_, self.group_max_ = keys, best
        return self

    def fit(self, X: Any, y: Any) -> GroupContextEstimator:
        """Forget what was seen and observe the finished requests ``X`` with lengths ``y``."""
        return self._observe(X, y, reset=True, where="GroupContextEstimator.fit")

    def partial_fit(self, X: Any, y: Any) -> GroupContextEstimator:
        """Observe more finished requests (the first call is :meth:`fit`)."""
        fitted = hasattr(self, "groups_")
        return self._observe(X, y, reset=not fitted, where="GroupContextEstimator.partial_fit")

    def predict(self, X: Any) -> np.ndarray:
        """``L_hat`` of each row's group: the longest finished length, or ``max_tokens``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return _lookup(self.groups_, self.group_max_, X[:, int(self.group_column)],
                       float(self.max_tokens))

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        if tags.regressor_tags is not None:
            tags.regressor_tags.poor_score = True  # a group maximum, not a fit of y
        return tags


# --------------------------------------------------------------------------- noisy oracle
class NoisyOracle(RegressorMixin, BaseEstimator):
    """The true length with a controlled log-normal multiplicative error.

    ``predict(X)`` returns ``X[:, truth_column] * exp(sigma * z)`` with ``z`` standard normal:
    the median prediction is the truth, ``sigma = 0`` is the oracle, and the expected relative
    error is ``E|pred / true - 1| = exp(sigma**2 / 2) * erf(sigma / sqrt(2))``
    (:meth:`expected_relative_error`: 0.08 at ``sigma = 0.1``, 0.43 at 0.5, 1.35 at 1.0); half
    the predictions are off by more than a factor ``exp(0.674 * sigma)``. Use it to ask how a
    policy degrades as predictions worsen.

    ``z`` of row ``i`` is the ``i``-th draw of ``numpy.random.default_rng(random_state)``, drawn
    afresh on every call: the same ``X`` always gets the same predictions, and a request keeps
    its noise as long as it keeps its row (predict once for a whole workload and index the
    result; a subset of rows draws other noise). ``fit`` only records the number of features.

    Parameters
    ----------
    sigma : the standard deviation of the log error, ``>= 0``.
    truth_column : the column of ``X`` holding the true lengths (``>= 0``).
    random_state : the seed (an int, or ``None`` for fresh noise on every call).

    >>> import numpy as np
    >>> X = np.array([[100.0], [200.0], [300.0]])
    >>> NoisyOracle(sigma=0.0).fit(X).predict(X).tolist()
    [100.0, 200.0, 300.0]
    >>> p = NoisyOracle(sigma=0.5, random_state=1).fit(X)
    >>> bool(np.array_equal(p.predict(X), p.predict(X)))
    True
    >>> round(NoisyOracle.expected_relative_error(0.5), 3)
    0.434
    """

    def __init__(
        self, sigma: float = 0.5, truth_column: int = 0, random_state: int | None = 0
    ) -> None:
        self.sigma = sigma
        self.truth_column = truth_column
        self.random_state = random_state

    @staticmethod
    def expected_relative_error(sigma: float) -> float:
        """``E|exp(sigma z) - 1| = exp(sigma**2 / 2) * erf(sigma / sqrt(2))``, z ~ N(0, 1).

        >>> NoisyOracle.expected_relative_error(0.0)
        0.0
        """
        s = _real_in(sigma, 0.0, math.inf, "sigma", "NoisyOracle.expected_relative_error")
        return math.exp(s * s / 2.0) * math.erf(s / math.sqrt(2.0))

    def _truth(self, X: np.ndarray, where: str) -> np.ndarray:
        col = _int_in(self.truth_column, 0, X.shape[1] - 1, "truth_column", "NoisyOracle")
        truth = X[:, col]
        if truth.size and truth.min() < 0:
            i = int(np.argmin(truth))
            raise ValueError(
                f"Negative values in data passed to {where}: X[:, {col}] (the 'truth_column') "
                f"holds true lengths, which must be >= 0; row {i} is {truth[i].item()!r}."
            )
        return truth

    def fit(self, X: Any, y: Any = None) -> NoisyOracle:
        """Check ``X`` and the parameters. ``y`` is not used (the truth is in ``X``); when
        given it must still be lengths, one per row of ``X``."""
        _real_in(self.sigma, 0.0, math.inf, "sigma", "NoisyOracle")
        if y is None:
            X = validate_data(self, X)
        else:
            X, y = validate_data(self, X, y, y_numeric=True)
            _lengths(y, "NoisyOracle.fit")
        self._truth(X, "NoisyOracle.fit")
        self.fitted_ = True
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X[:, truth_column] * exp(sigma * z)`` (float64, ``>= 0``)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        truth = self._truth(X, "NoisyOracle.predict")
        sigma = float(self.sigma)
        if sigma == 0.0:
            return truth.astype(np.float64, copy=True)
        z = np.random.default_rng(self.random_state).standard_normal(truth.shape[0])
        return truth * np.exp(sigma * z)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.target_tags.positive_only = True  # y is optional, but lengths when given
        tags.input_tags.positive_only = True
        if tags.regressor_tags is not None:
            tags.regressor_tags.poor_score = True  # it reads the truth from X, not from y
        return tags


# --------------------------------------------------------------------------- registry
#: Output-length predictors by registry name (read-only).
PREDICTORS: Mapping[str, type[BaseEstimator]] = MappingProxyType(
    {
        "regressor": LengthRegressor,
        "bucket-classifier": LengthBucketClassifier,
        "ranker": LengthRanker,
        "history-percentile": HistoryPercentile,
        "group-context": GroupContextEstimator,
        "noisy-oracle": NoisyOracle,
    }
)


def make_predictor(name: str, **params: Any) -> BaseEstimator:
    """A new, unfitted predictor of the registered ``name`` with ``params``.

    An unknown name, or a parameter the predictor does not take (estimators with a backend
    pass unknown keywords on to it), raises ``ValueError`` with the close matches.

    >>> make_predictor("history-percentile", q=50)
    HistoryPercentile(q=50)
    >>> make_predictor("history-percentil")
    Traceback (most recent call last):
    ...
    ValueError: Unknown predictor 'history-percentil'. Close matches: 'history-percentile'...
    >>> make_predictor("noisy-oracle", sgima=1.0)
    Traceback (most recent call last):
    ...
    ValueError: Unknown 'noisy-oracle' parameter 'sgima'. Close matches: 'sigma'...
    """
    if not isinstance(name, str) or name not in PREDICTORS:
        raise unknown_name_error("predictor", str(name), PREDICTORS)
    cls = PREDICTORS[name]
    sig = inspect.signature(cls)
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        for key in params:
            if key not in sig.parameters:
                raise unknown_name_error(f"{name!r} parameter", key, sig.parameters)
    return cls(**params)
