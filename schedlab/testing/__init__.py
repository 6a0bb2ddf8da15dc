"""Testing API for policies and simulations, for users as well as for schedlab's own tests.

Hypothesis strategies (:func:`workloads`, :func:`queue_views`, :func:`router_views`), invariant
checks on single decisions (:func:`check_decision`, :func:`check_purity`), the all-in-one
:func:`check_policy` / :func:`check_router` that run them on any callable, and
:func:`check_simulation` (conservation and time monotonicity of a simulation result).

>>> from schedlab.testing import check_policy
>>> check_policy("fcfs", max_examples=10)
"""

from schedlab.testing.check import check_policy, check_router
from schedlab.testing.invariants import (
    check_decision,
    check_purity,
    check_router_choice,
    copy_view,
    decision_differences,
    describe_view,
)
from schedlab.testing.simulation import check_simulation
from schedlab.testing.strategies import queue_views, router_views, workloads

__all__ = [
    "check_decision",
    "check_policy",
    "check_purity",
    "check_router",
    "check_router_choice",
    "check_simulation",
    "copy_view",
    "decision_differences",
    "describe_view",
    "queue_views",
    "router_views",
    "workloads",
]
