"""RL rollout batches: P prompts x G sampled responses with heavy-tailed, group-correlated lengths.

Model (a reconstruction; the papers give statistics, not a generator). For group (prompt) ``g``
and sample ``i``::

    L[g, i] = min(max_tokens, min_tokens + exp(mu_g + s_g * eps[g, i]))     eps ~ N(0, 1)
    mu_g    = log(median_tokens - min_tokens) + s_b * z_g                   z_g ~ N(0, 1)
    s_g     = lognormal spread per prompt, whose population CV (sqrt(exp(s_g^2) - 1)) has median
              ``group_cv_median`` and 90th percentile ``group_cv_p90``
    s_b^2   = length_sigma^2 - E[s_g^2]   (so the total log-spread is ``length_sigma``)

``correlation`` (optional) sets the intra-class correlation (ICC) of the latent log lengths
``log(L - min_tokens)`` before truncation, ``s_b^2 / (s_b^2 + E[s_g^2])``, by rescaling the
within-group spreads at a fixed total spread (the defaults imply about 0.94); the ICC measured on
``log L`` is higher at low settings because of the shift and the truncation.

Defaults were calibrated by simulation (root finding over 10^5 groups of 4, checked on three more
seeds of 5 x 10^4 groups: CV median 0.186-0.189, p90 0.508-0.511, top-10% token share 0.495) to
the published statistics:

- within one prompt, sampled response lengths have a coefficient of variation with median ~0.19
  and 90th percentile ~0.51, as measured with 4 samples per prompt and ``std(ddof=1) / mean``
  (Sequence-Scheduling's published summary of Vicuna responses; see PROVENANCE.md "Not collected");
- the longest 10% of requests hold ~50% of all generated tokens. This is our reading of "in
  reasoning RL rollouts the longest 10% of requests take about half of the rollout time" (Seer,
  OSDI'26, tail = the last 10% of requests): decode is memory-bound, so a request's decode time is
  about proportional to its tokens;
- lengths span a few hundred tokens (``min_tokens = max_tokens // 128``, 256 at 32K) to the
  maximum generation length, with ~5% truncated at ``max_tokens`` (Seer Fig. 2 shows truncation
  spikes); median ``max_tokens // 16``. The top-10% share peaks near 0.5 at this median: a larger
  ``length_sigma`` truncates more requests and lowers it (2.0: 0.48, 7% truncated).

The model is scale-free: the statistics hold for any ``max_tokens`` with the default ratios.
Prompts are log-normal (median ``prompt_median_tokens``), identical within a group, and the
samples of a prompt share its prefix blocks (full ``block_tokens`` blocks), so prefix caching sees
the shared prompt.

>>> w = rollout_batch(n_prompts=20000, samples_per_prompt=4, seed=0)
>>> s = rollout_stats(w)
>>> round(s["group_cv_median"], 2), round(s["group_cv_p90"], 2), round(s["top10_token_share"], 1)
(0.19, 0.51, 0.5)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from schedlab.datasets.arrivals import as_generator
from schedlab.errors import (
    check_fraction,
    check_nonneg_float,
    check_positive_float,
    check_positive_int,
)
from schedlab.records import PrefixBlocks, Workload

__all__ = ["CALIBRATED", "rollout_batch", "rollout_stats"]

_Z90 = 1.2815515655446004  # standard normal 90th percentile

#: Calibrated defaults (see the module docstring) and the statistics they reproduce.
CALIBRATED: dict[str, Any] = {
    "length_sigma": 1.80,
    "group_cv_median": 0.32,
    "group_cv_p90": 0.76,
    "targets": {"group_cv_median": 0.19, "group_cv_p90": 0.51, "top10_token_share": 0.5},
}


def rollout_batch(
    n_prompts: int,
    samples_per_prompt: int = 16,
    *,
    seed: int | np.random.Generator,
    max_tokens: int = 32768,
    min_tokens: int | None = None,
    median_tokens: int | None = None,
    length_sigma: float = CALIBRATED["length_sigma"],
    group_cv_median: float = CALIBRATED["group_cv_median"],
    group_cv_p90: float = CALIBRATED["group_cv_p90"],
    correlation: float | None = None,
    prompt_median_tokens: int = 1024,
    prompt_sigma: float = 0.5,
    max_prompt_tokens: int = 8192,
    arrival_s: float = 0.0,
    block_tokens: int = 512,
) -> Workload:
    """One rollout batch: ``n_prompts`` groups of ``samples_per_prompt`` requests, all arriving at
    ``arrival_s``, ordered by group; ``group_id`` is the prompt index.

    ``output_tokens`` are the response lengths (see the module docstring for the model and its
    calibration); feature ``truncated`` marks responses cut at ``max_tokens``.
    """
    where = "rollout_batch"
    P = check_positive_int(n_prompts, "n_prompts", where)
    G = check_positive_int(samples_per_prompt, "samples_per_prompt", where)
    max_tokens = check_positive_int(max_tokens, "max_tokens", where)
    lo = (
        max(1, max_tokens // 128)
        if min_tokens is None
        else check_positive_int(min_tokens, "min_tokens", where)
    )
    med = (
        max_tokens // 16
        if median_tokens is None
        else check_positive_int(median_tokens, "median_tokens", where)
    )
    if not lo < med <= max_tokens:
        raise ValueError(
            "rollout_batch needs min_tokens < median_tokens <= max_tokens. "
            f"Got {lo}, {med}, {max_tokens}."
        )
    sigma = check_positive_float(length_sigma, "length_sigma", where)
    cvm = check_positive_float(group_cv_median, "group_cv_median", where)
    cv9 = check_positive_float(group_cv_p90, "group_cv_p90", where)
    if cv9 < cvm:
        raise ValueError(
            f"The 'group_cv_p90' parameter of {where} must be >= group_cv_median={cvm}. "
            f"Got {cv9} instead."
        )
    rng = as_generator(seed, where)

    s_med = math.sqrt(math.log1p(cvm**2))
    b = math.log(math.sqrt(math.log1p(cv9**2)) / s_med) / _Z90
    mean_sq = s_med**2 * math.exp(2 * b * b)  # E[s_g^2] for log s_g ~ N(log s_med, b^2)
    if correlation is None:
        if mean_sq >= sigma**2:
            raise ValueError(
                f"The within-group spread (E[s_g^2]={mean_sq:.3f}) of {where} exceeds "
                f"length_sigma^2={sigma**2:.3f}; raise length_sigma or lower the group CVs."
            )
        scale, s_b = 1.0, math.sqrt(sigma**2 - mean_sq)
    else:
        rho = check_fraction(correlation, "correlation", where, open_low=False)
        scale, s_b = math.sqrt((1 - rho) * sigma**2 / mean_sq), math.sqrt(rho) * sigma
    s_g = scale * s_med * np.exp(b * rng.standard_normal(P))
    mu_g = math.log(med - lo) + s_b * rng.standard_normal(P)
    eps = rng.standard_normal((P, G))
    raw = lo + np.exp(mu_g[:, None] + s_g[:, None] * eps)
    out = np.minimum(np.rint(raw), max_tokens).astype(np.int64).ravel()

    prompt = np.clip(
        np.rint(prompt_median_tokens * np.exp(prompt_sigma * rng.standard_normal(P))),
        1,
        check_positive_int(max_prompt_tokens, "max_prompt_tokens", where),
    ).astype(np.int64)
    nblocks = prompt // check_positive_int(block_tokens, "block_tokens", where)
    first_id = np.concatenate(([0], np.cumsum(nblocks)[:-1]))
    per_req = np.repeat(nblocks, G)
    offsets = np.concatenate(([0], np.cumsum(per_req))).astype(np.int64)
    start = np.repeat(np.repeat(first_id, G), per_req)
    ids = start + (np.arange(offsets[-1]) - np.repeat(offsets[:-1], per_req))
    return Workload(
        arrival_s=np.full(P * G, check_nonneg_float(arrival_s, "arrival_s", where)),
        input_tokens=np.repeat(prompt, G),
        output_tokens=out,
        group_id=np.repeat(np.arange(P, dtype=np.int64), G),
        prefix_block_ids=PrefixBlocks(ids=ids.astype(np.int64), offsets=offsets),
        block_tokens=block_tokens,
        features={"truncated": out == max_tokens},
        name=f"rollout-{P}x{G}",
    )


def rollout_stats(workload: Workload, *, top_fraction: float = 0.1) -> dict[str, float]:
    """Length statistics of a grouped workload: within-group CV (``std(ddof=1)/mean`` per group,
    median and 90th percentile), the share of output tokens held by the longest ``top_fraction``
    of requests, the log-length intra-class correlation and the truncated fraction (if known).

    >>> import numpy as np
    >>> w = Workload(arrival_s=np.zeros(4), input_tokens=[1] * 4, output_tokens=[10, 30, 100, 100],
    ...              group_id=[0, 0, 1, 1])
    >>> s = rollout_stats(w, top_fraction=0.25)
    >>> round(s["group_cv_median"], 3), round(s["top_token_share"], 3)
    (0.354, 0.417)
    """
    if workload.group_id is None:
        raise ValueError("The 'workload' parameter of rollout_stats must have group_id.")
    g = workload.group_id
    x = workload.output_tokens.astype(np.float64)
    groups, inv, counts = np.unique(g, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, x)
    means = sums / counts
    dev2 = np.bincount(inv, (x - means[inv]) ** 2)
    multi = counts > 1
    cv = np.sqrt(dev2[multi] / (counts[multi] - 1)) / means[multi]
    k = max(1, round(top_fraction * x.size))
    share = float(np.sort(x)[-k:].sum() / x.sum())
    lx = np.log(x)
    lmeans = np.bincount(inv, lx) / counts
    within = float(np.bincount(inv, (lx - lmeans[inv]) ** 2).sum() / x.size)
    total = float(lx.var())
    out = {
        "n_groups": float(groups.size),
        "group_cv_median": float(np.median(cv)) if cv.size else float("nan"),
        "group_cv_p90": float(np.quantile(cv, 0.9)) if cv.size else float("nan"),
        "top_token_share": share,
        "log_icc": 1.0 - within / total if total > 0 else float("nan"),
    }
    if abs(top_fraction - 0.1) < 1e-12:
        out["top10_token_share"] = share
    if "truncated" in workload.features:
        out["truncated_fraction"] = float(np.mean(workload.features["truncated"]))
    return out
