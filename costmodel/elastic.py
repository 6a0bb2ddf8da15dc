"""Elastic sequence parallelism (LoongServe, Wu et al., SOSP'24, arXiv 2404.09526) on the roofline:
the time of a prefill striped over ``k`` elastic instances, and LoongServe's analytic prefill
model fitted to it.

An *elastic instance* is one model replica with a fixed tensor-parallel degree inside it
(LoongServe §3; TP = 2 on the paper's A800 node of four instances). A prefill batch runs
sequence-parallel over a group of ``k`` instances with Striped Attention (§2.3, §6): token ``j``
of every request goes to instance ``j mod k``, so each instance runs the token-linear layers on
about ``sum(l) / k`` tokens and a ``1/k`` share of the causal attention; per layer the KV blocks
travel around a ring in ``k - 1`` rounds, each overlapped with the attention of the block held
(:meth:`ElasticPrefillCost.time_s`) [recon: the paper and the authors' code profile this time
instead of modelling it; the ring's overlap is ours].

LoongServe's scheduler uses an analytic model instead (§5.5, Eq. 7): per parallel strategy ``k``,
``T_k = A_k + B_k sum(l) + C_k sum(l^2)``, fitted by least squares on profiled batches of identical
requests (the authors' ``2-find-time-function-prefill.py`` minimises the relative error weighted by
``t^0.1``); the paper reports under 10% error (Fig. 15). :func:`fit_prefill_model` fits it the same
way to the roofline above, so the scheduler and the simulator agree, and reports the fit error.

>>> from schedlab.costmodel import iteration_cost
>>> esp = ElasticPrefillCost(cost=iteration_cost("lwm-text-1m", "a800", tp=2))
>>> one, four = esp.time_s(1, [100_000]), esp.time_s(4, [100_000])
>>> round(one / four, 1)        # a long prompt on four instances: nearly four times faster
4.0
>>> fit = fit_prefill_model(esp, ks=(1, 2, 4))
>>> bool(fit.mean_rel_error.max() < 0.10)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from schedlab.costmodel.hardware import Interconnect, get_interconnect
from schedlab.costmodel.iteration import RooflineIterationCost
from schedlab.errors import check_array, check_instance, check_positive_int

__all__ = ["ElasticPrefillCost", "PrefillModel", "PrefillModelFit", "fit_prefill_model"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ElasticPrefillCost:
    """Prefill time of a batch striped over ``k`` elastic instances, each ``cost`` (a
    :class:`RooflineIterationCost` of one instance: model, GPU, TP), the KV ring over ``link``
    (default: the GPU's scale-up link, NVLink on one node).

    Per instance: the token-linear layers on ``ceil(sum(l) / k)`` tokens, the LM head on its
    share of the requests' last tokens, and per layer ``k`` rounds of attention over
    ``sum(l (l+1) / 2) / k^2`` (query, key) pairs, the ``k - 1`` rounds after the first each
    taking the longer of that attention and receiving a KV block of ``sum(l) / k`` tokens (each
    device its TP shard) [recon]. ``k = 1`` is exactly a plain prefill iteration of the batch.
    """

    cost: RooflineIterationCost
    link: Interconnect | None = None
    _link: Interconnect = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_instance(self.cost, RooflineIterationCost, "cost", "ElasticPrefillCost")
        link = self.link
        if link is None:
            link = get_interconnect(self.cost.gpu.scale_up_link)
        check_instance(link, Interconnect, "link", "ElasticPrefillCost")
        object.__setattr__(self, "_link", link)

    def time_s(self, k: int, lengths: ArrayLike) -> float:
        """Seconds to prefill requests of ``lengths`` tokens on ``k`` instances."""
        where = "ElasticPrefillCost.time_s"
        k = check_positive_int(k, "k", where)
        ls = check_array(lengths, "lengths", where, dtype=np.int64, ndim=1, min_value=1,
                         integer=True)
        return self._time(k, ls.shape[0], float(ls.sum()), float((ls * (ls + 1.0)).sum() / 2))

    def _time(self, k: int, n: int, total: float, pairs: float) -> float:
        c = self.cost
        tokens = math.ceil(total / k)
        fixed = c.linear_time_s(tokens) + c.head_time_s(math.ceil(n / k)) + c.launch_s * k
        compute, memory = c.prefill_attention_s(pairs / (k * k), total / k)
        per_round = max(compute, memory)  # over all layers
        if k == 1:
            return fixed + per_round
        layers = c.model.num_layers
        block = total / k * c.kv_bytes_per_token / c.tp / layers  # one layer's block, per device
        comm = self._link.latency_s + block / self._link.bytes_per_s
        return fixed + per_round + (k - 1) * layers * max(per_round / layers, comm)

    def batch_time_s(self, k: int, n: int, sum_l: float, sum_l2: float) -> float:
        """:meth:`time_s` from a batch's request count and sums ``sum(l)``, ``sum(l^2)``."""
        return self._time(k, n, float(sum_l), (float(sum_l2) + float(sum_l)) / 2)


@dataclass(frozen=True, slots=True)
class PrefillModel:
    """LoongServe's analytic prefill model (§5.5, Eq. 7): ``T_k = A_k + B_k S + C_k Q`` seconds
    for a batch with ``S = sum(l)`` and ``Q = sum(l^2)`` on ``k`` instances; ``rows[k]`` is
    ``(A_k, B_k, C_k)`` for each parallel degree fitted (the scaling information base).

    >>> m = PrefillModel({1: (0.02, 1e-4, 5e-9), 2: (0.025, 5e-5, 2.5e-9)})
    >>> round(m.time_s(2, 10_000, 10_000 ** 2), 3)
    0.775
    """

    rows: dict[int, tuple[float, float, float]]

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("The 'rows' parameter of PrefillModel must hold at least one "
                             "parallel degree.")
        for k, row in self.rows.items():
            check_positive_int(k, "rows key (k)", "PrefillModel")
            if len(row) != 3 or not all(math.isfinite(x) for x in row):
                raise ValueError(f"The 'rows' parameter of PrefillModel must map each k to "
                                 f"three finite (A, B, C). Got {row!r} for k={k}.")

    @property
    def degrees(self) -> tuple[int, ...]:
        return tuple(sorted(self.rows))

    def time_s(self, k: int, sum_l: ArrayLike, sum_l2: ArrayLike) -> np.ndarray | float:
        """``A_k + B_k sum_l + C_k sum_l2`` (vectorised over the sums)."""
        try:
            a, b, c = self.rows[k]
        except KeyError:
            raise ValueError(f"PrefillModel has no row for k={k!r}; it has {self.degrees}."
                             ) from None
        out = a + b * np.asarray(sum_l, dtype=np.float64) + c * np.asarray(sum_l2,
                                                                           dtype=np.float64)
        return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, slots=True)
class PrefillModelFit:
    """:func:`fit_prefill_model`'s answer: the model and, per parallel degree (in
    ``model.degrees`` order), the mean, geometric-mean and largest relative error of its
    predictions on the profiled batches."""

    model: PrefillModel
    mean_rel_error: np.ndarray
    geo_mean_rel_error: np.ndarray
    max_rel_error: np.ndarray
    samples: int


#: The profile grid [recon, after the authors' ``1-benchmark-identical-req.py``]: batch sizes
#: and request lengths of identical-request batches, kept while the batch has at most
#: ``MAX_PROFILE_TOKENS`` tokens.
PROFILE_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
PROFILE_LENGTHS = (10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 200_000, 500_000)
MAX_PROFILE_TOKENS = 1_000_000


def fit_prefill_model(esp: ElasticPrefillCost, ks: tuple[int, ...] = (1, 2, 3, 4),
                      weight_power: float = 0.1) -> PrefillModelFit:
    """Fit ``T_k = A_k + B_k S + C_k Q`` per ``k`` in ``ks`` to ``esp`` on batches of identical
    requests (:data:`PROFILE_BATCHES` x :data:`PROFILE_LENGTHS`, at most
    :data:`MAX_PROFILE_TOKENS` tokens), minimising ``sum (t^p (pred - t) / t)^2`` with
    ``p = weight_power`` (0.1: the authors' fit, LoongServe artifact
    ``2-find-time-function-prefill.py``), and report the relative errors (paper: under 10%,
    Fig. 15).

    >>> from schedlab.costmodel import iteration_cost
    >>> fit = fit_prefill_model(ElasticPrefillCost(cost=iteration_cost("lwm-text-1m", "a800",
    ...                                                                  tp=2)), ks=(1, 4))
    >>> fit.model.degrees, fit.samples
    ((1, 4), 83)
    """
    check_instance(esp, ElasticPrefillCost, "esp", "fit_prefill_model")
    if not ks:
        raise ValueError("The 'ks' parameter of fit_prefill_model must name at least one k.")
    degrees = tuple(check_positive_int(k, "ks", "fit_prefill_model") for k in ks)
    grid = [(b, ln) for b in PROFILE_BATCHES for ln in PROFILE_LENGTHS
            if b * ln <= MAX_PROFILE_TOKENS]
    bs = np.array([g[0] for g in grid], dtype=np.float64)
    ls = np.array([g[1] for g in grid], dtype=np.float64)
    s, q = bs * ls, bs * ls * ls
    rows, mean, geo, worst = {}, [], [], []
    for k in degrees:
        t = np.array([esp.batch_time_s(k, int(b), x, y) for b, x, y in zip(bs, s, q,
                                                                          strict=True)])
        w = t ** weight_power / t
        design = np.column_stack([np.ones_like(s), s, q]) * w[:, None]
        coef, *_ = np.linalg.lstsq(design, t * w, rcond=None)
        pred = coef[0] + coef[1] * s + coef[2] * q
        rel = np.abs(pred - t) / t
        rows[k] = (float(coef[0]), float(coef[1]), float(coef[2]))
        mean.append(rel.mean())
        geo.append(float(np.exp(np.log(np.maximum(rel, 1e-12)).mean())))
        worst.append(rel.max())
    return PrefillModelFit(model=PrefillModel(rows), mean_rel_error=np.array(mean),
                           geo_mean_rel_error=np.array(geo), max_rel_error=np.array(worst),
                           samples=len(grid))
