"""Token gaps: the time between consecutive output tokens of each request, kept as runs, and
Mooncake's TBT (the mean of a request's slowest 10% of gaps, FAST'25 §5.1).

A closed-form decode stretch of ``k`` steps gives each of its requests one gap from its previous
token to the stretch's first step and ``k - 1`` gaps of the stretch's mean step time: one run
``(request, value, count)`` each, so the log grows with the stretches, not with the tokens. Step
times within a stretch differ by the KV read of a few more tokens, so the mean stands for each
of them (a run with ``closed_form=False`` logs every gap; the test compares the two).

>>> g = GapLog(3)
>>> g.tokens(np.array([0, 1]), 1.0)            # first tokens: no gap yet
>>> g.stretch(np.array([0, 1]), np.array([1.5, 2.0, 2.5]))
>>> g.tokens(np.array([0]), 4.5)
>>> g.tbt_s(fraction=0.5).round(3).tolist()    # 0: gaps 0.5, 0.5, 0.5, 2.0; 1: 0.5, 0.5, 0.5
[1.25, 0.5, nan]
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GapLog", "slowest_gaps_mean"]


class GapLog:
    """Runs of token gaps of ``n`` requests (see the module docstring)."""

    __slots__ = ("_cnt", "_rid", "_val", "last")

    def __init__(self, n: int) -> None:
        self.last = np.full(n, np.nan)  # each request's latest token time
        self._rid: list[np.ndarray] = []
        self._val: list[np.ndarray] = []
        self._cnt: list[int] = []

    def _add(self, rid: np.ndarray, val: np.ndarray, cnt: int) -> None:
        self._rid.append(rid)
        self._val.append(val)
        self._cnt.append(cnt)  # the same count for the whole chunk

    def tokens(self, rid: np.ndarray, now: float) -> None:
        """The requests ``rid`` (distinct) emitted one token each at ``now``."""
        prev = self.last[rid]
        had = ~np.isnan(prev)
        if had.any():
            self._add(rid[had], now - prev[had], 1)
        self.last[rid] = now

    def stretch(self, rid: np.ndarray, ends: np.ndarray) -> None:
        """The requests ``rid`` (distinct, each with a token before) emitted one token at each of
        the step ends ``ends`` (ascending)."""
        k = ends.shape[0]
        self._add(rid, ends[0] - self.last[rid], 1)
        if k > 1:
            self._add(rid, np.full(rid.shape[0], (ends[-1] - ends[0]) / (k - 1)), k - 1)
        self.last[rid] = ends[-1]

    def tbt_s(self, fraction: float = 0.1) -> np.ndarray:
        """Per request, the mean of its slowest ``ceil(fraction * gaps)`` gaps (NaN without a
        gap): Mooncake's TBT with the default ``fraction``."""
        if not self._rid:
            return np.full(self.last.shape[0], np.nan)
        cnt = np.repeat(np.array(self._cnt, dtype=np.int64), [a.shape[0] for a in self._rid])
        return slowest_gaps_mean(np.concatenate(self._rid), np.concatenate(self._val), cnt,
                                 self.last.shape[0], fraction)


def slowest_gaps_mean(
    rid: np.ndarray, val: np.ndarray, cnt: np.ndarray, n: int, fraction: float = 0.1
) -> np.ndarray:
    """For runs ``(rid, val, cnt)`` (``cnt`` gaps of ``val`` seconds of request ``rid``), each
    request's mean of its slowest ``ceil(fraction * total gaps)`` gaps; NaN for a request with no
    gap.

    >>> slowest_gaps_mean(np.array([0, 0, 1]), np.array([0.1, 0.9, 0.2]), np.array([18, 2, 4]),
    ...                   2).round(3).tolist()
    [0.9, 0.2]
    """
    if not 0.0 < fraction <= 1.0 or math.isnan(fraction):
        raise ValueError(f"fraction must be in (0, 1]. Got {fraction!r}.")
    order = np.lexsort((-val, rid))
    rid, val, cnt = rid[order], val[order], cnt[order]
    total = np.bincount(rid, cnt, minlength=n)
    want = np.ceil(fraction * total - 1e-9)
    cum = np.cumsum(cnt)
    start = np.concatenate(([0], np.flatnonzero(np.diff(rid)) + 1))
    before = cum - cnt - np.repeat(cum[start] - cnt[start], np.diff(np.append(start, rid.shape[0])))
    take = np.clip(want[rid] - before, 0, cnt)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(rid, take * val, minlength=n) / np.where(total > 0, want, np.nan)
