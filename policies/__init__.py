"""Scheduling policies as pure functions, and the registries that name them.

A batching policy is ``policy(view: QueueView, /, **params) -> Plan | BatchDecision``; a router
is ``router(view: RouterView, /, **params) -> instance per request``. The contract (views,
answers, accounting) is :mod:`schedlab.contract`; :mod:`.registry` resolves names.

>>> from schedlab.policies import REGISTRY, get_policy
>>> get_policy("fcfs") is REGISTRY["fcfs"]
True
"""

from schedlab.contract import BatchDecision, Plan, QueueView, RouterView
from schedlab.policies.registry import REGISTRY, ROUTERS, get_policy, get_router

__all__ = [
    "REGISTRY",
    "ROUTERS",
    "BatchDecision",
    "Plan",
    "QueueView",
    "RouterView",
    "get_policy",
    "get_router",
]
