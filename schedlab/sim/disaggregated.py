"""Disaggregated serving (Mooncake): a prefill pool with a distributed prefix cache, a decode
pool, and a placement policy that places each arriving request on a (prefill, decode) pair or
rejects it.

The same instance runtimes and deciders as :func:`~schedlab.sim.simulate` run both pools; this
module adds what lies between them:

- *Placement.* At each arrival the driver builds a
  :class:`~schedlab.contract.placement.PlacementView` (the request's cached prefix on every
  prefill instance from the :class:`~schedlab.sim.prefix_cache.PrefixCache`, the estimates below)
  and asks the placement policy (:data:`schedlab.policies.PLACEMENTS`, Mooncake's Conductor by
  default). Requests arriving together are placed one at a time, each seeing its predecessors.
- *Prefill with a cached prefix.* A request reaches its prefill instance with its cached prefix
  in host memory (``prefilled`` starts there, :meth:`InstanceRuntime.admit_cached`); the first
  iteration that runs it loads the prefix alongside the compute (``overlap_swap``), so the
  prefill takes max(load, compute) (v3 §5.2, layer-wise prefill). A prefix pulled from another
  instance (Algorithm 1's balancing branch) delays its arrival there by the transfer, and stays
  there (hot-spot replication); when a prefill ends its whole prompt is cached on its instance.
- *Hand-off.* When a prefill ends (its first token), the request's KV streams to its decode
  instance layer by layer during the prefill, so it joins there one layer's transfer later
  [recon: v3 §3 step 3]. A placement with ``handoff_tbt_slo_s`` is checked again then: the decode
  instance rejects it (``"tbt_slo_at_handoff"``, a wasted prefill) if its step time with the
  request would exceed that; a decode instance without KV room left rejects it too
  (``"decode_kv_full"``). A one-token output completes on its prefill instance.
- *Estimates* (the same numbers every policy reads): the prefill of ``n`` prompt tokens with a
  prefix of ``p`` takes ``max(T(n) - T(p) + F, load(p))`` with ``T`` the cost model's batch-1
  prefill, ``F`` the fixed cost of an iteration (the logits head, launches) that the difference
  cancels, and ``load`` its host-to-device time; an instance's queue time is the estimated end of
  the prefills queued on it (a serial queue) minus now; a transfer moves the missing prefix's KV
  over ``links_per_node`` links of ``link``; the decode step time is a linear fit of the decode
  pool's cost model (:class:`~schedlab.contract.placement.DecodeStepModel`).

Token gaps are recorded (:mod:`schedlab.sim.gaps`), so the result carries Mooncake's TBT per
request in ``extra["tbt_s"]`` beside ``prefill_instance``, ``decode_instance``,
``cached_tokens``, ``transfer_tokens``, the estimates the placement decided on (``ttft_est_s``,
``tbt_est_s``; for a rejected request, the one that failed is named by its reason) and
``wasted_prefill``; and, at each
arrival (``load_time_s``), the pools' load as the placement saw it: the mean queue time of the
prefill instances (``prefill_queue_s``) and the mean predicted decode step
(``decode_step_s``).

>>> import numpy as np
>>> from schedlab import Workload, PrefixBlocks
>>> from schedlab.costmodel.base import ConstantIterationCost
>>> cost = ConstantIterationCost(slot_s=0.05, kv_capacity_tokens=10**6)
>>> w = Workload(arrival_s=[0.0, 1.0], input_tokens=[1024, 1024], output_tokens=[4, 4],
...     prefix_block_ids=PrefixBlocks.from_lists([[0, 1], [0, 1]]))
>>> c = DisaggregatedCluster.homogeneous(cost=cost, n_prefill=2, n_decode=1)
>>> r = simulate_disaggregated(w, c)
>>> r.status.tolist(), r.extra["cached_tokens"].tolist()
(['completed', 'completed'], [0, 1023])
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from schedlab.contract.placement import (
    DecodeStepModel,
    InvalidPlacement,
    Placement,
    PlacementView,
    cached_prefix_tokens,
    validate_placement,
)
from schedlab.errors import (
    SimulationStalled,
    check_instance,
    check_keyword_params,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
)
from schedlab.jit import njit
from schedlab.records import MAX_TOKENS, Workload
from schedlab.sim.cluster import InstanceSpec
from schedlab.sim.deciding import Decider
from schedlab.sim.engine import PRIORITY_RUN_END, EventQueue
from schedlab.sim.gaps import GapLog
from schedlab.sim.instance import InstanceRuntime
from schedlab.sim.prefix_cache import EVICTIONS, PrefixCache
from schedlab.sim.result import SimResult
from schedlab.sim.simulator import build_result, instance_event, joined, request_table
from schedlab.sim.state import COMPLETED, KV, PENDING, REJECTED, RequestTable

__all__ = ["DisaggregatedCluster", "simulate_disaggregated"]

_EMPTY_I = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class DisaggregatedCluster:
    """A prefill pool and a decode pool (Mooncake, arXiv 2407.00079 / FAST'25).

    Parameters
    ----------
    prefill, decode : the instances of each pool (:class:`InstanceSpec`, one or more each; the
        instances of a pool share one cost model, which the placement's estimates use).
    cache_tokens : int, default 3,000,000
        Prefix-cache capacity of each prefill instance (FAST'25 §5.3.1: about 3 M tokens of DRAM
        per node).
    cache_eviction : {"lru", "lfu"}, default "lru"
        The caches' eviction policy (LRU, FAST'25 §3.2.1; v3 Table 1 compares LFU).
    ssd_tokens : int, default 0
        A second cache tier per prefill instance (Mooncake's SSD; the papers give no size):
        blocks the DRAM cache evicts go there, and a prefix partly there is read back at
        ``ssd_bytes_per_s`` (default 16 GB/s, a few NVMe drives [recon]) before the prefill
        starts, which the placement's estimates include.
    block_tokens : int, default 512
        Tokens per cache block (the Mooncake traces' ``hash_ids``).
    link : catalog name or :class:`~schedlab.costmodel.hardware.Interconnect`, default
        ``"rdma-200g"``; ``links_per_node`` (default 4) of them carry KV between nodes (FAST'25
        §5.1: 4x200 Gbps RDMA per node).

    :meth:`homogeneous` builds Mooncake's setup: prefill instances that prefill one request at a
    time, whole, with the prefix load overlapped.
    """

    prefill: tuple[InstanceSpec, ...]
    decode: tuple[InstanceSpec, ...]
    cache_tokens: int = 3_000_000
    cache_eviction: str = "lru"
    ssd_tokens: int = 0
    ssd_bytes_per_s: float = 16e9
    block_tokens: int = 512
    link: Any = "rdma-200g"
    links_per_node: int = 4

    def __post_init__(self) -> None:
        w = "DisaggregatedCluster"
        for name in ("prefill", "decode"):
            pool = tuple(getattr(self, name))
            if not pool or not all(isinstance(s, InstanceSpec) for s in pool):
                raise ValueError(f"The {name!r} parameter of {w} must hold one or more "
                                 f"InstanceSpec records. Got {getattr(self, name)!r}.")
            object.__setattr__(self, name, pool)
        check_positive_int(self.block_tokens, "block_tokens", w)
        check_positive_int(self.cache_tokens, "cache_tokens", w)
        check_positive_int(self.links_per_node, "links_per_node", w)
        check_nonneg_int(self.ssd_tokens, "ssd_tokens", w)
        check_positive_float(self.ssd_bytes_per_s, "ssd_bytes_per_s", w)
        if self.cache_eviction not in EVICTIONS:
            raise ValueError(f"The 'cache_eviction' parameter of {w} must be one of "
                             f"{EVICTIONS}. Got {self.cache_eviction!r}.")
        if self.cache_tokens < self.block_tokens:
            raise ValueError(f"The 'cache_tokens' parameter of {w} must hold at least one block "
                             f"({self.block_tokens} tokens). Got {self.cache_tokens!r}.")

    @classmethod
    def homogeneous(
        cls,
        model: Any = None,
        gpu: Any = None,
        *,
        tp: int = 1,
        n_prefill: int = 1,
        n_decode: int = 1,
        cost: Any = None,
        max_context_tokens: int | None = None,
        decode_batch_size: int = 256,
        **kwargs: Any,
    ) -> DisaggregatedCluster:
        """``n_prefill`` prefill and ``n_decode`` decode instances of one (model, gpu, tp) or one
        cost model (built once, shared). Prefill instances run one whole prompt at a time
        (``max_batch_size=1``, no chunking) with the prefix load overlapped
        (``overlap_swap``); decode instances batch up to ``decode_batch_size`` requests.
        ``kwargs`` go to the cluster (``cache_tokens``, ``cache_eviction``, ``ssd_tokens``,
        ``ssd_bytes_per_s``, ``block_tokens``, ``link``, ``links_per_node``)."""
        check_positive_int(n_prefill, "n_prefill", "DisaggregatedCluster.homogeneous")
        check_positive_int(n_decode, "n_decode", "DisaggregatedCluster.homogeneous")
        base = InstanceSpec(model=model, gpu=gpu, tp=tp, cost=cost,
                            max_context_tokens=max_context_tokens)
        base = replace(base, cost=base.resolved_cost())
        pre = replace(base, max_batch_size=1, max_batch_tokens=MAX_TOKENS, chunk_tokens=0,
                      overlap_swap=True, host_kv_capacity_tokens=MAX_TOKENS)
        dec = replace(base, max_batch_size=decode_batch_size)
        return cls(prefill=(pre,) * n_prefill, decode=(dec,) * n_decode, **kwargs)


def fit_decode_step(cost: Any) -> DecodeStepModel:
    """A :class:`DecodeStepModel` fitted (least squares, coefficients >= 0) to a cost model's
    decode step time over batches of 1-256 requests and 1k-64k tokens of context each.

    >>> from schedlab.costmodel.base import ConstantIterationCost
    >>> fit_decode_step(ConstantIterationCost(slot_s=0.02)).base_s
    0.02
    """
    pts = [(b, b * c) for b in (1, 2, 4, 8, 16, 32, 64, 128, 256)
           for c in (1024, 4096, 16384, 65536)]
    one = np.array([1.0])
    y = np.array([float(cost.fast_decode_steps_time_s(b, ctx, one)[0]) for b, ctx in pts])
    a = np.array([[1.0, b, ctx] for b, ctx in pts])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    coef = np.maximum(coef, 0.0)
    return DecodeStepModel(base_s=round(float(coef[0]), 12), per_request_s=float(coef[1]),
                           per_context_token_s=float(coef[2]))


class _Estimates:
    """The engine's estimates for a pool of one cost model (see the module docstring), from
    tables made once: the batch-1 prefill time of every prompt, of every prompt but its last
    token, and of every whole number of cache blocks (a cached prefix is one of these)."""

    def __init__(self, cost: Any, inputs: np.ndarray, full: np.ndarray, block_tokens: int,
                 link_bytes_per_s: float, link_latency_s: float, layers: int) -> None:
        self.B = block_tokens
        self.full = full  # every prompt's batch-1 prefill (the runtimes' est_prefill)
        self.all_but_last = np.asarray(cost.prefill_time_s(np.maximum(inputs - 1, 0)),
                                       dtype=np.float64)
        blocks = int(inputs.max(initial=1)) // block_tokens + 1
        self.blocks = np.asarray(cost.prefill_time_s(np.arange(blocks + 1) * block_tokens),
                                 dtype=np.float64)
        # what any prefill iteration pays whatever its length (the logits head, launches): T(1)
        # less T(1)'s one token of work, counted once where T(n) - T(p) cancels it out
        t1, t2 = (float(x) for x in cost.prefill_time_s(np.array([1, 2])))
        self.fixed = max(t1 - (t2 - t1), 0.0)
        one, two = float(cost.swap_time_s(1)), float(cost.swap_time_s(2))
        self.load_per_token = two - one  # host-to-device time is affine in the tokens
        self.load_latency = one - self.load_per_token
        self.inputs = inputs
        self.kvb = float(cost.kv_bytes_per_token)
        self.bw = link_bytes_per_s
        self.lat = link_latency_s
        self.layers = layers

    def for_view(self, r: int, prefix: np.ndarray, free_at: np.ndarray, now: float) -> tuple[
            int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Request ``r``'s estimates on every prefill instance, given the prompt tokens each
        holds (``prefix``) and when each queue empties (``free_at``): the best prefix and its
        lowest-indexed holder (-1: none), the prefill time with the local prefix and with the
        best one, the time to pull the missing part of the best prefix, and the queue time."""
        return _view_estimates(prefix, int(self.inputs[r]), float(self.full[r]),
                               float(self.all_but_last[r]), self.blocks, self.B, self.fixed,
                               self.load_latency, self.load_per_token, free_at, now, self.kvb,
                               self.bw, self.lat)

    def transfer_s(self, tokens: int) -> float:
        """Time to move ``tokens`` tokens of KV between nodes (0 for none)."""
        return _transfer_time(tokens, self.kvb, self.bw, self.lat)


@njit
def _transfer_time(tokens, kv_bytes, link_bytes_per_s, link_latency):
    """Seconds to move ``tokens`` tokens of KV over the link (0 for none): its latency, then
    the bytes at its bandwidth."""
    return link_latency + tokens * kv_bytes / link_bytes_per_s if tokens > 0 else 0.0


@njit
def _prefill_with(prefix, n, full, all_but_last, blocks, B, fixed, load_latency, load_per_token):
    """The prefill time of an ``n``-token prompt whose batch-1 prefill takes ``full``, with
    ``prefix`` tokens cached (whole blocks, or all of the prompt but its last token):
    max(T(n) - T(p) + F, load(p)), with F the fixed cost of an iteration that T(n) - T(p)
    cancels and load the host-to-device time (no F and no load without a prefix)."""
    if prefix >= n - 1:
        t_p = all_but_last
    else:
        t_p = blocks[min(prefix // B, blocks.shape[0] - 1)]
    if prefix <= 0:
        return max(full - t_p, 0.0)
    return max(full - t_p + fixed, load_latency + prefix * load_per_token)


@njit
def _view_estimates(prefix, n, full, all_but_last, blocks, B, fixed, load_latency,
                    load_per_token, free_at, now, kv_bytes, link_bytes_per_s, link_latency):
    """The compiled body of :meth:`_Estimates.for_view` (one loop over the prefill pool)."""
    p = prefix.shape[0]
    best, holder = 0, -1
    for i in range(p):
        if prefix[i] > best:
            best, holder = prefix[i], i
    with_best = _prefill_with(best, n, full, all_but_last, blocks, B, fixed, load_latency,
                              load_per_token)
    local = np.empty(p)
    at_best = np.full(p, with_best)
    transfer = np.empty(p)
    queue = np.zeros(p)
    for i in range(p):
        local[i] = _prefill_with(prefix[i], n, full, all_but_last, blocks, B, fixed,
                                 load_latency, load_per_token)
        transfer[i] = _transfer_time(best - prefix[i], kv_bytes, link_bytes_per_s,
                                     link_latency)
        if free_at[i] > now:
            queue[i] = free_at[i] - now
    return best, holder, local, at_best, transfer, queue


def simulate_disaggregated(
    workload: Workload,
    cluster: DisaggregatedCluster,
    placement: str | Callable[..., Placement] = "mooncake",
    *,
    placement_params: dict[str, Any] | None = None,
    prefill_policy: str | Callable[..., Any] = "fifo",
    decode_policy: str | Callable[..., Any] = "fcfs",
    predicted_output_tokens: np.ndarray | None = None,
    closed_form: bool = True,
    max_idle_decisions: int = 10_000,
) -> SimResult:
    """Simulate serving ``workload`` on a disaggregated ``cluster`` (see the module docstring).

    Parameters
    ----------
    workload : the requests; ``prefix_block_ids`` (the traces' ``hash_ids``) drive the prefix
        cache (a workload without them caches nothing).
    placement : a registered placement policy (:data:`schedlab.policies.PLACEMENTS`) or any
        callable ``placement(view: PlacementView, /, **placement_params) -> Placement``.
    prefill_policy, decode_policy : batching policies of the two pools (registry names or
        callables): arrival order on prefill instances, FCFS run-to-completion on decode
        instances by default.
    predicted_output_tokens : what policies see as the output length (None: the truth).
    closed_form, max_idle_decisions : as in :func:`~schedlab.sim.simulate`.
    """
    from schedlab.costmodel.hardware import get_interconnect
    from schedlab.costmodel.models import get_model
    from schedlab.policies import get_placement, get_policy

    wall0 = time.perf_counter()
    where = "simulate_disaggregated"
    check_instance(workload, Workload, "workload", where)
    check_instance(cluster, DisaggregatedCluster, "cluster", where)
    check_positive_int(max_idle_decisions, "max_idle_decisions", where)
    place = get_placement(placement)
    place_name = placement if isinstance(placement, str) else getattr(place, "__name__", "?")
    pparams = dict(placement_params or {})
    check_keyword_params(place, pparams, f"placement policy {place_name!r}")
    pols = []
    for pol in (prefill_policy, decode_policy):
        fn = get_policy(pol)
        pols.append((fn, pol if isinstance(pol, str) else getattr(fn, "__name__", "?")))
    n = len(workload)
    T = request_table(workload, predicted_output_tokens, where)
    ones_i = np.ones(n, dtype=np.int64)
    ones_i.flags.writeable = False
    T_pre = replace(T, output=ones_i, pred=np.ones(n))  # a prefill instance emits one token
    gaps = GapLog(n)
    reasons: dict[str, int] = {}
    P, D = len(cluster.prefill), len(cluster.decode)
    runtimes: list[InstanceRuntime] = []
    deciders: list[Decider] = []
    est_cache: dict[int, np.ndarray] = {}
    shared = {"outstanding": np.zeros(P + D), "kv_used": np.zeros(P + D, dtype=np.int64),
              "queue_length": np.zeros(P + D, dtype=np.int64)}  # a router's columns, unused here
    for i, spec in enumerate((*cluster.prefill, *cluster.decode)):
        pre = i < P
        cost = spec.resolved_cost()
        if id(cost) not in est_cache:
            est_cache[id(cost)] = np.asarray(cost.prefill_time_s(T.input), dtype=np.float64)
        fn, name = pols[0 if pre else 1]
        rt = InstanceRuntime(
            index=i, spec=spec, cost=cost, table=T_pre if pre else T,
            est_prefill=est_cache[id(cost)],
            shared=shared, reasons=reasons, log=None, closed_form=bool(closed_form), gaps=gaps,
            max_idle_steps=max_idle_decisions, track_load=False,
            describe=f"{'prefill' if pre else 'decode'} policy {name!r}",
        )
        runtimes.append(rt)
        deciders.append(Decider(rt, fn, name, {}))
    for pool, first in (("prefill", 0), ("decode", P)):
        others = [i for i in range(first, first + (P if pool == "prefill" else D))
                  if runtimes[i].cost != runtimes[first].cost]
        if others:  # the estimates come from one cost model per pool
            raise ValueError(f"The {pool} pool of a DisaggregatedCluster must share one cost "
                             f"model (the placement's estimates use it); instance "
                             f"{others[0] - first} of the pool differs from instance 0.")
    link = get_interconnect(cluster.link)
    spec0 = cluster.prefill[0]
    layers = int(get_model(spec0.model).num_layers) if spec0.model is not None else 1
    est = _Estimates(runtimes[0].cost, T.input, runtimes[0].est_all, cluster.block_tokens,
                     link.bytes_per_s * cluster.links_per_node, link.latency_s, layers)
    run = _Run(T, workload, runtimes, deciders, P, D, est,
               PrefixCache(P, cluster.cache_tokens, block_tokens=cluster.block_tokens,
                           eviction=cluster.cache_eviction, ssd_tokens=cluster.ssd_tokens),
               fit_decode_step(runtimes[P].cost), gaps, reasons, place, place_name, pparams,
               cluster.ssd_bytes_per_s)
    run.loop()
    tbt = np.where(T.status == COMPLETED, gaps.tbt_s(), np.nan)
    load = np.array(run.load, dtype=np.float64).reshape(-1, 5)
    m = run.step  # the mean step over the decode instances, from the sums (the model is linear)
    dec_step = (m.base_s * load[:, 2] + m.per_request_s * load[:, 3]
                + m.per_context_token_s * load[:, 4]) / D
    extra = {
        "prefill_instance": run.prefill_of, "decode_instance": run.decode_of,
        "cached_tokens": run.cached, "transfer_tokens": run.transfer,
        "ttft_est_s": run.ttft_est, "tbt_est_s": run.tbt_est, "wasted_prefill": run.wasted,
        "tbt_s": tbt,
        "placement": place_name,
        "load_time_s": load[:, 0], "prefill_queue_s": load[:, 1] / P, "decode_step_s": dec_step,
    }
    return build_result(workload, T, deciders, reasons, wall0, place_name,
                        instance=run.decode_of, extra=extra)


@njit
def _splice_pool(since, context, counts, new_counts, changed, rids, kvs, join_s):
    """The decode pool's per-request columns (instance, join time, context tokens), grouped by
    instance with ``counts[d]`` rows for instance ``d`` (the last ``since`` and ``context``),
    with the rows of the instances ``changed`` (ascending) replaced by their queues now:
    ``new_counts[d]`` requests each, whose ids and KV tokens ``rids`` and ``kvs`` hold in that
    order (a request's join time comes from ``join_s``). Also returns how many instances are
    busy."""
    total = 0
    for d in range(new_counts.shape[0]):
        total += new_counts[d]
    out_i = np.empty(total, np.int64)
    out_s = np.empty(total, np.float64)
    out_c = np.empty(total, np.int64)
    src, dst, k, c, busy = 0, 0, 0, 0, 0
    for d in range(counts.shape[0]):
        fresh = c < changed.shape[0] and changed[c] == d
        for j in range(new_counts[d]):
            out_i[dst] = d
            if fresh:
                out_s[dst] = join_s[rids[k]]
                out_c[dst] = kvs[k]
                k += 1
            else:
                out_s[dst] = since[src + j]
                out_c[dst] = context[src + j]
            dst += 1
        if fresh:
            c += 1
        busy += new_counts[d] > 0
        src += counts[d]
    return out_i, out_s, out_c, busy


class _Run:
    """One disaggregated run: the event loop and the bookkeeping between the pools."""

    def __init__(self, T: RequestTable, w: Workload, runtimes: list[InstanceRuntime],
                 deciders: list[Decider], P: int, D: int, est: _Estimates, cache: PrefixCache,
                 step: DecodeStepModel, gaps: GapLog, reasons: dict[str, int],
                 place: Callable[..., Placement], place_name: str,
                 pparams: dict[str, Any], ssd_bytes_per_s: float) -> None:
        n = T.arrival.shape[0]
        self.T, self.w, self.rts, self.decs, self.P, self.D = T, w, runtimes, deciders, P, D
        self.est, self.cache, self.step, self.gaps, self.reasons = est, cache, step, gaps, reasons
        # seconds per token read back from SSD, and the reads of the request being placed
        self.ssd_s = est.kvb / ssd_bytes_per_s
        self.read_s: np.ndarray | None = None
        self.place, self.place_name, self.pparams = place, place_name, pparams
        self.q = EventQueue()
        self.later: list[tuple[float, int, int, int]] = []  # (time, seq, kind, request)
        self.seq = 0
        self.prefill_of = np.full(n, -1, dtype=np.int64)
        self.decode_of = np.full(n, -1, dtype=np.int64)
        self.cached = np.zeros(n, dtype=np.int64)
        self.transfer = np.zeros(n, dtype=np.int64)
        self.ttft_est = np.full(n, np.nan)
        self.tbt_est = np.full(n, np.nan)
        self.wasted = np.zeros(n, dtype=bool)
        self.handoff_slo = np.full(n, math.inf)
        self.join_s = np.full(n, np.nan)
        self.free_at = np.zeros(P)  # estimated end of each prefill queue
        self.queued = np.zeros(P, dtype=np.int64)
        # requests placed and not yet joined, as columns (swap-removed): their decode instance,
        # expected join time and context; ``inc_at`` maps a request to its row
        self.inc_at: dict[int, int] = {}
        self.inc_rid = np.zeros(64, dtype=np.int64)
        self.inc_d = np.zeros(64, dtype=np.int64)
        self.inc_join = np.zeros(64, dtype=np.float64)
        self.inc_ctx = np.zeros(64, dtype=np.int64)
        self.reserved = np.zeros(D, dtype=np.int64)  # KV promised to incoming requests
        self.caps = np.array([rt.cap for rt in runtimes[P:]], dtype=np.int64)
        # the decode pool as the last view showed it, rebuilt only for the instances whose queue
        # changed since (a decode queue changes only in its own events and at a join)
        self.changed: set[int] = set(range(D))
        self.counts = np.zeros(D, dtype=np.int64)
        self.used = np.zeros(D, dtype=np.int64)
        # per request decoding, grouped by instance: instance, join time, context tokens
        self.decoding: tuple[np.ndarray, ...] = (_EMPTY_I, np.zeros(0), _EMPTY_I)
        self.pool_load = (0.0, 0.0, 0.0)  # busy instances, requests, context tokens
        self.blocks = w.prefix_block_ids
        # at each arrival: time, sum of prefill queues, busy decode instances, decode requests
        # and context tokens
        self.load: list[tuple[float, float, float, float, float]] = []
        for i in range(P):
            runtimes[i].handoff = self._handoff

    # ------------------------------------------------------------------ events
    def _push_later(self, t: float, kind: int, r: int) -> None:
        heapq.heappush(self.later, (t, self.seq, kind, r))
        self.seq += 1

    def loop(self) -> None:
        arrival = self.T.arrival
        n = arrival.shape[0]
        ptr = 0
        q = self.q
        inf = math.inf
        while True:
            t_arr = float(arrival[ptr]) if ptr < n else inf
            t_later = self.later[0][0] if self.later else inf
            t_ev = q.peek_time()
            t = min(t_arr, t_later, t_ev)
            if t == inf:
                break
            if t_later == t:
                _, _, kind, r = heapq.heappop(self.later)
                if kind == 0:
                    self._admit_prefill(r, t)
                else:
                    self._join(r, t)
                continue
            if t_arr == t:
                self._arrive(ptr, t)
                ptr += 1
                continue
            t, _, _, i, token = q.pop()
            if i >= self.P:
                self.changed.add(i - self.P)
            instance_event(self.decs[i], i, t, token, q.push)
        left = np.flatnonzero(self.T.status == PENDING)
        if left.shape[0]:
            raise SimulationStalled(f"The disaggregated run ended with {left.shape[0]} requests "
                                    f"unfinished (first: {left[:10].tolist()}).")

    # ------------------------------------------------------------------ placement
    def _view(self, r: int, now: float) -> tuple[PlacementView, np.ndarray, np.ndarray]:
        T, P = self.T, self.P
        n = int(T.input[r])
        chain = self.blocks[r] if self.blocks is not None else _EMPTY_I
        hit_blocks = (self.cache.match_blocks(chain, trusted=True) if chain.shape[0]
                      else np.zeros(P, np.int64))
        prefix = cached_prefix_tokens(hit_blocks, n, self.cache.block_tokens)
        best, holder, local_s, best_s, transfer_s, queue_s = self.est.for_view(
            r, prefix, self.free_at, now)
        self.read_s = None
        if self.cache.ssd_blocks:  # a prefix partly on SSD is read back before the prefill
            self.read_s = read = np.zeros(P)
            for i in np.flatnonzero(hit_blocks).tolist():
                on_ssd = self.cache.on_ssd(i, chain[: int(hit_blocks[i])])
                read[i] = min(on_ssd * self.cache.block_tokens, int(prefix[i])) * self.ssd_s
            local_s = local_s + read
        if self.changed:
            self._decode_pool()
        counts, used, (decoding_instance, since, ctx) = self.counts, self.used, self.decoding
        m = len(self.inc_at)
        view = PlacementView(
            now_s=now, request_id=r, input_tokens=n, output_tokens_pred=float(T.pred[r]),
            prefix_tokens=_ro(prefix), queue_s=_ro(queue_s),
            queued_requests=_ro(self.queued.copy()), prefill_s=_ro(local_s),
            prefill_best_s=_ro(best_s), transfer_s=_ro(transfer_s),
            best_prefix_tokens=best, best_holder=holder,
            decode_batch=counts, decode_context_tokens=used,
            decode_kv_free_tokens=_ro(self.caps - used - self.reserved),
            decode_step=self.step,
            decoding_instance=decoding_instance, decoding_since_s=since,
            decoding_context_tokens=ctx,
            incoming_instance=_ro(self.inc_d[:m].copy()),
            incoming_join_s=_ro(self.inc_join[:m].copy()),
            incoming_context_tokens=_ro(self.inc_ctx[:m].copy()),
        )
        return view, chain, hit_blocks

    def _decode_pool(self) -> None:
        """Refresh the decode pool's columns of the views from the instances that changed (the
        arrays are new and read-only: views made earlier keep theirs)."""
        changed = sorted(self.changed)
        self.changed.clear()
        counts, used = self.counts.copy(), self.used.copy()
        rids, kvs = [], []
        for d in changed:
            rt = self.rts[self.P + d]
            q = rt.Q
            rids.append(q.rid[: q.n])
            kvs.append(q.I[KV, : q.n])
            counts[d], used[d] = q.n, rt.gpu_used
        *decoding, busy = _splice_pool(self.decoding[1], self.decoding[2], self.counts, counts,
                                       np.array(changed, dtype=np.int64), np.concatenate(rids),
                                       np.concatenate(kvs), self.join_s)
        self.counts, self.used = _ro(counts), _ro(used)
        self.decoding = tuple(_ro(a) for a in decoding)
        self.pool_load = (float(busy), float(decoding[0].shape[0]), float(used.sum()))

    def _reject(self, r: int, reason: str, now: float) -> None:
        T = self.T
        T.status[r] = REJECTED
        T.finish[r] = now
        T.reject_code[r] = self.reasons.setdefault(reason, len(self.reasons))

    def _arrive(self, r: int, now: float) -> None:
        view, chain, hit_blocks = self._view(r, now)
        self.load.append((now, float(view.queue_s.sum()), *self.pool_load))
        p = self.place(view, **self.pparams)
        if not isinstance(p, Placement):
            raise ValueError(f"Placement policy {self.place_name!r} must return a Placement. "
                             f"Got {type(p).__name__}.")
        try:
            validate_placement(view, p)
        except InvalidPlacement as exc:
            raise ValueError(f"Placement policy {self.place_name!r}: {exc}") from None
        self.ttft_est[r] = p.ttft_est_s
        self.tbt_est[r] = p.tbt_est_s
        if not p.accepted:
            self._reject(r, str(p.reject_reason), now)
            return
        i, d = p.prefill, p.decode
        n = int(self.T.input[r])
        self.prefill_of[r], self.decode_of[r] = i, d
        self.handoff_slo[r] = p.handoff_tbt_slo_s
        cache, B = self.cache, self.cache.block_tokens
        local = int(view.prefix_tokens[i])
        if p.transfer_tokens:
            have = local + p.transfer_tokens
            cache.store(i, chain[: -(-have // B)], trusted=True)  # the pulled prefix stays
            cached = have
            delay = float(view.transfer_s[i])
        else:
            cache.touch(i, chain[: int(hit_blocks[i])], trusted=True)
            cached = local
            delay = 0.0 if self.read_s is None else float(self.read_s[i])
        self.cached[r], self.transfer[r] = cached, p.transfer_tokens
        start = max(self.free_at[i], now + delay)
        prefill = float(view.prefill_best_s[i] if p.transfer_tokens else view.prefill_s[i])
        self.free_at[i] = start + prefill
        self.queued[i] += 1
        if int(self.T.output[r]) > 1:
            self._incoming(r, d, start + prefill, n + 1)
            self.reserved[d] += n + math.ceil(self.T.pred[r])
        if delay > 0:
            self._push_later(now + delay, 0, r)
        else:
            self._admit_prefill(r, now)

    def _incoming(self, r: int, d: int, join: float, ctx: int) -> None:
        """``r`` is on its way to decode instance ``d``, expected there at ``join``."""
        m = len(self.inc_at)
        if m == self.inc_rid.shape[0]:
            for name in ("inc_rid", "inc_d", "inc_join", "inc_ctx"):
                a = getattr(self, name)
                setattr(self, name, np.concatenate((a, np.zeros_like(a))))
        self.inc_at[r] = m
        self.inc_rid[m], self.inc_d[m], self.inc_join[m], self.inc_ctx[m] = r, d, join, ctx

    def _arrived(self, r: int) -> int:
        """``r`` is no longer on its way (it joined, or was refused): its row goes, the last row
        takes its place. Returns its decode instance."""
        j = self.inc_at.pop(r)
        d = int(self.inc_d[j])
        last = len(self.inc_at)
        if j != last:
            moved = int(self.inc_rid[last])
            for a in (self.inc_rid, self.inc_d, self.inc_join, self.inc_ctx):
                a[j] = a[last]
            self.inc_at[moved] = j
        return d

    def _admit_prefill(self, r: int, now: float) -> None:
        i = int(self.prefill_of[r])
        m = self.rts[i].admit_cached(np.array([r]), now, np.array([self.cached[r]]))
        if m:
            joined(self.decs[i], i, m, now, self.q.push)
        else:  # refused on arrival (longer than the model's context, ...): never prefilled
            self._release(r)

    # ------------------------------------------------------------------ hand-off
    def _release(self, r: int) -> None:
        """``r`` leaves its prefill queue: its place in the estimates and reservations goes."""
        i = int(self.prefill_of[r])
        self.queued[i] -= 1
        if r in self.inc_at:
            d = self._arrived(r)
            self.reserved[d] -= int(self.T.input[r]) + math.ceil(self.T.pred[r])

    def _handoff(self, rids: np.ndarray, now: float) -> None:
        """Prefills that ended at ``now`` (called by the prefill instance)."""
        T = self.T
        for r in rids.tolist():
            i = int(self.prefill_of[r])
            chain = self.blocks[r] if self.blocks is not None else _EMPTY_I
            if chain.shape[0]:
                self.cache.store(i, chain, trusted=True)
            if r not in self.inc_at:  # a one-token output: done on the prefill instance
                self.queued[i] -= 1
                continue
            T.status[r] = PENDING  # the prefill instance marked it completed: it goes on
            T.finish[r] = np.nan
            # the KV streamed during the prefill: its last layer is still to come
            join = now + self.est.transfer_s(int(T.input[r]) + 1) / self.est.layers
            self._push_later(join, 1, r)

    def _join(self, r: int, now: float) -> None:
        """``r``'s KV has arrived at its decode instance."""
        T = self.T
        self._release(r)
        d = int(self.decode_of[r])
        rt = self.rts[self.P + d]
        kv = int(T.input[r]) + 1
        # the running decode grows its KV up to its next step boundary, where the join takes part
        if rt.gpu_used + rt.kv_growth(now) + kv > rt.cap:
            self.wasted[r] = True
            self._reject(r, "decode_kv_full", now)
            return
        if math.isfinite(self.handoff_slo[r]):
            step = self.step.step_s(rt.Q.n + 1, rt.gpu_used + kv)
            if step > self.handoff_slo[r]:
                self.wasted[r] = True
                self._reject(r, "tbt_slo_at_handoff", now)
                return
        self.join_s[r] = now
        self.changed.add(d)
        if rt.gpu_used + rt.kv_growth() + kv > rt.cap:  # the stretch was planned without it
            new_end = rt.cut_at(now)
            if new_end is not None:
                self.q.push(new_end, PRIORITY_RUN_END, target=self.P + d, token=rt.token)
        m = rt.admit_prefilled(np.array([r]), now)
        joined(self.decs[self.P + d], self.P + d, m, now, self.q.push)


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a.flags.writeable = False
    return a
