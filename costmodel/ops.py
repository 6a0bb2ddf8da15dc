"""FLOPs and HBM bytes of the operators of a transformer forward pass, vectorised over token counts.

Every function returns an :class:`OpCost` whose ``flops`` and ``bytes`` arrays have the broadcast
shape of its token-count arguments. Counts are *per device* under a tensor-parallel degree ``tp``:
the GEMMs split their output (QKV, MLP up) or input (O-proj, MLP down) dimension across devices,
so per-device FLOPs and weight bytes are divided by ``tp``; norms, residual adds and the embedding
gather run replicated on every device. One layer's cost is given; multiply by the layer count.

Conventions (``b`` = bytes per element of the model's dtype, ``T`` tokens, ``h`` hidden size):

* GEMM ``[T, K] @ [K, N]``: ``2*T*K*N`` FLOPs; bytes read ``T*K + K*N``, written ``T*N`` (times b).
* QKV is grouped-query aware: ``q`` has ``num_heads*head_dim`` outputs, ``k`` and ``v`` have
  ``num_kv_heads*head_dim`` each. KV heads are replicated when ``num_kv_heads < tp``.
* Causal prefill of a chunk of ``c`` new tokens after ``p`` cached ones: query i (0-based) attends
  to ``p + i + 1`` keys, so scores plus values cost ``4 * c * (p + (c + 1) / 2) * heads * head_dim``
  FLOPs; bytes are Q and O (``c`` rows each), the KV read once (``p + c`` tokens) and the new KV
  written (``c`` tokens), the FlashAttention access pattern.
* Decode against a KV cache: one query per request; FLOPs ``4 * context * heads * head_dim`` and
  bytes the whole KV of the context, so bytes scale with the KV heads, not the query heads.
* MoE: each token goes to ``experts_top_k`` routed experts plus ``num_shared_experts`` shared ones
  (gated, ``moe_ffn_hidden`` wide). Weight bytes count only the experts actually touched: with
  uniform routing the expected number of distinct experts hit by ``T`` tokens is
  ``E * (1 - (1 - k/E) ** T)``, which is at most ``min(E, T*k)``.
* MLA (``kv_lora_rank > 0``, DeepSeek-V3 / Kimi-K2), approximately: the cache holds the
  ``kv_lora_rank + qk_rope_head_dim`` latent per token and layer, replicated on every
  tensor-parallel device; projections are q ``h -> heads*(head_dim+rope)``, kv-down
  ``h -> lora+rope`` (replicated) and kv-up ``lora -> heads*2*head_dim`` (q goes through
  ``q_lora_rank`` first when it is set); decode runs in the absorbed form, scores against the latent
  (``lora+rope`` per head) and values of width ``lora``; prefill runs as multi-head attention with
  q/k width ``head_dim+rope`` and v width ``head_dim``.

>>> import numpy as np
>>> from schedlab.costmodel.ops import gemm
>>> op = gemm("x", rows=np.array([1, 4]), n=8, k=2, dtype_bytes=2)
>>> op.flops.tolist(), op.bytes.tolist()
([32.0, 128.0], [52.0, 112.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from schedlab.errors import check_positive_int

if TYPE_CHECKING:  # pragma: no cover
    from schedlab.costmodel.models import ModelSpec

__all__ = [
    "KINDS",
    "OpCost",
    "attention_decode",
    "attention_prefill",
    "embedding",
    "gemm",
    "kv_bytes_per_token_per_device",
    "kv_heads_per_device",
    "layer_linear_ops",
    "logits",
    "mlp_act",
    "mlp_down",
    "mlp_up",
    "moe",
    "norm",
    "o_proj",
    "qkv_proj",
    "residual_add",
    "rope",
]

#: Kernel classes; each has its own efficiency in :class:`schedlab.costmodel.roofline.Efficiency`.
KINDS = ("gemm", "attention", "norm", "rope", "act", "add", "gather")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpCost:
    """FLOPs and HBM bytes of one operator (one layer, one device), arrays of a common shape.

    ``kind`` is one of :data:`KINDS`; ``rows`` is the GEMM's token dimension (M), used by the
    size-dependent efficiency, and equals the token count for the other kinds; ``kernels`` is the
    number of kernel launches the operator costs.
    """

    name: str
    kind: str
    flops: np.ndarray
    bytes: np.ndarray
    rows: np.ndarray
    kernels: int = 1


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _counts(x: Any, name: str, where: str) -> np.ndarray:
    """``x`` as float64 token (or byte) counts, or a ``ValueError`` naming the first bad one."""
    try:
        a = _arr(x)
    except (TypeError, ValueError):
        raise ValueError(
            f"The {name!r} parameter of {where} must be numeric counts. Got {x!r} instead."
        ) from None
    bad = ~(a >= 0) | np.isinf(a)  # negative, NaN or infinite
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"The {name!r} parameter of {where} must hold finite counts >= 0; "
            f"element {i} is {a.ravel()[i].item()!r}."
        )
    return a


def _tp(tp: int, where: str) -> int:
    return check_positive_int(tp, "tp", where)


def gemm(
    name: str, rows: Any, n: float, k: float, dtype_bytes: float, *, weight_bytes: Any = None
) -> OpCost:
    """A ``[rows, k] @ [k, n]`` GEMM. ``weight_bytes`` overrides the ``k*n*dtype_bytes`` read."""
    m = _counts(rows, "rows", "gemm")
    w = (k * n * dtype_bytes if weight_bytes is None
         else _counts(weight_bytes, "weight_bytes", "gemm"))
    return OpCost(
        name=name,
        kind="gemm",
        flops=2.0 * m * k * n,
        bytes=(m * k + m * n) * dtype_bytes + w,
        rows=m,
    )


def _elementwise(name: str, kind: str, tokens: Any, width: float, passes: float, flops: float,
                 dtype_bytes: float) -> OpCost:
    t = _arr(tokens)
    return OpCost(name=name, kind=kind, flops=flops * t * width,
                  bytes=passes * t * width * dtype_bytes, rows=t)


def kv_heads_per_device(spec: ModelSpec, tp: int = 1) -> int:
    """KV heads each device holds: ``ceil(num_kv_heads / tp)`` (replicated when fewer than tp).

    >>> from types import SimpleNamespace as S
    >>> kv_heads_per_device(S(num_kv_heads=8), tp=16)
    1
    """
    tp = _tp(tp, "kv_heads_per_device")
    return -(-spec.num_kv_heads // tp)


def _heads(spec: ModelSpec, tp: int) -> float:
    return spec.num_heads / tp


def _mla(spec: ModelSpec) -> bool:
    return getattr(spec, "kv_lora_rank", 0) > 0


def kv_bytes_per_token_per_device(spec: ModelSpec, tp: int = 1) -> float:
    """KV-cache bytes one device stores per token, one layer.

    GQA: ``2 * kv_heads_per_device * head_dim * dtype_bytes``; MLA: the latent
    ``(kv_lora_rank + qk_rope_head_dim) * dtype_bytes``, replicated on every device.

    >>> from types import SimpleNamespace as S
    >>> spec = S(num_kv_heads=8, head_dim=128, dtype_bytes=2, kv_lora_rank=0)
    >>> kv_bytes_per_token_per_device(spec, tp=2)
    2048.0
    """
    tp = _tp(tp, "kv_bytes_per_token_per_device")
    if _mla(spec):
        return float((spec.kv_lora_rank + spec.qk_rope_head_dim) * spec.dtype_bytes)
    return float(2 * kv_heads_per_device(spec, tp) * spec.head_dim * spec.dtype_bytes)


def embedding(spec: ModelSpec, tokens: Any, tp: int = 1) -> OpCost:
    """Embedding gather: read ``tokens`` rows of ``hidden_size`` and write them (vocab-parallel)."""
    _tp(tp, "embedding")
    tokens = _counts(tokens, "tokens", "embedding")
    return _elementwise("embedding", "gather", tokens, spec.hidden_size, 2.0, 0.0, spec.dtype_bytes)


def norm(spec: ModelSpec, tokens: Any, name: str = "norm") -> OpCost:
    """RMSNorm / LayerNorm over ``hidden_size``: read and write each element (replicated)."""
    tokens = _counts(tokens, "tokens", "norm")
    return _elementwise(name, "norm", tokens, spec.hidden_size, 2.0, 4.0, spec.dtype_bytes)


def residual_add(spec: ModelSpec, tokens: Any) -> OpCost:
    """Residual add of two ``[tokens, hidden]`` tensors: two reads, one write (replicated)."""
    tokens = _counts(tokens, "tokens", "residual_add")
    return _elementwise("residual_add", "add", tokens, spec.hidden_size, 3.0, 1.0,
                        spec.dtype_bytes)


def qkv_proj(spec: ModelSpec, tokens: Any, tp: int = 1) -> OpCost:
    """Fused Q/K/V projection, grouped-query aware (see the module notes for MLA)."""
    tp = _tp(tp, "qkv_proj")
    tokens = _counts(tokens, "tokens", "qkv_proj")
    h, hd, b = spec.hidden_size, spec.head_dim, spec.dtype_bytes
    if _mla(spec):
        lora, r = spec.kv_lora_rank, spec.qk_rope_head_dim
        q_lora = getattr(spec, "q_lora_rank", 0)
        if q_lora:
            q_a = gemm("q_a", tokens, q_lora, h, b)
            q_b = gemm("q_b", tokens, spec.num_heads * (hd + r) / tp, q_lora, b)
            q = OpCost(name="q", kind="gemm", flops=q_a.flops + q_b.flops,
                       bytes=q_a.bytes + q_b.bytes, rows=q_a.rows, kernels=2)
        else:
            q = gemm("q", tokens, spec.num_heads * (hd + r) / tp, h, b)
        kv_a = gemm("kv_a", tokens, lora + r, h, b)
        kv_b = gemm("kv_b", tokens, spec.num_heads * 2 * hd / tp, lora, b)
        return OpCost(name="qkv_proj", kind="gemm", flops=q.flops + kv_a.flops + kv_b.flops,
                      bytes=q.bytes + kv_a.bytes + kv_b.bytes, rows=q.rows,
                      kernels=q.kernels + 2)
    n = (spec.num_heads / tp + 2 * kv_heads_per_device(spec, tp)) * hd
    return gemm("qkv_proj", tokens, n, h, b)


def rope(spec: ModelSpec, tokens: Any, tp: int = 1) -> OpCost:
    """Rotary embedding applied in place to q and k (their ``rotary_fraction``): read and write."""
    tp = _tp(tp, "rope")
    tokens = _counts(tokens, "tokens", "rope")
    if _mla(spec):
        width = (spec.num_heads / tp + 1) * spec.qk_rope_head_dim
    else:
        width = ((spec.num_heads / tp + kv_heads_per_device(spec, tp)) * spec.head_dim
                 * getattr(spec, "rotary_fraction", 1.0))
    return _elementwise("rope", "rope", tokens, width, 2.0, 3.0, spec.dtype_bytes)


def o_proj(spec: ModelSpec, tokens: Any, tp: int = 1) -> OpCost:
    """Attention output projection ``heads*head_dim -> hidden``, input split over ``tp``."""
    tp = _tp(tp, "o_proj")
    tokens = _counts(tokens, "tokens", "o_proj")
    return gemm("o_proj", tokens, spec.hidden_size, spec.num_heads * spec.head_dim / tp,
                spec.dtype_bytes)


def attention_prefill(
    spec: ModelSpec, chunk_tokens: Any, cached_tokens: Any, tp: int = 1
) -> OpCost:
    """Causal attention of ``chunk_tokens`` new tokens after ``cached_tokens`` cached ones.

    >>> from types import SimpleNamespace as S
    >>> spec = S(num_heads=1, num_kv_heads=1, head_dim=1, dtype_bytes=2, kv_lora_rank=0)
    >>> float(attention_prefill(spec, 2, 0).flops[()])  # 4 * 2 * (0 + 1.5)
    12.0
    """
    tp = _tp(tp, "attention_prefill")
    c = _counts(chunk_tokens, "chunk_tokens", "attention_prefill")
    p = _counts(cached_tokens, "cached_tokens", "attention_prefill")
    heads, hd, b = _heads(spec, tp), spec.head_dim, spec.dtype_bytes
    pairs = c * (p + (c + 1.0) / 2.0)
    kvb = kv_bytes_per_token_per_device(spec, tp)
    if _mla(spec):
        qk, v = hd + spec.qk_rope_head_dim, hd
        flops = 2.0 * pairs * heads * (qk + v)
        qo = c * heads * (qk + v) * b
        kv = (p + c) * heads * (qk + v) * b + c * kvb
    else:
        flops = 4.0 * pairs * heads * hd
        qo = 2.0 * c * heads * hd * b
        kv = (p + c) * kvb + c * kvb
    return OpCost(name="attention_prefill", kind="attention", flops=flops, bytes=qo + kv, rows=c)


def attention_decode(spec: ModelSpec, batch_size: Any, context_sum: Any, tp: int = 1) -> OpCost:
    """Decode attention of ``batch_size`` requests whose contexts sum to ``context_sum`` tokens.

    Reads the whole KV of every context (GQA: bytes scale with the KV heads, not query heads).
    """
    tp = _tp(tp, "attention_decode")
    bsz = _counts(batch_size, "batch_size", "attention_decode")
    ctx = _counts(context_sum, "context_sum", "attention_decode")
    heads, hd, b = _heads(spec, tp), spec.head_dim, spec.dtype_bytes
    kvb = kv_bytes_per_token_per_device(spec, tp)
    if _mla(spec):
        lora, r = spec.kv_lora_rank, spec.qk_rope_head_dim
        flops = 2.0 * ctx * heads * (2 * lora + r)
        qo = bsz * heads * (2 * lora + r) * b
    else:
        flops = 4.0 * ctx * heads * hd
        qo = 2.0 * bsz * heads * hd * b
    return OpCost(name="attention_decode", kind="attention", flops=flops,
                  bytes=ctx * kvb + bsz * kvb + qo, rows=bsz)


def mlp_up(spec: ModelSpec, tokens: Any, tp: int = 1, ffn: float | None = None) -> OpCost:
    """MLP up projection (fused gate+up when gated), output split over ``tp``."""
    tp = _tp(tp, "mlp_up")
    tokens = _counts(tokens, "tokens", "mlp_up")
    f = (spec.ffn_hidden if ffn is None else ffn) / tp
    return gemm("mlp_up", tokens, f * (2 if spec.gated_mlp else 1), spec.hidden_size,
                spec.dtype_bytes)


def mlp_act(spec: ModelSpec, tokens: Any, tp: int = 1, ffn: float | None = None) -> OpCost:
    """Activation (SiLU-and-mul when gated: two reads and one write; GELU: read and write)."""
    tp = _tp(tp, "mlp_act")
    tokens = _counts(tokens, "tokens", "mlp_act")
    f = (spec.ffn_hidden if ffn is None else ffn) / tp
    passes = 3.0 if spec.gated_mlp else 2.0
    return _elementwise("mlp_act", "act", tokens, f, passes, 8.0, spec.dtype_bytes)


def mlp_down(spec: ModelSpec, tokens: Any, tp: int = 1, ffn: float | None = None) -> OpCost:
    """MLP down projection, input split over ``tp``."""
    tp = _tp(tp, "mlp_down")
    tokens = _counts(tokens, "tokens", "mlp_down")
    f = (spec.ffn_hidden if ffn is None else ffn) / tp
    return gemm("mlp_down", tokens, spec.hidden_size, f, spec.dtype_bytes)


def moe(spec: ModelSpec, tokens: Any, tp: int = 1) -> tuple[OpCost, ...]:
    """Router, routed experts (touched weights only) and shared experts of one MoE layer.

    >>> from types import SimpleNamespace as S
    >>> spec = S(hidden_size=4, num_experts=8, experts_top_k=2, num_shared_experts=0,
    ...          moe_ffn_hidden=2, gated_mlp=True, dtype_bytes=2)
    >>> [o.name for o in moe(spec, 1)]
    ['router', 'expert_up', 'expert_act', 'expert_down']
    """
    tp = _tp(tp, "moe")
    t = _counts(tokens, "tokens", "moe")
    h, b = spec.hidden_size, spec.dtype_bytes
    e, k, f = spec.num_experts, spec.experts_top_k, spec.moe_ffn_hidden / tp
    touched = e * (1.0 - (1.0 - k / e) ** t)
    routed = t * k
    width_up = f * (2 if spec.gated_mlp else 1)
    ops = [
        gemm("router", t, e, h, b),
        gemm("expert_up", routed, width_up, h, b, weight_bytes=touched * h * width_up * b),
        _elementwise("expert_act", "act", routed, f, 3.0 if spec.gated_mlp else 2.0, 8.0, b),
        gemm("expert_down", routed, h, f, b, weight_bytes=touched * h * f * b),
    ]
    if spec.num_shared_experts:
        fs = spec.num_shared_experts * spec.moe_ffn_hidden
        ops += [mlp_up(spec, t, tp, fs), mlp_act(spec, t, tp, fs), mlp_down(spec, t, tp, fs)]
    # The routed GEMMs' M dimension is the tokens per touched expert.
    return tuple(
        OpCost(name=o.name, kind=o.kind, flops=o.flops, bytes=o.bytes,
               rows=routed / np.maximum(touched, 1.0) if o.name.startswith("expert_") else o.rows,
               kernels=o.kernels)
        for o in ops
    )


def logits(spec: ModelSpec, rows: Any, tp: int = 1) -> OpCost:
    """LM head on ``rows`` sequences (one token each), vocabulary split over ``tp``."""
    tp = _tp(tp, "logits")
    rows = _counts(rows, "rows", "logits")
    return gemm("logits", rows, spec.vocab_size / tp, spec.hidden_size, spec.dtype_bytes)


def layer_linear_ops(spec: ModelSpec, tokens: Any, tp: int = 1, *, moe_layer: bool = False
                     ) -> tuple[OpCost, ...]:
    """Every operator of one layer but attention: their cost depends on ``tokens`` only."""
    t = _counts(tokens, "tokens", "layer_linear_ops")
    ops = [norm(spec, t, "input_norm"), qkv_proj(spec, t, tp), rope(spec, t, tp),
           o_proj(spec, t, tp), residual_add(spec, t), norm(spec, t, "post_attention_norm")]
    if moe_layer:
        ops += list(moe(spec, t, tp))
    else:
        ops += [mlp_up(spec, t, tp), mlp_act(spec, t, tp), mlp_down(spec, t, tp)]
    ops.append(residual_add(spec, t))
    return tuple(ops)
