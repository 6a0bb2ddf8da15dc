"""Block-sparse attention (MoBA) against dense FlashAttention: FLOPs, bytes and time of prefill
and decode attention for a block size and a top-k, with kernel overheads calibrated on the
paper's measured speedups.

Seed paper: MoBA, Lu et al., "MoBA: Mixture of Block Attention for Long-Context LLMs" (arXiv
2502.13189, §2.2-2.3 and Algorithm 1 for the computation, §3.4 and Fig. 2 for the timings).

What MoBA computes for a prefill of ``N`` tokens in blocks of ``B`` with top-``k`` (per query
head; :func:`moba_attended_pairs` counts the work exactly, the same rule as
:func:`schedlab.contract.block_attention.attended_tokens`):

1. the gate: mean-pool the keys of every block, score every query against every block mean in
   fp32 (``2 N ceil(N/B) d`` FLOPs), mask future blocks, take the top-k;
2. sort the queries by block and run varlen FlashAttention: the current block causal, the
   ``k - 1`` selected past blocks non-causal (``4 d`` FLOPs per attended (query, key) pair);
3. merge the partial results by their log-sum-exp (memory-bound).

The time model (:func:`moba_prefill_time_s`; dense: :func:`full_prefill_time_s`) prices each
step on the roofline with :class:`BlockSparseEfficiency`:

- dense FlashAttention reaches ``attention_compute`` of peak;
- MoBA's block kernels reach ``attention_compute * B / (B + block_half_tokens)``: each
  (query tile, block) pair pays a prologue and an epilogue that a dense kernel pays once per
  query tile, so short blocks run below dense efficiency and long ones approach it;
- the gate's top-k costs ``topk_bytes_per_score`` bytes of HBM traffic per fp32 score (a fitted
  constant: ``torch.topk`` over a strided dimension is far from streaming), the only term that
  grows as ``N^2 / B``;
- gathers and the merge stream at ``memory`` of HBM bandwidth; every kernel costs the
  accelerator's launch time.

The defaults are :func:`fit_block_sparse` on the paper's Fig. 2a at 256K and 512K tokens
(:data:`MOBA_FIG2`, values read off the plot), on one H800-class GPU computing one query head
(Llama-3.1-8B under 32-way head parallelism) [recon: the paper names neither the GPU nor the
head count; ~300 TFLOP/s of dense FlashAttention per plotted time only fits one head on a
Hopper GPU]. The seed :mod:`schedlab.seeds.moba` tests them on the points not fitted.

Decode: the paper decodes dense (§3.3: "we switch to full attention during generation");
:func:`moba_decode_time_s` is our model of MoBA decoding (read the block means, then the ``k``
selected blocks' KV) [recon].

>>> from schedlab.costmodel import get_accelerator, get_model
>>> head, gpu = get_model("llama-3-8b"), get_accelerator("h800")
>>> n = 2 ** 20
>>> full = full_prefill_time_s(head, gpu, n, tp=32)
>>> moba = moba_prefill_time_s(head, gpu, n, block_tokens=4096, top_k=12, tp=32)
>>> round(float(full / moba), 1)    # the paper's Fig. 2a: 6.5x at 1M tokens (not fitted)
6.6
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from schedlab.costmodel.ops import kv_heads_per_device
from schedlab.errors import check_positive_int

if TYPE_CHECKING:  # pragma: no cover
    from schedlab.costmodel.hardware import Accelerator
    from schedlab.costmodel.models import ModelSpec

__all__ = [
    "MOBA_FIG2",
    "BlockSparseEfficiency",
    "MobaWork",
    "fit_block_sparse",
    "full_prefill_time_s",
    "moba_attended_pairs",
    "moba_decode_time_s",
    "moba_prefill_time_s",
    "moba_prefill_work",
]

#: Kernels a MoBA prefill launches per layer: mean-pool, gate GEMM, top-k, sort, gather,
#: current-block attention, selected-block attention, merge.
MOBA_KERNELS = 8
#: FlashAttention's query tile: K and V of a block are read once per tile of this many queries.
QUERY_TILE = 128

#: The timings of MoBA's Fig. 2 (arXiv 2502.13189 §3.4: the attention layer's forward pass,
#: Llama-8B-1M-MoBA against FlashAttention), read off the plots (+-5%): per figure, rows of
#: ``(tokens, block_tokens, top_k, flash_attention_s, moba_s)``. Fig. 2a is the 1M model's
#: setting (blocks of 4096, top-12); Fig. 2b keeps 64 blocks and top-3 (95.31% sparsity) up to
#: 10M tokens (there with query-head tensor parallelism, K and V broadcast).
MOBA_FIG2: Mapping[str, tuple[tuple[int, int, int, float, float], ...]] = MappingProxyType({
    "2a": ((2 ** 18, 4096, 12, 0.058, 0.027),
           (2 ** 19, 4096, 12, 0.236, 0.061),
           (2 ** 20, 4096, 12, 0.942, 0.144)),
    "2b": ((2 ** 19, 2 ** 13, 3, 0.22, 0.024),
           (2 ** 22, 2 ** 16, 3, 14.5, 1.1),
           (10 * 2 ** 20, 10 * 2 ** 14, 3, 90.6, 5.8)),
})


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockSparseEfficiency:
    """How close to the roofline dense and block-sparse attention run (module docstring).

    Defaults: :func:`fit_block_sparse` on Fig. 2a at 256K and 512K tokens on an H800 (a test
    checks that the fit gives them back); ``gate_compute`` and ``memory`` are the roofline's
    GEMM and streaming defaults (:class:`~schedlab.costmodel.roofline.Efficiency`).

    >>> round(float(BlockSparseEfficiency().block_compute(4096)), 3)  # below dense's 0.3017
    0.242
    >>> BlockSparseEfficiency(attention_compute=0.0)
    Traceback (most recent call last):
    ...
    ValueError: BlockSparseEfficiency.attention_compute must be a float in (0, 1]. Got 0.0.
    """

    attention_compute: float = 0.3017
    block_half_tokens: float = 1012.0
    topk_bytes_per_score: float = 450.0
    gate_compute: float = 0.70
    memory: float = 0.80

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if f.name in ("attention_compute", "gate_compute", "memory"):
                if not (ok and 0.0 < v <= 1.0):
                    raise ValueError(f"BlockSparseEfficiency.{f.name} must be a float in (0, 1]. "
                                     f"Got {v!r}.")
            elif not (ok and v >= 0.0):
                raise ValueError(f"BlockSparseEfficiency.{f.name} must be a finite float >= 0. "
                                 f"Got {v!r}.")

    def block_compute(self, block_tokens: Any) -> Any:
        """Fraction of peak MoBA's block kernels reach with blocks of ``block_tokens``."""
        b = np.asarray(block_tokens, dtype=np.float64)
        return self.attention_compute * b / (b + self.block_half_tokens)


class MobaWork(NamedTuple):
    """The work of a MoBA prefill, per layer and device (arrays of the tokens' shape).

    ``pairs``: attended (query, key) pairs per query head; ``scores``: gate scores (query,
    block, head); FLOPs and HBM bytes of the gate (mean-pool and scoring), of the block
    attention, and the bytes of the merge.
    """

    pairs: np.ndarray
    scores: np.ndarray
    gate_flops: np.ndarray
    gate_bytes: np.ndarray
    attention_flops: np.ndarray
    attention_bytes: np.ndarray
    combine_bytes: np.ndarray


def _ints(x: Any, name: str, where: str, low: int) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise ValueError(f"The {name!r} parameter of {where} must be integers >= {low}. "
                         f"Got {x!r}.")
    bad = np.flatnonzero(np.ravel(a < low))
    if bad.shape[0]:
        raise ValueError(f"The {name!r} parameter of {where} must be integers >= {low}; element "
                         f"{int(bad[0])} is {np.ravel(a)[bad[0]].item()!r}.")
    return a.astype(np.float64)


def _sum_min(blocks: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """``sum(min(cap, c) for c in range(blocks))``."""
    u = np.minimum(blocks, cap)
    return u * (u - 1.0) / 2.0 + cap * (blocks - u)


def moba_attended_pairs(n_tokens: Any, block_tokens: Any, top_k: Any) -> np.ndarray:
    """Attended (query, key) pairs of a MoBA prefill of ``n_tokens`` (per head), exactly: the
    query at ``t`` in block ``c`` attends ``min(k - 1, c)`` whole past blocks and the ``t mod B
    + 1`` tokens of its own block up to itself. Broadcasts over its arguments.

    With ``top_k`` at least the number of blocks it is dense causal attention, ``N (N + 1) / 2``:

    >>> moba_attended_pairs([8, 10], 4, 99).tolist()
    [36.0, 55.0]
    >>> moba_attended_pairs(10, 4, 2).tolist()      # blocks 0-3 | 4-7 | 8-9: 10 + 26 + 11
    47.0
    """
    where = "moba_attended_pairs"
    n = _ints(n_tokens, "n_tokens", where, 0)
    b = _ints(block_tokens, "block_tokens", where, 1)
    k = _ints(top_k, "top_k", where, 1)
    full, rem = np.floor(n / b), n - np.floor(n / b) * b
    past = k - 1.0
    causal = full * b * (b + 1.0) / 2.0 + rem * (rem + 1.0) / 2.0
    return causal + b * (b * _sum_min(full, past) + rem * np.minimum(past, full))


def _selected_blocks(n: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Blocks selected over all queries, ``sum_t min(k, c_t + 1)``: ``B`` queries in each whole
    block ``c`` and the rest in the partial one."""
    full, rem = np.floor(n / b), n - np.floor(n / b) * b
    return b * _sum_min(full + 1.0, k) + rem * np.minimum(k, full + 1.0)


def moba_prefill_work(spec: ModelSpec, n_tokens: Any, *, block_tokens: Any, top_k: Any,
                      tp: int = 1) -> MobaWork:
    """FLOPs and bytes of a MoBA prefill of ``n_tokens`` with blocks of ``block_tokens`` and
    top-``top_k``, per layer and device (``tp`` splits the query heads; K and V heads are
    replicated when fewer than ``tp``, as MoBA's query-head parallelism broadcasts them).

    >>> from schedlab.costmodel import get_model
    >>> w = moba_prefill_work(get_model("llama-3-8b"), 2 ** 20, block_tokens=4096, top_k=12,
    ...                       tp=32)
    >>> round(float(w.pairs / (2 ** 20 * (2 ** 20 + 1) / 2)), 3)   # of dense causal's pairs
    0.088
    """
    where = "moba_prefill_work"
    tp = check_positive_int(tp, "tp", where)
    if tp > spec.num_heads:
        raise ValueError(f"The 'tp' parameter of {where} must be at most {spec.name}'s "
                         f"{spec.num_heads} query heads (head parallelism). Got {tp}.")
    n = _ints(n_tokens, "n_tokens", where, 0)
    b = _ints(block_tokens, "block_tokens", where, 1)
    k = _ints(top_k, "top_k", where, 1)
    h, hk, d, eb = spec.num_heads / tp, kv_heads_per_device(spec, tp), spec.head_dim, \
        spec.dtype_bytes
    pairs = moba_attended_pairs(n, b, k)
    nb = np.ceil(n / b)
    scores = n * nb * h
    picks = _selected_blocks(n, b, k) * h  # (query, head, block) triples
    gate_flops = 2.0 * scores * d + n * hk * d
    gate_bytes = (n * hk * d * eb + nb * hk * d * eb  # mean-pool: read K, write the means
                  + n * h * d * eb + nb * h * d * eb + 4.0 * scores)  # Q, means, fp32 scores
    attention_flops = 4.0 * pairs * h * d
    attention_bytes = (2.0 * picks * d * eb  # queries gathered per selected block
                       + pairs * h / QUERY_TILE * 2.0 * d * eb  # K, V per query tile
                       + picks * (d + 1.0) * 4.0)  # fp32 partial outputs and log-sum-exps
    combine_bytes = picks * (d + 1.0) * 4.0 + n * h * d * eb
    return MobaWork(pairs=pairs, scores=scores, gate_flops=gate_flops, gate_bytes=gate_bytes,
                    attention_flops=attention_flops, attention_bytes=attention_bytes,
                    combine_bytes=combine_bytes)


def _eff(efficiency: BlockSparseEfficiency | None) -> BlockSparseEfficiency:
    if efficiency is None:
        return BlockSparseEfficiency()
    if not isinstance(efficiency, BlockSparseEfficiency):
        raise ValueError(f"The 'efficiency' parameter must be a BlockSparseEfficiency. Got "
                         f"{type(efficiency).__name__}.")
    return efficiency


def _dense_terms(spec: ModelSpec, n: np.ndarray, tp: int) -> tuple[np.ndarray, np.ndarray]:
    """FLOPs and bytes of dense causal FlashAttention over ``n`` tokens (no cache)."""
    h, hk, d, eb = spec.num_heads / tp, kv_heads_per_device(spec, tp), spec.head_dim, \
        spec.dtype_bytes
    pairs = n * (n + 1.0) / 2.0
    return 4.0 * pairs * h * d, (2.0 * n * h * d + 2.0 * n * hk * d
                                 + pairs * h / QUERY_TILE * 2.0 * d) * eb


def full_prefill_time_s(spec: ModelSpec, gpu: Accelerator, n_tokens: Any, *, tp: int = 1,
                        efficiency: BlockSparseEfficiency | None = None,
                        dtype: str = "bf16") -> np.ndarray:
    """Seconds of dense causal FlashAttention over ``n_tokens`` (one layer, one device).

    >>> from schedlab.costmodel import get_accelerator, get_model
    >>> round(float(full_prefill_time_s(get_model("llama-3-8b"), get_accelerator("h800"),
    ...                                 2 ** 20, tp=32)), 2)    # Fig. 2a: 0.94 s
    0.94
    """
    where = "full_prefill_time_s"
    tp = check_positive_int(tp, "tp", where)
    e = _eff(efficiency)
    n = _ints(n_tokens, "n_tokens", where, 0)
    flops, nbytes = _dense_terms(spec, n, tp)
    t = np.maximum(flops / (gpu.peak_flops(dtype) * e.attention_compute),
                   nbytes / (gpu.hbm_bytes_per_s * e.memory))
    return np.where(n > 0, t + gpu.kernel_launch_s, 0.0)


def _moba_terms(spec: ModelSpec, gpu: Accelerator, n_tokens: Any, block_tokens: Any, top_k: Any,
                tp: int, dtype: str) -> tuple[MobaWork, np.ndarray, np.ndarray]:
    """The work, the block attention's FLOPs over peak (s at 100%), and the top-k's scores over
    the HBM bandwidth (s per byte of ``topk_bytes_per_score``)."""
    w = moba_prefill_work(spec, n_tokens, block_tokens=block_tokens, top_k=top_k, tp=tp)
    return w, w.attention_flops / gpu.peak_flops(dtype), w.scores / gpu.hbm_bytes_per_s


def moba_prefill_time_s(spec: ModelSpec, gpu: Accelerator, n_tokens: Any, *,
                        block_tokens: Any = 4096, top_k: Any = 12, tp: int = 1,
                        efficiency: BlockSparseEfficiency | None = None,
                        dtype: str = "bf16") -> np.ndarray:
    """Seconds of a MoBA prefill's attention over ``n_tokens`` (one layer, one device; defaults:
    the Llama-8B-1M-MoBA setting, blocks of 4096 and top-12, MoBA §3.3).

    >>> from schedlab.costmodel import get_accelerator, get_model
    >>> t = moba_prefill_time_s(get_model("llama-3-8b"), get_accelerator("h800"),
    ...                         [2 ** 18, 2 ** 20], tp=32)
    >>> (t * 1e3).round().tolist()      # Fig. 2a: 27 and 144 ms
    [27.0, 142.0]
    """
    where = "moba_prefill_time_s"
    tp = check_positive_int(tp, "tp", where)
    e = _eff(efficiency)
    w, peak_s, score_s = _moba_terms(spec, gpu, n_tokens, block_tokens, top_k, tp, dtype)
    bw = gpu.hbm_bytes_per_s * e.memory
    b = np.asarray(block_tokens, dtype=np.float64)
    gate = np.maximum(w.gate_flops / (gpu.peak_flops(dtype) * e.gate_compute), w.gate_bytes / bw)
    attention = np.maximum(peak_s / e.block_compute(b), w.attention_bytes / bw)
    t = gate + score_s * e.topk_bytes_per_score + attention + w.combine_bytes / bw
    return np.where(w.pairs > 0, t + MOBA_KERNELS * gpu.kernel_launch_s, 0.0)


def fit_block_sparse(points: Any, spec: ModelSpec, gpu: Accelerator, *, tp: int = 1,
                     dtype: str = "bf16") -> BlockSparseEfficiency:
    """Fit :class:`BlockSparseEfficiency` to measured timings: rows of ``(tokens, block_tokens,
    top_k, dense_s, moba_s)`` (at least two with different token counts). Least squares:
    ``attention_compute`` on the dense times, then ``block_half_tokens`` and
    ``topk_bytes_per_score`` (non-negative) on the MoBA times given it.

    >>> from schedlab.costmodel import get_accelerator, get_model
    >>> e = fit_block_sparse(MOBA_FIG2["2a"][:2], get_model("llama-3-8b"),
    ...                      get_accelerator("h800"), tp=32)
    >>> e == BlockSparseEfficiency()      # the defaults are this fit
    True
    """
    where = "fit_block_sparse"
    tp = check_positive_int(tp, "tp", where)
    rows = np.asarray(points, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != 5 or rows.shape[0] < 2 or not np.isfinite(rows).all():
        raise ValueError(f"The 'points' parameter of {where} must be rows of (tokens, "
                         f"block_tokens, top_k, dense_s, moba_s), at least two, all finite. "
                         f"Got shape {rows.shape}.")
    if (rows[:, 3:] <= 0).any() or np.unique(rows[:, 0]).shape[0] < 2:
        raise ValueError(f"The 'points' parameter of {where} needs positive times at two token "
                         f"counts or more.")
    n, b, k, dense, moba = rows.T
    launch = gpu.kernel_launch_s
    flops, _ = _dense_terms(spec, n, tp)
    a = flops / gpu.peak_flops(dtype)
    inv = float(a @ (dense - launch) / (a @ a))  # 1 / attention_compute
    if not inv >= 1.0:
        raise ValueError(f"The 'points' parameter of {where}: the dense times imply FlashAttention "
                         f"above the GPU's peak or below its launch cost (1 / efficiency "
                         f"{inv:.3g}); check their units (seconds) and the GPU.")
    base = BlockSparseEfficiency(attention_compute=1.0 / inv)
    w, peak_s, score_s = _moba_terms(spec, gpu, n, b, k, tp, dtype)
    bw = gpu.hbm_bytes_per_s * base.memory
    gate = np.maximum(w.gate_flops / (gpu.peak_flops(dtype) * base.gate_compute),
                      w.gate_bytes / bw)
    rest = moba - launch * MOBA_KERNELS - gate - w.combine_bytes / bw - peak_s * inv
    design = np.column_stack([peak_s * inv / b, score_s])
    from scipy.optimize import nnls

    (half, per_score), _ = nnls(design, rest)
    return dataclasses.replace(base, attention_compute=round(base.attention_compute, 4),
                               block_half_tokens=round(float(half)),
                               topk_bytes_per_score=round(float(per_score), -1))


def moba_decode_time_s(spec: ModelSpec, gpu: Accelerator, context_tokens: Any, *,
                       block_tokens: Any = 4096, top_k: Any = 12, tp: int = 1,
                       efficiency: BlockSparseEfficiency | None = None,
                       dtype: str = "bf16") -> np.ndarray:
    """Seconds of one decode step's attention for one request with ``context_tokens`` of KV
    under MoBA (one layer, one device): score the block means, then read the selected blocks'
    K and V (memory-bound: it streams ``ceil(N/B)`` means and up to ``k B`` tokens instead of
    ``N``) [recon: the paper decodes dense, §3.3]. ``top_k`` at least the number of blocks gives
    the dense step. ``dtype`` picks the peak FLOP/s (the bytes are the model's ``dtype_bytes``).

    >>> from schedlab.costmodel import get_accelerator, get_model
    >>> spec, gpu = get_model("llama-3-8b"), get_accelerator("h800")
    >>> t = moba_decode_time_s(spec, gpu, [2 ** 20, 2 ** 20], top_k=[12, 256])
    >>> round(float(t[1] / t[0]), 1)      # dense / MoBA at 1M tokens
    19.0
    """
    where = "moba_decode_time_s"
    tp = check_positive_int(tp, "tp", where)
    e = _eff(efficiency)
    n = _ints(context_tokens, "context_tokens", where, 1)
    b = _ints(block_tokens, "block_tokens", where, 1)
    k = _ints(top_k, "top_k", where, 1)
    h, hk, d, eb = spec.num_heads / tp, kv_heads_per_device(spec, tp), spec.head_dim, \
        spec.dtype_bytes
    nb = np.ceil(n / b)
    cur = n - (nb - 1.0) * b  # tokens in the newest (current) block
    tokens = np.minimum(k - 1.0, nb - 1.0) * b + cur
    dense = k >= nb
    gate_bytes = np.where(dense, 0.0, nb * hk * d * eb + nb * h * 4.0)
    nbytes = gate_bytes + tokens * 2.0 * hk * d * eb + 2.0 * h * d * eb
    flops = np.where(dense, 0.0, 2.0 * nb * h * d) + 4.0 * tokens * h * d
    t = np.maximum(flops / (gpu.peak_flops(dtype) * e.attention_compute),
                   nbytes / (gpu.hbm_bytes_per_s * e.memory))
    kernels = np.where(dense, 1.0, 3.0)
    return t + kernels * gpu.kernel_launch_s
