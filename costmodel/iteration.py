"""Iteration costs for the simulator: the roofline model of one serving instance, in closed form.

:class:`RooflineIterationCost` implements :class:`~schedlab.costmodel.base.IterationCost` for a
(model, GPU, tensor-parallel degree). One iteration processes ``T`` tokens (prefill chunks plus one
token per decode request) through every layer; its time is the sum of its kernels' times
(:func:`~schedlab.costmodel.roofline.roofline_time_s`), each layer being:

* the *token-linear* operators (norms, QKV, RoPE, O-proj, MLP or MoE, residual adds) on ``T``
  tokens, plus two ring all-reduces of ``T * hidden`` activations when ``tp > 1``;
* one varlen prefill-attention kernel over all prefill chunks, and one decode-attention kernel
  over the decode requests, whose cost depends only on their number and context sum;

plus the embedding, the final norm and the LM head on the ``R`` sequences that emit a token
(every decode request and, as an upper bound, every prefill chunk), with an all-gather of the
logits under tensor parallelism. The token-linear and LM-head parts depend on ``T`` and ``R`` only,
so they are tabulated at build time for up to :data:`TABLE_TOKENS` tokens: a call costs a table
look-up and a few scalar operations, the attention terms being one compiled kernel
(:func:`~schedlab.jit.njit`) over the chunk arrays.

N consecutive decode steps of an unchanged batch of ``B`` requests: step ``k`` has context sum
``S0 + k*B``; only the decode-attention term changes, and it is the maximum of two linear functions
of the context sum (compute and memory), so the sum over steps is exact in closed form: the steps
before the compute/memory crossover sum the memory line, the rest the compute line. One compiled
kernel evaluates those sums for every requested step count in a single pass.

>>> cost = RooflineIterationCost.build("llama-2-7b", "a100-80gb")
>>> none = np.array([], dtype=np.int64)
>>> step = cost.iteration_time_s(none, none, 8, 8000)
>>> 0.010 < step < 0.020   # 7B weights (13.5 GB) streamed at ~80% of 2 TB/s
True
>>> steps = cost.decode_steps_time_s(8, 8000, np.array([1, 10]))
>>> bool(abs(steps[0] - step) < 1e-12), bool(steps[1] > 10 * step)
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schedlab.costmodel import ops
from schedlab.costmodel.hardware import Accelerator, get_accelerator, get_interconnect
from schedlab.costmodel.models import ModelSpec, get_model
from schedlab.costmodel.roofline import (
    Efficiency,
    all_gather_time_s,
    all_reduce_time_s,
    op_is_compute_bound,
    op_time_s,
)
from schedlab.errors import check_array, check_fraction, check_nonneg_int, check_positive_int
from schedlab.jit import njit

__all__ = ["DEFAULT_ACTIVATION_TOKENS", "TABLE_TOKENS", "RooflineIterationCost", "iteration_cost"]

#: Token counts below this are looked up in the build-time tables; larger ones are computed.
TABLE_TOKENS = 16384
#: Tokens whose activations are reserved in memory (vLLM's default ``max_num_batched_tokens``
#: with chunked prefill is 8192 on large GPUs).
DEFAULT_ACTIVATION_TOKENS = 8192

_WHERE = "RooflineIterationCost"


@dataclass(frozen=True, slots=True, kw_only=True)
class RooflineIterationCost:
    """Closed-form iteration costs of ``model`` on ``tp`` devices of ``gpu``.

    Build it with :meth:`build`. Attributes: ``kv_bytes_per_token`` (bytes of KV per token over
    the whole instance: every device's share, KV heads replicated when ``num_kv_heads < tp``, the
    MLA latent replicated on every device) and ``kv_capacity_tokens``
    (``tp * HBM * gpu_memory_utilization - weights - activation reserve``, in tokens).
    """

    model: ModelSpec
    gpu: Accelerator
    tp: int
    dtype: str
    efficiency: Efficiency
    gpu_memory_utilization: float
    kv_bytes_per_token: float
    kv_capacity_tokens: int
    activation_reserve_bytes: float
    _linear: list = field(repr=False, compare=False)  # a list: scalar look-ups are faster
    _linear_array: np.ndarray = field(repr=False, compare=False)  # the same, for vector ones
    _linear_slope: float | None = field(repr=False, compare=False)  # beyond it (None: compute)
    _head: list = field(repr=False, compare=False)
    _dec_compute_per_ctx: float = field(repr=False, compare=False)
    _dec_mem_per_ctx: float = field(repr=False, compare=False)
    _dec_mem_per_req: float = field(repr=False, compare=False)
    _peak: float = field(repr=False, compare=False)
    _attn_ec: float = field(repr=False, compare=False)
    _launch: float = field(repr=False, compare=False)
    _swap_s_per_token: float = field(repr=False, compare=False)
    _swap_latency_s: float = field(repr=False, compare=False)
    _prefill_coef: tuple[float, float, float] = field(repr=False, compare=False)

    # ------------------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        model: str | ModelSpec,
        gpu: str | Accelerator,
        tp: int = 1,
        *,
        dtype: str = "bf16",
        calibration: Efficiency | str | None = None,
        gpu_memory_utilization: float = 0.9,
        activation_tokens: int = DEFAULT_ACTIVATION_TOKENS,
    ) -> RooflineIterationCost:
        """Build the cost model. ``calibration`` is an :class:`Efficiency`, a JSON file written by
        ``schedlab costmodel calibrate``, or ``None`` for the documented defaults.

        Raises ``ValueError`` for unknown names, ``tp < 1`` and when the weights do not fit.

        >>> RooflineIterationCost.build("llama-2-70b", "a100-80gb", tp=1)
        Traceback (most recent call last):
        ...
        ValueError: llama-2-70b does not fit on 1 x a100-80gb (tp=1): weights 138.0 GB +
        activations 2.2 GB > 72.0 GB usable (gpu_memory_utilization=0.9).
        >>> RooflineIterationCost.build("llama-2-70b", "a100-80gb", tp=4).kv_capacity_tokens
        443775
        """
        spec = get_model(model)
        acc = get_accelerator(gpu)
        tp = check_positive_int(tp, "tp", f"{_WHERE}.build")
        kv_heads = spec.num_kv_heads
        if spec.num_heads % tp or (kv_heads % tp and tp % kv_heads):
            raise ValueError(
                f"The 'tp' parameter of {_WHERE}.build must split {spec.name}'s attention heads "
                f"evenly: {spec.num_heads} query heads and {kv_heads} KV heads (KV heads may also "
                f"be replicated when tp is a multiple of them). Got tp={tp}."
            )
        util = check_fraction(gpu_memory_utilization, "gpu_memory_utilization", f"{_WHERE}.build")
        check_nonneg_int(activation_tokens, "activation_tokens", f"{_WHERE}.build")
        acc.peak_flops(dtype)
        if calibration is None:
            eff = Efficiency()
        elif isinstance(calibration, Efficiency):
            eff = calibration
        else:
            eff = Efficiency.load(calibration)

        kvb_dev = ops.kv_bytes_per_token_per_device(spec, tp) * spec.num_layers
        kv_bytes_per_token = float(kvb_dev * tp)
        ffn_width = max(spec.ffn_hidden, spec.moe_ffn_hidden * max(spec.experts_top_k, 1))
        width = 6 * spec.hidden_size + 3 * ffn_width / tp
        reserve_dev = activation_tokens * width * spec.dtype_bytes
        usable = tp * acc.hbm_capacity_bytes * util
        free = usable - spec.weight_bytes() - tp * reserve_dev
        if free < kv_bytes_per_token:
            raise ValueError(
                f"{spec.name} does not fit on {tp} x {acc.name} (tp={tp}): weights "
                f"{spec.weight_bytes() / 1e9:.1f} GB + activations {tp * reserve_dev / 1e9:.1f} GB "
                f"> {usable / 1e9:.1f} GB usable (gpu_memory_utilization={util})."
            )

        tokens = np.arange(TABLE_TOKENS, dtype=np.float64)
        linear = _linear_time(spec, acc, tp, dtype, eff, tokens)
        # past the table the linear layers are compute-bound at a constant efficiency, so
        # their time is affine in the tokens: extrapolate when a check far out confirms it
        slope = float(linear[-1] - linear[-2])
        far = np.array([2.0, 8.0]) * TABLE_TOKENS
        exact = _linear_time(spec, acc, tp, dtype, eff, far)
        affine = np.allclose(linear[-1] + (far - tokens[-1]) * slope, exact, rtol=1e-9, atol=0)
        head = _head_time(spec, acc, tp, dtype, eff, tokens)
        dec_one = ops.attention_decode(spec, 0.0, 1.0, tp)   # per context token
        dec_req = ops.attention_decode(spec, 1.0, 0.0, tp)   # per request
        one_pair = ops.attention_prefill(spec, 1.0, 0.0, tp)   # c=1, p=0: one (query, key) pair
        one_cached = ops.attention_prefill(spec, 0.0, 1.0, tp)
        attn_bw = acc.hbm_bytes_per_s * eff.memory_efficiency("attention")
        prefill_coef = (float(one_pair.flops) * spec.num_layers,
                        float(one_pair.bytes) * spec.num_layers / attn_bw,
                        float(one_cached.bytes) * spec.num_layers / attn_bw)
        host = get_interconnect(acc.host_link)
        per_dev_bw = host.bytes_per_s * eff.link_efficiency("host")
        return cls(
            model=spec,
            gpu=acc,
            tp=tp,
            dtype=dtype,
            efficiency=eff,
            gpu_memory_utilization=util,
            kv_bytes_per_token=kv_bytes_per_token,
            kv_capacity_tokens=int(free // kv_bytes_per_token),
            activation_reserve_bytes=float(tp * reserve_dev),
            _linear=linear.tolist(),
            _linear_array=_read_only(linear),
            _linear_slope=slope if affine else None,
            _head=head.tolist(),
            _dec_compute_per_ctx=float(dec_one.flops) * spec.num_layers
            / (acc.peak_flops(dtype) * eff.compute_efficiency("attention")),
            _dec_mem_per_ctx=float(dec_one.bytes) * spec.num_layers
            / (acc.hbm_bytes_per_s * eff.memory_efficiency("attention")),
            _dec_mem_per_req=float(dec_req.bytes) * spec.num_layers
            / (acc.hbm_bytes_per_s * eff.memory_efficiency("attention")),
            _peak=acc.peak_flops(dtype),
            _attn_ec=eff.compute_efficiency("attention"),
            _launch=eff.launch_s(acc) * spec.num_layers,
            # every device moves its own share of the KV over its own host link, in parallel
            _swap_s_per_token=kvb_dev / per_dev_bw,
            _swap_latency_s=host.latency_s,
            _prefill_coef=prefill_coef,
        )

    # ------------------------------------------------------------------------------ pieces
    def _linear_s(self, tokens: int) -> float:
        if tokens < TABLE_TOKENS:
            return self._linear[tokens]
        if self._linear_slope is not None:
            return self._linear[-1] + (tokens - TABLE_TOKENS + 1) * self._linear_slope
        return float(_linear_time(self.model, self.gpu, self.tp, self.dtype, self.efficiency,
                                  np.array([float(tokens)]))[0])

    def _head_s(self, rows: int) -> float:
        if rows < TABLE_TOKENS:
            return self._head[rows]
        return float(_head_time(self.model, self.gpu, self.tp, self.dtype, self.efficiency,
                                np.array([float(rows)]))[0])

    # ------------------------------------------------------------------------------ parts
    def linear_time_s(self, tokens: int) -> float:
        """Seconds of the token-linear layers (and, under tensor parallelism, their all-reduces)
        of every layer on ``tokens`` tokens: the part of an iteration that scales with its
        tokens, not their context.

        >>> cost = RooflineIterationCost.build("llama-2-7b", "a100-80gb")
        >>> bool(cost.linear_time_s(1) < cost.linear_time_s(4096))
        True
        """
        return self._linear_s(check_nonneg_int(tokens, "tokens", "linear_time_s"))

    def head_time_s(self, rows: int) -> float:
        """Seconds of the embedding, final norm and LM head on ``rows`` sequences emitting a
        token (with the logits' all-gather under tensor parallelism)."""
        return self._head_s(check_nonneg_int(rows, "rows", "head_time_s"))

    @property
    def launch_s(self) -> float:
        """Fixed seconds of an iteration: one kernel launch overhead per layer."""
        return self._launch

    def prefill_attention_s(self, pairs: float, rows: float) -> tuple[float, float]:
        """``(compute, memory)`` seconds of causal prefill attention over every layer: ``pairs``
        (query, key) pairs computed, ``rows`` query rows whose Q, K, V and output move once (the
        kernel costs the larger of the two plus :attr:`launch_s`).

        >>> cost = RooflineIterationCost.build("llama-2-7b", "a100-80gb")
        >>> c, m = cost.prefill_attention_s(100_000 * 100_001 / 2, 100_000)
        >>> bool(c > m)   # long prompts: attention is compute-bound
        True
        """
        f_pair, b_row, _ = self._prefill_coef
        return f_pair * float(pairs) / (self._peak * self._attn_ec), b_row * float(rows)

    def decode_attention_time_s(self, batch: int, context_sum: int) -> float:
        """Seconds of decode attention over every layer for ``batch`` requests whose KV (held on
        this instance) sums to ``context_sum`` tokens: the larger of the compute and memory
        lines, plus :attr:`launch_s`; 0 for an empty batch.

        >>> cost = RooflineIterationCost.build("llama-2-7b", "a100-80gb")
        >>> bool(cost.decode_attention_time_s(8, 80_000) > cost.decode_attention_time_s(8, 8_000))
        True
        """
        return _decode_attention_s(batch, context_sum, self._dec_compute_per_ctx,
                                   self._dec_mem_per_ctx, self._dec_mem_per_req, self._launch)

    # ------------------------------------------------------------------------------ protocol
    def iteration_time_s(
        self,
        prefill_tokens: np.ndarray,
        prefill_context: np.ndarray,
        decode_batch: int,
        decode_context_sum: int,
    ) -> float:
        """Seconds of one iteration: prefill chunks plus ``decode_batch`` decode tokens.

        >>> cost = RooflineIterationCost.build("llama-2-7b", "a100-80gb")
        >>> a = cost.iteration_time_s(np.array([512]), np.array([0]), 0, 0)
        >>> b = cost.iteration_time_s(np.array([512]), np.array([0]), 16, 16 * 1000)
        >>> 0 < a < b
        True
        """
        decode_batch = check_nonneg_int(decode_batch, "decode_batch", "iteration_time_s")
        decode_context_sum = check_nonneg_int(decode_context_sum, "decode_context_sum",
                                              "iteration_time_s")
        pt = np.asarray(prefill_tokens)
        pc = np.asarray(prefill_context)
        if pt.shape != pc.shape or pt.ndim != 1:
            raise ValueError(
                "The 'prefill_tokens' and 'prefill_context' parameters of iteration_time_s must be "
                f"1-D arrays of one length. Got shapes {pt.shape} and {pc.shape}."
            )
        if pt.size:
            pt = _check_tokens(pt, "prefill_tokens")
            pc = _check_tokens(pc, "prefill_context")
        # one dtype and layout for the compiled kernel (a new one would compile a new version)
        pt = np.ascontiguousarray(pt, dtype=np.int64)
        pc = np.ascontiguousarray(pc, dtype=np.int64)
        return self.fast_iteration_time_s(pt, pc, decode_batch, decode_context_sum)

    def fast_iteration_time_s(
        self,
        prefill_tokens: np.ndarray,
        prefill_context: np.ndarray,
        decode_batch: int,
        decode_context_sum: int,
    ) -> float:
        """:meth:`iteration_time_s` for valid inputs (1-D int64 arrays of one length, ints >= 0),
        without argument checks (the simulator's hot path: one compiled call)."""
        tokens, rows, prefill, decode = _iteration_parts(
            prefill_tokens, prefill_context, decode_batch, decode_context_sum, *self._prefill_coef,
            self._peak * self._attn_ec, self._dec_compute_per_ctx, self._dec_mem_per_ctx,
            self._dec_mem_per_req, self._launch)
        if tokens == 0:
            return 0.0
        return self._linear_s(tokens) + self._head_s(rows) + prefill + decode

    def decode_steps_time_s(
        self, batch_size: int, context_sum: int, n_steps: np.ndarray | int
    ) -> np.ndarray | float:
        """Total seconds of ``n_steps`` decode-only iterations of an unchanged batch, exactly.

        >>> cost = RooflineIterationCost.build("llama-2-7b", "a100-80gb")
        >>> loop = sum(cost.iteration_time_s(np.array([], int), np.array([], int), 4, 400 + 4 * k)
        ...            for k in range(5))
        >>> abs(cost.decode_steps_time_s(4, 400, 5) - loop) < 1e-12
        True
        """
        batch = check_nonneg_int(batch_size, "batch_size", "decode_steps_time_s")
        s0 = check_nonneg_int(context_sum, "context_sum", "decode_steps_time_s")
        if np.ndim(n_steps) == 0:
            k = check_nonneg_int(n_steps, "n_steps", "decode_steps_time_s")
            if batch == 0 or k == 0:
                return 0.0
            return float(self.fast_decode_steps_time_s(batch, s0, np.array([float(k)]))[0])
        n = np.asarray(n_steps)
        if n.dtype.kind not in "iu" or (n.size and n.min() < 0):
            n = check_array(n_steps, "n_steps", "decode_steps_time_s", dtype=np.int64,
                            ndim=n.ndim, min_value=0, integer=True)
        n = n.astype(np.float64)
        if batch == 0:
            return np.zeros(n.shape)
        return self.fast_decode_steps_time_s(batch, s0, n.ravel()).reshape(n.shape)

    def fast_decode_steps_time_s(
        self, batch_size: int, context_sum: int, n_steps: np.ndarray
    ) -> np.ndarray:
        """:meth:`decode_steps_time_s` for a 1-D float64 array of step counts and
        ``batch_size >= 1``, without argument checks (the simulator's hot path: one compiled
        call)."""
        fixed = self._linear_s(batch_size) + self._head_s(batch_size) + self._launch
        return _decode_sums(batch_size, context_sum, n_steps, fixed, self._dec_compute_per_ctx,
                            self._dec_mem_per_ctx, self._dec_mem_per_req)

    def prefill_time_s(self, input_tokens: np.ndarray) -> np.ndarray:
        """Seconds of a batch-1 prefill of each whole prompt (vectorised).

        >>> cost = RooflineIterationCost.build("llama-2-7b", "a100-80gb")
        >>> t = cost.prefill_time_s(np.array([128, 2048]))
        >>> bool(t[0] < t[1])
        True
        """
        n = check_array(input_tokens, "input_tokens", "prefill_time_s", dtype=np.int64,
                        ndim=np.ndim(input_tokens), min_value=0, integer=True)
        flat = n.ravel()
        inside = flat < TABLE_TOKENS
        linear = np.empty(flat.shape)
        linear[inside] = self._linear_array[flat[inside]]
        if not inside.all() and self._linear_slope is not None:
            linear[~inside] = (self._linear[-1]
                               + (flat[~inside] - TABLE_TOKENS + 1) * self._linear_slope)
        elif not inside.all():
            linear[~inside] = _linear_time(self.model, self.gpu, self.tp, self.dtype,
                                           self.efficiency, flat[~inside].astype(np.float64))
        op = ops.attention_prefill(self.model, flat, 0.0, self.tp)
        attn_bw = self.gpu.hbm_bytes_per_s * self.efficiency.memory_efficiency("attention")
        attn_mem = op.bytes / attn_bw
        with np.errstate(divide="ignore", invalid="ignore"):
            attn = np.where(flat > 0, self.model.num_layers
                            * np.maximum(op.flops / (self._peak * self._attn_ec), attn_mem)
                            + self._launch, 0.0)
        total = np.where(flat > 0, linear + self._head[1] + attn, 0.0)
        return total.reshape(n.shape)

    def swap_time_s(self, tokens: np.ndarray | int) -> np.ndarray | float:
        """Seconds to move the KV of ``tokens`` tokens between HBM and host memory (one way).

        >>> cost = RooflineIterationCost.build("llama-2-7b", "a100-80gb")
        >>> round(cost.swap_time_s(1000) * 1e3, 1)   # 524 MB over PCIe 4 at 85% of 32 GB/s
        19.3
        """
        if np.ndim(tokens) == 0:
            n = check_nonneg_int(tokens, "tokens", "swap_time_s")
            return self._swap_latency_s + n * self._swap_s_per_token if n else 0.0
        arr = check_array(tokens, "tokens", "swap_time_s", dtype=np.int64, ndim=np.ndim(tokens),
                          min_value=0, integer=True)
        return np.where(arr > 0, self._swap_latency_s + arr * self._swap_s_per_token, 0.0)

    # ------------------------------------------------------------------------------ reporting
    def linear_is_compute_bound(self, tokens: int) -> bool:
        """Whether one layer's GEMMs on ``tokens`` tokens spend most of their time compute-bound.

        >>> cost = RooflineIterationCost.build("llama-2-7b", "a100-80gb")
        >>> cost.linear_is_compute_bound(1), cost.linear_is_compute_bound(4096)
        (False, True)
        """
        tokens = check_positive_int(tokens, "tokens", "linear_is_compute_bound")
        return _linear_compute_bound(self.model, self.gpu, self.tp, self.dtype, self.efficiency,
                                     float(tokens))

    def decode_step_breakdown(self, batch_size: int, context_sum: int) -> dict[str, float | bool]:
        """Seconds of one decode step split into linear layers, LM head and attention, and whether
        the linear layers and the attention are compute-bound (for reports)."""
        batch = check_positive_int(batch_size, "batch_size", "decode_step_breakdown")
        s = check_nonneg_int(context_sum, "context_sum", "decode_step_breakdown")
        a_c, a_m, m_req = self._dec_compute_per_ctx, self._dec_mem_per_ctx, self._dec_mem_per_req
        gemm_bound = self.linear_is_compute_bound(batch)
        return {
            "linear_s": self._linear_s(batch),
            "head_s": self._head_s(batch),
            "attention_s": _decode_attention_s(batch, s, a_c, a_m, m_req, self._launch),
            "linear_compute_bound": gemm_bound,
            "attention_compute_bound": a_c * s > a_m * s + m_req * batch,
        }


# ---------------------------------------------------------------------------------- kernels
# Compiled (schedlab.jit) so that a call from the simulator is one dispatch instead of a dozen
# numpy calls; the float operations are the same, in the same order, as numpy's would be.

@njit
def _decode_attention_s(batch: int, context_sum: int, a_c: float, a_m: float, m_req: float,
                        launch: float) -> float:
    """Decode attention over all layers: ``max(a_c * S, a_m * S + m_req * batch) + launch``
    (compute line, memory line), 0 for an empty batch."""
    if batch == 0:
        return 0.0
    compute = a_c * context_sum
    memory = a_m * context_sum + m_req * batch
    return (memory if memory > compute else compute) + launch


@njit
def _iteration_parts(pt: np.ndarray, pc: np.ndarray, decode_batch: int, decode_context_sum: int,
                     f_pair: float, b_chunk: float, b_cached: float, flops_per_s: float,
                     a_c: float, a_m: float, m_req: float,
                     launch: float) -> tuple[int, int, float, float]:
    """Tokens, LM-head rows, prefill-attention and decode-attention seconds of one iteration.

    Prefill attention is one varlen kernel per layer over all chunks: FLOPs are
    ``f * sum c(p + (c+1)/2)`` and bytes ``b_c * sum c + b_p * sum p``
    (:func:`ops.attention_prefill` is linear in those)."""
    chunk_sum = 0
    chunks = 0
    dot_cached = 0
    dot_chunk = 0
    cached_sum = 0
    for i in range(pt.shape[0]):
        c = pt[i]
        chunk_sum += c
        if c != 0:
            chunks += 1
        dot_cached += c * pc[i]
        dot_chunk += c * c
        cached_sum += pc[i]
    prefill = 0.0
    if chunk_sum == 0:
        chunks = 0
    else:
        rows = float(chunk_sum)
        pairs = float(dot_cached) + (float(dot_chunk) + rows) / 2.0
        compute = f_pair * pairs / flops_per_s
        memory = b_chunk * rows + b_cached * float(cached_sum)
        prefill = (memory if memory > compute else compute) + launch
    decode = _decode_attention_s(decode_batch, decode_context_sum, a_c, a_m, m_req, launch)
    return decode_batch + chunk_sum, decode_batch + chunks, prefill, decode


@njit
def _decode_sums(batch: int, s0: int, n: np.ndarray, fixed: float, a_c: float, a_m: float,
                 m_req: float) -> np.ndarray:
    """Seconds of the first ``n[i]`` decode steps of a batch of ``batch >= 1`` requests whose
    context sum starts at ``s0``, for each ``i``. Each step costs ``fixed`` plus the decode
    attention ``max(a_c * S, a_m * S + c_m)``; the first ``k_mem`` steps are memory-bound, and
    the sums of ``S`` over the two stretches are arithmetic series."""
    c_m = m_req * batch
    if a_c <= a_m:
        k_mem = 2.0**62                        # the memory line is above for every context
    else:
        s_cross = c_m / (a_c - a_m)            # memory-bound while S <= s_cross
        k_mem = 0.0 if s0 > s_cross else np.floor((s_cross - s0) / batch) + 1.0
    out = np.empty(n.shape[0])
    for i in range(n.shape[0]):
        steps = n[i]
        k0 = k_mem if k_mem < steps else steps
        ssum_n = steps * s0 + batch * steps * (steps - 1.0) / 2.0
        ssum_k0 = k0 * s0 + batch * k0 * (k0 - 1.0) / 2.0
        out[i] = steps * fixed + a_m * ssum_k0 + c_m * k0 + a_c * (ssum_n - ssum_k0)
    return out


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def _check_tokens(values: np.ndarray, name: str) -> np.ndarray:
    if values.dtype.kind in "iu":
        if values.size and values.min() < 0:
            i = int(np.flatnonzero(values < 0)[0])
            raise ValueError(f"The {name!r} parameter of iteration_time_s must be >= 0; "
                             f"element {i} is {values[i]}.")
        return values
    return check_array(values, name, "iteration_time_s", dtype=np.int64, min_value=0, integer=True)


def _layer_mix(spec: ModelSpec) -> tuple[tuple[int, bool], ...]:
    return tuple((n, is_moe) for n, is_moe in ((spec.dense_layers, False), (spec.moe_layers, True))
                 if n)


def _linear_time(spec: ModelSpec, gpu: Accelerator, tp: int, dtype: str, eff: Efficiency,
                 tokens: np.ndarray) -> np.ndarray:
    """Seconds of every token-linear operator of every layer plus embedding and TP all-reduces."""
    total = op_time_s(ops.embedding(spec, tokens, tp), gpu, eff, dtype)
    for count, is_moe in _layer_mix(spec):
        layer = sum(op_time_s(op, gpu, eff, dtype)
                    for op in ops.layer_linear_ops(spec, tokens, tp, moe_layer=is_moe))
        total = total + count * layer
    if tp > 1:
        link = get_interconnect(gpu.scale_up_link)
        act_bytes = tokens * spec.hidden_size * spec.dtype_bytes
        ar = np.where(tokens > 0, all_reduce_time_s(act_bytes, tp, link, efficiency=eff), 0.0)
        total = total + 2 * spec.num_layers * ar
    return np.where(tokens > 0, total, 0.0)


def _head_time(spec: ModelSpec, gpu: Accelerator, tp: int, dtype: str, eff: Efficiency,
               rows: np.ndarray) -> np.ndarray:
    """Seconds of the final norm and LM head on ``rows`` sequences, plus the logits all-gather."""
    total = (op_time_s(ops.norm(spec, rows, "final_norm"), gpu, eff, dtype)
             + op_time_s(ops.logits(spec, rows, tp), gpu, eff, dtype))
    if tp > 1:
        link = get_interconnect(gpu.scale_up_link)
        total = total + np.where(rows > 0, all_gather_time_s(
            rows * spec.vocab_size * spec.dtype_bytes, tp, link, efficiency=eff), 0.0)
    return np.where(rows > 0, total, 0.0)


def _linear_compute_bound(spec: ModelSpec, gpu: Accelerator, tp: int, dtype: str,
                          eff: Efficiency, tokens: float) -> bool:
    """Whether the GEMMs of one layer spend more time compute-bound than memory-bound."""
    layer = ops.layer_linear_ops(spec, np.array(tokens), tp, moe_layer=spec.num_experts > 0)
    gemms = [op for op in layer if op.kind == "gemm"]
    bound = sum(float(op_time_s(op, gpu, eff, dtype)) for op in gemms
                if bool(op_is_compute_bound(op, gpu, eff, dtype)))
    return bound > 0.5 * sum(float(op_time_s(op, gpu, eff, dtype)) for op in gemms)


def iteration_cost(model: str | ModelSpec, gpu: str | Accelerator, tp: int = 1,
                   **kwargs: Any) -> RooflineIterationCost:
    """Shorthand for :meth:`RooflineIterationCost.build`.

    >>> iteration_cost("llama-3-8b", "h100-sxm").tp
    1
    """
    return RooflineIterationCost.build(model, gpu, tp, **kwargs)
