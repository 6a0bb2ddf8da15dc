"""Heterogeneous decoding with attention offloaded to memory devices (Lamina): the cost of a
deployment, its homogeneous baseline, and the device-mix problem both the heuristic and the
optimum answer.

Seed paper: Lamina, Chen et al., "Efficient Heterogeneous LLM Decoding with Model-Attention
Disaggregation" (arXiv 2405.01814 v2; v1: "Efficient and Economic Large Language Model
Inference with Attention Offloading").

A deployment ``DOP (a, b)`` has ``a`` compute devices (H100) holding the weights as ``r`` model
replicas of tensor parallelism ``a / r``, and ``b`` memory devices (H20) holding the KV cache
split by head, which run every decode attention (§3, §4.3). Per decode iteration of one batch of
``B`` requests whose contexts sum to ``S`` tokens (:meth:`AttentionOffload.parts`):

- *model*: the non-attention layers on one replica, from the roofline iteration model
  (:class:`~schedlab.costmodel.iteration.RooflineIterationCost`: linear layers with their
  all-reduces, LM head, launches);
- *attention*: :func:`~schedlab.costmodel.ops.attention_decode` over ``S`` tokens, the heads
  split over the ``b`` memory devices;
- *network*: per layer, a round trip of the stack (:data:`FHBN`: 33.0 us, Fig. 13) plus
  ``(2 + 2/G) e d B`` bytes (q, k, v out; the attention output back; §3.1) over the smaller
  side's NICs (400 Gb/s RoCE, one per GPU, at the stack's measured 91.4% of line rate);
- *send Q early* (§4.2.2): attention over the previous tokens starts as soon as q arrives and
  runs while the compute device projects k and v, saving per layer the smaller of the two.

*Rotational staggered pipelining* (§4.3, Fig. 8): ``n = r + 1`` batches share the replicas and
the memory pool; one batch's time between tokens is the cycle
``max(n t_m / r, n t_a, t_m + t_a + t_net - overlap)`` (the replicas' load, the pool's load, one
batch's chain), and the deployment emits ``n B`` tokens per cycle
(:meth:`AttentionOffload.tbt_s`). The homogeneous baseline (:class:`Homogeneous`, vLLM on ``k``
H100s with tensor parallelism) decodes one batch at a time.

Prices per chip-hour are the paper's (Table 1: $11.06 H100 from Google Cloud, $4.63 H20 the
authors' estimate), overridable.

>>> off = AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=4)
>>> base = Homogeneous.build("llama-3-70b", n_gpus=4)
>>> off.price_per_hour, base.price_per_hour        # Table 5: $40.64/h against $44.24/h
(40.64, 44.24)
>>> requests = off.max_batch(2_000) * off.concurrent_batches   # the KV lives on 4 x 96 GB
>>> round(requests / base.max_batch(2_000), 2)                  # v2 §6.1: 2.39x the batch
2.42
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

import numpy as np

from schedlab.costmodel import ops
from schedlab.costmodel.hardware import Accelerator, get_accelerator, get_interconnect
from schedlab.costmodel.iteration import RooflineIterationCost
from schedlab.costmodel.models import ModelSpec, get_model
from schedlab.costmodel.roofline import Efficiency, op_time_s
from schedlab.errors import (
    check_fraction,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
)

__all__ = [
    "FHBN",
    "LAMINA_PRICES",
    "NCCL",
    "AttentionOffload",
    "DecodeParts",
    "DeviceMix",
    "DeviceMixProblem",
    "Homogeneous",
    "MixEvaluation",
    "NetworkStack",
    "Timeline",
    "deployment",
    "evaluate_mix",
    "largest_batch",
    "memory_pools",
    "rotation_timeline",
]

#: Price per chip-hour (USD) of Lamina v2 Table 1: H100 from Google Cloud, H20 the authors'
#: estimate (scaled from whole-system cost; H20 is not sold by clouds).
LAMINA_PRICES: Mapping[str, float] = MappingProxyType({"h100-sxm": 11.06, "h20": 4.63})


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkStack:
    """A network stack between compute and memory devices: the round trip of a small message
    and the share of the link's line rate a large one reaches."""

    name: str
    round_trip_s: float
    efficiency: float

    def __post_init__(self) -> None:
        check_positive_float(self.round_trip_s, "round_trip_s", "NetworkStack")
        check_fraction(self.efficiency, "efficiency", "NetworkStack")


#: Lamina's fully host-bypassed network (v2 §4.1, Fig. 13): 33.0 us ping-pong over 400 Gb/s
#: RoCE, 45.7 GB/s peak (91.4% of line rate).
FHBN = NetworkStack(name="fhbn", round_trip_s=33.0e-6, efficiency=0.914)
#: NCCL on the same links (Fig. 13): 66.6 us, 35.5 GB/s (71%).
NCCL = NetworkStack(name="nccl", round_trip_s=66.6e-6, efficiency=0.71)


@dataclass(frozen=True, slots=True)
class DecodeParts:
    """Seconds of one decode iteration of one batch: the model replica's share, the memory
    pool's attention, the network and what sending q early hides."""

    model_s: float
    attention_s: float
    network_s: float
    overlap_s: float

    @property
    def chain_s(self) -> float:
        """One batch's iteration alone: model, network and attention in sequence."""
        return self.model_s + self.attention_s + self.network_s - self.overlap_s


def _price(gpu: Accelerator, prices: Mapping[str, float] | None, where: str) -> float:
    table = {**LAMINA_PRICES, **(prices or {})}  # an override replaces only its own device
    if gpu.name in table:
        return check_positive_float(table[gpu.name], f"prices[{gpu.name!r}]", where)
    return gpu.price_per_hour


def _context(batch: int, context_tokens: float, where: str) -> tuple[int, float]:
    b = check_nonneg_int(batch, "batch", where)
    c = check_positive_float(context_tokens, "context_tokens", where)
    return b, c


@lru_cache(maxsize=64)
def _replica(model: ModelSpec, gpu: Accelerator, tp: int, util: float) -> RooflineIterationCost:
    return RooflineIterationCost.build(model, gpu, tp, gpu_memory_utilization=util)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionOffload:
    """One Lamina deployment (module docstring); build it with :meth:`build`."""

    model: ModelSpec
    compute_gpu: Accelerator
    memory_gpu: Accelerator
    n_compute: int
    n_memory: int
    replicas: int
    stack: NetworkStack
    send_q_early: bool
    price_per_hour: float
    kv_capacity_tokens: int
    _replica: RooflineIterationCost = field(repr=False)
    _link_bytes_per_s: float = field(repr=False)
    _efficiency: Efficiency = field(repr=False)

    @classmethod
    def build(cls, model: str | ModelSpec, *, n_compute: int, n_memory: int, replicas: int = 1,
              compute_gpu: str | Accelerator = "h100-sxm", memory_gpu: str | Accelerator = "h20",
              link: str = "rdma-400g", stack: NetworkStack = FHBN, send_q_early: bool = True,
              prices: Mapping[str, float] | None = None,
              gpu_memory_utilization: float = 0.9,
              compute_memory_utilization: float = 0.98) -> AttentionOffload:
        """A deployment of ``n_compute`` compute and ``n_memory`` memory devices with
        ``replicas`` model replicas (``replicas + 1`` concurrent batches). The memory devices
        give ``gpu_memory_utilization`` of their memory to the KV; the compute devices hold only
        weights and activations, up to ``compute_memory_utilization`` [recon: LLaMA3-70B's
        weights fill 2 H100s in Table 5's DOP (2, 4)]. Raises ``ValueError``
        when the weights do not fit a replica, the heads do not split over the devices, or a
        count is not a positive int.

        >>> AttentionOffload.build("llama-3-70b", n_compute=1, n_memory=2)
        Traceback (most recent call last):
        ...
        ValueError: llama-3-70b does not fit on 1 x h100-sxm (tp=1): weights 141.1 GB + ...
        """
        where = "AttentionOffload.build"
        spec = get_model(model)
        a = check_positive_int(n_compute, "n_compute", where)
        b = check_positive_int(n_memory, "n_memory", where)
        r = check_positive_int(replicas, "replicas", where)
        if a % r:
            raise ValueError(f"The 'replicas' parameter of {where} must divide n_compute={a} "
                             f"(each replica is n_compute / replicas devices). Got {r}.")
        if spec.num_kv_heads % b:
            raise ValueError(f"The 'n_memory' parameter of {where} must divide {spec.name}'s "
                             f"{spec.num_kv_heads} KV heads (the KV is split by head, v2 §5). "
                             f"Got {b}.")
        if not isinstance(send_q_early, bool):
            raise ValueError(f"The 'send_q_early' parameter of {where} must be a bool. Got "
                             f"{send_q_early!r}.")
        if not isinstance(stack, NetworkStack):
            raise ValueError(f"The 'stack' parameter of {where} must be a NetworkStack. Got "
                             f"{type(stack).__name__}.")
        util = check_fraction(gpu_memory_utilization, "gpu_memory_utilization", where)
        c_util = check_fraction(compute_memory_utilization, "compute_memory_utilization", where)
        cg, mg = get_accelerator(compute_gpu), get_accelerator(memory_gpu)
        rep = _replica(spec, cg, a // r, c_util)
        kv_per_token = spec.kv_bytes_per_token()
        nics = min(a // r, b)
        return cls(model=spec, compute_gpu=cg, memory_gpu=mg, n_compute=a, n_memory=b,
                   replicas=r, stack=stack, send_q_early=send_q_early,
                   price_per_hour=round(a * _price(cg, prices, where)
                                        + b * _price(mg, prices, where), 4),
                   kv_capacity_tokens=int(b * mg.hbm_capacity_bytes * util // kv_per_token),
                   _replica=rep,
                   _link_bytes_per_s=nics * get_interconnect(link).bytes_per_s * stack.efficiency,
                   _efficiency=Efficiency())

    @property
    def concurrent_batches(self) -> int:
        """Batches in flight: ``replicas + 1`` (§4.3)."""
        return self.replicas + 1

    def parts(self, batch: int, context_tokens: float) -> DecodeParts:
        """Seconds of one decode iteration of ``batch`` requests of ``context_tokens`` KV tokens
        each (mean), split as :class:`DecodeParts`.

        >>> off = AttentionOffload.build("llama-3-70b", n_compute=2, n_memory=4)
        >>> p = off.parts(128, 4096)
        >>> round(p.model_s * 1e3, 1), round(p.attention_s * 1e3, 1), round(p.network_s * 1e3, 1)
        (35.7, 13.9, 6.8)
        """
        b, ctx = _context(batch, context_tokens, "AttentionOffload.parts")
        if b == 0:
            return DecodeParts(0.0, 0.0, 0.0, 0.0)
        spec, rep, eff = self.model, self._replica, self._efficiency
        layers = spec.num_layers
        model = rep.linear_time_s(b) + rep.head_time_s(b) + rep.launch_s
        att = ops.attention_decode(spec, b, b * ctx, tp=self.n_memory)
        per_layer_a = float(op_time_s(att, self.memory_gpu, eff)) + eff.launch_s(self.memory_gpu)
        g = spec.num_heads / spec.num_kv_heads
        bytes_layer = (2.0 + 2.0 / g) * spec.dtype_bytes * spec.hidden_size * b
        per_layer_net = self.stack.round_trip_s + bytes_layer / self._link_bytes_per_s
        overlap = 0.0
        if self.send_q_early:
            qkv = float(op_time_s(ops.qkv_proj(spec, b, rep.tp), self.compute_gpu, eff))
            kv_share = 2 * spec.num_kv_heads / (spec.num_heads + 2 * spec.num_kv_heads)
            overlap = min(qkv * kv_share, per_layer_a) * layers
        return DecodeParts(model, per_layer_a * layers, per_layer_net * layers, overlap)

    def tbt_s(self, batch: int, context_tokens: float) -> float:
        """Time between tokens of each of the ``replicas + 1`` batches of ``batch`` requests:
        the pipeline's cycle (module docstring)."""
        p = self.parts(batch, context_tokens)
        n, r = self.concurrent_batches, self.replicas
        return max(n * p.model_s / r, n * p.attention_s, p.chain_s)

    def throughput(self, batch: int, context_tokens: float) -> float:
        """Tokens per second of the deployment with ``replicas + 1`` batches of ``batch``."""
        t = self.tbt_s(batch, context_tokens)
        return self.concurrent_batches * batch / t if t > 0 else 0.0

    def max_batch(self, context_tokens: float) -> int:
        """The largest batch (per concurrent batch) whose KV fits the memory devices, each
        request holding ``context_tokens`` tokens."""
        _, ctx = _context(0, context_tokens, "AttentionOffload.max_batch")
        return int(self.kv_capacity_tokens // (ctx * self.concurrent_batches))


@dataclass(frozen=True, slots=True, kw_only=True)
class Homogeneous:
    """The baseline: vLLM-style decoding on ``n_gpus`` GPUs of one kind with tensor parallelism
    (Lamina's Table 5 baseline, prefill removed), one batch at a time."""

    model: ModelSpec
    gpu: Accelerator
    n_gpus: int
    price_per_hour: float
    kv_capacity_tokens: int
    _cost: RooflineIterationCost = field(repr=False)

    @classmethod
    def build(cls, model: str | ModelSpec, *, n_gpus: int, gpu: str | Accelerator = "h100-sxm",
              prices: Mapping[str, float] | None = None,
              gpu_memory_utilization: float = 0.9) -> Homogeneous:
        """``n_gpus`` GPUs with tensor parallelism ``n_gpus``; ``ValueError`` when the weights do
        not fit.

        >>> Homogeneous.build("llama-33b", n_gpus=2).price_per_hour
        22.12
        """
        where = "Homogeneous.build"
        spec = get_model(model)
        k = check_positive_int(n_gpus, "n_gpus", where)
        acc = get_accelerator(gpu)
        util = check_fraction(gpu_memory_utilization, "gpu_memory_utilization", where)
        cost = _replica(spec, acc, k, util)
        return cls(model=spec, gpu=acc, n_gpus=k,
                   price_per_hour=round(k * _price(acc, prices, where), 4),
                   kv_capacity_tokens=cost.kv_capacity_tokens, _cost=cost)

    concurrent_batches = 1

    def tbt_s(self, batch: int, context_tokens: float) -> float:
        """Seconds of one decode iteration of ``batch`` requests of ``context_tokens`` each."""
        b, ctx = _context(batch, context_tokens, "Homogeneous.tbt_s")
        if b == 0:
            return 0.0
        none = np.zeros(0, dtype=np.int64)  # the iteration model's decode-only step
        return self._cost.iteration_time_s(none, none, b, math.ceil(b * ctx))

    def throughput(self, batch: int, context_tokens: float) -> float:
        """Tokens per second at ``batch``."""
        t = self.tbt_s(batch, context_tokens)
        return batch / t if t > 0 else 0.0

    def max_batch(self, context_tokens: float) -> int:
        """The largest batch whose KV fits beside the weights."""
        _, ctx = _context(0, context_tokens, "Homogeneous.max_batch")
        return int(self.kv_capacity_tokens // ctx)



# ------------------------------------------------------------------------------ device mix
@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceMixProblem:
    """Which devices to buy for decoding ``model`` (Lamina §3, §6.1): requests hold
    ``context_tokens`` KV tokens each on average, each batch's time between tokens must stay
    within ``tbt_slo_s``; up to ``max_compute`` compute and ``max_memory`` memory devices and
    ``max_replicas`` model replicas. ``homogeneous`` also allows no memory devices at all (vLLM
    on the compute devices). The shared record of :func:`schedlab.policies.lamina.lamina_mix`
    and :func:`schedlab.solvers.solve_device_mix`.

    >>> DeviceMixProblem(model="llama-3-70b", context_tokens=0)
    Traceback (most recent call last):
    ...
    ValueError: The 'context_tokens' parameter of DeviceMixProblem must be a float in (0, inf).
    Got 0 instead.
    """

    model: str
    context_tokens: float
    tbt_slo_s: float = math.inf
    max_compute: int = 8
    max_memory: int = 8
    max_replicas: int = 4
    homogeneous: bool = True
    compute_gpu: str = "h100-sxm"
    memory_gpu: str = "h20"
    stack: NetworkStack = FHBN
    prices: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        where = "DeviceMixProblem"
        get_model(self.model)
        get_accelerator(self.compute_gpu)
        get_accelerator(self.memory_gpu)
        check_positive_float(self.context_tokens, "context_tokens", where)
        check_positive_float(self.tbt_slo_s, "tbt_slo_s", where, allow_inf=True)
        for name in ("max_compute", "max_memory", "max_replicas"):
            check_positive_int(getattr(self, name), name, where)
        if not isinstance(self.homogeneous, bool):
            raise ValueError(f"The 'homogeneous' parameter of {where} must be a bool. Got "
                             f"{self.homogeneous!r}.")
        if not isinstance(self.stack, NetworkStack):
            raise ValueError(f"The 'stack' parameter of {where} must be a NetworkStack (FHBN, "
                             f"NCCL or your own). Got {self.stack!r}.")
        if self.prices is not None:
            if not isinstance(self.prices, Mapping):
                raise ValueError(f"The 'prices' parameter of {where} must map accelerator names "
                                 f"to USD per chip-hour. Got {self.prices!r}.")
            for name, price in self.prices.items():
                check_positive_float(price, f"prices[{name!r}]", where)


@dataclass(frozen=True, slots=True)
class DeviceMix:
    """A device mix and batch: ``n_compute`` compute devices as ``replicas`` replicas,
    ``n_memory`` memory devices (0: homogeneous, attention on the compute devices), ``batch``
    requests in each of the ``replicas + 1`` concurrent batches (one batch when homogeneous)."""

    n_compute: int
    n_memory: int
    replicas: int
    batch: int

    def __post_init__(self) -> None:
        for name in ("n_compute", "n_memory", "replicas", "batch"):
            check_nonneg_int(getattr(self, name), name, "DeviceMix")


@dataclass(frozen=True, slots=True)
class MixEvaluation:
    """What a :class:`DeviceMix` gives on a problem: ``feasible`` (with the ``reason`` when
    not), tokens per second, time between tokens, requests decoding at once, price per hour and
    the objective, USD per million tokens."""

    feasible: bool
    reason: str
    throughput: float
    tbt_s: float
    requests: int
    price_per_hour: float

    @property
    def usd_per_million_tokens(self) -> float:
        """Price per hour over tokens per hour, per million tokens (``inf`` when infeasible)."""
        if not self.feasible or self.throughput <= 0:
            return math.inf
        return self.price_per_hour / (self.throughput * 3600.0) * 1e6


Deployment = AttentionOffload | Homogeneous


def memory_pools(problem: DeviceMixProblem) -> list[int]:
    """The memory-pool sizes a problem allows: the divisors of the model's KV heads up to
    ``max_memory`` (the KV is split by head, v2 §5)."""
    kv_heads = get_model(problem.model).num_kv_heads
    return [b for b in range(1, problem.max_memory + 1) if kv_heads % b == 0]


def deployment(problem: DeviceMixProblem, n_compute: int, n_memory: int,
               replicas: int = 1) -> Deployment:
    """The deployment of a mix (:class:`Homogeneous` when ``n_memory == 0``); ``ValueError``
    when it cannot run the model (weights do not fit, heads do not split)."""
    if n_memory == 0:
        if replicas != 1:
            raise ValueError("A homogeneous deployment has one replica (tensor parallel over "
                             f"every GPU). Got replicas={replicas}.")
        return Homogeneous.build(problem.model, n_gpus=n_compute, gpu=problem.compute_gpu,
                                 prices=problem.prices)
    return AttentionOffload.build(problem.model, n_compute=n_compute, n_memory=n_memory,
                                  replicas=replicas, compute_gpu=problem.compute_gpu,
                                  memory_gpu=problem.memory_gpu, stack=problem.stack,
                                  prices=problem.prices)


def largest_batch(problem: DeviceMixProblem, dep: Deployment) -> int:
    """The largest batch whose KV fits and whose time between tokens meets the SLO (0 when even
    one request misses it): throughput only grows with the batch (every term of the time
    between tokens is affine in it), so this batch is the deployment's best."""
    hi = dep.max_batch(problem.context_tokens)
    if hi < 1 or dep.tbt_s(1, problem.context_tokens) > problem.tbt_slo_s:
        return 0
    if dep.tbt_s(hi, problem.context_tokens) <= problem.tbt_slo_s:
        return hi
    lo = 1  # tbt(lo) meets the SLO, tbt(hi) misses it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if dep.tbt_s(mid, problem.context_tokens) <= problem.tbt_slo_s:
            lo = mid
        else:
            hi = mid
    return lo


def evaluate_mix(problem: DeviceMixProblem, mix: DeviceMix) -> MixEvaluation:
    """Check ``mix`` against ``problem`` and price it: the one rule of feasibility (device
    counts within the limits, the model runs on the mix, the KV of every request fits, the time
    between tokens meets the SLO) for the heuristic, the optimum and the tests alike.

    >>> p = DeviceMixProblem(model="llama-3-70b", context_tokens=2000)
    >>> e = evaluate_mix(p, DeviceMix(2, 4, 1, 200))
    >>> e.feasible, e.requests, round(e.usd_per_million_tokens, 3)
    (True, 400, 2.12)
    >>> evaluate_mix(p, DeviceMix(2, 4, 1, 10_000)).reason
    'KV of 20000 requests does not fit'
    """
    a, b, r, batch = mix.n_compute, mix.n_memory, mix.replicas, mix.batch

    def no(reason: str, price: float = math.nan) -> MixEvaluation:
        return MixEvaluation(False, reason, 0.0, math.inf, 0, price)

    if not (1 <= a <= problem.max_compute and 0 <= b <= problem.max_memory
            and 1 <= r <= problem.max_replicas and batch >= 1):
        return no("device counts, replicas or batch out of range")
    if b == 0 and not problem.homogeneous:
        return no("homogeneous mixes are not allowed")
    try:
        dep = deployment(problem, a, b, r)
    except ValueError as exc:
        return no(str(exc))
    price = dep.price_per_hour
    if batch > dep.max_batch(problem.context_tokens):
        return no(f"KV of {batch * dep.concurrent_batches} requests does not fit", price)
    tbt = dep.tbt_s(batch, problem.context_tokens)
    if tbt > problem.tbt_slo_s:
        return no(f"time between tokens {tbt:.4f} s over the SLO", price)
    return MixEvaluation(True, "", dep.throughput(batch, problem.context_tokens), tbt,
                         batch * dep.concurrent_batches, price)


# ------------------------------------------------------------------------------ the rotation
@dataclass(frozen=True, slots=True)
class Timeline:
    """What :func:`rotation_timeline` ran: one row per task, ``batch``, ``token``, ``layer``,
    ``resource`` (a replica ``0..r-1``, or ``-1`` for the memory pool), ``start_s``, ``end_s``;
    and the steady time between one batch's tokens, ``period_s``."""

    batch: np.ndarray
    token: np.ndarray
    layer: np.ndarray
    resource: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    period_s: float


def rotation_timeline(n_batches: int, layers: int, parts: DecodeParts, *,
                      tokens: int = 4) -> Timeline:
    """Lamina's rotational staggered pipelining (v2 §4.3, Fig. 8) as a schedule: ``n_batches``
    batches over ``n_batches - 1`` model replicas and one memory pool. A batch's token is
    ``layers`` rounds of a model slice (``parts.model_s / layers`` on a replica), half the
    network's round trip, the attention (``parts.attention_s / layers`` on the pool, which
    serves one batch at a time) and the other half; slice ``k`` of batch ``j`` runs on replica
    ``(j + k) mod (n - 1)`` (``k`` counting across tokens), batch ``j`` starts ``t_m / (n - 1)``
    (per slice) after batch ``j - 1``, and every resource serves the batches in turn (slice by
    slice, batch 0 first): a fixed cyclic sequence, so the steady state is periodic.

    The steady time between tokens (``period_s``: the slowest batch's mean gap over the second
    half of the ``tokens``) is what
    :meth:`AttentionOffload.tbt_s` prices in closed form (without the send-Q-early overlap);
    the tests check it is never below that bound and meets it when the pipeline is balanced.

    >>> t = rotation_timeline(2, 4, DecodeParts(0.04, 0.04, 0.0, 0.0))
    >>> round(t.period_s, 6)       # balanced t_a = t_m / (n - 1): no bubble, 2 t_m
    0.08
    """
    n = check_positive_int(n_batches, "n_batches", "rotation_timeline")
    if n < 2:
        raise ValueError("The 'n_batches' parameter of rotation_timeline must be >= 2 (n - 1 "
                         f"replicas). Got {n}.")
    L = check_positive_int(layers, "layers", "rotation_timeline")
    T = check_positive_int(tokens, "tokens", "rotation_timeline")
    r = n - 1
    m, a, w = parts.model_s / L, parts.attention_s / L, parts.network_s / L
    free = {res: 0.0 for res in range(-1, r)}
    ready = [j * m / r for j in range(n)]  # staggered by a slice over the replicas
    rows: list[tuple[int, int, int, int, float, float]] = []
    done_token: list[list[float]] = [[] for _ in range(n)]
    for g in range(L * T):  # every resource serves the batches in turn: (slice, batch) order
        for j in range(n):
            for res, length in (((j + g) % r, m), (-1, a)):
                start = max(ready[j], free[res])
                free[res] = start + length
                ready[j] = start + length + w / 2
                rows.append((j, g // L, g % L, res, start, start + length))
            if g % L == L - 1:
                done_token[j].append(free[-1])
    cols = np.array(rows, dtype=np.float64).T
    half = T // 2  # steady state: the mean gap over the second half of the tokens
    last = [(d[-1] - d[half]) / (len(d) - 1 - half) for d in done_token if len(d) - 1 > half]
    return Timeline(batch=cols[0].astype(np.int64), token=cols[1].astype(np.int64),
                    layer=cols[2].astype(np.int64), resource=cols[3].astype(np.int64),
                    start_s=cols[4], end_s=cols[5],
                    period_s=float(max(last)) if last else math.nan)
