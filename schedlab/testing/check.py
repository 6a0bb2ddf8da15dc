"""``check_policy`` and ``check_router``: run every invariant on any callable, ours or a user's,
over many generated instance states, in the spirit of scikit-learn's estimator checks.

A failure raises ``AssertionError`` naming the broken rule, followed by the (shrunk) queue view
that breaks it as a readable table.

>>> import numpy as np
>>> from schedlab.policies.base import BatchDecision
>>> def run_everything(view):
...     return BatchDecision(run=np.arange(view.n))
>>> check_policy(run_everything, max_examples=20, shrink=False)
Traceback (most recent call last):
...
AssertionError: run_everything: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from schedlab.policies.registry import get_policy, get_router
from schedlab.testing.invariants import (
    check_arrival_invariance,
    check_decision,
    check_purity,
    check_router_choice,
    describe_view,
)
from schedlab.testing.strategies import queue_views, router_views

__all__ = ["check_policy", "check_router"]


def _settings(max_examples: int, shrink: bool) -> settings:
    phases = tuple(p for p in Phase if shrink or p is not Phase.shrink)
    return settings(
        max_examples=max_examples,
        phases=phases,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=False,
    )


def check_policy(
    policy: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a batching policy (a registered name or any callable) on generated queue views.

    For each view: the decision is well formed and feasible
    (:func:`~schedlab.testing.invariants.check_decision`: valid unique positions, batch size,
    token budget, KV capacity after the moves, host space, state columns, future wake-up,
    progress), and the policy is pure (:func:`~schedlab.testing.invariants.check_purity`: inputs
    untouched, equal outputs on equal inputs), and a decision declaring ``wake_on_arrival=False``
    is unchanged by a newcomer (:func:`~schedlab.testing.invariants.check_arrival_invariance`).
    ``params`` are passed to every call; ``views`` replaces the default
    :func:`~schedlab.testing.strategies.queue_views` strategy. Examples are
    derandomized, so a run is reproducible. A failure is shrunk to a small counterexample;
    ``shrink=False`` reports the first failing view as found, which is much faster.

    >>> check_policy("skip-join-mlfq", max_examples=10, base_quantum_s=0.02)
    """
    fn = get_policy(policy)
    name = getattr(fn, "__name__", repr(fn))

    @_settings(max_examples, shrink)
    @given(views if views is not None else queue_views())
    def run(view: Any) -> None:
        try:
            decision = check_purity(fn, view, name=name, **params)
            check_decision(view, decision, name=name)
            check_arrival_invariance(fn, view, decision, name=name, **params)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{describe_view(view)}") from None

    run()


def check_router(
    router: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a router (a registered name or any callable) on generated router views: one valid
    instance index per arriving request, inputs untouched, equal outputs on equal inputs.
    ``shrink`` as in :func:`check_policy`.

    >>> check_router("least-kv", max_examples=10)
    """
    fn = get_router(router)
    name = getattr(fn, "__name__", repr(fn))

    @_settings(max_examples, shrink)
    @given(views if views is not None else router_views())
    def run(view: Any) -> None:
        try:
            check_router_choice(view, check_purity(fn, view, name=name, **params), name=name)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{view!r}") from None

    run()
