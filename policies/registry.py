"""Registries of batching policies and routers: a name or any callable, the networkx way.

``REGISTRY`` and ``ROUTERS`` are read-only mappings from a name to a pure function. Functions
that take them (the simulator) accept either a registered name or a callable of their own;
:func:`get_policy` and :func:`get_router` resolve both, and an unknown name raises ``ValueError``
listing close matches and every known name.

>>> get_policy("fcfs").__name__
'fcfs'
>>> get_policy(lambda view: None).__name__
'<lambda>'
>>> get_policy("fcfss")
Traceback (most recent call last):
...
ValueError: Unknown batching policy 'fcfss'. Close matches: 'fcfs'...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from schedlab.errors import unknown_name_error
from schedlab.policies.anns import beam_search, fork_join_search
from schedlab.policies.aversearch import async_search
from schedlab.policies.fcfs import fcfs, fifo
from schedlab.policies.lamina import homogeneous_mix, lamina_mix
from schedlab.policies.loongserve import loongserve, static_sp
from schedlab.policies.mlfq import mlfq, skip_join_mlfq
from schedlab.policies.moba import local_blocks, moba_gate, random_blocks
from schedlab.policies.mooncake import mooncake
from schedlab.policies.retroinfer import fifo_victims, lru_victims, retroinfer_zones
from schedlab.policies.rollout import group_round_robin, lpt_dispatch, random_dispatch
from schedlab.policies.routers import least_kv, least_tokens, round_robin
from schedlab.policies.seer import group_round_robin_all, seer
from schedlab.policies.sjf import sjf, srpt
from schedlab.policies.speculation import mba_allocation, uniform_allocation
from schedlab.policies.streamrl import skew_aware_dispatch
from schedlab.policies.trenv import criu, faasd, faasnap, reap, repurpose_criu, trenv
from schedlab.policies.vllm import vllm

__all__ = ["ANN_SEARCHES", "BLOCK_SELECTORS", "CACHE_POLICIES", "DEVICE_MIXERS", "DISPATCHES",
           "DRAFT_ALLOCATORS", "ELASTIC_SCHEDULERS", "PLACEMENTS", "REGISTRY",
           "ROLLOUT_SCHEDULERS", "ROUTERS", "SANDBOX_POLICIES", "ZONE_POLICIES", "get_ann_search",
           "get_block_selector", "get_cache_policy", "get_device_mixer", "get_dispatch",
           "get_draft_allocator", "get_elastic_scheduler", "get_placement", "get_policy",
           "get_rollout_scheduler", "get_router", "get_sandbox_policy", "get_zone_policy"]

#: Batching policies by registry name.
REGISTRY: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "fcfs": fcfs,
        "fifo": fifo,
        "vllm": vllm,
        "sjf": sjf,
        "srpt": srpt,
        "mlfq": mlfq,
        "skip-join-mlfq": skip_join_mlfq,
    }
)

#: Routers by registry name.
ROUTERS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "round-robin": round_robin,
        "least-tokens": least_tokens,
        "least-kv": least_kv,
    }
)

#: Placement policies of disaggregated clusters (``placement(view: PlacementView, /, **params)
#: -> Placement``) by registry name.
PLACEMENTS: Mapping[str, Callable[..., Any]] = MappingProxyType({"mooncake": mooncake})

#: Rollout dispatch policies (``dispatch(view: DispatchView, /, **params) -> Dispatch``) by
#: registry name.
DISPATCHES: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "round-robin": group_round_robin,
        "random": random_dispatch,
        "lpt": lpt_dispatch,
        "skew-aware": skew_aware_dispatch,
    }
)


def _preset(name: str, doc: str, **fixed: Any) -> Callable[..., Any]:
    """:func:`~schedlab.policies.seer.seer` with some parameters fixed (a registry preset)."""

    def preset(view: Any, /, **params: Any) -> Any:
        return seer(view, **{**fixed, **params})

    preset.__name__ = preset.__qualname__ = name.replace("-", "_")
    preset.__doc__ = f"{doc} (``seer(view, {', '.join(f'{k}={v!r}' for k, v in fixed.items())}"
    preset.__doc__ += ", **params)``)."
    return preset


#: Divided-rollout schedulers (``scheduler(view: DividedView, /, **params) -> Chunks``) by
#: registry name: Seer, its ablations and baselines (Seer §4.5).
ROLLOUT_SCHEDULERS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "seer": seer,
        "divided-fifo": _preset("divided-fifo", "Divided rollout alone: chunks, batch order",
                                order="fifo"),
        "request-level": _preset("request-level",
                                 "Request-level scheduling: no chunks, batch order",
                                 chunk_tokens=None, order="fifo"),
        "oracle-lfs": _preset("oracle-lfs", "Longest predicted remaining first with chunks: the "
                              "Oracle baseline when the predictions are the true lengths",
                              order="oracle"),
        "group-round-robin": group_round_robin_all,
    }
)


def _loongserve_preset(name: str, doc: str, **fixed: Any) -> Callable[..., Any]:
    """:func:`~schedlab.policies.loongserve.loongserve` with some parameters fixed."""

    def preset(view: Any, /, **params: Any) -> Any:
        return loongserve(view, **{**fixed, **params})

    preset.__name__ = preset.__qualname__ = name.replace("-", "_")
    preset.__doc__ = (f"{doc} (``loongserve(view, "
                      f"{', '.join(f'{k}={v!r}' for k, v in fixed.items())}, **params)``).")
    return preset


#: Elastic-instance schedulers (``scheduler(view: ElasticView, /, **params) -> ElasticPlan``) by
#: registry name: LoongServe (the authors' code's rules), the paper's dispatch (Eq. 1-2), the
#: batching DP as shipped (its pruning), and sequence parallelism without elasticity (Fig. 12).
ELASTIC_SCHEDULERS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "loongserve": loongserve,
        "loongserve-paper": _loongserve_preset("loongserve-paper",
                                               "LoongServe with the paper's dispatch (Eq. 1-2)",
                                               form="paper"),
        "loongserve-shipped": _loongserve_preset(
            "loongserve-shipped", "LoongServe with the batching DP's pruning as shipped",
            pruned=True),
        "static-sp": static_sp,
    }
)


#: Draft-length allocators of speculative decoding (``allocator(batch_high, batch_low, beta, *,
#: gamma_star, gamma_max, **params) -> (gamma_high, gamma_low)``) by registry name: Seer's MBA
#: (Algorithm 1) and the uniform best draft length (Seer §3.4).
DRAFT_ALLOCATORS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {"mba": mba_allocation, "uniform": uniform_allocation}
)


def _untimed(search: Callable[..., Any], name: str, *, one_thread: bool) -> Callable[..., Any]:
    """``search`` (whose decisions do not depend on time) under the graph-search signature
    ``(graph, base, query, *, threads, costs, beam_width, k)``: ``costs`` is not needed to run
    it (:mod:`schedlab.sim.anns` prices its trace)."""

    def run(graph: Any, base: Any, query: Any, *, threads: int, costs: Any = None,
            beam_width: int = 64, k: int = 10, **params: Any) -> Any:
        if one_thread:
            if threads != 1:
                raise ValueError(f"The 'threads' parameter of the {name!r} search must be 1 (it "
                                 f"runs one query per thread). Got {threads!r}.")
            return search(graph, base, query, beam_width=beam_width, k=k, **params)
        return search(graph, base, query, threads=threads, beam_width=beam_width, k=k, **params)

    run.__name__ = name
    run.__doc__ = f"{search.__name__} under the graph-search signature (see ANN_SEARCHES)."
    return run


#: Graph-ANNS searches (AverSearch, issue 18), each ``search(graph, base, query, *, threads,
#: costs, beam_width, k, **params)``: the sequential search (one query per thread: ParlayANN's
#: batch mode), iQAN's fork-join and AverSearch's asynchronous search.
ANN_SEARCHES: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "sequential": _untimed(beam_search, "sequential", one_thread=True),
    "fork-join": _untimed(fork_join_search, "fork-join", one_thread=False),
    "aversearch": async_search,
})


#: Block selectors of block-sparse attention (``selector(view: BlockView, /, *, top_k,
#: **params) -> BlockSelection``) by registry name: MoBA's gate (arXiv 2502.13189 §2.2) and two
#: baselines, a sliding window of blocks and random past blocks.
BLOCK_SELECTORS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "moba": moba_gate,
    "local": local_blocks,
    "random": random_blocks,
})


#: Device-mix sizers of heterogeneous decoding (``sizer(problem: DeviceMixProblem, /,
#: **params) -> DeviceMix``) by registry name: Lamina's (arXiv 2405.01814 v2 §4.3, §6.1) and the
#: homogeneous baseline's (vLLM on tensor-parallel H100s).
DEVICE_MIXERS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "lamina": lamina_mix,
    "homogeneous": homogeneous_mix,
})


def _retrieval_only(view: Any, /, **params: Any) -> Any:
    """Exact attention on the retrieved clusters only, nothing estimated (``retroinfer_zones(view,
    estimation_budget=0, **params)``): the baseline of RetroInfer's estimation zone, Fig. 18."""
    return retroinfer_zones(view, **{"estimation_budget": 0.0, **params})


#: Zone policies of retrieval attention (``policy(view: RetrievalView, /, **params) -> Zones``)
#: by registry name: RetroInfer's tripartite zones (arXiv 2505.02922 §4.2) and retrieval alone.
ZONE_POLICIES: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "retroinfer": retroinfer_zones,
    "retrieval-only": _retrieval_only,
})

#: Replacement policies of RetroInfer's GPU cache (``policy(view: CacheView, /) -> victims``) by
#: registry name (Belady's optimum is :func:`schedlab.solvers.solve_cache_replacement`).
CACHE_POLICIES: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "lru": lru_victims,
    "fifo": fifo_victims,
})

#: Sandbox policies of serverless platforms (TrEnv: ``policy(view: SandboxView, /) ->
#: SandboxStart``) by registry name.
SANDBOX_POLICIES: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "faasd": faasd,
    "criu": criu,
    "reap": reap,
    "faasnap": faasnap,
    "trenv": trenv,
    "repurpose-criu": repurpose_criu,
})


def _resolve(
    kind: str, param: str, table: Mapping[str, Callable[..., Any]], name_or_callable: Any
) -> Any:
    if callable(name_or_callable):
        return name_or_callable
    if isinstance(name_or_callable, str):
        try:
            return table[name_or_callable]
        except KeyError:
            raise unknown_name_error(kind, name_or_callable, table) from None
    raise ValueError(
        f"The {param!r} parameter of get_{param} must be a registered name or a "
        f"callable. Got {type(name_or_callable).__name__} instead."
    )


def get_policy(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The batching policy registered under a name, or the callable itself.

    >>> sorted(REGISTRY)[:1]
    ['fcfs']
    """
    return _resolve("batching policy", "policy", REGISTRY, name_or_callable)


def get_router(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The router registered under a name, or the callable itself.

    >>> get_router("round-robin").__name__
    'round_robin'
    """
    return _resolve("router", "router", ROUTERS, name_or_callable)


def get_placement(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The placement policy registered under a name, or the callable itself.

    >>> get_placement("mooncake").__name__
    'mooncake'
    """
    return _resolve("placement policy", "placement", PLACEMENTS, name_or_callable)


def get_dispatch(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The rollout dispatch policy registered under a name, or the callable itself.

    >>> get_dispatch("round-robin").__name__
    'group_round_robin'
    """
    return _resolve("dispatch policy", "dispatch", DISPATCHES, name_or_callable)


def get_rollout_scheduler(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The divided-rollout scheduler registered under a name, or the callable itself.

    >>> get_rollout_scheduler("seer").__name__
    'seer'
    """
    return _resolve("rollout scheduler", "rollout_scheduler", ROLLOUT_SCHEDULERS,
                    name_or_callable)


def get_draft_allocator(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The speculative decoding draft-length allocator registered under a name, or the callable
    itself.

    >>> get_draft_allocator("mba").__name__
    'mba_allocation'
    """
    return _resolve("draft allocator", "draft_allocator", DRAFT_ALLOCATORS, name_or_callable)


def get_elastic_scheduler(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The elastic-instance scheduler registered under a name, or the callable itself.

    >>> get_elastic_scheduler("loongserve").__name__
    'loongserve'
    """
    return _resolve("elastic scheduler", "elastic_scheduler", ELASTIC_SCHEDULERS,
                    name_or_callable)


def get_ann_search(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The graph-ANNS search registered under a name, or the callable itself.

    >>> get_ann_search("aversearch").__name__
    'async_search'
    """
    return _resolve("graph search", "search", ANN_SEARCHES, name_or_callable)


def get_block_selector(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The block selector of block-sparse attention registered under a name, or the callable
    itself.

    >>> get_block_selector("moba").__name__
    'moba_gate'
    """
    return _resolve("block selector", "block_selector", BLOCK_SELECTORS, name_or_callable)


def get_device_mixer(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The device-mix sizer of heterogeneous decoding registered under a name, or the callable
    itself.

    >>> get_device_mixer("lamina").__name__
    'lamina_mix'
    """
    return _resolve("device-mix sizer", "device_mixer", DEVICE_MIXERS, name_or_callable)


def get_zone_policy(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The zone policy of retrieval attention registered under a name, or the callable itself.

    >>> get_zone_policy("retroinfer").__name__
    'retroinfer_zones'
    """
    return _resolve("zone policy", "zone_policy", ZONE_POLICIES, name_or_callable)


def get_cache_policy(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The GPU-cache replacement policy registered under a name, or the callable itself.

    >>> get_cache_policy("lru").__name__
    'lru_victims'
    """
    return _resolve("cache policy", "cache_policy", CACHE_POLICIES, name_or_callable)


def get_sandbox_policy(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The serverless sandbox policy registered under a name, or the callable itself.

    >>> get_sandbox_policy("trenv").__name__
    'trenv'
    """
    return _resolve("sandbox policy", "sandbox_policy", SANDBOX_POLICIES, name_or_callable)
