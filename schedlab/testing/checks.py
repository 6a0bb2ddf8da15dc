"""``check_policy`` as named checks, in the manner of scikit-learn's ``parametrize_with_checks``:
each check is one property of a batching policy, run on many generated queue views, and a
failure names the check, the broken rule and the (shrunk) view that breaks it.

The checks (:data:`POLICY_CHECKS`), each ``check(policy, view, **params)`` on one view:

- ``check_answer_type``: the policy returns a :class:`~schedlab.contract.Plan` or a
  :class:`~schedlab.contract.BatchDecision`;
- ``check_valid_answer``: the answer keeps the contract's rules, checked by the very functions
  the simulator calls (:func:`~schedlab.contract.validate_plan`,
  :func:`~schedlab.contract.validate_decision`), and a plan's batch, formed by the engine's rule
  (:func:`~schedlab.contract.form_batch`), keeps them too;
- ``check_progress``: with requests queued, the answer runs, rejects or swaps something, or sets
  a timer (dropping KV alone takes no time, so a simulator would have nothing to wait for);
- ``check_pure``: the view is unchanged by the call (no mutation, even through writeable aliases);
- ``check_deterministic``: equal views give equal answers (no hidden state);
- ``check_static_plan``: a plan that declares ``static=True`` is the policy's answer again after
  the engine carries out its batch for an iteration, after a batched request finishes, and
  with a newcomer (which must rank behind every other request): the engine keeps such a plan
  instead of asking, so a false claim would silently change the schedule.

>>> import numpy as np
>>> from schedlab.contract import Plan
>>> def longest_first(view, /):   # says static, but the order changes as prompts are prefilled
...     return Plan(order=np.argsort(view.prefilled_tokens - view.input_tokens, kind="stable"),
...                 evictable=True, static=True)
>>> check_policy(longest_first, max_examples=30, shrink=False)
Traceback (most recent call last):
...
AssertionError: check_static_plan failed for longest_first: ...
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure

from schedlab.contract import (
    BatchDecision,
    InvalidDecision,
    Plan,
    QueueView,
    RouterView,
    form_batch,
    validate_decision,
    validate_plan,
)
from schedlab.contract.accounting import remove, run_iteration
from schedlab.contract.block_attention import BlockSelection, InvalidSelection, validate_selection
from schedlab.contract.dispatch import Dispatch, InvalidDispatch, validate_dispatch
from schedlab.contract.divided import Chunks, InvalidChunks, validate_chunks
from schedlab.contract.elastic import ElasticPlan, InvalidElasticPlan, validate_elastic_plan
from schedlab.contract.placement import InvalidPlacement, Placement, validate_placement
from schedlab.contract.retrieval import (
    InvalidEviction,
    InvalidZones,
    Zones,
    validate_eviction,
    validate_zones,
)
from schedlab.contract.serverless import InvalidStart, SandboxStart, validate_start
from schedlab.errors import check_keyword_params, check_positive_int
from schedlab.policies.registry import (
    get_block_selector,
    get_cache_policy,
    get_device_mixer,
    get_dispatch,
    get_elastic_scheduler,
    get_placement,
    get_policy,
    get_rollout_scheduler,
    get_router,
    get_sandbox_policy,
    get_zone_policy,
)
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
)

__all__ = [
    "POLICY_CHECKS",
    "check_answer_type",
    "check_block_selector",
    "check_cache_policy",
    "check_sandbox_policy",
    "check_device_mixer",
    "check_deterministic",
    "check_policy",
    "check_progress",
    "check_pure",
    "check_router",
    "check_static_plan",
    "check_valid_answer",
    "check_zone_policy",
    "copy_view",
    "describe_view",
    "policy_checks",
    "with_newcomer",
]


def _fail(check: str, rule: str, detail: str) -> None:
    raise AssertionError(f"{check}: {rule}: {detail}")


def _decision(view: QueueView, answer: Plan | BatchDecision) -> BatchDecision:
    return form_batch(view, answer) if isinstance(answer, Plan) else answer


# ---------------------------------------------------------------------------------- the checks
def check_answer_type(policy: Callable[..., Any], view: QueueView, **params: Any) -> None:
    """The policy returns a Plan or a BatchDecision.

    >>> check_answer_type(lambda v: None, QueueView.from_columns(now_s=0.0, input_tokens=[1],
    ...     kv_capacity_tokens=9))
    Traceback (most recent call last):
    ...
    AssertionError: check_answer_type: malformed answer: expected a Plan or a BatchDecision, ...
    """
    answer = policy(view, **params)
    if not isinstance(answer, (Plan, BatchDecision)):
        _fail("check_answer_type", "malformed answer",
              f"expected a Plan or a BatchDecision, got {type(answer).__name__}")


def check_valid_answer(policy: Callable[..., Any], view: QueueView, **params: Any) -> None:
    """The answer keeps the contract's rules (the simulator's own validators), and so does the
    batch the engine forms from a plan.

    >>> import numpy as np
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[60, 60], kv_capacity_tokens=100)
    >>> check_valid_answer(lambda v: BatchDecision(run=np.arange(v.n)), v)
    Traceback (most recent call last):
    ...
    AssertionError: check_valid_answer: KV capacity exceeded: ...
    """
    answer = policy(view, **params)
    check_answer_type(lambda _v: answer, view)
    try:
        if isinstance(answer, Plan):
            validate_plan(view, answer)
        validate_decision(view, _decision(view, answer))
    except InvalidDecision as exc:
        _fail("check_valid_answer", exc.rule, str(exc)[len(exc.rule) + 2:])


def check_progress(policy: Callable[..., Any], view: QueueView, **params: Any) -> None:
    """With requests queued, the decision runs, rejects or swaps something, or sets a timer.

    >>> import numpy as np
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[5], kv_capacity_tokens=99)
    >>> check_progress(lambda v: BatchDecision(run=np.zeros(0, int)), v)
    Traceback (most recent call last):
    ...
    AssertionError: check_progress: no progress: 1 requests queued but ...
    """
    d = _decision(view, policy(view, **params))
    acts = (d.run, d.reject, d.swap_out, d.swap_in)
    if view.n and not any(a.shape[0] for a in acts) and math.isinf(d.reconsider_at_s):
        _fail("check_progress", "no progress",
              f"{view.n} requests queued but the decision runs, swaps and rejects nothing and "
              f"asks for no wake-up (recompute={d.recompute.tolist()}: dropping KV alone takes "
              "no time, so nothing would happen until the next arrival)")


def check_pure(policy: Callable[..., Any], view: QueueView, **params: Any) -> None:
    """The call leaves the view unchanged.

    >>> def mutates(view):
    ...     view.priority.flags.writeable = True
    ...     view.priority[:] = 7
    >>> check_pure(mutates, QueueView.from_columns(now_s=0.0, input_tokens=[1],
    ...     kv_capacity_tokens=9))
    Traceback (most recent call last):
    ...
    AssertionError: check_pure: input mutated: the policy changed the view's ['priority']
    """
    before = copy_view(view)
    policy(view, **params)
    changed = [f.name for f in dataclasses.fields(view)
               if not _same(getattr(view, f.name), getattr(before, f.name))]
    if changed:
        _fail("check_pure", "input mutated", f"the policy changed the view's {changed}")


def check_deterministic(policy: Callable[..., Any], view: QueueView, **params: Any) -> None:
    """Equal views give equal answers.

    >>> import itertools
    >>> calls = itertools.count()
    >>> def stateful(view):
    ...     return BatchDecision(run=[], reconsider_at_s=view.now_s + 1 + next(calls))
    >>> check_deterministic(stateful, QueueView.from_columns(now_s=0.0, input_tokens=[1],
    ...     kv_capacity_tokens=9))
    Traceback (most recent call last):
    ...
    AssertionError: check_deterministic: not deterministic: equal inputs gave different ...
    """
    first = policy(copy_view(view), **params)
    second = policy(copy_view(view), **params)
    diff = _differences(first, second)
    if diff:
        _fail("check_deterministic", "not deterministic", f"equal inputs gave different {diff}")


_KEPT_FIELDS = ("reserve_tokens", "watermark_tokens", "prefetch", "preempt", "reconsider_at_s")


def _per_request(value: Any, n: int) -> np.ndarray | None:
    """A plan's per-request field as an array of length ``n`` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return np.full(n, bool(value))
    return np.asarray(value)


def _same_plan(kept: Plan, keep: np.ndarray, fresh: Any, n_new: int, after: str) -> None:
    """``fresh`` (the answer on the evolved view) must be ``kept`` restricted to the requests
    still queued (``keep``: a mask over the old positions) plus ``n_new`` newcomers (the last
    positions) ranked behind all of them."""
    check = "check_static_plan"
    if not isinstance(fresh, Plan):
        _fail(check, f"plan changed {after}", f"a static plan became a {type(fresh).__name__}")
    m = int(keep.sum())
    renumber = np.cumsum(keep) - 1  # old position -> position once the others left
    order = renumber[kept.order[keep[kept.order]]]
    old_part = fresh.order[fresh.order < m]
    if not np.array_equal(old_part, order):
        _fail(check, f"order changed {after}",
              f"the kept plan orders {order.tolist()[:12]}, asked again the policy orders "
              f"{old_part.tolist()[:12]}")
    if n_new and np.any(fresh.order[: old_part.shape[0]] >= m):
        _fail(check, f"newcomer ranked ahead {after}",
              f"the policy orders {fresh.order.tolist()[:12]}; newcomers (positions >= {m}) "
              "must come after every queued request")
    for name in _KEPT_FIELDS:
        if getattr(kept, name) != getattr(fresh, name):
            _fail(check, f"{name} changed {after}",
                  f"{getattr(kept, name)!r} became {getattr(fresh, name)!r}")
    if n_new and kept.covers_newcomers:  # the engine gives newcomers the plan's uniform rules
        same = (fresh.covers_newcomers and fresh.evictable == kept.evictable
                and fresh.footprint_tokens == kept.footprint_tokens)
        if not same:
            _fail(check, f"newcomer rules changed {after}",
                  f"the kept plan applies evictable={kept.evictable!r}, "
                  f"footprint_tokens={kept.footprint_tokens!r} to every request; asked again the "
                  "policy gives newcomers other values")
    n_old = keep.shape[0]
    for name in ("evictable", "defer", "footprint_tokens"):
        a = getattr(kept, name)
        b = getattr(fresh, name)
        if isinstance(a, str) or isinstance(b, str):
            if a != b:
                _fail(check, f"{name} changed {after}", f"{a!r} became {b!r}")
            continue
        a = _per_request(a, n_old)
        b = _per_request(b, m + n_new)
        a = None if a is None else a[keep]
        b = None if b is None else b[:m]
        if name == "defer":  # None and all False defer nothing alike
            a = np.zeros(m, bool) if a is None else a
            b = np.zeros(m, bool) if b is None else b
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
            _fail(check, f"{name} changed {after}",
                  f"{None if a is None else a.tolist()[:12]} became "
                  f"{None if b is None else b.tolist()[:12]}")


def check_static_plan(policy: Callable[..., Any], view: QueueView, **params: Any) -> None:
    """A plan declaring ``static=True`` stays the policy's answer while the engine carries it
    out: after one iteration of its batch, after a batched request finishes, and with a
    newcomer, which must rank behind everyone. The engine asks again after a step that moves KV
    or rejects; while the view's step does, the check starts from the view after it (up to four
    steps)."""
    for _ in range(4):
        plan = policy(view, **params)
        if not (isinstance(plan, Plan) and plan.static):
            return
        d = form_batch(view, plan)
        if not d.moves:
            break
        view = run_iteration(view, d, duration_s=1e-3)
    else:
        return
    stepped = run_iteration(view, d, duration_s=1e-3)
    everyone = np.ones(view.n, dtype=bool)
    _same_plan(plan, everyone, policy(stepped, **params), 0, "after an iteration")
    if d.run.shape[0]:
        done = everyone.copy()
        done[d.run[0]] = False
        _same_plan(plan, done, policy(remove(stepped, d.run[:1]), **params), 0,
                   "after a completion")
    bigger = with_newcomer(stepped)
    if bigger is not None:
        _same_plan(plan, everyone, policy(bigger, **params), 1, "after an arrival")


#: Every named check of a batching policy, in the order :func:`check_policy` runs them.
POLICY_CHECKS: tuple[Callable[..., None], ...] = (
    check_answer_type,
    check_valid_answer,
    check_progress,
    check_pure,
    check_deterministic,
    check_static_plan,
)


# ---------------------------------------------------------------------------------- running
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


def _run_checks(
    fn: Callable[..., Any], checks: tuple[Callable[..., None], ...], max_examples: int,
    views: st.SearchStrategy | None, shrink: bool, params: dict[str, Any],
) -> None:
    name = getattr(fn, "__name__", repr(fn))
    check_keyword_params(fn, params, f"policy {name!r}")  # a typo is not a failing check

    def body(view: QueueView) -> None:
        for check in checks:
            try:
                check(fn, copy_view(view), **params)  # a check's calls cannot spoil the next
            except AssertionError as exc:
                head, _, rest = str(exc).partition(": ")
                raise AssertionError(
                    f"{head} failed for {name}: {rest}\n{describe_view(view)}") from None

    run = _settings(max_examples, shrink)(given(views if views is not None
                                                 else queue_views())(body))
    try:
        run()
        if views is None:  # edge cases no policy should miss, whatever hypothesis drew
            for edge in _edge_views():
                body(edge)
    except AssertionError as exc:
        # The message describes the failing view already; hypothesis's attached notes (its
        # "Falsifying example") repeat it, and Python 3.11.0-3.11.3's doctest reads the last
        # note instead of the message, so a fresh error without notes is raised.
        raise AssertionError(str(exc)) from None


def _edge_views() -> tuple[QueueView, ...]:
    """Views that :func:`check_policy` tries after the generated ones: several small new
    requests that all fit the KV and the token budget, with room in the batch for one only (the
    batch-size rule)."""
    return (QueueView.from_columns(now_s=0.0, input_tokens=[1, 2, 3], kv_capacity_tokens=10_000,
                                   max_batch_size=1),)


def policy_checks(
    policy: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> list[Callable[[], None]]:
    """One callable per named check (:data:`POLICY_CHECKS`), each running its check on
    generated views; its ``__name__`` is the check's. For pytest, one test per check:

    .. code-block:: python

        @pytest.mark.parametrize("check", policy_checks(my_policy), ids=lambda c: c.__name__)
        def test_my_policy(check):
            check()

    >>> [c.__name__ for c in policy_checks("fcfs")][:3]
    ['check_answer_type', 'check_valid_answer', 'check_progress']
    """
    fn = get_policy(policy)

    def one(check: Callable[..., None]) -> Callable[[], None]:
        def run() -> None:
            _run_checks(fn, (check,), max_examples, views, shrink, params)

        run.__name__ = check.__name__
        run.__doc__ = check.__doc__
        return run

    return [one(c) for c in POLICY_CHECKS]


def check_policy(
    policy: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Run every named check (:data:`POLICY_CHECKS`) of a batching policy (a registered name or
    any callable) on generated queue views; the first failure raises ``AssertionError`` naming
    the check (``check_valid_answer failed for my_policy: KV capacity exceeded: ...``) followed
    by the view that breaks it as a table.

    ``params`` are passed to every call; ``views`` replaces the default
    :func:`~schedlab.testing.strategies.queue_views` strategy. Examples are derandomized, so a
    run is reproducible. A failure is shrunk to a small counterexample; ``shrink=False``
    reports the first failing view as found, which is much faster.

    >>> check_policy("skip-join-mlfq", max_examples=10, base_quantum_s=0.02)
    """
    _run_checks(get_policy(policy), POLICY_CHECKS, max_examples, views, shrink, params)


def check_router(
    router: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a router (a registered name or any callable) on generated router views: one
    instance index in ``[0, k)`` per arriving request, inputs untouched, equal outputs on equal
    inputs. ``shrink`` as in :func:`check_policy`.

    >>> check_router("least-kv", max_examples=10)
    """
    fn = get_router(router)
    check_keyword_params(fn, params, f"router {getattr(fn, '__name__', repr(fn))!r}")

    @_settings(max_examples, shrink)
    @given(views if views is not None else router_views())
    def run(view: RouterView) -> None:
        try:
            before = copy_view(view)
            choice = np.asarray(fn(view, **params))
            if not all(_same(getattr(view, f.name), getattr(before, f.name))
                       for f in dataclasses.fields(view)):
                _fail("check_router", "input mutated", "the router changed its view")
            if not _same(choice, np.asarray(fn(copy_view(view), **params))):
                _fail("check_router", "not deterministic", "equal inputs gave different choices")
            m = view.request_id.shape[0]
            if choice.shape != (m,) or (m and choice.dtype.kind not in "iu"):
                _fail("check_router", "malformed choice",
                      f"expected {m} integer instance indices, got {choice!r}")
            bad = choice[(choice < 0) | (choice >= view.n_instances)]
            if bad.shape[0]:
                _fail("check_router", "instance out of range",
                      f"{bad.tolist()} not in [0, {view.n_instances})")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{view!r}") from None

    run()


def check_placement(
    placement: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a placement policy of a disaggregated cluster (a registered name or any callable)
    on generated :func:`~schedlab.testing.strategies.placement_views`: it returns a
    :class:`~schedlab.contract.placement.Placement` that keeps the contract's rules
    (:func:`~schedlab.contract.placement.validate_placement`), leaves its view untouched, and
    gives equal answers on equal views. ``shrink`` as in :func:`check_policy`.

    >>> check_placement("mooncake", max_examples=10, admission="early")
    """
    _check_answers("check_placement", get_placement(placement), params, Placement,
                   validate_placement, InvalidPlacement,
                   views if views is not None else placement_views(), max_examples, shrink)


def check_dispatch(
    dispatch: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a rollout dispatch policy (a registered name or any callable) on generated
    :func:`~schedlab.testing.strategies.dispatch_views`: it returns a
    :class:`~schedlab.contract.dispatch.Dispatch` that keeps the contract's rules
    (:func:`~schedlab.contract.dispatch.validate_dispatch`: every sample on one instance in
    range, the order a permutation), leaves its view untouched, and gives equal answers on equal
    views. ``shrink`` as in :func:`check_policy`.

    >>> check_dispatch("skew-aware", max_examples=10, combine="max")
    """
    _check_answers("check_dispatch", get_dispatch(dispatch), params, Dispatch, validate_dispatch,
                   InvalidDispatch, views if views is not None else dispatch_views(),
                   max_examples, shrink)


def check_divided(
    scheduler: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a divided-rollout scheduler (a registered name or any callable) on generated
    :func:`~schedlab.testing.strategies.divided_views`: it returns
    :class:`~schedlab.contract.divided.Chunks` that keep the contract's rules
    (:func:`~schedlab.contract.divided.validate_chunks`: waiting requests once each, instances in
    range, budgets within the limits), leaves its view untouched, and gives equal answers on
    equal views. ``shrink`` as in :func:`check_policy`.

    >>> check_divided("seer", max_examples=10, chunk_tokens=512)
    """
    _check_answers("check_divided", get_rollout_scheduler(scheduler), params, Chunks,
                   validate_chunks, InvalidChunks,
                   views if views is not None else divided_views(), max_examples, shrink)


def check_elastic(
    scheduler: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check an elastic-instance scheduler (a registered name or any callable) on generated
    :func:`~schedlab.testing.strategies.elastic_views`: it returns an
    :class:`~schedlab.contract.elastic.ElasticPlan` that keeps the contract's rules
    (:func:`~schedlab.contract.elastic.validate_elastic_plan`: requests and instances once
    each, only idle or paused instances lent, every batch within its instances' free slots,
    migrations within capacity), leaves its view untouched, and gives equal answers on equal
    views. ``shrink`` as in :func:`check_policy`.

    >>> check_elastic("loongserve", max_examples=10)
    """
    _check_answers("check_elastic", get_elastic_scheduler(scheduler), params, ElasticPlan,
                   validate_elastic_plan, InvalidElasticPlan,
                   views if views is not None else elastic_views(), max_examples, shrink)


def check_block_selector(
    selector: str | Callable[..., Any],
    *,
    top_k: int = 3,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a block selector of block-sparse attention (a registered name of
    :data:`~schedlab.policies.BLOCK_SELECTORS` or any callable) on generated
    :func:`~schedlab.testing.strategies.block_views` with a budget of ``top_k`` blocks: it returns
    a :class:`~schedlab.contract.block_attention.BlockSelection` made under that budget that
    keeps the contract's rules (:func:`~schedlab.contract.block_attention.validate_selection`: no
    future block, the current block always, at most ``top_k``), leaves its view untouched, and
    gives equal answers on equal views. ``shrink`` as in :func:`check_policy`.

    >>> check_block_selector("moba", max_examples=10, top_k=2)
    """
    k = check_positive_int(top_k, "top_k", "check_block_selector")

    def validate(view: Any, answer: BlockSelection) -> None:
        if answer.top_k != k:
            raise InvalidSelection("wrong budget", f"asked for top_k={k}, answered a selection "
                                                   f"made under top_k={answer.top_k}")
        validate_selection(view, answer)

    _check_answers("check_block_selector", get_block_selector(selector), {"top_k": k, **params},
                   BlockSelection, validate, InvalidSelection,
                   views if views is not None else block_views(), max_examples, shrink)


class _InvalidMix(ValueError):
    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def _validate_mix(problem: Any, mix: Any) -> None:
    from schedlab.costmodel.attention_offload import evaluate_mix

    if mix.batch == 0:  # nothing to run: only the device counts are checked
        if mix.n_compute > problem.max_compute or mix.n_memory > problem.max_memory:
            raise _InvalidMix("out of limits", f"{mix} is outside the problem's device limits")
    else:  # the one rule of a mix: device limits, the model runs, KV fits, SLO
        ev = evaluate_mix(problem, mix)
        if not ev.feasible:
            raise _InvalidMix("infeasible mix", f"{mix}: {ev.reason}")


def check_device_mixer(
    sizer: str | Callable[..., Any],
    *,
    max_examples: int = 30,
    problems: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a device-mix sizer of heterogeneous decoding (a registered name of
    :data:`~schedlab.policies.DEVICE_MIXERS` or any callable) on generated
    :func:`~schedlab.testing.strategies.device_mix_problems`: it answers a
    :class:`~schedlab.costmodel.attention_offload.DeviceMix` within the problem's limits that
    :func:`~schedlab.costmodel.attention_offload.evaluate_mix` finds feasible (or ``batch=0``:
    nothing to run), leaves its problem untouched, and answers equal problems equally.

    >>> check_device_mixer("lamina", max_examples=5)
    """
    from schedlab.costmodel.attention_offload import DeviceMix

    _check_answers("check_device_mixer", get_device_mixer(sizer), params, DeviceMix,
                   _validate_mix, _InvalidMix,
                   problems if problems is not None else device_mix_problems(), max_examples,
                   shrink)


def check_zone_policy(
    policy: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a zone policy of retrieval attention (a registered name of
    :data:`~schedlab.policies.ZONE_POLICIES` or any callable) on generated
    :func:`~schedlab.testing.strategies.retrieval_views`: it answers
    :class:`~schedlab.contract.retrieval.Zones` that keep the contract's rules
    (:func:`~schedlab.contract.retrieval.validate_zones`), leaves its view untouched, and
    answers equal views equally.

    >>> check_zone_policy("retroinfer", max_examples=10)
    """
    _check_answers("check_zone_policy", get_zone_policy(policy), params, Zones, validate_zones,
                   InvalidZones, views if views is not None else retrieval_views(),
                   max_examples, shrink)


def check_cache_policy(
    policy: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a replacement policy of RetroInfer's GPU cache (a registered name of
    :data:`~schedlab.policies.CACHE_POLICIES` or any callable) on generated
    :func:`~schedlab.testing.strategies.cache_views`: it answers an array of victims that keeps
    the contract's rules (:func:`~schedlab.contract.retrieval.validate_eviction`: resident
    clusters, none twice, exactly as many as the admission needs), leaves its view untouched,
    and answers equal views equally.

    >>> check_cache_policy("lru", max_examples=10)
    """
    _check_answers("check_cache_policy", get_cache_policy(policy), params, np.ndarray,
                   validate_eviction, InvalidEviction,
                   views if views is not None else cache_views(), max_examples, shrink)


def check_sandbox_policy(
    policy: str | Callable[..., Any],
    *,
    max_examples: int = 50,
    views: st.SearchStrategy | None = None,
    shrink: bool = True,
    **params: Any,
) -> None:
    """Check a sandbox policy of a serverless platform (a registered name of
    :data:`~schedlab.policies.SANDBOX_POLICIES` or any callable) on generated
    :func:`~schedlab.testing.strategies.sandbox_views`: it answers a
    :class:`~schedlab.contract.serverless.SandboxStart` that keeps the contract's rules
    (:func:`~schedlab.contract.serverless.validate_start`: a repurpose needs an idle sandbox and
    a container restore, a template lives on CXL or RDMA, a keep-alive >= 0), leaves its view
    untouched, and answers equal views equally.

    >>> check_sandbox_policy("trenv", max_examples=10, backend="rdma")
    """
    _check_answers("check_sandbox_policy", get_sandbox_policy(policy), params, SandboxStart,
                   validate_start, InvalidStart,
                   views if views is not None else sandbox_views(), max_examples, shrink)


def _check_answers(check: str, fn: Callable[..., Any], params: dict[str, Any], answer_cls: type,
                   validate: Callable[[Any, Any], None], invalid: type[ValueError],
                   views: st.SearchStrategy, max_examples: int, shrink: bool) -> None:
    """The checks of a family with one view and one answer record (placements, dispatches,
    chunks):
    the answer's type, the view untouched, the contract's rules, determinism."""
    name = getattr(fn, "__name__", repr(fn))
    check_keyword_params(fn, params, f"{check.removeprefix('check_')} policy {name!r}")

    @_settings(max_examples, shrink)
    @given(views)
    def run(view: Any) -> None:
        try:
            before = copy_view(view)
            answer = fn(view, **params)
            if not isinstance(answer, answer_cls):
                _fail(check, "malformed answer",
                      f"expected a {answer_cls.__name__}, got {type(answer).__name__}")
            if not all(_same(getattr(view, f.name), getattr(before, f.name))
                       for f in dataclasses.fields(view)):
                _fail(check, "input mutated", "the policy changed its view")
            try:
                validate(view, answer)
            except invalid as exc:
                rule = getattr(exc, "rule", "invalid answer")
                _fail(check, rule, str(exc).removeprefix(f"{rule}: "))
            if _differences(answer, fn(copy_view(view), **params)):
                _fail(check, "not deterministic", "equal inputs gave different answers")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{view!r}") from None

    try:
        run()
    except AssertionError as exc:  # without hypothesis's notes (see _run_checks)
        raise AssertionError(str(exc)) from None
    except FlakyFailure as exc:  # a failure that did not repeat: the policy is not a function
        first = str(exc.exceptions[0]).split("\n")[0] if exc.exceptions else str(exc)
        raise AssertionError(f"{check}: not deterministic: asked again, the policy did not "
                             f"fail the same way ({first})") from None


# ---------------------------------------------------------------------------------- helpers
def copy_view(view: Any) -> Any:
    """An equal view with fresh read-only copies of every array (a QueueView, RouterView,
    PlacementView, DispatchView or DividedView).

    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[3], kv_capacity_tokens=9)
    >>> w = copy_view(v)
    >>> w.input_tokens is v.input_tokens, w.input_tokens.tolist(), w.input_tokens.flags.writeable
    (False, [3], False)
    """
    changes = {}
    for f in dataclasses.fields(view):
        val = getattr(view, f.name)
        if f.init and isinstance(val, np.ndarray):  # derived fields are derived again
            c = val.copy()
            c.flags.writeable = False
            changes[f.name] = c
    return dataclasses.replace(view, **changes)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return not _differences(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if a is None or b is None:
            return False
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _differences(a: Any, b: Any) -> list[str]:
    if type(a) is not type(b) or not dataclasses.is_dataclass(a):
        return [] if _same(a, b) else ["answer"]
    return [f.name for f in dataclasses.fields(a)
            if not _same(getattr(a, f.name), getattr(b, f.name))]


def with_newcomer(view: QueueView) -> QueueView | None:
    """``view`` plus one fresh request (1-token prompt, 1 predicted output token) arriving after
    every other at ``now_s`` or later, at position ``n``; None when such a request would not fit
    the instance at all (a simulator rejects it on arrival).

    >>> v = with_newcomer(QueueView.from_columns(now_s=2.0, input_tokens=[5], kv_capacity_tokens=9))
    >>> v.n, v.input_tokens.tolist(), v.arrival_s.tolist(), v.request_id.tolist()
    (2, [5, 1], [0.0, 2.0], [0, 1])
    """
    if view.kv_capacity_tokens < 2 or view.max_batch_tokens < 1:
        return None
    n = view.n
    t = max(float(view.now_s), float(view.arrival_s.max()) if n else 0.0)
    new = {
        "request_id": int(view.request_id.max()) + 1 if n else 0, "arrival_s": t,
        "input_tokens": 1, "output_tokens_pred": 1.0, "prefilled_tokens": 0,
        "generated_tokens": 0, "kv_tokens": 0, "kv_location": 0, "running": False,
        "priority": -1, "attained_s": 0.0, "last_run_s": t, "est_prefill_s": 0.0,
    }
    cols: dict[str, Any] = {}
    for key in view.column_names():
        old = getattr(view, key)
        a = np.append(old, np.array([new[key]], dtype=old.dtype))
        a.flags.writeable = False
        cols[key] = a
    return dataclasses.replace(view, **cols)


def describe_view(view: QueueView) -> str:
    """A compact, readable table of a queue view (for counterexamples).

    >>> text = describe_view(QueueView.from_columns(now_s=1.0, input_tokens=[5],
    ...     kv_capacity_tokens=9))
    >>> text.splitlines()[-1].split()[:4]
    ['0', '0', '0.000', '5']
    """
    head = ", ".join(
        f"{f.name}={getattr(view, f.name)!r}"
        for f in dataclasses.fields(view)
        if not isinstance(getattr(view, f.name), np.ndarray)
    )
    lines = [f"QueueView({head.replace('max_batch_tokens', chr(10) + '  max_batch_tokens', 1)})"]
    lines.append(
        "pos id arrival input pred prefilled generated kv loc run prio attained last_run "
        "est_prefill"
    )
    for i in range(view.n):
        lines.append(
            f"{i:3d} {int(view.request_id[i]):2d} {view.arrival_s[i]:7.3f} "
            f"{int(view.input_tokens[i]):5d} {float(view.output_tokens_pred[i]):4.1f} "
            f"{int(view.prefilled_tokens[i]):9d} {int(view.generated_tokens[i]):9d} "
            f"{int(view.kv_tokens[i]):2d} {int(view.kv_location[i]):3d} {int(view.running[i]):3d} "
            f"{int(view.priority[i]):4d} {float(view.attained_s[i]):8.3f} "
            f"{float(view.last_run_s[i]):8.3f} {float(view.est_prefill_s[i]):11.4f}"
        )
    return "\n".join(lines)
