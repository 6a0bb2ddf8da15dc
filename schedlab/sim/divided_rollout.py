"""Divided rollout (Seer, arXiv 2511.14617 §3.2): an RL rollout whose requests are dispatched a
chunk at a time through a global KV pool, by a scheduler of :mod:`schedlab.contract.divided`.

The batch is released at t=0 into a request buffer. Whenever it changes (at the start, when
chunks end), the scheduler sees a :class:`~schedlab.contract.divided.DividedView` and answers
:class:`~schedlab.contract.divided.Chunks`. A chunk joins its instance's queue (the instance
batches continuously with its policy, vLLM's by default) as a request whose context is its prompt
plus the tokens generated so far and which stops after its budget; when it stops its KV leaves
the instance for the pool and the request returns to the buffer (or ends, at its true length).

KV of a resumed request [recon: Seer keeps it in a Mooncake-style pool of DRAM and SSD]: it
comes from host memory (moved to the device when the chunk first runs, at the instance's
host-link speed) for the part the instance holds: all of the context where the request's last
chunk ran, the shared prompt where a sibling ran, none elsewhere; a *pull* first copies the whole
context from the holder over the nodes' links (``link`` x ``links_per_node``, Seer's 8x 400 Gbps
RDMA); what the instance does not hold is computed again (a prefill of the missing part). A
request's first chunk always computes its prompt's last token (which yields the first output).

Metrics are :class:`~schedlab.sim.rollout.RolloutResult`'s, with ``extra`` holding each
request's ``chunks`` and ``pulls`` and the scheduler's ``decisions``.

>>> from schedlab.datasets.rollout import rollout_batch
>>> from schedlab.sim import RolloutCluster
>>> w = rollout_batch(n_prompts=8, samples_per_prompt=4, seed=0, max_tokens=4096)
>>> c = RolloutCluster.homogeneous("qwen2.5-7b", "h800", n_instances=2)
>>> r = simulate_divided_rollout(w, c, "seer", scheduler_params={"chunk_tokens": 128})
>>> r.summary()["completed"], r.preemptions, int(r.extra["chunks"].max()) > 1
(32, 0, True)
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from schedlab.contract.dispatch import group_ranks
from schedlab.contract.divided import Chunks, DividedView, InvalidChunks, validate_chunks
from schedlab.errors import (
    SimulationStalled,
    check_array,
    check_instance,
    check_keyword_params,
    check_positive_int,
)
from schedlab.records import Workload
from schedlab.sim.deciding import Decider
from schedlab.sim.engine import EventQueue
from schedlab.sim.instance import InstanceRuntime
from schedlab.sim.rollout import RolloutCluster, RolloutResult
from schedlab.sim.simulator import build_result, instance_event, joined, request_table
from schedlab.sim.state import PENDING, REJECTED, RequestTable

__all__ = ["simulate_divided_rollout"]


def simulate_divided_rollout(
    workload: Workload,
    cluster: RolloutCluster,
    scheduler: str | Callable[..., Chunks] = "seer",
    *,
    scheduler_params: dict[str, Any] | None = None,
    max_tokens: int | np.ndarray | None = None,
    predicted_output_tokens: np.ndarray | None = None,
    policy: str | Callable[..., Any] = "vllm",
    link: str = "rdma-400g",
    links_per_node: int = 8,
    closed_form: bool = True,
    max_idle_decisions: int = 10_000,
) -> RolloutResult:
    """Simulate one rollout iteration of ``workload`` (released at t=0; ``group_id`` names each
    request's prompt) on ``cluster`` with a divided-rollout ``scheduler`` (see the module
    docstring).

    Parameters
    ----------
    scheduler : a registered name (:data:`schedlab.policies.ROLLOUT_SCHEDULERS`: ``"seer"``,
        ``"group-round-robin"``, ...) or any callable ``scheduler(view: DividedView, /,
        **scheduler_params) -> Chunks``.
    max_tokens : the generation limit (``ori_max_tokens``), one for all or one per request;
        None: the workload's longest output. No request may be longer.
    predicted_output_tokens : what schedulers see as ``output_tokens_pred`` (None: the limits,
        i.e. nothing known; pass the true lengths for an oracle).
    policy : the instances' batching policy (vLLM's FCFS by default).
    link, links_per_node : the interconnect a KV pull crosses.
    closed_form, max_idle_decisions : as in :func:`~schedlab.sim.simulate`.
    """
    from schedlab.costmodel.hardware import get_interconnect
    from schedlab.policies import get_policy, get_rollout_scheduler

    wall0 = time.perf_counter()
    where = "simulate_divided_rollout"
    check_instance(workload, Workload, "workload", where)
    check_instance(cluster, RolloutCluster, "cluster", where)
    check_positive_int(links_per_node, "links_per_node", where)
    check_positive_int(max_idle_decisions, "max_idle_decisions", where)
    sched = get_rollout_scheduler(scheduler)
    name = scheduler if isinstance(scheduler, str) else getattr(sched, "__name__", "?")
    params = dict(scheduler_params or {})
    check_keyword_params(sched, params, f"rollout scheduler {name!r}")
    n = len(workload)
    truth = workload.output_tokens
    if max_tokens is None:
        limit = np.full(n, int(truth.max(initial=1)), dtype=np.int64)
    elif np.ndim(max_tokens) == 0:
        limit = np.full(n, check_positive_int(max_tokens, "max_tokens", where), dtype=np.int64)
    else:
        limit = check_array(max_tokens, "max_tokens", where, dtype=np.int64, ndim=1, length=n,
                            min_value=1, integer=True)
    over = np.flatnonzero(truth > limit)
    if over.shape[0]:
        j = int(over[0])
        raise ValueError(f"The 'max_tokens' parameter of {where} must be at least each request's "
                         f"output length: request {j} has {int(truth[j])} output tokens, its "
                         f"limit is {int(limit[j])}.")
    pred = limit.astype(np.float64) if predicted_output_tokens is None else check_array(
        predicted_output_tokens, "predicted_output_tokens", where, dtype=np.float64, ndim=1,
        length=n, min_value=0.0)
    T = request_table(workload, pred, where)
    fn = get_policy(policy)
    pol_name = policy if isinstance(policy, str) else getattr(fn, "__name__", "?")
    k = cluster.n_instances
    spec = cluster.instance
    cost = spec.resolved_cost()
    est = np.asarray(cost.prefill_time_s(T.input), dtype=np.float64)
    reasons: dict[str, int] = {}
    shared = {"outstanding": np.zeros(k), "kv_used": np.zeros(k, dtype=np.int64),
              "queue_length": np.zeros(k, dtype=np.int64)}  # a router's columns, unused here
    runtimes, deciders = [], []
    for i in range(k):
        rt = InstanceRuntime(index=i, spec=spec, cost=cost, table=T, est_prefill=est,
                             shared=shared, reasons=reasons, log=None,
                             closed_form=bool(closed_form), max_idle_steps=max_idle_decisions,
                             track_load=False, describe=f"policy {pol_name!r}")
        runtimes.append(rt)
        deciders.append(Decider(rt, fn, pol_name, {}))
    ic = get_interconnect(link)
    run = _Divided(T, workload, runtimes, deciders, limit, sched, name, params,
                   kv_bytes=float(cost.kv_bytes_per_token),
                   link_bytes_per_s=ic.bytes_per_s * links_per_node, link_latency_s=ic.latency_s)
    run.loop()
    res = build_result(workload, T, deciders, reasons, wall0, pol_name, instance=T.instance,
                       extra={"chunks": run.chunks, "pulls": run.pulls,
                              "decisions": run.decisions})
    return RolloutResult(serving=res, dispatch=None, group_id=run.group_index.copy(),
                         dispatch_name=name, wall_s=time.perf_counter() - wall0,
                         extra={"chunks": run.chunks, "pulls": run.pulls,
                                "decisions": run.decisions})


class _Divided:
    """One divided rollout: the request buffer, the scheduler's cycles and the chunks."""

    def __init__(self, T: RequestTable, w: Workload, runtimes: list[InstanceRuntime],
                 deciders: list[Decider], limit: np.ndarray, sched: Callable[..., Chunks],
                 name: str, params: dict[str, Any], *, kv_bytes: float,
                 link_bytes_per_s: float, link_latency_s: float) -> None:
        n, k = T.input.shape[0], len(runtimes)
        self.T, self.rts, self.decs, self.limit = T, runtimes, deciders, limit
        self.sched, self.name, self.params = sched, name, params
        self.kv_bytes, self.bw, self.lat = kv_bytes, link_bytes_per_s, link_latency_s
        gid = w.group_id if w.group_id is not None else np.arange(n)
        first, self.group_index = group_ranks(gid)
        self.group_id = gid
        self.probe = np.zeros(n, dtype=bool)
        self.probe[first] = True
        self.group_on = np.zeros((first.shape[0], k), dtype=bool)
        self.gen = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        self.in_flight = np.zeros(n, dtype=bool)
        self.last = np.full(n, -1, dtype=np.int64)
        self.served = np.zeros(n)
        self.started = np.zeros(n)
        self.need = np.zeros(n, dtype=np.int64)  # the chunk's largest KV (reserved)
        self.step = np.zeros(n, dtype=np.int64)  # tokens the chunk will generate
        self.target = np.full(n, -1, dtype=np.int64)
        self.cached = np.zeros(n, dtype=np.int64)
        self.chunks = np.zeros(n, dtype=np.int64)
        self.pulls = np.zeros(n, dtype=np.int64)
        self.busy = np.zeros(k, dtype=np.int64)  # chunks in flight per instance
        self.reserved = np.zeros(k, dtype=np.int64)
        self.caps = np.array([rt.cap for rt in runtimes], dtype=np.int64)
        self.slots = np.array([rt.spec.max_batch_size for rt in runtimes], dtype=np.int64)
        self.q = EventQueue()
        self.later: list[tuple[float, int, int, int]] = []  # (time, seq, kind, request)
        self.seq = 0
        self.decide_at = math.nan
        self.decisions = 0
        for rt in runtimes:
            rt.handoff = self._chunk_end

    def _push_later(self, t: float, kind: int, r: int) -> None:
        heapq.heappush(self.later, (t, self.seq, kind, r))
        self.seq += 1

    def _cycle(self, t: float) -> None:
        """Ask the scheduler at ``t`` (once for everything that happens at ``t``)."""
        if self.decide_at != t:
            self.decide_at = t
            self._push_later(t, 1, -1)

    def loop(self) -> None:
        self._cycle(0.0)
        q = self.q
        inf = math.inf
        while True:
            t_later = self.later[0][0] if self.later else inf
            t_ev = q.peek_time()
            if t_later == inf and t_ev == inf:
                break
            if t_ev <= t_later:  # engine events first at equal times: chunks that end count
                t, _, _, i, token = q.pop()
                instance_event(self.decs[i], i, t, token, q.push)
                continue
            t, _, kind, r = heapq.heappop(self.later)
            if kind == 0:
                self._admit(r, t)
            else:
                self._decide(t)
        left = np.flatnonzero(self.T.status == PENDING)
        if left.shape[0]:
            raise SimulationStalled(
                f"The divided rollout ended with {left.shape[0]} requests unfinished (first: "
                f"{left[:10].tolist()}): scheduler {self.name!r} dispatched nothing while they "
                "waited and no chunk was running.")

    # ------------------------------------------------------------------ the scheduler
    def _view(self, now: float) -> DividedView:
        def ro(a: np.ndarray) -> np.ndarray:
            c = a.copy()
            c.flags.writeable = False
            return c

        T = self.T
        return DividedView(
            now_s=now, decision=self.decisions, request_id=ro(np.arange(T.input.shape[0])),
            group_id=ro(self.group_id), group_index=ro(self.group_index), input_tokens=T.input,
            max_tokens=ro(self.limit), output_tokens_pred=T.pred, generated_tokens=ro(self.gen),
            done=ro(self.done), in_flight=ro(self.in_flight), is_probe=ro(self.probe),
            last_instance=ro(self.last), served_s=ro(self.served),
            group_on_instance=ro(self.group_on), in_flight_requests=ro(self.busy),
            slots_free=ro(self.slots - self.busy), kv_free_tokens=ro(self.caps - self.reserved),
            kv_capacity_tokens=ro(self.caps))

    def _decide(self, now: float) -> None:
        self.decide_at = math.nan
        if not (~self.done & ~self.in_flight).any():
            return
        view = self._view(now)
        c = self.sched(view, **self.params)
        self.decisions += 1
        if not isinstance(c, Chunks):
            raise ValueError(f"Rollout scheduler {self.name!r} must return Chunks. Got "
                             f"{type(c).__name__}.")
        try:
            validate_chunks(view, c)
        except InvalidChunks as exc:
            raise ValueError(f"Rollout scheduler {self.name!r}: {exc}") from None
        assert c.pull_from is not None
        for r, i, b, pull in zip(c.request.tolist(), c.instance.tolist(), c.budget.tolist(),
                                 c.pull_from.tolist(), strict=True):
            self._dispatch(r, i, b, pull, now)
        if not self.in_flight.any() and not self.later:
            waiting = np.flatnonzero(~self.done & ~self.in_flight)
            raise SimulationStalled(
                f"Rollout scheduler {self.name!r} dispatched nothing at t={now:.6g}s while "
                f"{waiting.shape[0]} requests waited and no chunk was running (first: "
                f"{waiting[:10].tolist()}).")

    def _dispatch(self, r: int, i: int, budget: int, pull: int, now: float) -> None:
        T = self.T
        prompt = int(T.input[r])
        ctx = prompt + int(self.gen[r])
        g = int(self.group_index[r])
        hit = ctx if self.last[r] == i else prompt if self.group_on[g, i] else 0
        delay = 0.0
        if pull >= 0:
            delay = self.lat + (ctx - hit) * self.kv_bytes / self.bw if ctx > hit else 0.0
            hit = ctx
            self.pulls[r] += 1
        if self.gen[r] == 0:
            hit = min(hit, prompt - 1)  # the prompt's last token is computed: it yields a token
        self.in_flight[r] = True
        self.target[r] = i
        self.cached[r] = hit
        self.step[r] = min(budget, int(T.output[r]) - int(self.gen[r]))
        self.need[r] = ctx + budget
        self.started[r] = now
        self.busy[i] += 1
        self.reserved[i] += ctx + budget
        self.group_on[g, i] = True
        if delay > 0:
            self._push_later(now + delay, 0, r)
        else:
            self._admit(r, now)

    def _admit(self, r: int, now: float) -> None:
        i = int(self.target[r])
        idx = np.array([r])
        m = self.rts[i].admit_resumed(idx, now, self.gen[idx], self.cached[idx], self.step[idx])
        if m:
            joined(self.decs[i], i, m, now, self.q.push)
            return
        # refused on arrival (longer than the model's context or the KV): it ends rejected
        self._release(r, i)
        self.done[r] = True
        if self.T.status[r] != REJECTED:  # pragma: no cover - admit rejects what it refuses
            raise AssertionError(f"request {r} refused but not rejected")

    def _release(self, r: int, i: int) -> None:
        self.in_flight[r] = False
        self.busy[i] -= 1
        self.reserved[i] -= self.need[r]

    def _chunk_end(self, rids: np.ndarray, now: float) -> None:
        """Chunks that stopped at ``now`` (called by their instance as they complete)."""
        T = self.T
        for r in rids.tolist():
            i = int(self.target[r])
            self._release(r, i)
            self.gen[r] += self.step[r]
            self.served[r] += now - self.started[r]
            self.chunks[r] += 1
            self.last[r] = i
            if self.gen[r] >= T.output[r]:
                self.done[r] = True  # the engine marked it completed
                continue
            T.status[r] = PENDING  # it goes back to the buffer
            T.finish[r] = np.nan
        self._cycle(now)
