"""Scheduling policies as pure functions, and the registries that name them.

A batching policy is ``policy(view: QueueView, /, **params) -> BatchDecision``; a router is
``router(view: RouterView, /, **params) -> instance per request``. See :mod:`.base` for the
contract and :mod:`.registry` for name resolution.

>>> from schedlab.policies import REGISTRY, get_policy
>>> get_policy("fcfs") is REGISTRY["fcfs"]
True
"""

from schedlab.policies.base import BatchDecision, QueueView, RouterView
from schedlab.policies.registry import REGISTRY, ROUTERS, get_policy, get_router

__all__ = [
    "REGISTRY",
    "ROUTERS",
    "BatchDecision",
    "QueueView",
    "RouterView",
    "get_policy",
    "get_router",
]
