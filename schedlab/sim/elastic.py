"""Elastic sequence parallelism in the simulator (LoongServe, Wu et al., SOSP'24, arXiv
2404.09526): requests that span elastic instances, scheduled by a policy of
:mod:`schedlab.contract.elastic`.

The cluster (:class:`ElasticCluster`) is ``n_instances`` elastic instances, each one model
replica with ``tp`` GPUs, the KV cache one pool at token granularity (a request's KV on any
instances). The control loop follows the authors' router (``RouterManager._step``) [recon where
noted]:

- When the cluster idles, or every ``max_wait_tokens`` (10) decode iterations while requests
  wait, the scheduler sees an :class:`~schedlab.contract.elastic.ElasticView` and answers an
  :class:`~schedlab.contract.elastic.ElasticPlan` (checked by
  :func:`~schedlab.contract.elastic.validate_elastic_plan`). A plan that admits nothing is not
  asked again before something changes (a completion, an arrival, a pause) [recon: the router
  asks at every iteration].
- A plan that admits requests runs a *macro-iteration*: its migrations first (the code's cost,
  ``tokens * kv_bytes / (400 GiB/s * tp)``), then every prefill batch sequence-parallel on its
  instances (:class:`~schedlab.costmodel.elastic.ElasticPrefillCost`, the roofline, while the
  scheduler plans with the fitted model), leaving its KV where
  :func:`~schedlab.contract.elastic.prefill_placement` says (proactive scale-down: nothing moves
  afterwards) and decoding on the instances that hold it; paused decode batches wait; the others
  decode on their own instances until the slowest prefill ends. Whenever a prefill ends before
  the slowest, the scheduler is asked to back-fill the idle instances with prefills predicted to
  end in the time left (``view.backfill_window_s``, the router's ``generate_greedy_req_list``).
- Otherwise all decode batches run one iteration in lockstep (the slowest paces the rest), in
  closed-form stretches that end at the next completion, memory shortage, or scheduling point.
  A batch's requests are split between masters by
  :func:`~schedlab.contract.elastic.decode_masters` (each master stores its requests' new KV);
  while a master would decode more than the threshold (128) the batch takes idle instances
  (``compute_scale_up``); when its instances lack a slot per request it takes
  ``ceil(deficit / cap)`` idle ones, or else its newest request is paused (its KV dropped, back to
  the front of the queue to be computed again). A decode step of a batch costs, on each of its
  instances, the token-linear layers and LM head of the requests it masters plus attention over
  the KV it holds, and the query/partial-output exchange of every request with the other
  instances over the link (fp16 queries, fp32 partial outputs: LoongServe §4.2) [recon]; the
  batch's step is its slowest instance's.

>>> from schedlab.records import Workload
>>> w = Workload(arrival_s=[0.0, 0.5, 1.0], input_tokens=[100_000, 2_000, 500],
...              output_tokens=[50, 200, 100])
>>> r = simulate_elastic(w, ElasticCluster(n_instances=4))
>>> r.summary()["completed"], int(r.extra["prefill_batches"]) >= 2
(3, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schedlab.contract.elastic import (
    ElasticView,
    InvalidElasticPlan,
    compute_scale_up,
    decode_masters,
    prefill_placement,
    striped_placement,
    validate_elastic_plan,
)
from schedlab.errors import check_instance, check_keyword_params, check_positive_int
from schedlab.records import Workload
from schedlab.sim.result import SimResult
from schedlab.sim.simulator import request_table, table_result
from schedlab.sim.state import COMPLETED, REJECTED

__all__ = ["ElasticCluster", "simulate_elastic"]

#: Bytes a request exchanges per layer with each other instance of its decode group, per query
#: head dimension: the fp16 query out, the fp32 partial output back (LoongServe §4.2).
_EXCHANGE_BYTES = 2 + 4


@dataclass(frozen=True, slots=True, kw_only=True)
class ElasticCluster:
    """``n_instances`` elastic instances of ``model`` on ``tp`` x ``gpu`` each (LoongServe's node:
    LWM-Text-1M on four TP2 instances of A800s), ``instances_per_node`` to a node; KV slots per
    instance (default: what the GPUs hold after the weights); ``link`` for the KV ring and the
    decode exchange (default: the GPU's scale-up link); the router's ``max_wait_tokens`` (10)
    and decode ``threshold`` (128, the paper's runs); ``scale_up=False`` is LoongServe without
    elastic scale-up (Fig. 13: one master per batch, no instances added; a full batch pauses
    its newest request)."""

    model: str = "lwm-text-1m"
    gpu: str = "a800"
    tp: int = 2
    n_instances: int = 4
    instances_per_node: int = 4
    kv_capacity_tokens: int | None = None
    link: str | None = None
    max_wait_tokens: int = 10
    threshold: int = 128
    scale_up: bool = True
    _built: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        w = "ElasticCluster"
        for name in ("tp", "n_instances", "instances_per_node", "max_wait_tokens", "threshold"):
            check_positive_int(getattr(self, name), name, w)
        if self.kv_capacity_tokens is not None:
            check_positive_int(self.kv_capacity_tokens, "kv_capacity_tokens", w)

    def parts(self) -> dict[str, Any]:
        """The cost model, the ESP prefill cost, the fitted prefill model's rows, the link and
        the KV capacity (built once)."""
        if not self._built:
            from schedlab.costmodel import iteration_cost
            from schedlab.costmodel.elastic import ElasticPrefillCost, fit_prefill_model
            from schedlab.costmodel.hardware import get_interconnect

            cost = iteration_cost(self.model, self.gpu, tp=self.tp)
            link = get_interconnect(self.link or cost.gpu.scale_up_link)
            esp = ElasticPrefillCost(cost=cost, link=link)
            fit = fit_prefill_model(esp, ks=tuple(range(1, self.n_instances + 1)))
            self._built.update(cost=cost, esp=esp, rows=fit.model.rows, link=link,
                               cap=self.kv_capacity_tokens or cost.kv_capacity_tokens)
        return self._built


def simulate_elastic(
    workload: Workload,
    cluster: ElasticCluster,
    scheduler: str | Callable[..., Any] = "loongserve",
    *,
    scheduler_params: dict[str, Any] | None = None,
    max_new_tokens: np.ndarray | None = None,
    decode_step_s: float = 0.022,
    check: bool = False,
) -> SimResult:
    """Serve ``workload`` on ``cluster`` with an elastic-instance ``scheduler`` (a name of
    :data:`schedlab.policies.ELASTIC_SCHEDULERS` or a callable ``scheduler(view, /, **params)
    -> ElasticPlan``); see the module docstring. ``max_new_tokens``: what the memory rule
    reserves per request (default: the true output lengths, as in the paper's runs, whose
    clients sent them as ``max_tokens``); ``decode_step_s``: the iteration time the scheduler
    assumes (22 ms in the paper's runs). ``extra`` holds ``prefill_batches``, ``backfills``,
    ``pauses``, ``scale_ups`` and ``migrated_tokens``. ``check=True`` audits the KV after
    every step (for tests; slower): each instance's used slots are its requests' KV and within
    its capacity, a running request holds its context, and KV moves only by a plan's
    migrations.
    """
    from schedlab.policies import get_elastic_scheduler

    wall0 = time.perf_counter()
    where = "simulate_elastic"
    check_instance(workload, Workload, "workload", where)
    check_instance(cluster, ElasticCluster, "cluster", where)
    fn = get_elastic_scheduler(scheduler)
    name = scheduler if isinstance(scheduler, str) else getattr(fn, "__name__", "?")
    params = dict(scheduler_params or {})
    check_keyword_params(fn, params, f"elastic scheduler {name!r}")
    limits = (workload.output_tokens.copy() if max_new_tokens is None
              else np.asarray(max_new_tokens, dtype=np.int64))
    if limits.shape != workload.output_tokens.shape or (limits < workload.output_tokens).any():
        raise ValueError(f"The 'max_new_tokens' parameter of {where} must hold one limit per "
                         "request, each at least its output length.")
    run = _Elastic(workload, cluster, fn, name, params, limits, decode_step_s, check)
    run.loop()
    return table_result(
        workload, run.T, run.reasons, wall0, name, instance=run.first_instance,
        n_instances=cluster.n_instances, busy_s=run.busy_s, iterations=run.iterations,
        decisions=run.decisions,
        extra={"prefill_batches": run.prefill_batches, "backfills": run.backfills,
               "pauses": run.pauses, "scale_ups": run.scale_ups,
               "migrated_tokens": run.migrated})


class _Elastic:
    """One run: the request states, the instances' KV and the decode batches."""

    def __init__(self, w: Workload, c: ElasticCluster, fn: Callable[..., Any], name: str,
                 params: dict[str, Any], limits: np.ndarray, decode_step_s: float,
                 check: bool) -> None:
        parts = c.parts()
        self.c, self.fn, self.name, self.params = c, fn, name, params
        self.cost, self.esp, self.rows = parts["cost"], parts["esp"], parts["rows"]
        self.link, self.cap = parts["link"], int(parts["cap"])
        self.decode_step_s = decode_step_s
        self.T = request_table(w, None, "simulate_elastic")
        n, k = len(w), c.n_instances
        self.limits = limits
        self.gen = np.zeros(n, dtype=np.int64)
        self.kv = np.zeros((n, k), dtype=np.int64)
        self.used = np.zeros(k, dtype=np.int64)
        self.inst_batch = np.full(k, -1, dtype=np.int64)
        self.batches: dict[int, list[int]] = {}  # batch id -> its requests
        self.next_id = 0
        self.waiting: list[int] = []
        self.next_arrival = 0
        self.t = 0.0
        self.wait_tokens = 0
        self.tried = False
        self.ooe = 0
        self.out_sum, self.out_n = 0, 0
        self.first_instance = np.full(n, -1, dtype=np.int64)
        self.reasons: dict[str, int] = {}
        self.busy_s = 0.0
        self.iterations = self.decisions = 0
        self.prefill_batches = self.pauses = self.scale_ups = self.migrated = 0
        self.backfills = 0
        self.prefilling = np.zeros(k, dtype=bool)
        spec = self.cost.model
        q_heads = spec.num_heads // c.tp
        self.exchange_bytes = spec.num_layers * q_heads * spec.head_dim * _EXCHANGE_BYTES
        self.check = check
        self.moved = np.zeros((n, k), dtype=np.int64)  # KV moved away by migrations (check)

    # ------------------------------------------------------------------ the loop
    def loop(self) -> None:
        T, n = self.T, self.T.input.shape[0]
        while True:
            self._arrivals()
            if not self.batches and not self.waiting:
                if self.next_arrival >= n:
                    break
                self.t = max(self.t, float(T.arrival[self.next_arrival]))
                continue
            due = not self.batches or self.wait_tokens >= self.c.max_wait_tokens
            if self.waiting and due and not self.tried:
                if self._schedule():
                    continue
            if not self.batches:
                if self.next_arrival < n:
                    self.t = max(self.t, float(T.arrival[self.next_arrival]))
                    self.tried = False
                    continue
                self._reject(self.waiting.pop(0), "the cluster cannot admit it")
                self.tried = False
                continue
            before = self.kv.copy() if self.check else None
            self._decode_stretch()
            if before is not None:
                self._audit(before)

    def _arrivals(self) -> None:
        T, n = self.T, self.T.input.shape[0]
        total = self.cap * self.c.n_instances
        while self.next_arrival < n and T.arrival[self.next_arrival] <= self.t:
            r = self.next_arrival
            self.next_arrival += 1
            if int(T.input[r]) + int(self.limits[r]) > total:
                self._reject(r, "longer than the cluster's KV")
                continue
            self.waiting.append(r)
            self.tried = False

    def _reject(self, r: int, reason: str) -> None:
        T = self.T
        T.status[r] = REJECTED
        T.reject_code[r] = self.reasons.setdefault(reason, len(self.reasons))

    # ------------------------------------------------------------------ scheduling
    def _view(self, backfill_window_s: float = math.inf) -> ElasticView:
        T = self.T
        wait = np.array(self.waiting, dtype=np.int64)
        run = np.array(sorted(r for rs in self.batches.values() for r in rs), dtype=np.int64)
        batch_of = {r: b for b, rs in self.batches.items() for r in rs}
        return ElasticView.from_columns(
            now_s=self.t, kv_capacity_tokens=self.cap, instance_used=self.used,
            instance_node=np.arange(self.c.n_instances) // self.c.instances_per_node,
            instance_batch=self.inst_batch, prefill_rows=self.rows,
            waiting_id=wait, waiting_tokens=T.input[wait] + self.gen[wait],
            waiting_generated=self.gen[wait], waiting_max_new_tokens=self.limits[wait],
            running_id=run, running_batch=np.array([batch_of[r] for r in run.tolist()],
                                                   dtype=np.int64),
            running_input=T.input[run], running_generated=self.gen[run],
            running_max_new_tokens=self.limits[run], running_kv=self.kv[run],
            finished_output_mean=self.out_sum / self.out_n if self.out_n else 512.0,
            decode_step_s=self.decode_step_s, ooe_rounds=self.ooe,
            migration_bytes_per_s=400 * 2**30 * self.c.tp,
            kv_bytes_per_token=float(self.cost.kv_bytes_per_token),
            instance_prefilling=self.prefilling.copy(), backfill_window_s=backfill_window_s)

    def _schedule(self) -> bool:
        """Ask the scheduler; run its macro-iteration. Returns whether it admitted anything."""
        view = self._view()
        plan = self.fn(view, **self.params)
        self.decisions += 1
        try:
            validate_elastic_plan(view, plan)
        except InvalidElasticPlan as exc:
            raise ValueError(f"Elastic scheduler {self.name!r}: {exc}") from None
        if not plan.batches:
            self.tried = True
            return False
        self.ooe = self.ooe + 1 if plan.out_of_order else 0
        before = self.kv.copy() if self.check else None
        self._macro(view, plan)
        if before is not None:
            self._audit(before)
        self.wait_tokens = 0
        self.tried = False
        return True

    def _macro(self, view: ElasticView, plan: Any) -> None:
        """A round: the plan's migrations, then its prefills in parallel; the decode batches
        not paused decode on until the slowest prefill ends; each prefill, when it ends, leaves
        its KV by the plan's layout and decodes on the instances holding it; whenever a prefill
        ends before the slowest, idle instances are back-filled (the scheduler asked with the
        time left)."""
        t0 = self.t
        mig_s = 0.0
        for src, dst, tokens in plan.migrations.tolist():
            self._migrate(src, dst, tokens)
            mig_s = max(mig_s, tokens * float(self.cost.kv_bytes_per_token)
                        / (400 * 2**30 * self.c.tp))
        paused = {int(b) for b in plan.paused.tolist()}
        self.prefilling[:] = False
        pending: list[tuple[float, int, np.ndarray, np.ndarray, np.ndarray, str]] = []
        self._start_prefills(view, plan, t0 + mig_s, pending)
        barrier = max(p[0] for p in pending)
        busy = self.inst_batch.copy()
        self.inst_batch[self.prefilling] = -2  # not idle for the decode batches' scale-up
        for b in list(self.batches):  # decode batches not paused run on until the barrier
            if b not in paused:
                self._decode_alone(b, t0, barrier)
        self.inst_batch[self.prefilling] = busy[self.prefilling]
        finish = barrier
        while pending:
            pending.sort(key=lambda p: p[0])
            end, _, reqs, inst, lengths, layout = pending.pop(0)
            if layout == "striped":
                placed = striped_placement(lengths, int(inst.shape[0]))
            else:
                placed = prefill_placement(lengths, self.used[inst], self.cap)
            self.prefilling[inst] = False
            self.kv[reqs[:, None], inst[None, :]] += placed
            self.used[inst] += placed.sum(axis=0)
            holders = inst[placed.sum(axis=0) > 0]
            first = self.gen[reqs] == 0
            self.T.first_token[reqs[first]] = end
            self.first_instance[reqs[first]] = holders[0]
            self.gen[reqs[first]] = 1
            b = self._new_batch(list(reqs.tolist()), holders)
            self._finish_done(b, end)
            barrier = max([barrier, *(p[0] for p in pending)])
            if b in self.batches:
                finish = max(finish, self._decode_alone(b, end, barrier))
            if end < barrier:
                self._backfill(end, barrier, pending)
        for b in paused:  # paused batches resume; batches sharing instances merge
            if b in self.batches:
                self._merge_overlaps(b)
        self.t = max(finish, barrier)

    def _start_prefills(self, view: ElasticView, plan: Any, start: float,
                        pending: list[Any]) -> None:
        """Start the plan's prefill batches at ``start`` (their instances then prefill)."""
        T = self.T
        for batch in plan.batches:
            reqs = view.waiting_id[batch.requests]
            inst = batch.instances
            lengths = T.input[reqs] + self.gen[reqs]
            end = start + self.esp.time_s(int(inst.shape[0]), lengths)
            for r in reqs.tolist():
                self.waiting.remove(r)
            self.prefilling[inst] = True
            pending.append((end, self.prefill_batches, reqs, inst, lengths, plan.layout))
            self.prefill_batches += 1
            self.busy_s += (end - start) * inst.shape[0]

    def _backfill(self, now: float, barrier: float, pending: list[Any]) -> None:
        """Ask the scheduler to fill the idle instances with prefills ending by ``barrier``."""
        self.t = max(self.t, now)
        self._arrivals()
        idle = (self.inst_batch == -1) & (self.used == 0) & ~self.prefilling
        if not self.waiting or not idle.any():
            return
        view = self._view(backfill_window_s=barrier - now)
        plan = self.fn(view, **self.params)
        self.decisions += 1
        try:
            validate_elastic_plan(view, plan)
        except InvalidElasticPlan as exc:
            raise ValueError(f"Elastic scheduler {self.name!r} (back-fill): {exc}") from None
        if plan.batches:
            self.backfills += 1
            self._start_prefills(view, plan, now, pending)

    def _migrate(self, src: int, dst: int, tokens: int) -> None:
        """Move ``tokens`` of KV from ``src`` to ``dst`` (the requests' shares in order); the
        source's batch joins the target's."""
        left = tokens
        for r in np.flatnonzero(self.kv[:, src]).tolist():
            move = min(left, int(self.kv[r, src]))
            self.kv[r, src] -= move
            self.moved[r, src] += move
            self.kv[r, dst] += move
            left -= move
            if left == 0:
                break
        self.used[src] -= tokens
        self.used[dst] += tokens
        self.migrated += tokens
        a, b = int(self.inst_batch[src]), int(self.inst_batch[dst])
        if b < 0:
            self.inst_batch[dst] = a
        elif a != b and a >= 0:
            self._merge(b, a)
        if self.used[src] == 0:
            self.inst_batch[src] = -1

    # ------------------------------------------------------------------ batches
    def _new_batch(self, reqs: list[int], inst: np.ndarray) -> int:
        b = self.next_id
        self.next_id += 1
        self.batches[b] = reqs
        for i in inst.tolist():
            if self.inst_batch[i] >= 0 and self.inst_batch[i] != b:
                self._merge(b, int(self.inst_batch[i]))
            self.inst_batch[i] = b
        return b

    def _merge(self, into: int, other: int) -> None:
        if other == into or other not in self.batches:
            return
        self.batches[into] += self.batches.pop(other)
        self.inst_batch[self.inst_batch == other] = into

    def _merge_overlaps(self, b: int) -> None:
        for i in self._instances(b).tolist():
            o = int(self.inst_batch[i])
            if o != b:
                self._merge(b, o)

    def _instances(self, b: int) -> np.ndarray:
        return np.flatnonzero(self.inst_batch == b)

    # ------------------------------------------------------------------ decoding
    def _plan(self, b: int, extra_ok: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """The batch's instances and masters for its next steps (scaling it up or pausing its
        newest requests as needed); None when the batch emptied."""
        c = self.c
        while True:
            reqs = self.batches.get(b)
            if not reqs:
                self.batches.pop(b, None)
                self.inst_batch[self.inst_batch == b] = -1
                return None
            inst = self._instances(b)
            idle = np.flatnonzero((self.inst_batch == -1) & (self.used == 0) & ~self.prefilling)
            size = len(reqs)
            if c.scale_up and extra_ok and idle.shape[0]:
                add = compute_scale_up(size, max(inst.shape[0], 1), int(idle.shape[0]),
                                       c.threshold)
                if add:
                    self.inst_batch[idle[:add]] = b
                    self.scale_ups += 1
                    continue
            # new KV goes only where no prefill of the round is running (its slots are taken)
            room = np.where(self.prefilling[inst], 0, self.cap - self.used[inst])
            free = int(room.sum())
            if c.scale_up and free < size and idle.shape[0]:
                add = min(math.ceil((size - free) / self.cap), int(idle.shape[0]))
                self.inst_batch[idle[:add]] = b
                self.scale_ups += 1
                continue
            if c.scale_up:
                if free >= size:
                    return inst, decode_masters(size, self.cap - room, self.cap, c.threshold)
            else:  # one master: the least-used instance of the batch
                master = np.zeros(inst.shape[0], dtype=np.int64)
                if inst.shape[0]:
                    j = int(np.argmax(room))
                    if room[j] >= size:
                        master[j] = size
                        return inst, master
            self._pause(b)

    def _pause(self, b: int) -> None:
        """Pause the batch's newest request: its KV dropped, back to the front of the queue."""
        reqs = self.batches[b]
        r = max(reqs)
        reqs.remove(r)
        self.used -= self.kv[r]
        self.kv[r] = 0
        self.waiting.insert(0, r)
        self.T.preemptions[r] += 1
        self.pauses += 1
        self.tried = False
        empty = (self.inst_batch == b) & (self.used == 0)
        if not reqs:
            self.batches.pop(b)
            self.inst_batch[self.inst_batch == b] = -1
        elif empty.any() and not empty.all():
            self.inst_batch[empty] = -1

    def _audit(self, before: np.ndarray) -> None:
        """``check=True``: the KV accounting after a step (see :func:`simulate_elastic`)."""
        T = self.T
        if not (self.kv.sum(axis=0) == self.used).all() or (self.used > self.cap).any():
            raise AssertionError(f"elastic KV accounting broken: used {self.used.tolist()}, "
                                 f"requests' KV {self.kv.sum(axis=0).tolist()}, cap {self.cap}")
        for rs in self.batches.values():
            r = np.array(rs, dtype=np.int64)
            ctx = T.input[r] + self.gen[r]
            held = self.kv[r].sum(axis=1)
            if ((held < ctx - 1) | (held > ctx)).any():
                raise AssertionError("a running request does not hold its context's KV")
        alive = self.kv.sum(axis=1) > 0
        shrunk = (self.kv < before - self.moved) & alive[:, None]
        if shrunk.any():
            raise AssertionError("KV moved outside a migration: requests "
                                 f"{np.flatnonzero(shrunk.any(axis=1)).tolist()[:5]}")
        self.moved[:] = 0

    def _step_s(self, b: int, inst: np.ndarray, masters: np.ndarray) -> float:
        """One decode iteration of batch ``b``: its slowest instance (its masters' token-linear
        layers and head, attention over the KV it holds, the exchange with the others)."""
        reqs = np.array(self.batches[b], dtype=np.int64)
        local = self.kv[reqs][:, inst]
        holders = (local > 0).sum(axis=0)
        ctx = local.sum(axis=0)
        exch = 0.0
        if inst.shape[0] > 1:
            exch = (reqs.shape[0] * self.exchange_bytes / self.link.bytes_per_s
                    + self.link.latency_s)
        cost = self.cost
        worst = 0.0
        for j in range(inst.shape[0]):
            m = int(masters[j])
            attn = cost.decode_attention_time_s(int(holders[j]), int(ctx[j]))
            t = (cost.linear_time_s(m) + cost.head_time_s(m) if m else 0.0) + max(attn, exch)
            worst = max(worst, t)
        return worst

    def _advance(self, b: int, inst: np.ndarray, masters: np.ndarray, steps: int) -> None:
        """``steps`` decode iterations of batch ``b``: every request one token a step, its new
        KV on its master (the requests in batch order, masters most-used first)."""
        reqs = np.array(self.batches[b], dtype=np.int64)
        order = np.argsort(-self.used[inst], kind="stable")
        owner = np.repeat(inst[order], masters[order])
        self.kv[reqs, owner] += steps
        np.add.at(self.used, owner, steps)
        self.gen[reqs] += steps

    def _finish_done(self, b: int, now: float) -> None:
        """Complete the batch's requests that generated their last token."""
        T = self.T
        reqs = self.batches.get(b, [])
        done = [r for r in reqs if self.gen[r] >= T.output[r]]
        for r in done:
            reqs.remove(r)
            T.status[r] = COMPLETED
            T.finish[r] = now
            self.used -= self.kv[r]
            self.kv[r] = 0
            self.out_sum += int(T.output[r])
            self.out_n += 1
        if done:
            self.tried = False
            gone = (self.inst_batch == b) & (self.used == 0)
            self.inst_batch[gone] = -1
            if not reqs:
                self.batches.pop(b, None)
                self.inst_batch[self.inst_batch == b] = -1

    def _steps_left(self, b: int, inst: np.ndarray, masters: np.ndarray) -> int:
        """Iterations before the batch's first completion or a master fills up."""
        T = self.T
        reqs = np.array(self.batches[b], dtype=np.int64)
        left = int((T.output[reqs] - self.gen[reqs]).min())
        room = (self.cap - self.used[inst])[masters > 0] // masters[masters > 0]
        return max(1, min(left, int(room.min())))

    def _decode_alone(self, b: int, start: float, until: float) -> float:
        """Batch ``b`` decodes on its own instances from ``start`` while before ``until``;
        returns when its last iteration ended."""
        now = start
        while now < until and b in self.batches:
            plan = self._plan(b, extra_ok=False)
            if plan is None:
                break
            inst, masters = plan
            step = self._step_s(b, inst, masters)
            k = min(self._steps_left(b, inst, masters), max(1, math.ceil((until - now) / step)))
            self._advance(b, inst, masters, k)
            now += k * step
            self.busy_s += k * step * inst.shape[0]
            self.iterations += k
            self._finish_done(b, now)
        return now

    def _decode_stretch(self) -> None:
        """All decode batches, in lockstep, until the next completion, memory shortage,
        scheduling point or arrival that matters."""
        plans = {}
        for b in list(self.batches):
            p = self._plan(b, extra_ok=True)
            if p is not None:
                plans[b] = p
        if not plans:
            return
        step = max(self._step_s(b, i, m) for b, (i, m) in plans.items())
        k = min(self._steps_left(b, i, m) for b, (i, m) in plans.items())
        k = min(k, 64)  # the step time is re-priced as contexts grow
        if self.waiting and not self.tried:
            k = min(k, max(1, self.c.max_wait_tokens - self.wait_tokens))
        n = self.T.input.shape[0]
        if self.next_arrival < n and self.wait_tokens >= self.c.max_wait_tokens:
            k = min(k, max(1, math.ceil((float(self.T.arrival[self.next_arrival]) - self.t)
                                        / step)))
        for b, (inst, masters) in plans.items():
            self._advance(b, inst, masters, k)
            self.busy_s += k * step * inst.shape[0]
        self.t += k * step
        self.iterations += k
        self.wait_tokens += k
        for b in list(plans):
            self._finish_done(b, self.t)
