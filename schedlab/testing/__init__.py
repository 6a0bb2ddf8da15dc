"""Testing API for policies and simulations, for users as well as for schedlab's own tests.

Hypothesis strategies (:func:`workloads`, :func:`queue_views`, :func:`router_views`), the named
policy checks (:data:`POLICY_CHECKS`, one pytest test each with :func:`policy_checks`) that
:func:`check_policy` runs all at once on any callable, :func:`check_router`,
:func:`check_placement` (placement policies of disaggregated clusters, :func:`placement_views`),
:func:`check_dispatch` (rollout dispatch policies, :func:`dispatch_views`),
:func:`check_divided` (divided-rollout schedulers, :func:`divided_views`),
:func:`check_elastic` (elastic-instance schedulers, :func:`elastic_views`),
:func:`check_ann_search` (graph-ANNS searches, :func:`search_problems`),
:func:`check_block_selector` (block selectors of block-sparse attention, :func:`block_views`),
:func:`check_device_mixer` (device-mix sizers of heterogeneous decoding,
:func:`device_mix_problems`), :func:`check_zone_policy` and :func:`check_cache_policy`
(RetroInfer's zones and GPU cache, :func:`retrieval_views`, :func:`cache_views`),
:func:`check_sandbox_policy` (TrEnv's serverless sandboxes, :func:`sandbox_views`), and
:func:`check_simulation` (conservation and time order of a simulation result). The rules of a
single answer are the contract's own (:func:`schedlab.contract.validate_decision`).

>>> from schedlab.testing import check_policy
>>> check_policy("fcfs", max_examples=10)
"""

from schedlab.testing.anns import check_ann_search, search_problems
from schedlab.testing.checks import (
    POLICY_CHECKS,
    check_answer_type,
    check_block_selector,
    check_cache_policy,
    check_deterministic,
    check_device_mixer,
    check_dispatch,
    check_divided,
    check_elastic,
    check_placement,
    check_policy,
    check_progress,
    check_pure,
    check_router,
    check_sandbox_policy,
    check_static_plan,
    check_valid_answer,
    check_zone_policy,
    copy_view,
    describe_view,
    policy_checks,
    with_newcomer,
)
from schedlab.testing.simulation import check_simulation
from schedlab.testing.strategies import (
    block_views,
    cache_views,
    device_mix_problems,
    dispatch_views,
    divided_views,
    elastic_views,
    placement_views,
    queue_views,
    retrieval_views,
    router_views,
    sandbox_views,
    workloads,
)

__all__ = [
    "POLICY_CHECKS",
    "check_ann_search",
    "search_problems",
    "block_views",
    "check_answer_type",
    "check_block_selector",
    "check_cache_policy",
    "check_device_mixer",
    "device_mix_problems",
    "check_deterministic",
    "check_dispatch",
    "check_divided",
    "check_elastic",
    "check_placement",
    "check_policy",
    "check_progress",
    "check_pure",
    "check_router",
    "check_sandbox_policy",
    "check_simulation",
    "check_static_plan",
    "check_valid_answer",
    "check_zone_policy",
    "cache_views",
    "retrieval_views",
    "copy_view",
    "describe_view",
    "dispatch_views",
    "divided_views",
    "elastic_views",
    "placement_views",
    "policy_checks",
    "queue_views",
    "router_views",
    "sandbox_views",
    "with_newcomer",
    "workloads",
]
