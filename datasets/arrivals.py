"""Arrival-time generators: Poisson, Gamma (bursty) and replay of a real trace at another rate.

Every generator takes an explicit ``seed`` (an int or a :class:`numpy.random.Generator`); the same
seed gives the same arrivals. Times are seconds, non-decreasing, starting at ``start_s`` plus the
first gap.

>>> t = poisson_arrivals(5, rate_per_s=2.0, seed=0)
>>> t.shape, bool((t == poisson_arrivals(5, rate_per_s=2.0, seed=0)).all())
((5,), True)
>>> g = gamma_arrivals(20000, rate_per_s=10.0, cv=3.0, seed=1)
>>> gaps = np.diff(g)
>>> round(float(len(g) / g[-1])), round(float(gaps.std() / gaps.mean()), 1)
(10, 2.9)
"""

from __future__ import annotations

import numpy as np

from schedlab.errors import check_nonneg_float, check_nonneg_int, check_positive_float
from schedlab.records import Workload

__all__ = ["as_generator", "gamma_arrivals", "poisson_arrivals", "replay", "rescale_arrivals"]


def as_generator(seed: int | np.random.Generator, where: str) -> np.random.Generator:
    """``seed`` as a :class:`numpy.random.Generator` (an int seeds a new PCG64 generator)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise ValueError(
        f"The 'seed' parameter of {where} must be an int or a numpy.random.Generator. "
        f"Got {seed!r} instead."
    )


def poisson_arrivals(
    n: int, rate_per_s: float, *, seed: int | np.random.Generator, start_s: float = 0.0
) -> np.ndarray:
    """``n`` arrival times of a Poisson process of ``rate_per_s`` (exponential gaps)."""
    return gamma_arrivals(n, rate_per_s, cv=1.0, seed=seed, start_s=start_s)


def gamma_arrivals(
    n: int,
    rate_per_s: float,
    *,
    cv: float,
    seed: int | np.random.Generator,
    start_s: float = 0.0,
) -> np.ndarray:
    """``n`` arrivals with i.i.d. Gamma gaps of mean ``1/rate_per_s`` and coefficient of variation
    ``cv`` (shape ``1/cv**2``): ``cv=1`` is Poisson, ``cv>1`` bursty, ``cv<1`` regular."""
    where = "gamma_arrivals"
    n = check_nonneg_int(n, "n", where)
    rate = check_positive_float(rate_per_s, "rate_per_s", where)
    cv = check_positive_float(cv, "cv", where)
    start_s = check_nonneg_float(start_s, "start_s", where)
    rng = as_generator(seed, where)
    shape = 1.0 / cv**2
    gaps = rng.gamma(shape, 1.0 / (rate * shape), size=n)
    return start_s + np.cumsum(gaps)


def rescale_arrivals(
    arrival_s: np.ndarray,
    *,
    rate_per_s: float | None = None,
    duration_s: float | None = None,
) -> np.ndarray:
    """Stretch or compress a trace's arrival times (keeping its burst shape) so that its mean rate
    ``n / span`` is ``rate_per_s``, or its span (first to last arrival) is ``duration_s``.

    Times are measured from the first arrival, so the result starts at 0.

    >>> rescale_arrivals(np.array([10.0, 11.0, 14.0]), duration_s=8.0).tolist()
    [0.0, 2.0, 8.0]
    """
    where = "rescale_arrivals"
    t = np.asarray(arrival_s, dtype=np.float64)
    if (rate_per_s is None) == (duration_s is None):
        raise ValueError(f"{where} needs exactly one of rate_per_s and duration_s.")
    if t.size < 2 or t[-1] == t[0]:
        raise ValueError(
            f"The 'arrival_s' parameter of {where} must span a positive time. "
            f"Got {t.size} arrivals over 0 s."
        )
    span = float(t[-1] - t[0])
    if rate_per_s is not None:
        target = t.size / check_positive_float(rate_per_s, "rate_per_s", where)
    else:
        target = check_positive_float(duration_s, "duration_s", where)
    return (t - t[0]) * (target / span)


def replay(
    workload: Workload,
    *,
    rate_per_s: float | None = None,
    duration_s: float | None = None,
) -> Workload:
    """The same requests with arrivals rescaled by :func:`rescale_arrivals` (replay of a real trace
    at a target rate or over a target time window).

    >>> from schedlab.datasets import load
    >>> w = replay(load("azure-conv-2023"), rate_per_s=20.0)
    >>> round(len(w) / w.duration_s, 6)
    20.0
    """
    t = rescale_arrivals(workload.arrival_s, rate_per_s=rate_per_s, duration_s=duration_s)
    return workload.replace(arrival_s=t, name=f"{workload.name}-replay")
