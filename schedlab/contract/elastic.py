"""The elastic-instance contract: a global scheduler that batches prefills over groups of elastic
instances and keeps decode batches spread over several (LoongServe, Wu et al., SOSP'24, arXiv
2404.09526, §3-§5).

An *elastic instance* is one model replica (fixed tensor parallelism inside). The KV cache is one
pool at token granularity: a request's KV may lie on several instances. Whenever the scheduler is
asked (the cluster idles, or every few decode iterations), it sees an :class:`ElasticView`: the
waiting requests in arrival order, the decode batches (each a set of instances and requests, with
each request's KV per instance), the instances' used slots, and the analytic prefill model
(``prefill_rows``). It answers an :class:`ElasticPlan`: prefill batches, each a group of waiting
requests on a group of instances (sequence-parallel prefill), the decode batches it pauses for
this round to lend their instances, and KV migrations that consolidate decode batches first.

The rules shared by the simulator, the checks and the policies (one rule, one place):

- :func:`validate_elastic_plan`: what a valid plan is;
- :func:`prefill_placement`: where a prefill batch leaves its KV (LoongServe §4.1, proactive
  scale-down: the authors' code packs the batch's tokens onto its instances most-used first, each
  up to its capacity, so the decode group is the fewest instances that hold it);
- :func:`decode_masters`: how a decode batch's requests are split between masters (§4.2,
  multi-master decoding; the code's rule: fullest instance with room first, at least
  ``threshold`` requests a master), and :func:`compute_scale_up`: how many idle instances a
  decode batch takes while its masters are compute-bound (§5.4).

>>> import numpy as np
>>> prefill_placement([600_000], used=[300_000, 200_000, 0], cap=400_000).tolist()
[[100000, 200000, 300000]]
>>> decode_masters(300, used=[10, 50, 0], cap=1000, threshold=128).tolist()
[128, 128, 44]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "LAYOUTS",
    "ElasticPlan",
    "ElasticView",
    "InvalidElasticPlan",
    "PrefillBatch",
    "compute_scale_up",
    "decode_masters",
    "prefill_placement",
    "striped_placement",
    "validate_elastic_plan",
]


#: Where a prefill leaves its KV: packed onto the fewest instances, or striped over all of them.
LAYOUTS = ("packed", "striped")


class InvalidElasticPlan(ValueError):
    """An :class:`ElasticPlan` that breaks a rule of :func:`validate_elastic_plan`."""


def _ro(a: Any, dtype: Any, name: str, ndim: int = 1) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    if arr.ndim != ndim:
        raise ValueError(f"ElasticView.{name} must be {ndim}-dimensional. Got shape {arr.shape}.")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class ElasticView:
    """Read-only snapshot of the elastic cluster when the scheduler is asked.

    Per instance (``N``): ``instance_used`` KV tokens (decode batches' and paused requests'),
    ``instance_node`` (its node), ``instance_batch`` (the decode batch using it, -1 when idle);
    ``kv_capacity_tokens`` per instance.

    Waiting requests (``W``, arrival order; a preempted one returns to the front):
    ``waiting_id``, ``waiting_tokens`` (what its prefill computes: the prompt, plus the tokens it
    had generated when it was evicted), ``waiting_generated``, ``waiting_max_new_tokens`` (the
    user's limit, what the memory rule reserves).

    Running requests (``R``): ``running_id``, ``running_batch`` (its decode batch),
    ``running_input`` (prompt tokens), ``running_generated``, ``running_max_new_tokens``, and
    ``running_kv`` (``R x N``: its KV tokens on each instance).

    Statistics: ``finished_output_mean`` (mean output length of finished requests, the code's
    ``avg_out``, 512 before any finished), ``decode_step_s`` (the assumed decode iteration,
    22 ms in the paper's runs), ``ooe_rounds`` (consecutive past rounds that admitted out of
    order); ``prefill_rows`` (``k -> (A_k, B_k, C_k)``, the analytic prefill model of §5.5 in
    seconds); ``migration_bytes_per_s`` and ``kv_bytes_per_token`` (a migration's cost).

    *Back-fill* (the authors' ``generate_greedy_req_list``): while a round's prefills run,
    ``instance_prefilling`` marks their instances and ``backfill_window_s`` is the time left
    until the slowest ends; a plan may then only prefill on idle instances (no KV, no batch, not
    prefilling), with no pause and no migration. Outside a round the window is infinite.
    """

    now_s: float
    kv_capacity_tokens: int
    instance_used: np.ndarray
    instance_node: np.ndarray
    instance_batch: np.ndarray
    waiting_id: np.ndarray
    waiting_tokens: np.ndarray
    waiting_generated: np.ndarray
    waiting_max_new_tokens: np.ndarray
    running_id: np.ndarray
    running_batch: np.ndarray
    running_input: np.ndarray
    running_generated: np.ndarray
    running_max_new_tokens: np.ndarray
    running_kv: np.ndarray
    prefill_rows: Mapping[int, tuple[float, float, float]]
    finished_output_mean: float = 512.0
    decode_step_s: float = 0.022
    ooe_rounds: int = 0
    migration_bytes_per_s: float = 400 * 2**30
    kv_bytes_per_token: float = 524_288.0
    instance_prefilling: np.ndarray | None = None
    backfill_window_s: float = math.inf

    @property
    def backfilling(self) -> bool:
        """Whether the scheduler is asked to back-fill idle instances during a round."""
        return math.isfinite(self.backfill_window_s)

    @property
    def idle_instances(self) -> np.ndarray:
        """Instances with no KV, no decode batch and no prefill running."""
        idle = (self.instance_batch < 0) & (self.instance_used == 0)
        if self.instance_prefilling is not None:
            idle &= ~self.instance_prefilling
        return np.flatnonzero(idle)

    @property
    def n_instances(self) -> int:
        return int(self.instance_used.shape[0])

    @property
    def instance_free(self) -> np.ndarray:
        """Free KV slots per instance."""
        return self.kv_capacity_tokens - self.instance_used

    @property
    def batches(self) -> np.ndarray:
        """The decode batch ids in use, ascending."""
        return np.unique(self.instance_batch[self.instance_batch >= 0])

    def batch_instances(self, batch: int) -> np.ndarray:
        """The instances of decode batch ``batch``."""
        return np.flatnonzero(self.instance_batch == batch)

    def prefill_time_s(self, k: int, sum_l: Any, sum_l2: Any) -> Any:
        """``A_k + B_k sum_l + C_k sum_l2`` from :attr:`prefill_rows` (vectorised)."""
        try:
            a, b, c = self.prefill_rows[k]
        except KeyError:
            raise ValueError(f"ElasticView.prefill_rows has no row for k={k}; it has "
                             f"{sorted(self.prefill_rows)}.") from None
        return a + b * np.asarray(sum_l, dtype=np.float64) + c * np.asarray(sum_l2,
                                                                           dtype=np.float64)

    @classmethod
    def from_columns(cls, *, kv_capacity_tokens: int, instance_used: Any,
                     prefill_rows: Mapping[int, tuple[float, float, float]],
                     waiting_tokens: Any = (), instance_node: Any = None,
                     instance_batch: Any = None, waiting_max_new_tokens: Any = None,
                     running_batch: Any = (), running_input: Any = (),
                     running_generated: Any = (), running_max_new_tokens: Any = None,
                     running_kv: Any = None, now_s: float = 0.0, **kw: Any) -> ElasticView:
        """A view from plain columns, with defaults (ids 0.., one node, nothing generated,
        limits 1,024 new tokens), for tests and examples.

        >>> v = ElasticView.from_columns(kv_capacity_tokens=100, instance_used=[0, 40],
        ...     prefill_rows={1: (0.0, 1.0, 0.0), 2: (0.0, 0.5, 0.0)}, waiting_tokens=[30])
        >>> v.instance_free.tolist(), float(v.prefill_time_s(2, 30, 900))
        ([100, 60], 15.0)
        """
        used = _ro(instance_used, np.int64, "instance_used")
        n = used.shape[0]
        if kw.get("instance_prefilling") is not None:
            kw["instance_prefilling"] = _ro(kw["instance_prefilling"], bool, "instance_prefilling")
        wt = _ro(waiting_tokens, np.int64, "waiting_tokens")
        r = len(running_batch)
        return cls(
            now_s=float(now_s), kv_capacity_tokens=int(kv_capacity_tokens), instance_used=used,
            instance_node=_ro(np.zeros(n) if instance_node is None else instance_node, np.int64,
                              "instance_node"),
            instance_batch=_ro(np.full(n, -1) if instance_batch is None else instance_batch,
                               np.int64, "instance_batch"),
            waiting_id=_ro(kw.pop("waiting_id", np.arange(wt.shape[0])), np.int64, "waiting_id"),
            waiting_tokens=wt,
            waiting_generated=_ro(kw.pop("waiting_generated", np.zeros(wt.shape[0])), np.int64,
                                  "waiting_generated"),
            waiting_max_new_tokens=_ro(np.full(wt.shape[0], 1024) if waiting_max_new_tokens
                                       is None else waiting_max_new_tokens, np.int64,
                                       "waiting_max_new_tokens"),
            running_id=_ro(kw.pop("running_id", 10**6 + np.arange(r)), np.int64, "running_id"),
            running_batch=_ro(running_batch, np.int64, "running_batch"),
            running_input=_ro(running_input, np.int64, "running_input"),
            running_generated=_ro(running_generated, np.int64, "running_generated"),
            running_max_new_tokens=_ro(np.full(r, 1024) if running_max_new_tokens is None
                                       else running_max_new_tokens, np.int64,
                                       "running_max_new_tokens"),
            running_kv=_ro(np.zeros((r, n)) if running_kv is None else running_kv, np.int64,
                           "running_kv", ndim=2),
            prefill_rows=dict(prefill_rows), **kw)


@dataclass(frozen=True, slots=True)
class PrefillBatch:
    """Waiting requests (positions in :attr:`ElasticView.waiting_id`) prefilled together,
    sequence-parallel over ``instances``."""

    requests: np.ndarray
    instances: np.ndarray

    def __post_init__(self) -> None:
        for name in ("requests", "instances"):
            a = np.array(getattr(self, name), dtype=np.int64).reshape(-1)
            a.flags.writeable = False
            object.__setattr__(self, name, a)


@dataclass(frozen=True, slots=True)
class ElasticPlan:
    """A scheduler's answer: ``batches`` to prefill now, decode batch ids ``paused`` for the
    round (their instances may be lent to prefill), and ``migrations`` (``(source, target,
    tokens)`` rows, done first: consolidation). ``out_of_order``: the round admitted a request
    behind one it skipped. ``layout``: where the prefills leave their KV, ``"packed"``
    (:func:`prefill_placement`, LoongServe's proactive scale-down) or ``"striped"``
    (:func:`striped_placement`, evenly over the batch's instances: sequence parallelism without
    elastic scale-down, the static TP2 + SP4 baseline). The empty plan admits nothing."""

    batches: tuple[PrefillBatch, ...] = ()
    paused: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    migrations: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    out_of_order: bool = False
    layout: str = "packed"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"The 'layout' parameter of ElasticPlan must be one of {LAYOUTS}. "
                             f"Got {self.layout!r} instead.")
        object.__setattr__(self, "batches", tuple(self.batches))
        p = np.array(self.paused, dtype=np.int64).reshape(-1)
        m = np.array(self.migrations, dtype=np.int64).reshape(-1, 3)
        for a in (p, m):
            a.flags.writeable = False
        object.__setattr__(self, "paused", p)
        object.__setattr__(self, "migrations", m)

    @property
    def admitted(self) -> np.ndarray:
        """Waiting positions admitted, batch by batch."""
        if not self.batches:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([b.requests for b in self.batches])


def used_after_migrations(view: ElasticView, plan: ElasticPlan) -> np.ndarray:
    """Each instance's used slots after the plan's migrations."""
    used = view.instance_used.copy()
    for src, dst, tokens in plan.migrations.tolist():
        used[src] -= tokens
        used[dst] += tokens
    return used


def validate_elastic_plan(view: ElasticView, plan: ElasticPlan) -> None:
    """Raise :class:`InvalidElasticPlan` unless ``plan`` is valid for ``view``:

    - every admitted waiting position exists and is admitted once; every batch has requests
      and instances, its instances exist and are disjoint from the other batches';
    - paused batches exist; a prefill batch uses only instances that are idle, hold no KV
      (after the migrations), or belong to paused decode batches (a decode batch that is not
      paused keeps the instances holding its KV);
    - migrations move tokens an instance holds, onto another instance, within capacity, from a
      decode batch's instance;
    - each batch's tokens fit the free slots of its instances after the migrations.

    >>> v = ElasticView.from_columns(kv_capacity_tokens=100, instance_used=[0, 40],
    ...     prefill_rows={1: (0, 1, 0)}, waiting_tokens=[70])
    >>> validate_elastic_plan(v, ElasticPlan(batches=(PrefillBatch([0], [1]),)))
    Traceback (most recent call last):
    ...
    schedlab.contract.elastic.InvalidElasticPlan: batch 0 needs 70 KV slots; its instances [1]
    have 60 free.
    """
    n = view.n_instances
    w = view.waiting_id.shape[0]
    if not isinstance(plan, ElasticPlan):
        raise InvalidElasticPlan(f"a scheduler must return an ElasticPlan. Got "
                                 f"{type(plan).__name__}.")
    batches = set(view.batches.tolist())
    for b in plan.paused.tolist():
        if b not in batches:
            raise InvalidElasticPlan(f"paused batch {b} is not a decode batch "
                                     f"(they are {sorted(batches)}).")
    cap = view.kv_capacity_tokens
    used = view.instance_used.copy()
    for j, (src, dst, tokens) in enumerate(plan.migrations.tolist()):
        if not (0 <= src < n and 0 <= dst < n) or src == dst or tokens <= 0:
            raise InvalidElasticPlan(f"migration {j} ({src} -> {dst}, {tokens} tokens) must move "
                                     "a positive number of tokens between two instances.")
        if view.instance_batch[src] < 0 or tokens > used[src]:
            raise InvalidElasticPlan(f"migration {j} moves {tokens} tokens from instance {src}, "
                                     f"which holds {used[src]} of a decode batch's.")
        if used[dst] + tokens > cap:
            raise InvalidElasticPlan(f"migration {j} overfills instance {dst}: {used[dst]} + "
                                     f"{tokens} > {cap}.")
        used[src] -= tokens
        used[dst] += tokens
    paused = set(plan.paused.tolist())
    lendable = np.array([b < 0 or b in paused for b in view.instance_batch.tolist()]) | (used == 0)
    if view.instance_prefilling is not None:
        lendable &= ~view.instance_prefilling
    if view.backfilling:
        if plan.paused.shape[0] or plan.migrations.shape[0]:
            raise InvalidElasticPlan("a back-fill plan may not pause decode batches or migrate.")
        lendable = np.isin(np.arange(n), view.idle_instances)
    seen_req: set[int] = set()
    seen_inst: set[int] = set()
    for j, batch in enumerate(plan.batches):
        if not isinstance(batch, PrefillBatch):
            raise InvalidElasticPlan(f"batch {j} must be a PrefillBatch.")
        r, e = batch.requests, batch.instances
        if r.shape[0] == 0 or e.shape[0] == 0:
            raise InvalidElasticPlan(f"batch {j} needs at least one request and one instance.")
        if (r < 0).any() or (r >= w).any() or (e < 0).any() or (e >= n).any():
            raise InvalidElasticPlan(f"batch {j} names a waiting position outside 0..{w - 1} "
                                     f"or an instance outside 0..{n - 1}.")
        for x, seen, what in ((r, seen_req, "request"), (e, seen_inst, "instance")):
            dup = set(x.tolist()) & seen if len(set(x.tolist())) == x.shape[0] else {-1}
            if dup:
                raise InvalidElasticPlan(f"batch {j} repeats a {what} another batch (or it) "
                                         f"already has: {sorted(dup)}.")
            seen.update(x.tolist())
        busy = e[~lendable[e]]
        if busy.shape[0]:
            raise InvalidElasticPlan(f"batch {j} uses instances {busy.tolist()} of decode "
                                     "batches it does not pause (or, back-filling, that are not "
                                     "idle).")
        need = int(view.waiting_tokens[r].sum())
        free = int((cap - used[e]).sum())
        if need > free:
            raise InvalidElasticPlan(f"batch {j} needs {need} KV slots; its instances "
                                     f"{e.tolist()} have {free} free.")
        if plan.layout == "striped":
            per = striped_placement(view.waiting_tokens[r], e.shape[0]).sum(axis=0)
            over = np.flatnonzero(used[e] + per > cap)
            if over.shape[0]:
                raise InvalidElasticPlan(f"batch {j} striped over {e.tolist()} overfills "
                                         f"instance {int(e[over[0]])}.")


def prefill_placement(lengths: Any, used: Any, cap: int) -> np.ndarray:
    """Where a prefill batch leaves its KV (LoongServe §4.1 proactive scale-down; the authors'
    ``_get_batch_prefill_migration_plan``): the batch's instances are taken most-used first (ties:
    their order), and the requests, in batch order, fill each up to ``cap`` before the next, as
    contiguous token ranges. Returns ``tokens[r, i]``, request ``r``'s KV on the batch's ``i``-th
    instance (in the order given). Raises ``ValueError`` when the batch does not fit.

    The group that decodes the batch is the instances holding any of it: the fewest, fullest
    ones (no KV moves after the prefill). The digest's fragmentation example: a 600K-token request
    on instances with 100K / 200K / 400K free fits (an even split, 200K each, would not).

    >>> prefill_placement([5, 3], used=[0, 8], cap=10).tolist()
    [[3, 2], [3, 0]]
    """
    ls = np.asarray(lengths, dtype=np.int64).reshape(-1)
    u = np.asarray(used, dtype=np.int64).reshape(-1)
    free = cap - u
    if int(ls.sum()) > int(free.sum()):
        raise ValueError(f"The batch's {int(ls.sum())} tokens do not fit the {int(free.sum())} "
                         "free slots of its instances.")
    order = np.argsort(-u, kind="stable")
    # request r covers tokens [start_r, end_r) of the batch; instance order[j] the range
    # [edge_j, edge_{j+1}) of its free slots
    ends = np.cumsum(ls)
    starts = ends - ls
    edges = np.concatenate(([0], np.cumsum(free[order])))
    lo = np.maximum(starts[:, None], edges[None, :-1])
    hi = np.minimum(ends[:, None], edges[None, 1:])
    out = np.zeros((ls.shape[0], u.shape[0]), dtype=np.int64)
    out[:, order] = np.maximum(hi - lo, 0)
    return out


def striped_placement(lengths: Any, k: int) -> np.ndarray:
    """KV left striped over ``k`` instances, token ``j`` of each request on instance
    ``j mod k`` (Striped Attention's layout, kept without a migration plan: LoongServe's
    ``--use_fixed_sp`` baseline). Returns ``tokens[r, i]``.

    >>> striped_placement([5, 2], 3).tolist()
    [[2, 2, 1], [1, 1, 0]]
    """
    ls = np.asarray(lengths, dtype=np.int64).reshape(-1)
    i = np.arange(int(k))
    return np.maximum((ls[:, None] - i[None, :] + k - 1) // k, 0)


def decode_masters(batch_size: int, used: Any, cap: int, threshold: int = 128) -> np.ndarray:
    """How many of a decode batch's ``batch_size`` requests each of its instances masters
    (LoongServe §4.2, multi-master decoding; the authors' ``_schedule_decode_batch_list``): the
    instances are taken most-used first; instance ``i`` with room masters
    ``min(left, free_i, max(left // instances_left, threshold))`` of the requests left (its new
    tokens' KV goes there). A batch of at most ``threshold`` requests has one master, the fullest
    instance with room; larger ones spread in shares of at least ``threshold`` (128 in the
    paper's runs: the batch size at which the FFN turns compute-bound). Raises ``ValueError``
    when the batch's instances lack ``batch_size`` free slots.

    >>> decode_masters(100, used=[10, 50, 0], cap=1000).tolist()
    [0, 100, 0]
    """
    u = np.asarray(used, dtype=np.int64).reshape(-1)
    free = np.maximum(cap - u, 0)
    if batch_size > int(free.sum()):
        raise ValueError(f"A decode batch of {batch_size} requests needs {batch_size} free slots; "
                         f"its instances have {int(free.sum())}.")
    out = np.zeros(u.shape[0], dtype=np.int64)
    left = int(batch_size)
    order = np.argsort(-u, kind="stable")
    for j, i in enumerate(order.tolist()):
        if left == 0:
            break
        if free[i] <= 0:
            continue
        share = min(left, int(free[i]), max(left // (u.shape[0] - j), int(threshold)))
        out[i] = share
        left -= share
    if left:  # pragma: no cover - the free slots cover the batch, so the loop placed everyone
        raise AssertionError("decode_masters left requests without a master")
    return out


def compute_scale_up(batch_size: int, n_instances: int, idle: int, threshold: int = 128) -> int:
    """Idle instances a decode batch takes for compute (LoongServe §5.4; the authors'
    ``_schedule_decode_batch_list``): one more while each of its masters would decode more than
    ``threshold`` requests (the FFN turns compute-bound: 128 in the paper's runs), at most
    ``idle``.

    >>> compute_scale_up(1000, 2, idle=4), compute_scale_up(100, 1, idle=4)
    (4, 0)
    """
    b, k, free, thr = (int(x) for x in (batch_size, n_instances, idle, threshold))
    if b < 0 or k < 1 or free < 0 or thr < 1:
        raise ValueError("compute_scale_up needs batch_size >= 0, n_instances >= 1, idle >= 0 "
                         f"and threshold >= 1. Got {batch_size!r}, {n_instances!r}, {idle!r}, "
                         f"{threshold!r}.")
    added = 0
    while added < free and b // (k + added) > thr:
        added += 1
    return added
