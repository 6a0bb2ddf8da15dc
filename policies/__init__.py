"""Scheduling policies as pure functions, and the registries that name them.

A batching policy is ``policy(view: QueueView, /, **params) -> Plan | BatchDecision``; a router
is ``router(view: RouterView, /, **params) -> instance per request``; a placement policy of a
disaggregated cluster is ``placement(view: PlacementView, /, **params) -> Placement``; a rollout
dispatch policy is ``dispatch(view: DispatchView, /, **params) -> Dispatch``; a divided-rollout
scheduler is ``scheduler(view: DividedView, /, **params) -> Chunks``; an elastic-instance
scheduler (LoongServe) is ``scheduler(view: ElasticView, /, **params) -> ElasticPlan``; a
graph-ANNS search (AverSearch) is ``search(graph, base, query, *, threads, costs, beam_width,
k) -> trace`` (:mod:`.anns`, :mod:`.aversearch`); a block selector of block-sparse attention
(MoBA) is ``selector(view: BlockView, /, *, top_k) -> BlockSelection`` (:mod:`.moba`); a
device-mix sizer of heterogeneous decoding (Lamina) is ``sizer(problem: DeviceMixProblem, /)
-> DeviceMix`` (:mod:`.lamina`); a zone policy of retrieval attention (RetroInfer) is
``policy(view: RetrievalView, /) -> Zones`` and a GPU-cache replacement policy
``policy(view: CacheView, /) -> victims`` (:mod:`.retroinfer`); a sandbox policy of a
serverless platform (TrEnv) is ``policy(view: SandboxView, /) -> SandboxStart`` (:mod:`.trenv`). The
contracts (views, answers, accounting) are :mod:`schedlab.contract`,
:mod:`schedlab.contract.placement`, :mod:`schedlab.contract.dispatch`,
:mod:`schedlab.contract.divided`, :mod:`schedlab.contract.elastic`,
:mod:`schedlab.contract.block_attention`, :mod:`schedlab.contract.retrieval` and
:mod:`schedlab.contract.serverless`;
:mod:`.registry` resolves names.

>>> from schedlab.policies import REGISTRY, get_policy
>>> get_policy("fcfs") is REGISTRY["fcfs"]
True
"""

from schedlab.contract import BatchDecision, Plan, QueueView, RouterView
from schedlab.policies.registry import (
    ANN_SEARCHES,
    BLOCK_SELECTORS,
    CACHE_POLICIES,
    DEVICE_MIXERS,
    DISPATCHES,
    DRAFT_ALLOCATORS,
    ELASTIC_SCHEDULERS,
    PLACEMENTS,
    REGISTRY,
    ROLLOUT_SCHEDULERS,
    ROUTERS,
    SANDBOX_POLICIES,
    ZONE_POLICIES,
    get_ann_search,
    get_block_selector,
    get_cache_policy,
    get_device_mixer,
    get_dispatch,
    get_draft_allocator,
    get_elastic_scheduler,
    get_placement,
    get_policy,
    get_rollout_scheduler,
    get_router,
    get_sandbox_policy,
    get_zone_policy,
)

__all__ = [
    "ANN_SEARCHES",
    "BLOCK_SELECTORS",
    "CACHE_POLICIES",
    "DEVICE_MIXERS",
    "DISPATCHES",
    "DRAFT_ALLOCATORS",
    "ELASTIC_SCHEDULERS",
    "PLACEMENTS",
    "REGISTRY",
    "ROLLOUT_SCHEDULERS",
    "ROUTERS",
    "SANDBOX_POLICIES",
    "ZONE_POLICIES",
    "BatchDecision",
    "Plan",
    "QueueView",
    "RouterView",
    "get_ann_search",
    "get_block_selector",
    "get_cache_policy",
    "get_device_mixer",
    "get_dispatch",
    "get_draft_allocator",
    "get_elastic_scheduler",
    "get_placement",
    "get_policy",
    "get_rollout_scheduler",
    "get_router",
    "get_sandbox_policy",
    "get_zone_policy",
]
