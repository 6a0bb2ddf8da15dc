"""``simulate(workload, cluster, policy)``: the discrete-event serving simulator.

The driver merges the workload's arrivals (streamed in time order, never pushed one by one) with
the :class:`~schedlab.sim.engine.EventQueue` of instance events. Requests arriving at the same
time are routed together (one router call); each instance then decides, runs iterations or
closed-form decode stretches (:mod:`schedlab.sim.instance`), and decides again when a run ends.

Decision points of an instance: an arrival to it that may change the step in progress (a
running decode stretch stops at the first iteration boundary at or after the arrival), the end
of each run (a completion, a prefill, a KV move, a KV limit), and a timer. At each, the decider
(:mod:`schedlab.sim.deciding`) asks the policy or re-forms the batch from a static plan it keeps.
A policy's answer is checked by the contract's validators: one that would exceed KV capacity,
the batch size or the token budget raises ``ValueError`` naming the policy. A run that stops
making progress raises :class:`~schedlab.errors.SimulationStalled` naming the stuck requests.

Extension points (no fork needed): routers see a :class:`~schedlab.contract.RouterView` and may
be replaced by a placement policy for prefill/decode pools; new per-instance behaviour lives in
:class:`~schedlab.sim.instance.InstanceRuntime`; new event kinds go through the
:class:`~schedlab.sim.engine.EventQueue` with their own priority.

>>> import numpy as np
>>> from schedlab import Workload
>>> from schedlab.contract import Plan
>>> from schedlab.costmodel.base import ConstantIterationCost
>>> from schedlab.sim import InstanceSpec
>>> def run_all(view, /):  # every active request, in queue order (a toy FCFS)
...     return Plan(order=np.arange(view.n))
>>> w = Workload(arrival_s=[0.0, 0.0], input_tokens=[4, 4], output_tokens=[3, 1])
>>> res = simulate(w, InstanceSpec(cost=ConstantIterationCost(slot_s=1.0)), run_all)
>>> res.finish_s.tolist(), res.status.tolist()
([3.0, 1.0], ['completed', 'completed'])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from schedlab.contract import Answer, RouterView
from schedlab.errors import (
    SimulationStalled,
    check_array,
    check_instance,
    check_keyword_params,
    check_positive_int,
)
from schedlab.records import Workload
from schedlab.sim.cluster import Cluster, InstanceSpec
from schedlab.sim.deciding import Decider
from schedlab.sim.engine import PRIORITY_DECIDE, PRIORITY_RUN_END, EventQueue
from schedlab.sim.gaps import GapLog
from schedlab.sim.instance import InstanceRuntime
from schedlab.sim.log import IterationLog
from schedlab.sim.prefix_cache import PrefixCache
from schedlab.sim.result import SimResult
from schedlab.sim.state import COMPLETED, GENERATED, PENDING, PREFILLED, TARGET, RequestTable

__all__ = ["build_result", "instance_event", "joined", "request_table", "simulate"]

_STATUS = np.array(["pending", "completed", "rejected"])


def _resolve(obj: Any, kind: str) -> tuple[Callable[..., Any], str]:
    """A policy or router given by registry name or as any callable, and its display name."""
    from schedlab.policies import get_policy, get_router

    fn = (get_policy if kind == "policy" else get_router)(obj)
    return fn, obj if isinstance(obj, str) else getattr(fn, "__name__", type(fn).__name__)


def _as_cluster(cluster: Cluster | InstanceSpec) -> Cluster:
    if isinstance(cluster, InstanceSpec):
        return Cluster(instances=(cluster,))
    if isinstance(cluster, Cluster):
        return cluster
    raise ValueError(
        "The 'cluster' parameter of simulate must be a Cluster or an InstanceSpec. "
        f"Got {type(cluster).__name__}."
    )


def simulate(
    workload: Workload,
    cluster: Cluster | InstanceSpec,
    policy: str | Callable[..., Answer],
    *,
    policy_params: dict[str, Any] | None = None,
    router: str | Callable[..., np.ndarray] = "round-robin",
    router_params: dict[str, Any] | None = None,
    predicted_output_tokens: np.ndarray | None = None,
    record_iterations: bool = False,
    closed_form: bool = True,
    check_static: bool = False,
    max_idle_decisions: int = 10_000,
    token_gaps: bool = False,
) -> SimResult:
    """Simulate serving ``workload`` on ``cluster`` with a batching ``policy``.

    Parameters
    ----------
    workload : the requests (arrival order).
    cluster : a :class:`Cluster` or a single :class:`InstanceSpec`.
    policy : a registry name (``schedlab.policies.get_policy``) or any callable
        ``policy(view, /, **policy_params) -> Plan | BatchDecision``.
    router : a registry name or callable ``router(view, /, **router_params)`` returning an
        instance index per arriving request; not called for a single instance.
    predicted_output_tokens : what policies and routers see as ``output_tokens_pred``; None
        gives the true lengths (an oracle). The truth only decides completion.
    record_iterations : keep every iteration in ``SimResult.iteration_log`` (small runs only).
    closed_form : advance unchanged decode batches in one closed-form step (False steps one
        iteration at a time, for testing; results are identical).
    check_static : ask the policy at every decision point even while the engine keeps a static
        plan, and raise ``ValueError`` when the answer forms a different step (checks a policy's
        ``Plan.static`` claims on a whole run; slower, same results when the claims hold).
    max_idle_decisions : decisions in a row without running anything after which an instance
        is declared stalled.
    token_gaps : record the gaps between each request's output tokens and put its Mooncake TBT
        (the mean of its slowest 10% of gaps, :mod:`schedlab.sim.gaps`) in
        ``SimResult.extra["tbt_s"]`` (a little slower).

    Instances with a prefix cache (``InstanceSpec.prefix_cache_tokens``) put each request's
    cached prefix in ``SimResult.extra["cached_tokens"]``.

    A request whose prompt plus output can never fit in KV is rejected with
    ``'prompt_exceeds_kv_capacity'``; without chunked prefill, a prompt over the token budget with
    ``'prompt_exceeds_batch_token_budget'``; a request the engine finds it can never run
    (:func:`schedlab.contract.accounting.infeasible`) and policies' own rejections carry their
    reasons. After a recomputation preemption a request's ``input_tokens`` in the view is its
    prompt plus the tokens it had generated (they are prefilled again).
    """
    wall0 = time.perf_counter()
    check_instance(workload, Workload, "workload", "simulate")
    cl = _as_cluster(cluster)
    check_positive_int(max_idle_decisions, "max_idle_decisions", "simulate")
    pol, pol_name = _resolve(policy, "policy")
    n = len(workload)
    T = request_table(workload, predicted_output_tokens, "simulate")
    k = len(cl)
    shared = {
        "outstanding": np.zeros(k),
        "kv_used": np.zeros(k, dtype=np.int64),
        "queue_length": np.zeros(k, dtype=np.int64),
    }
    reasons: dict[str, int] = {}
    log = IterationLog() if record_iterations else None
    gaps = GapLog(n) if token_gaps else None
    est_cache: dict[int, np.ndarray] = {}
    resolved, router_name = _resolve(router, "router")  # an unknown name fails with 1 instance
    route = resolved if k > 1 else None
    params = dict(policy_params or {})
    # a misspelt parameter fails before the run, not at the first decision (or never)
    check_keyword_params(pol, params, f"policy {pol_name!r}")
    check_keyword_params(resolved, dict(router_params or {}), f"router {router_name!r}")
    deciders: list[Decider] = []
    cached = (np.zeros(n, dtype=np.int64) if any(s.prefix_cache_tokens for s in cl.instances)
              else None)
    for i, spec in enumerate(cl.instances):
        cost = spec.resolved_cost()
        if id(cost) not in est_cache:
            est_cache[id(cost)] = np.asarray(cost.prefill_time_s(T.input), dtype=np.float64)
        rt = InstanceRuntime(
            index=i, spec=spec, cost=cost, table=T, est_prefill=est_cache[id(cost)],
            shared=shared, reasons=reasons, log=log, closed_form=bool(closed_form), gaps=gaps,
            max_idle_steps=max_idle_decisions, track_load=route is not None,
            describe=f"policy {pol_name!r}",
        )
        if spec.prefix_cache_tokens:
            if workload.prefix_block_ids is None:
                raise ValueError(
                    f"Instance {i} has a prefix cache (prefix_cache_tokens="
                    f"{spec.prefix_cache_tokens}), but the workload has no prefix_block_ids to "
                    "key it by (the Mooncake traces have them: hash_ids)."
                )
            rt.prefix_cache = PrefixCache(1, spec.prefix_cache_tokens,
                                          block_tokens=spec.prefix_block_tokens)
            rt.blocks = workload.prefix_block_ids
            rt.cached_out = cached
        deciders.append(Decider(rt, pol, pol_name, params, check_static=bool(check_static)))
    caps = np.array([d.rt.cap for d in deciders], dtype=np.int64)
    caps.flags.writeable = False
    _run(T, deciders, route, dict(router_params or {}), shared, caps)

    extra: dict[str, Any] = {}
    if gaps is not None:
        extra["tbt_s"] = np.where(T.status == COMPLETED, gaps.tbt_s(), np.nan)
    if cached is not None:
        extra["cached_tokens"] = cached
    return build_result(workload, T, deciders, reasons, wall0, pol_name, instance=T.instance,
                        log=log, extra=extra)


def request_table(workload: Workload, predicted_output_tokens: np.ndarray | None,
                  where: str) -> RequestTable:
    """The run's request table; policies see ``predicted_output_tokens`` (checked) as the
    output lengths, or the true ones when None."""
    if predicted_output_tokens is None:
        pred = workload.output_tokens.astype(np.float64)
    else:
        pred = check_array(predicted_output_tokens, "predicted_output_tokens", where,
                           min_value=0.0, length=len(workload))
    return RequestTable.empty(workload.arrival_s, workload.input_tokens, workload.output_tokens,
                              pred)


def build_result(
    workload: Workload, T: RequestTable, deciders: list[Decider], reasons: dict[str, int],
    wall0: float, policy: str, *, instance: np.ndarray, log: IterationLog | None = None,
    extra: dict[str, Any] | None = None,
) -> SimResult:
    """The :class:`SimResult` of a finished run (``instance``: where each request was served)."""
    runtimes = [d.rt for d in deciders]
    return table_result(workload, T, reasons, wall0, policy, instance=instance,
                        n_instances=len(deciders), busy_s=float(sum(x.busy_s for x in runtimes)),
                        iterations=int(sum(x.iterations for x in runtimes)),
                        decisions=int(sum(d.calls for d in deciders)), log=log, extra=extra)


def table_result(
    workload: Workload, T: RequestTable, reasons: dict[str, int], wall0: float, policy: str, *,
    instance: np.ndarray, n_instances: int, busy_s: float, iterations: int, decisions: int,
    log: IterationLog | None = None, extra: dict[str, Any] | None = None,
) -> SimResult:
    """The :class:`SimResult` of a run whose requests' outcomes are in ``T`` (their reject
    reasons coded by ``reasons``), with the run's totals; for drivers without per-instance
    deciders (:mod:`schedlab.sim.elastic`)."""
    names = [*reasons, ""]
    codes = np.where(T.reject_code >= 0, T.reject_code, len(names) - 1)
    request_id = workload.request_id
    assert request_id is not None  # Workload.__post_init__ fills it in
    return SimResult(
        request_id=request_id,
        instance=instance,
        arrival_s=T.arrival,
        first_token_s=T.first_token,
        finish_s=T.finish,
        status=_STATUS[T.status],
        reject_reason=np.array(names, dtype=object)[codes].astype(str),
        input_tokens=T.input,
        output_tokens=T.output,
        preemptions=T.preemptions,
        swaps=T.swaps,
        n_instances=n_instances,
        busy_s=busy_s,
        iterations=iterations,
        decisions=decisions,
        wall_s=time.perf_counter() - wall0,
        slo_ttft_col=workload.slo_ttft_s,
        slo_tpot_col=workload.slo_tpot_s,
        iteration_log=None if log is None else log.to_dict(),
        policy=policy,
        extra=extra or {},
    )


def _ro(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _run(
    T: RequestTable,
    deciders: list[Decider],
    route: Callable[..., np.ndarray] | None,
    router_params: dict[str, Any],
    shared: dict[str, np.ndarray],
    caps: np.ndarray,
) -> None:
    """The event loop: arrivals first at equal times, then instance events."""
    q = EventQueue()
    push, pop, peek_time = q.push, q.pop, q.peek_time
    arrival = T.arrival
    n = arrival.shape[0]
    # the end of each group of requests arriving at the same time
    group_end = np.append(np.flatnonzero(np.diff(arrival)) + 1, n)
    group = 0
    ptr = 0
    rounds = 0
    k = len(deciders)
    inf = math.inf
    while True:
        t_arr = float(arrival[ptr]) if ptr < n else inf
        t_ev = peek_time()
        if t_arr == inf and t_ev == inf:
            break
        if t_arr <= t_ev:
            end = int(group_end[group])
            group += 1
            idx = np.arange(ptr, end, dtype=np.int64)
            if route is None:
                groups = [(0, idx)]
            else:
                groups = _route(route, router_params, T, idx, t_arr, shared, caps, rounds, ptr, k)
                rounds += 1
            ptr = end
            for i, sub in groups:
                dec = deciders[i]
                rt = dec.rt
                admit = rt.admit if rt.prefix_cache is None else rt.admit_with_prefix_cache
                joined(dec, i, admit(sub, t_arr), t_arr, push)
            continue
        t, _, _, i, token = pop()
        instance_event(deciders[i], i, t, token, push)
    pending = np.flatnonzero(T.status == PENDING)
    if pending.shape[0]:
        raise SimulationStalled(
            f"The simulation ran out of events with {pending.shape[0]} requests unfinished "
            f"(the policy left them waiting and asked for no wake-up). Stuck requests (workload "
            f"index: instance, prefilled/target, generated/output): "
            + ", ".join(_describe(r, T, deciders) for r in pending[:10].tolist())
            + "."
        )


def joined(dec: Decider, i: int, m: int, t: float, push: Callable[..., None]) -> None:
    """``m`` requests joined instance ``i``'s queue at ``t``: schedule a decision if it idles,
    or cut its decode stretch short if the arrivals may change its step."""
    rt = dec.rt
    dec.arrived(m)
    if rt.busy:
        if dec.arrival_matters():
            new_end = rt.cut_at(t)
            if new_end is not None:
                push(new_end, PRIORITY_RUN_END, target=i, token=rt.token)
    elif rt.decide_at != t:
        rt.token += 1
        rt.decide_at = t
        push(t, PRIORITY_DECIDE, target=i, token=rt.token)


def instance_event(dec: Decider, i: int, t: float, token: int,
                   push: Callable[..., None]) -> None:
    """Instance ``i``'s event at ``t`` (dropped when ``token`` is stale): end its run, decide
    when a decision is due, and schedule its next event."""
    rt = dec.rt
    if token != rt.token:
        return
    nxt = rt.end_run(t) if rt.busy else None
    if nxt is None:
        nxt = dec.decide(t)
    if nxt is not None:
        rt.token += 1
        push(nxt, PRIORITY_RUN_END if rt.busy else PRIORITY_DECIDE, target=i, token=rt.token)


def _describe(r: int, T: RequestTable, deciders: list[Decider]) -> str:
    i = int(T.instance[r])
    Q = deciders[i].rt.Q
    slot = int(np.flatnonzero(Q.rid[: Q.n] == r)[0])
    ints = Q.I
    return (
        f"{r}: {i}, {ints[PREFILLED, slot]}/{ints[TARGET, slot]}, "
        f"{ints[GENERATED, slot]}/{T.output[r]}"
    )


def _route(
    route: Callable[..., np.ndarray],
    params: dict[str, Any],
    T: RequestTable,
    idx: np.ndarray,
    now: float,
    shared: dict[str, np.ndarray],
    caps: np.ndarray,
    rounds: int,
    routed: int,
    k: int,
) -> list[tuple[int, np.ndarray]]:
    """Route the requests ``idx`` (a fresh array, contiguous workload indices) with a
    :class:`RouterView` of the cluster's load (copies, since the loads change and the router may
    keep them; the requests' columns are views of the table's read-only inputs)."""
    a, b = int(idx[0]), int(idx[-1]) + 1
    view = RouterView(
        now_s=now,
        request_id=_ro(idx),
        input_tokens=T.input[a:b],
        output_tokens_pred=T.pred[a:b],
        outstanding_tokens=_ro(shared["outstanding"].copy()),
        kv_used_tokens=_ro(shared["kv_used"].copy()),
        kv_capacity_tokens=caps,
        queue_length=_ro(shared["queue_length"].copy()),
        round=rounds,
        routed_so_far=routed,
    )
    dest = np.asarray(route(view, **params))
    m = idx.shape[0]
    if dest.shape == (1,) == (m,) and dest.dtype.kind in "iu" and 0 <= dest[0] < k:
        return [(int(dest[0]), idx)]
    if dest.shape != (m,) or dest.dtype.kind not in "iu" or dest.min() < 0 or dest.max() >= k:
        name = getattr(route, "__name__", type(route).__name__)
        raise ValueError(
            f"The router {name!r} must return {m} instance indices in [0, {k}) (one per "
            f"arriving request). Got {dest!r}."
        )
    return [(int(i), idx[dest == i]) for i in np.unique(dest)]
