"""Request lengths: empirical resampling of a real trace and fitted parametric distributions.

:func:`fit_lengths` fits several families by maximum likelihood (location fixed at 0) and ranks
them by the Kolmogorov-Smirnov statistic against the data, so the report says which fits best and
how well. :func:`synthetic_workload` combines arrivals and lengths into a :class:`Workload`.

>>> from schedlab.datasets import load
>>> w = load("azure-conv-2023")
>>> fits = fit_lengths(w.output_tokens)
>>> [f.family for f in fits]  # best first, by Kolmogorov-Smirnov statistic
['weibull_min', 'lognorm', 'fisk', 'gamma']
>>> round(fits[0].ks_statistic, 2)
0.18
>>> s = fits[0].sample(1000, seed=0, high=1000)
>>> s.dtype.name, int(s.min()) >= 1, int(s.max()) <= 1000
('int64', True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedlab.datasets.arrivals import as_generator, gamma_arrivals
from schedlab.errors import check_instance, check_positive_float, check_positive_int
from schedlab.records import Workload

__all__ = ["FAMILIES", "LengthFit", "fit_lengths", "resample_lengths", "synthetic_workload"]

#: scipy.stats families tried by :func:`fit_lengths` (log-normal, gamma, Weibull, log-logistic).
FAMILIES = ("lognorm", "gamma", "weibull_min", "fisk")


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthFit:
    """A fitted length distribution: scipy family, parameters and goodness of fit.

    ``ks_statistic`` is the Kolmogorov-Smirnov distance between the fitted CDF and the data
    (integer token counts, so even a perfect continuous fit keeps a small discretisation gap).
    """

    family: str
    params: tuple[float, ...]
    ks_statistic: float
    n: int
    data_min: int
    data_max: int

    def dist(self):
        """The frozen ``scipy.stats`` distribution."""
        from scipy import stats

        return getattr(stats, self.family)(*self.params)

    def sample(
        self,
        n: int,
        *,
        seed: int | np.random.Generator,
        low: int = 1,
        high: int | None = None,
    ) -> np.ndarray:
        """``n`` integer lengths drawn from the fit, rounded and clipped to ``[low, high]``
        (``high`` defaults to the largest length in the fitted data)."""
        rng = as_generator(seed, "LengthFit.sample")
        x = self.dist().rvs(size=check_positive_int(n, "n", "LengthFit.sample"), random_state=rng)
        return np.clip(np.rint(x), low, self.data_max if high is None else high).astype(np.int64)

    def to_dict(self) -> dict:
        """The family, its parameters, the KS statistic and the sample size, JSON-ready."""
        return {
            "family": self.family,
            "params": list(self.params),
            "ks_statistic": self.ks_statistic,
            "n": self.n,
        }


def fit_lengths(
    values: np.ndarray,
    families: tuple[str, ...] = FAMILIES,
    *,
    max_fit_samples: int = 20_000,
) -> list[LengthFit]:
    """Fit each family to positive integer ``values``; return the fits, best (lowest KS) first.

    Large inputs are fitted on ``max_fit_samples`` evenly spaced order statistics (deterministic,
    same quantiles as the data); the KS statistic always uses every value.
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size < 10 or not np.all(np.isfinite(x)) or x.min() <= 0:
        raise ValueError(
            "The 'values' parameter of fit_lengths must be at least 10 positive finite lengths. "
            f"Got {x.size} values{'' if x.size == 0 else f' with minimum {x.min()}'}."
        )
    xs = np.sort(x)
    fit_x = (
        xs
        if xs.size <= max_fit_samples
        else xs[np.linspace(0, xs.size - 1, max_fit_samples).astype(int)]
    )
    fits = []
    for fam in families:
        if not hasattr(stats, fam):
            raise ValueError(
                f"The 'families' parameter of fit_lengths names an unknown scipy family {fam!r}."
            )
        dist = getattr(stats, fam)
        params = dist.fit(fit_x, floc=0)
        ks = stats.kstest(xs, dist(*params).cdf).statistic
        fits.append(
            LengthFit(
                family=fam,
                params=tuple(float(p) for p in params),
                ks_statistic=float(ks),
                n=int(x.size),
                data_min=int(xs[0]),
                data_max=int(xs[-1]),
            )
        )
    return sorted(fits, key=lambda f: f.ks_statistic)


def resample_lengths(
    source: Workload, n: int, *, seed: int | np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (input, output) length pairs drawn with replacement from ``source`` (pairs kept, so the
    input/output correlation of the trace is kept).

    >>> from schedlab.datasets import load
    >>> i, o = resample_lengths(load("azure-code-2023"), 5, seed=0)
    >>> i.shape, o.shape
    ((5,), (5,))
    """
    rng = as_generator(seed, "resample_lengths")
    idx = rng.integers(0, len(source), size=check_positive_int(n, "n", "resample_lengths"))
    return source.input_tokens[idx].copy(), source.output_tokens[idx].copy()


def synthetic_workload(
    n: int,
    *,
    rate_per_s: float,
    source: Workload,
    seed: int | np.random.Generator,
    arrival_cv: float = 1.0,
    lengths: str = "empirical",
) -> Workload:
    """``n`` requests with Gamma arrivals (``arrival_cv=1``: Poisson) at ``rate_per_s`` and lengths
    like ``source``'s: ``"empirical"`` resamples (input, output) pairs; ``"fitted"`` draws input
    and output independently from the best fit of each (:func:`fit_lengths`), clipped to the
    source's range.

    >>> from schedlab.datasets import load
    >>> w = synthetic_workload(100, rate_per_s=5.0, source=load("azure-conv-2023"), seed=1)
    >>> len(w), w.name
    (100, 'azure-conv-2023-synthetic')
    """
    where = "synthetic_workload"
    if lengths not in ("empirical", "fitted"):
        raise ValueError(
            f"The 'lengths' parameter of {where} must be 'empirical' or 'fitted'. "
            f"Got {lengths!r} instead."
        )
    check_instance(source, Workload, "source", where)
    rng = as_generator(seed, where)
    n = check_positive_int(n, "n", where)
    arrival = gamma_arrivals(
        n, check_positive_float(rate_per_s, "rate_per_s", where), cv=arrival_cv, seed=rng
    )
    if lengths == "empirical":
        inp, out = resample_lengths(source, n, seed=rng)
    else:
        inp = fit_lengths(source.input_tokens)[0].sample(n, seed=rng)
        out = fit_lengths(source.output_tokens)[0].sample(n, seed=rng)
    return Workload(
        arrival_s=arrival,
        input_tokens=inp,
        output_tokens=out,
        block_tokens=source.block_tokens,
        name=f"{source.name}-synthetic",
    )
