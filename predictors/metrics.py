"""How good is a length prediction: error, order, and the long tail.

- :func:`mae`: mean absolute error in tokens (for predictors of lengths);
- :func:`kendall_tau`: Kendall's tau-b between true lengths and a score (order only; a ranker's
  scores qualify, their scale does not matter);
- :func:`top_alpha_recall`: the share of the truly longest ``alpha`` fraction that the score
  also puts in its top ``alpha`` fraction, StreamRL's measure of its length ranker (arXiv
  2504.15930 reports about 0.87 for the top 20%); a random score gets ``k / n`` on average;
- :func:`evaluate`: all of them in one dict.

``y_true`` holds true lengths (finite, ``>= 0``); scores and predictions must be finite and of
the same shape. Bad input raises ``ValueError`` naming the parameter.

>>> y = [10, 50, 20, 400, 30]
>>> round(evaluate(y, [12, 45, 25, 300, 20])["kendall_tau"], 3)
0.8
>>> top_alpha_recall(y, [5, 4, 3, 2, 1], alpha=0.2)
0.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from schedlab.errors import check_array, check_fraction

__all__ = ["mae", "kendall_tau", "top_alpha_recall", "top_count", "evaluate"]


def _pair(y_true: Any, other: Any, other_name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    t = check_array(y_true, "y_true", where, min_value=0.0)
    o = check_array(other, other_name, where, length=t.shape[0])
    if t.shape[0] == 0:
        raise ValueError(f"The 'y_true' parameter of {where} must not be empty.")
    return t, o


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error ``mean(|y_pred - y_true|)`` in tokens.

    >>> mae([10, 20, 30], [12, 20, 25])
    2.3333333333333335
    >>> mae([10, -1], [1, 1])
    Traceback (most recent call last):
    ...
    ValueError: The 'y_true' parameter of mae must be >= 0.0; element 1 is -1.0.
    """
    t, p = _pair(y_true, y_pred, "y_pred", "mae")
    return float(np.mean(np.abs(p - t)))


def kendall_tau(y_true: Any, score: Any) -> float:
    """Kendall's tau-b (:func:`scipy.stats.kendalltau`) between true lengths and a score.

    1 for the same order, -1 for the reverse; ties count as tau-b counts them. NaN where the
    order is undefined (fewer than two rows, or a constant input).

    >>> kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]), kendall_tau([1, 2, 3, 4], [4, 3, 2, 1])
    (1.0, -1.0)
    """
    t, s = _pair(y_true, score, "score", "kendall_tau")
    if t.shape[0] < 2 or np.all(t == t[0]) or np.all(s == s[0]):
        return math.nan
    from scipy.stats import kendalltau

    return float(kendalltau(t, s).statistic)


def top_count(n: int, alpha: float) -> int:
    """``ceil(alpha * n)``, the size of the top ``alpha`` fraction of ``n`` rows (at least 1).

    Computed as ``ceil(alpha * n - 1e-9)``, so a product that float rounding puts just above an
    integer (``0.1 * 30 = 3.0000000000000004``) is that integer.

    >>> top_count(30, 0.1), top_count(10, 0.25), top_count(3, 0.01)
    (3, 3, 1)
    """
    a = check_fraction(alpha, "alpha", "top_count")
    return max(1, math.ceil(a * n - 1e-9))


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values; among equal values the lower index comes first."""
    order = np.lexsort((np.arange(values.shape[0]), -values))
    return order[:k]


def top_alpha_recall(y_true: Any, score: Any, alpha: float = 0.2) -> float:
    """Recall of the longest ``alpha`` fraction: ``|top_k(score) & top_k(y_true)| / k``.

    ``k = ceil(alpha * n)`` (:func:`top_count`). StreamRL (arXiv 2504.15930) reports about 0.87
    for its ranker at ``alpha = 0.2``; a random order scores ``k / n`` on average.

    Ties are broken by row: among equal values (of the score, or of the true lengths at the
    boundary of the true top set) the row that comes first is ranked higher. A score with many
    ties, such as a bucket index, therefore fills its top set with the earliest rows of the
    boundary bucket, which is a random pick when rows come in random order.

    >>> top_alpha_recall([1, 9, 3, 7, 5], [0.1, 0.9, 0.2, 0.1, 0.5], alpha=0.4)
    0.5
    >>> top_alpha_recall([1, 2], [1, 2], alpha=0.0)
    Traceback (most recent call last):
    ...
    ValueError: The 'alpha' parameter of top_alpha_recall must be a float in (0, 1]. Got 0.0 ...
    """
    a = check_fraction(alpha, "alpha", "top_alpha_recall")
    t, s = _pair(y_true, score, "score", "top_alpha_recall")
    k = top_count(t.shape[0], a)
    hit = np.intersect1d(_top(s, k), _top(t, k), assume_unique=True)
    return hit.size / k


def evaluate(y_true: Any, y_pred: Any, alpha: float = 0.2) -> dict[str, float]:
    """Every metric of a prediction (or score) against the true lengths.

    Keys: ``n``, ``mae`` (meaningful only when ``y_pred`` are lengths), ``kendall_tau``,
    ``alpha``, ``top_alpha_recall`` and ``random_top_alpha_recall`` (``k / n``, what a random
    order scores on average).

    >>> r = evaluate([10, 20, 30, 40, 50], [11, 19, 35, 38, 60], alpha=0.4)
    >>> {k: round(v, 3) for k, v in r.items()}
    {'n': 5, 'mae': 3.8, 'kendall_tau': 1.0, 'alpha': 0.4, 'top_alpha_recall': 1.0, \
'random_top_alpha_recall': 0.4}
    """
    a = check_fraction(alpha, "alpha", "evaluate")
    t, p = _pair(y_true, y_pred, "y_pred", "evaluate")
    n = t.shape[0]
    return {
        "n": n,
        "mae": mae(t, p),
        "kendall_tau": kendall_tau(t, p),
        "alpha": a,
        "top_alpha_recall": top_alpha_recall(t, p, a),
        "random_top_alpha_recall": top_count(n, a) / n,
    }
