"""Retrieval attention (RetroInfer) against full attention: the time of a decode step with the
KV in host memory, a clustered index and a GPU cache of hot clusters, and how large a batch fits.

Seed paper: RetroInfer (arXiv 2505.02922; VLDB'26), §4-§5 and Fig. 5; parameters from the
authors' code (microsoft/RetrievalAttention). Per decode step, layer and request, for each KV
head (:func:`retroinfer_step`):

1. *score* the ``m = (N - 68) / 16`` centroids (read them; ``2 g m d`` FLOPs for the ``g``
   query heads of the KV head) and *estimate* the next ``0.232 m`` clusters from their value sums
   and sizes (GPU);
2. *assemble* the execution buffer: the steady zone (4 sink + 64 recent tokens) and the cache's
   hits copied on the GPU, the misses, ``(1 - hit_rate)`` of the ``nprobe = 0.018 m`` retrieved
   clusters of 16 tokens, read from pinned host memory over PCIe by the same kernel (the larger
   of the two);
3. *attend* exactly over the buffer, merged with the estimate (GPU);
4. a fixed ``layer_overhead_s`` per layer: the cluster ids' copy to the host, the CPU's cache
   look-ups, the kernels' launches.

The non-attention layers come from the roofline iteration model
(:class:`~schedlab.costmodel.iteration.RooflineIterationCost`), which also prices full attention
(the KV on the GPU; the batch is what the GPU's memory holds, none at 1M tokens on an A100).
RetroInfer's batch is what the GPU holds of the index (a centroid and a value sum per 16 tokens)
and the cache (``cache_multiplier x nprobe`` clusters: 5.4% of the KV), and what host memory
holds of the KV.

``pcie_efficiency`` is fitted to the paper's Fig. 13a (4.1x at 30K tokens) by
:func:`fit_pcie_efficiency`; the other contexts are predictions (:mod:`schedlab.seeds.retroinfer`).

>>> from schedlab.costmodel import get_accelerator, get_model
>>> spec, gpu = get_model("llama-3-8b"), get_accelerator("a100-80gb")
>>> s = retroinfer_step(spec, gpu, batch=32, context_tokens=120_000)
>>> round(s.total_s * 1e3), round(s.pcie_s / s.total_s, 2)       # PCIe is the bottleneck
(96, 0.68)
>>> max_batch_retroinfer(spec, gpu, 120_000), max_batch_full(spec, gpu, 120_000)
(30, 3)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from schedlab.contract.retrieval import cluster_count, zone_sizes
from schedlab.costmodel.hardware import Accelerator, get_interconnect
from schedlab.costmodel.iteration import RooflineIterationCost
from schedlab.costmodel.models import ModelSpec
from schedlab.costmodel.roofline import Efficiency
from schedlab.errors import (
    check_fraction,
    check_nonneg_float,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
)

__all__ = [
    "RetroInferParams",
    "RetroStep",
    "best_throughput",
    "fit_pcie_efficiency",
    "full_attention_step_s",
    "max_batch_full",
    "max_batch_retroinfer",
    "retroinfer_step",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetroInferParams:
    """RetroInfer's parameters (the code's defaults, the paper's where it gives them).

    - ``retrieval_budget`` 0.018 and ``estimation_budget`` 0.232 of the clusters (Fig. 18);
    - ``cluster_tokens`` 16, ``steady_tokens`` 68 (4 sink + 64 local);
    - ``cache_multiplier`` 3: the GPU cache holds 3 x nprobe clusters (5.4% of the KV; the paper
      says 5%);
    - ``hit_rate`` 0.85 of the retrieved clusters found in the cache (the paper measures 0.79 to
      0.94 across tasks with its 5% cache, Fig. 14a);
    - ``pcie_efficiency``: the share of the host link's line rate the miss reads reach (fitted
      on Fig. 13a: :func:`fit_pcie_efficiency`);
    - ``layer_overhead_s`` 100 us per layer (the paper's custom copy kernel takes 100 us in the
      miss case; we count it as the fixed cost of a layer's buffer assembly) [recon];
    - ``host_link`` PCIe 4.0 x16 (the paper's A100 machine), ``host_memory_bytes`` 1.7 TB.

    >>> RetroInferParams(hit_rate=1.5)
    Traceback (most recent call last):
    ...
    ValueError: The 'hit_rate' parameter of RetroInferParams must be a float in [0, 1]. ...
    """

    retrieval_budget: float = 0.018
    estimation_budget: float = 0.232
    cluster_tokens: int = 16
    steady_tokens: int = 68
    cache_multiplier: float = 3.0
    hit_rate: float = 0.85
    pcie_efficiency: float = 0.645
    layer_overhead_s: float = 100e-6
    host_link: str = "pcie4-x16"
    host_memory_bytes: float = 1.7e12

    def __post_init__(self) -> None:
        where = "RetroInferParams"
        check_fraction(self.retrieval_budget, "retrieval_budget", where)
        check_fraction(self.estimation_budget, "estimation_budget", where, open_low=False)
        check_fraction(self.hit_rate, "hit_rate", where, open_low=False)
        check_fraction(self.pcie_efficiency, "pcie_efficiency", where)
        check_positive_int(self.cluster_tokens, "cluster_tokens", where)
        check_nonneg_int(self.steady_tokens, "steady_tokens", where)
        check_positive_float(self.cache_multiplier, "cache_multiplier", where)
        check_positive_float(self.host_memory_bytes, "host_memory_bytes", where)
        check_nonneg_float(self.layer_overhead_s, "layer_overhead_s", where)
        get_interconnect(self.host_link)

    def clusters(self, context_tokens: float) -> tuple[float, float, float]:
        """``(m, nprobe, n_est)`` at a context: clusters, retrieved and estimated (the
        contract's :func:`~schedlab.contract.retrieval.cluster_count` and
        :func:`~schedlab.contract.retrieval.zone_sizes`, as the index builder and the zone
        policy count them)."""
        m, _ = cluster_count(max(math.ceil(context_tokens) - self.steady_tokens, 0),
                             cluster_tokens=self.cluster_tokens)
        nprobe, n_est = zone_sizes(m, self.retrieval_budget, self.estimation_budget)
        return float(m), float(nprobe), float(n_est)


class RetroStep(NamedTuple):
    """Seconds of one decode step of a batch: the non-attention layers (``linear_s``), the
    GPU's attention work (``gpu_s``: centroid scoring, estimation, exact attention), the
    execution buffer's assembly (``pcie_s``: the larger of the PCIe reads of the misses and the
    GPU copies of the hits and the steady zone, one kernel), the fixed per-layer costs
    (``overhead_s``), and the total."""

    linear_s: float
    gpu_s: float
    pcie_s: float
    overhead_s: float
    total_s: float


@lru_cache(maxsize=16)
def _iteration(spec: ModelSpec, gpu: Accelerator, dtype: str = "bf16") -> RooflineIterationCost:
    return RooflineIterationCost.build(spec, gpu, 1, dtype=dtype)


def retroinfer_step(spec: ModelSpec, gpu: Accelerator, *, batch: int, context_tokens: float,
                    params: RetroInferParams | None = None, dtype: str = "bf16") -> RetroStep:
    """One decode step of ``batch`` requests of ``context_tokens`` each under RetroInfer (module
    docstring), on one GPU; ``dtype`` picks the peak FLOP/s of the attention and of the linear
    layers (the bytes are the model's ``dtype_bytes``)."""
    where = "retroinfer_step"
    b = check_nonneg_int(batch, "batch", where)
    n = check_positive_float(context_tokens, "context_tokens", where)
    p = RetroInferParams() if params is None else params
    cost = _iteration(spec, gpu, dtype)
    if b == 0:
        return RetroStep(0.0, 0.0, 0.0, 0.0, 0.0)
    eff = Efficiency()
    m, nprobe, n_est = p.clusters(n)
    d, e, kv, g = spec.head_dim, spec.dtype_bytes, spec.num_kv_heads, \
        spec.num_heads / spec.num_kv_heads
    token_kv = 2 * d * e * kv  # K and V of one token, one layer, every KV head
    exact = p.steady_tokens + nprobe * p.cluster_tokens
    hits = p.hit_rate * nprobe * p.cluster_tokens
    score_bytes = (m * d * e + n_est * (d + 1) * e) * kv
    copy_bytes = 2.0 * (p.steady_tokens + hits) * token_kv  # read and write on the GPU
    attend_bytes = exact * token_kv
    # score every centroid, attend the exact tokens, weigh the estimated clusters' value sums
    flops = (2 * g * m * d + 4 * g * exact * d + 2 * g * n_est * d) * kv
    bw = gpu.hbm_bytes_per_s * eff.memory_efficiency("attention")
    compute = gpu.peak_flops(dtype) * eff.compute_efficiency("attention")
    per_layer_gpu = b * max(flops / compute, (score_bytes + attend_bytes) / bw)
    per_layer_copy = b * copy_bytes / bw
    miss_bytes = (1.0 - p.hit_rate) * nprobe * p.cluster_tokens * token_kv
    link = get_interconnect(p.host_link)
    per_layer_pcie = b * miss_bytes / (link.bytes_per_s * p.pcie_efficiency)
    layers = spec.num_layers
    linear = cost.linear_time_s(b) + cost.head_time_s(b)  # launches: layer_overhead_s
    gpu_s = layers * per_layer_gpu
    pcie_s = layers * max(per_layer_pcie, per_layer_copy)
    overhead = layers * p.layer_overhead_s
    return RetroStep(linear, gpu_s, pcie_s, overhead, linear + gpu_s + pcie_s + overhead)


def full_attention_step_s(spec: ModelSpec, gpu: Accelerator, *, batch: int,
                          context_tokens: float) -> float:
    """One decode step of ``batch`` requests with their whole KV on the GPU (FlashInfer-style
    full attention), from the roofline iteration model."""
    b = check_nonneg_int(batch, "batch", "full_attention_step_s")
    n = check_positive_float(context_tokens, "context_tokens", "full_attention_step_s")
    if b == 0:
        return 0.0
    none = np.zeros(0, dtype=np.int64)  # the iteration model's decode-only step
    return _iteration(spec, gpu).iteration_time_s(none, none, b, math.ceil(b * n))


def max_batch_full(spec: ModelSpec, gpu: Accelerator, context_tokens: float) -> int:
    """Requests of ``context_tokens`` whose KV fits beside the weights (0: out of memory)."""
    n = check_positive_float(context_tokens, "context_tokens", "max_batch_full")
    return int(_iteration(spec, gpu).kv_capacity_tokens // n)


def max_batch_retroinfer(spec: ModelSpec, gpu: Accelerator, context_tokens: float,
                         params: RetroInferParams | None = None) -> int:
    """Requests of ``context_tokens`` whose index and cache fit on the GPU beside the weights
    and whose KV fits in host memory."""
    n = check_positive_float(context_tokens, "context_tokens", "max_batch_retroinfer")
    p = RetroInferParams() if params is None else params
    cost = _iteration(spec, gpu)
    kv_token = spec.kv_bytes_per_token()
    free = cost.kv_capacity_tokens * kv_token  # what the weights and activations leave
    m, nprobe, _ = p.clusters(n)
    index = m * 2 * spec.head_dim * spec.dtype_bytes * spec.num_kv_heads * spec.num_layers
    cache = p.cache_multiplier * nprobe * p.cluster_tokens * kv_token
    steady = p.steady_tokens * kv_token
    on_gpu = int(free // (index + cache + steady))
    return min(on_gpu, int(p.host_memory_bytes // (n * kv_token)))


def best_throughput(spec: ModelSpec, gpu: Accelerator, context_tokens: float, *,
                    retro: bool, params: RetroInferParams | None = None) -> tuple[float, int]:
    """The highest decode tokens per second over batch sizes 1, 2, 4, ... up to the largest
    that fits (the paper's sweep), and that batch; ``(0, 0)`` when none fits."""
    top = (max_batch_retroinfer(spec, gpu, context_tokens, params) if retro
           else max_batch_full(spec, gpu, context_tokens))
    if top < 1:
        return 0.0, 0
    sizes = sorted({*(2 ** k for k in range(int(math.log2(top)) + 1)), top})
    best = (0.0, 0)
    for b in sizes:
        t = (retroinfer_step(spec, gpu, batch=b, context_tokens=context_tokens,
                             params=params).total_s if retro
             else full_attention_step_s(spec, gpu, batch=b, context_tokens=context_tokens))
        best = max(best, (b / t if t > 0 else 0.0, b))
    return best


def fit_pcie_efficiency(spec: ModelSpec, gpu: Accelerator, context_tokens: float,
                        speedup: float, params: RetroInferParams | None = None) -> float:
    """The ``pcie_efficiency`` at which RetroInfer's best throughput over full attention's at
    ``context_tokens`` equals ``speedup`` (bisection; the speedup grows with the efficiency).
    ``ValueError`` when no efficiency in [0.001, 1] reaches it.

    >>> from schedlab.costmodel import get_accelerator, get_model
    >>> round(fit_pcie_efficiency(get_model("llama-3-8b"), get_accelerator("a100-80gb"),
    ...                           30_000, 4.1), 4)                 # Fig. 13a
    0.645
    """
    p = RetroInferParams() if params is None else params
    target = check_positive_float(speedup, "speedup", "fit_pcie_efficiency")
    full, _ = best_throughput(spec, gpu, context_tokens, retro=False)
    if full <= 0:
        raise ValueError("fit_pcie_efficiency: full attention does not fit at "
                         f"{context_tokens} tokens; nothing to compare with.")

    def ratio(eff: float) -> float:
        q = dataclasses.replace(p, pcie_efficiency=eff)
        return best_throughput(spec, gpu, context_tokens, retro=True, params=q)[0] / full

    lo, hi = 1e-3, 1.0
    if not ratio(lo) <= target <= ratio(hi):
        raise ValueError(f"fit_pcie_efficiency: a speedup of {target}x is outside what PCIe "
                         f"efficiencies in [0.001, 1] give ({ratio(lo):.2f}x to {ratio(hi):.2f}x).")
    for _ in range(24):  # well below the 4 decimals kept
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ratio(mid) < target else (lo, mid)
    return round((lo + hi) / 2, 4)
