"""An event-driven serverless platform (TrEnv, SOSP'24): invocations of functions served by
sandboxes that are running, idle (warm) or destroyed, under a memory cap, by a sandbox policy
of :mod:`schedlab.policies.trenv` or any callable of the contract
(:mod:`schedlab.contract.serverless`).

The platform's rules follow the authors' faasd (``switch-container/faasd``, branch
``switch``), the one every system of the paper runs on:

- an invocation with an idle instance of its function takes the oldest one (a warm hit, no
  decision); otherwise the policy answers a :class:`~schedlab.contract.serverless.SandboxStart`;
- a repurpose takes the least recently used idle sandbox of any function (or of the pool of
  clean ``prestart`` sandboxes, 70 of 256 MB in the authors' TrEnv runs);
- a create waits for one of ``max_starts`` start slots (``max_vm_starts`` for VM snapshots,
  whose workers pause after each start under pressure: 100 ms doubling up to 3.2 s for REAP+,
  0.8 s for FaaSnap+, as the authors throttle them); a waiting invocation is asked again when a
  slot frees or an instance finishes (the authors' client retries every 50 ms); then idle
  instances are evicted, least recently used first, until the function's memory limit fits the
  cap;
- the cap counts instances' limits, as faasd does (the authors' cap is that counter, not
  resident pages); where even evicting every idle instance cannot make room, the attempt
  fails and is retried after 0.5, 1 and 2 s (the authors' client), then rejected with its
  reason. [deviation] The authors' faasd lets a repurpose exceed the cap; here a repurpose
  evicts to fit like a create, so the cap holds (invariant 6);
- an instance stays idle for its ``keep_alive_s``, then its sandbox is destroyed or, when its
  start says ``release="pool"``, cleansed into the pool (TrEnv's B1: no private page, no
  share left, charged as a pool sandbox); an eviction by the cap does the same [the authors'
  collector wakes every 5 s: here the expiry is exact].

Memory is accounted by :func:`schedlab.costmodel.serverless.cost_tables` (the one rule):
an instance's private pages while it lives, each function's shared template image once
while any of its instances lives.

>>> from schedlab.datasets.serverless import paper_workload
>>> w = paper_workload("w2", cycles=3, warmup_cycles=1)
>>> run = simulate_serverless(w.trace, w.functions, "trenv", cap_mb=w.cap_mb, prestart=70)
>>> run.served, run.rejected, run.creations <= run.served
(1350, 0, True)
"""

from __future__ import annotations

import heapq
import math
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from schedlab.contract.serverless import (
    RESTORES,
    VM_RESTORES,
    Functions,
    InvalidStart,
    Invocations,
    SandboxStart,
    SandboxView,
    validate_start,
)
from schedlab.costmodel.serverless import SandboxCosts, cost_tables
from schedlab.errors import (
    check_instance,
    check_keyword_params,
    check_nonneg_float,
    check_nonneg_int,
    check_positive_float,
)
from schedlab.policies.registry import get_sandbox_policy

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PATH_CODES", "ServerlessRun", "simulate_serverless"]

#: Codes of ``ServerlessRun.path``: how each invocation was served (-1: rejected).
PATH_CODES = {"rejected": -1, "warm": 0, "repurpose": 1, "create": 2}
_RETRIES = (0.5, 1.0, 2.0)
_READY, _FINISH, _RETRY, _EXPIRE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class ServerlessRun:
    """A simulated platform: per invocation (trace order) its ``path`` (:data:`PATH_CODES`),
    ``restore`` (index into :data:`~schedlab.contract.serverless.RESTORES`, -1 for a warm hit
    or a rejection), the ``sandbox`` it ran in, ``queue_s`` (waiting for a start slot or a
    retry), ``start_s``, ``exec_s`` and ``e2e_s = queue_s + start_s + exec_s``; the
    ``rejections`` (invocation -> reason); the sandbox counts (``creations``, ``repurposes``,
    ``evictions`` by the cap, ``expiries`` of keep-alives, ``cleanses`` into the pool,
    ``prestarted``); and the memory over time
    (``timeline_s``, ``charged_mb``: the limits the cap counts, ``memory_mb``: pages held,
    shared counted once)."""

    functions: Functions
    trace: Invocations
    path: np.ndarray
    restore: np.ndarray
    sandbox: np.ndarray
    queue_s: np.ndarray
    start_s: np.ndarray
    exec_s: np.ndarray
    rejections: dict[int, str]
    creations: int
    repurposes: int
    evictions: int
    expiries: int
    cleanses: int
    prestarted: int
    cap_mb: float
    timeline_s: np.ndarray
    charged_mb: np.ndarray
    memory_mb: np.ndarray
    wall_s: float

    @property
    def e2e_s(self) -> np.ndarray:
        """End-to-end seconds per invocation (``nan`` for a rejected one)."""
        return self.queue_s + self.start_s + self.exec_s

    @property
    def served(self) -> int:
        """Invocations served."""
        return int((self.path >= 0).sum())

    @property
    def rejected(self) -> int:
        """Invocations rejected (each with its reason in ``rejections``)."""
        return len(self.rejections)

    def peak_memory_mb(self, after_s: float = 0.0) -> float:
        """The most memory held at once from ``after_s`` on (the level in force at
        ``after_s`` included)."""
        t = self.timeline_s
        if t.shape[0] == 0:
            return 0.0
        i = max(int(np.searchsorted(t, after_s, side="right")) - 1, 0)
        return float(self.memory_mb[i:].max())

    def frame(self) -> pd.DataFrame:
        """One row per invocation: arrival, function name, path, restore and the latencies."""
        import pandas as pd

        names = np.array(self.functions.names, dtype=object)
        paths = np.array(list(PATH_CODES), dtype=object)[self.path + 1]
        restores = np.array([*RESTORES, ""], dtype=object)[self.restore]
        return pd.DataFrame({
            "arrival_s": self.trace.arrival_s, "function": names[self.trace.function],
            "path": paths, "restore": restores, "sandbox": self.sandbox,
            "queue_s": self.queue_s, "start_s": self.start_s, "exec_s": self.exec_s,
            "e2e_s": self.e2e_s})

    def summary(self, after_s: float = 0.0) -> pd.DataFrame:
        """Per function with invocations arriving from ``after_s`` on: served, rejected, P50
        and P99 of the start and end-to-end latency (seconds, ``nan`` where none was served),
        and the share of warm hits."""
        import pandas as pd

        df = self.frame()
        df = df[df["arrival_s"] >= after_s]
        ok = df["path"] != "rejected"
        g = df[ok].assign(warm=(df["path"] == "warm").astype(float)).groupby("function",
                                                                              sort=False)
        index = pd.Index(pd.unique(df["function"]), name="function")
        out = pd.DataFrame({
            "served": g.size(), "start_p50_s": g["start_s"].median(),
            "start_p99_s": g["start_s"].quantile(0.99), "e2e_p50_s": g["e2e_s"].median(),
            "e2e_p99_s": g["e2e_s"].quantile(0.99), "warm_share": g["warm"].mean(),
        }).reindex(index)
        out["served"] = out["served"].fillna(0).astype(int)
        rejected = df[~ok].groupby("function", sort=False).size()
        out.insert(1, "rejected", rejected.reindex(index, fill_value=0).astype(int))
        return out

    def memory_frame(self) -> pd.DataFrame:
        """The memory timeline: one row per change."""
        import pandas as pd

        return pd.DataFrame({"time_s": self.timeline_s, "charged_mb": self.charged_mb,
                             "memory_mb": self.memory_mb})

    def verify(self) -> None:
        """Check the run against the rules any schedule keeps
        (:func:`schedlab.solvers.verify_serverless_run`)."""
        from schedlab.solvers.sandboxes import verify_serverless_run

        verify_serverless_run(self.trace, self.functions, path=self.path,
                              sandbox=self.sandbox, queue_s=self.queue_s,
                              start_s=self.start_s, exec_s=self.exec_s,
                              rejected=self.rejections, cap_mb=self.cap_mb,
                              charged_mb=self.charged_mb)


def simulate_serverless(
    trace: Invocations,
    functions: Functions,
    policy: str | Callable[..., Any] = "trenv",
    *,
    costs: SandboxCosts | None = None,
    cap_mb: float = math.inf,
    prestart: int = 0,
    prestart_mb: float = 256.0,
    reuse: bool = True,
    **params: Any,
) -> ServerlessRun:
    """Serve ``trace`` with ``policy`` (a name of
    :data:`~schedlab.policies.SANDBOX_POLICIES` or a callable, with its ``params``) under the
    memory cap ``cap_mb`` (instances' limits), ``prestart`` clean sandboxes in the pool at time
    0, each charged ``prestart_mb`` against the cap (as is every sandbox cleansed into the pool
    later), and ``costs`` (the paper's by default). ``reuse=False`` sends every invocation to
    the policy, warm instance or not (the artifact's ``--no-reuse``, Fig. 11b's setting).

    >>> from schedlab.contract.serverless import Invocations
    >>> from schedlab.datasets.serverless import trenv_functions
    >>> fns = trenv_functions(("IR",))
    >>> tr = Invocations(arrival_s=[0.0, 5.0], function=[0, 0], n_functions=1)
    >>> [simulate_serverless(tr, fns, "criu", reuse=r).creations for r in (True, False)]
    [1, 2]
    """
    where = "simulate_serverless"
    check_instance(trace, Invocations, "trace", where)
    check_instance(functions, Functions, "functions", where)
    if trace.n_functions != len(functions):
        raise ValueError(f"trace.n_functions ({trace.n_functions}) must equal the number of "
                         f"functions ({len(functions)}).")
    costs = SandboxCosts() if costs is None else costs
    check_instance(costs, SandboxCosts, "costs", where)
    cap = check_positive_float(cap_mb, "cap_mb", where, allow_inf=True)
    prestart = check_nonneg_int(prestart, "prestart", where)
    prestart_mb = check_nonneg_float(prestart_mb, "prestart_mb", where)
    if prestart * prestart_mb > cap:
        raise ValueError(f"{prestart} prestarted sandboxes of {prestart_mb:g} MB exceed the "
                         f"cap of {cap:g} MB.")
    fn = get_sandbox_policy(policy)
    name = getattr(fn, "__name__", repr(fn))
    check_keyword_params(fn, params, f"sandbox policy {name!r}")
    if not isinstance(reuse, (bool, np.bool_)):
        raise ValueError(f"The 'reuse' parameter of {where} must be a bool. Got {reuse!r}.")
    wall = time.perf_counter()
    return _Platform(trace, functions, fn, name, params, costs, cap, prestart,
                     prestart_mb, bool(reuse)).run(wall)


class _Platform:
    """The platform's state while it runs: sandboxes, idle lists, memory and the event heap."""

    def __init__(self, trace: Invocations, functions: Functions, fn: Callable[..., Any],
                 name: str, params: dict[str, Any], costs: SandboxCosts, cap: float,
                 prestart: int, prestart_mb: float, reuse: bool) -> None:
        self.trace, self.functions, self.fn, self.name = trace, functions, fn, name
        self.reuse = reuse
        self.params, self.costs, self.cap = params, costs, cap
        tables = cost_tables(costs, functions)
        self.start_tab = {k: v.tolist() for k, v in tables.start_s.items()}
        self.exec_tab = {k: v.tolist() for k, v in tables.exec_s.items()}
        self.warm_tab = {k: v.tolist() for k, v in tables.warm_exec_s.items()}
        self.private_tab = {k: v.tolist() for k, v in tables.private_mb.items()}
        self.shared_tab = {k: v.tolist() for k, v in tables.shared_mb.items()}
        self.limit = functions.limit_mb.tolist()
        n, k = len(trace), len(functions)
        self.arrival = trace.arrival_s.tolist()
        self.fun = trace.function.tolist()
        self.path = np.full(n, -1, dtype=np.int8)
        self.restore = np.full(n, -1, dtype=np.int8)
        self.sandbox = np.full(n, -1, dtype=np.int64)
        self.queue = np.full(n, np.nan)
        self.start = np.full(n, np.nan)
        self.exec_ = np.full(n, np.nan)
        self.rejections: dict[int, str] = {}
        # sandboxes: function (-1: clean, in the pool), (restore, backend), limit, pages, ...
        self.sb_fun: list[int] = []
        self.sb_key: list[tuple[str, str] | None] = []
        self.sb_charged: list[float] = []
        self.sb_private: list[float] = []
        self.sb_keep: list[float] = []
        self.sb_pool: list[bool] = []  # released into the pool (else destroyed)
        self.pool_mb = prestart_mb
        self.sb_epoch: list[int] = []
        self.idle_of: list[dict[int, None]] = [{} for _ in range(k)]
        self.lru: dict[int, None] = {}
        self.idle_count = np.zeros(k, dtype=np.int64)
        self.pooled = 0
        self.live_shared: dict[tuple[int, tuple[str, str]], int] = {}
        self.charged = 0.0
        self.memory = 0.0
        self.starting = 0
        # the VM start workers of the authors' faasd: per worker its back-off stage and the
        # time it last became active (workers free the longest are handed a start first)
        self.vm_free: deque[int] = deque(range(costs.max_vm_starts))
        self.vm_stage = [0] * costs.max_vm_starts
        self.vm_active = [-math.inf] * costs.max_vm_starts
        # invocations waiting for a start slot: in arrival order, and per function (a finish
        # of the function serves its first one warm); an entry is live while ``waits[i]``
        # holds its token (0: not waiting)
        self.waiting: deque[tuple[int, int, int]] = deque()
        self.waiting_of: list[deque[tuple[int, int, int]]] = [deque() for _ in range(k)]
        self.waits = [0] * n
        self.token = 0
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.creations = self.repurposes = self.evictions = self.expiries = self.cleanses = 0
        self.prestarted = prestart
        self.t_line, self.c_line, self.m_line = array("d"), array("d"), array("d")
        for _ in range(prestart):
            sid = self._new_sandbox(-1, prestart_mb, costs.sandbox_mb)
            self.lru[sid] = None
            self.pooled += 1
        self._mark(0.0)

    # -- bookkeeping -------------------------------------------------------------------------
    def _push(self, t: float, kind: int, a: int, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    def _mark(self, t: float) -> None:
        self.t_line.append(t)
        self.c_line.append(self.charged)
        self.m_line.append(self.memory)

    def _new_sandbox(self, f: int, charged: float, private: float) -> int:
        """A new sandbox for ``f`` (-1: clean, in the pool), holding ``charged`` and
        ``private`` MB until an instance is given it (:meth:`_hold`)."""
        self.sb_fun.append(f)
        self.sb_key.append(None)
        self.sb_charged.append(charged)
        self.sb_private.append(private)
        self.sb_keep.append(math.inf)
        self.sb_pool.append(False)
        self.sb_epoch.append(0)
        self.charged += charged
        self.memory += private
        return len(self.sb_fun) - 1

    def _hold(self, sid: int, f: int, key: tuple[str, str], start: SandboxStart) -> None:
        """Give sandbox ``sid`` (empty) to an instance of ``f`` restored by ``key``."""
        self.sb_fun[sid], self.sb_key[sid] = f, key
        self.sb_keep[sid], self.sb_pool[sid] = start.keep_alive_s, start.release == "pool"
        self.charged += self.limit[f] - self.sb_charged[sid]
        self.sb_charged[sid] = self.limit[f]
        private = self.private_tab[key][f]
        self.memory += private - self.sb_private[sid]
        self.sb_private[sid] = private
        sk = (f, key)
        n = self.live_shared.get(sk, 0)
        if n == 0:
            self.memory += self.shared_tab[key][f]
        self.live_shared[sk] = n + 1

    def _empty(self, sid: int) -> None:
        """Release what the instance in ``sid`` holds (its private pages, its share)."""
        f, key = self.sb_fun[sid], self.sb_key[sid]
        if key is None:
            return
        sk = (f, key)
        n = self.live_shared[sk] - 1
        if n == 0:
            del self.live_shared[sk]
            self.memory -= self.shared_tab[key][f]
        else:
            self.live_shared[sk] = n
        self.sb_key[sid] = None

    def _take_idle(self, sid: int) -> None:
        del self.lru[sid]
        f = self.sb_fun[sid]
        if f < 0:
            self.pooled -= 1
        else:
            del self.idle_of[f][sid]
            self.idle_count[f] -= 1
        self.sb_epoch[sid] += 1

    def _destroy(self, sid: int) -> None:
        self._empty(sid)
        self.charged -= self.sb_charged[sid]
        self.memory -= self.sb_private[sid]
        self.sb_charged[sid] = self.sb_private[sid] = 0.0

    def _release(self, sid: int) -> None:
        """End the idle instance in ``sid`` (taken off the idle lists): cleanse its sandbox into
        the pool when its start said so (TrEnv's B1: no private page, no share, the pool's
        charge), else destroy it."""
        if not self.sb_pool[sid] or self.sb_fun[sid] < 0:
            self._destroy(sid)
            return
        self._empty(sid)
        self.charged += self.pool_mb - self.sb_charged[sid]
        self.memory += self.costs.sandbox_mb - self.sb_private[sid]
        self.sb_charged[sid], self.sb_private[sid] = self.pool_mb, self.costs.sandbox_mb
        self.sb_fun[sid], self.sb_keep[sid] = -1, math.inf  # a clean sandbox waits in the pool
        self.lru[sid] = None
        self.pooled += 1
        self.cleanses += 1

    def _make_room(self, need: float, t: float) -> bool:
        """Evict idle sandboxes, least recently used first, until ``need`` more MB fit: an
        instance released into the pool rejoins it as its most recent member, a clean one is
        destroyed."""
        while self.charged + need > self.cap + 1e-9 and self.lru:
            sid = next(iter(self.lru))
            self._take_idle(sid)
            self._release(sid)
            self.evictions += 1
        return self.charged + need <= self.cap + 1e-9

    # -- events ------------------------------------------------------------------------------
    def _attempt(self, i: int, t: float, tries: int, front: bool = False) -> bool:
        """Serve, retry or park invocation ``i``; False when it waits for a start slot."""
        f = self.fun[i]
        idle = self.idle_of[f]
        if idle and self.reuse:
            sid = next(iter(idle))
            self._take_idle(sid)
            key = self.sb_key[sid]
            assert key is not None  # an idle instance of f holds f's restore
            self._serve(i, t, sid, 0, -1, 0.0, self.warm_tab[key][f])
            return True
        view = _view(f, t, self.functions, self.idle_count, self.pooled, self.charged,
                     self.cap, self.starting)
        start = self.fn(view, **self.params)
        try:
            validate_start(view, start)
        except InvalidStart as exc:
            raise ValueError(f"Sandbox policy {self.name!r} broke the contract at t={t:g} s "
                             f"(invocation {i}): {exc}") from None
        key = (start.restore, start.backend)
        if start.path == "repurpose":
            sid = next(iter(self.lru))
            self._take_idle(sid)
            delta = self.limit[f] - self.sb_charged[sid]
            if delta > 0 and not self._make_room(delta, t):
                self._idle(sid, t)
                self._fail(i, t, tries, f"memory cap: {self.charged:g} MB of {self.cap:g} "
                                        f"held by running instances, repurposing needs "
                                        f"{delta:g} MB more")
                return True
            self._empty(sid)
            self.repurposes += 1
            self._hold(sid, f, key, start)
            self._mark(t)
            self._serve(i, t, sid, 1, RESTORES.index(start.restore),
                        self.start_tab[("repurpose", *key)][f], self.exec_tab[key][f])
            return True
        vm = start.restore in VM_RESTORES
        if self.starting >= (self.costs.max_vm_starts if vm else self.costs.max_starts):
            self.token += 1
            entry = (i, tries, self.token)
            if front:
                self.waiting.appendleft(entry)
            else:
                self.waiting.append(entry)
            self.waiting_of[f].append(entry)
            self.waits[i] = self.token
            return False
        if not self._make_room(self.limit[f], t):
            self._mark(t)
            self._fail(i, t, tries, f"memory cap: {self.charged:g} MB of {self.cap:g} held by "
                                    f"running instances, {self.functions.names[f]} needs "
                                    f"{self.limit[f]:g} MB")
            return True
        sid = self._new_sandbox(f, 0.0, 0.0)
        self._hold(sid, f, key, start)
        self.creations += 1
        self._mark(t)
        self.starting += 1
        if vm:
            s = self.start_tab[("create", *key)][f]
            worker = self.vm_free.popleft()
            self._push(t + s + self._vm_backoff(worker, t, s, start.restore), _READY, sid,
                       worker + 1)
        else:
            s = self.start_tab[("create", *key)][f] + self.costs.netns_contention_s * (
                self.starting - 1)
            self._push(t + s, _READY, sid, 0)
        self._serve(i, t, sid, 2, RESTORES.index(start.restore), s, self.exec_tab[key][f])
        return True

    def _vm_backoff(self, worker: int, t: float, s: float, restore: str) -> float:
        """The pause VM start ``worker`` takes after a start of ``s`` seconds handed to it at
        ``t`` (the authors' faasd, ``ctr_runtime.go``): 100 ms after its first start; then,
        when the start came within 100 ms of its last activity, 100 ms x 2^stage and one stage
        up (at most 5 stages, 3.2 s, for REAP+; 3, 0.8 s, for FaaSnap+), else no pause and
        stages down (REAP+: to 0 after 3 s idle, 2 down after 1 s, else 1)."""
        c = self.costs
        stage, idle = self.vm_stage[worker], t - self.vm_active[worker]
        pause = 0.0
        if stage == 0:
            pause, stage = c.vm_backoff_s, 1
        elif idle >= c.vm_backoff_s:
            if restore == "vm-lazy":
                stage = 0 if idle >= 3.0 else max(stage - (2 if idle >= 1.0 else 1), 0)
            else:
                stage = max(stage - 1, 0)
        else:
            pause = c.vm_backoff_s * 2 ** stage
            top = c.reap_backoff_stages if restore == "vm-lazy" else c.faasnap_backoff_stages
            stage = min(stage + 1, top)
        self.vm_stage[worker] = stage
        self.vm_active[worker] = t + s + pause
        return pause

    def _fail(self, i: int, t: float, tries: int, reason: str) -> None:
        if tries < len(_RETRIES):
            self._push(t + _RETRIES[tries], _RETRY, i, tries + 1)
        else:
            self.rejections[i] = f"{reason} (after {tries + 1} attempts)"

    def _serve(self, i: int, t: float, sid: int, path: int, restore: int, start: float,
               run: float) -> None:
        self.path[i], self.restore[i], self.sandbox[i] = path, restore, sid
        self.queue[i] = t - self.arrival[i]
        self.start[i] = start
        self.exec_[i] = run
        self._push(t + start + run, _FINISH, sid, 0)

    def _idle(self, sid: int, t: float) -> None:
        keep = self.sb_keep[sid]
        if keep <= 0 and self.sb_fun[sid] >= 0:
            self._release(sid)
            self.expiries += 1
            self._mark(t)
            return
        self.lru[sid] = None
        f = self.sb_fun[sid]
        if f < 0:
            self.pooled += 1
        else:
            self.idle_of[f][sid] = None
            self.idle_count[f] += 1
        if keep < math.inf:
            self._push(t + keep, _EXPIRE, sid, self.sb_epoch[sid])

    def _event(self, t: float, kind: int, a: int, b: int) -> None:
        if kind == _FINISH:
            self._idle(a, t)
            f = self.sb_fun[a]
            queue = self.waiting_of[f] if f >= 0 else None
            while queue:  # a waiting invocation of the function takes the instance, warm
                i, tries, token = queue.popleft()
                if self.waits[i] == token:
                    self.waits[i] = 0
                    self._attempt(i, t, tries)
                    return
            while self.waiting and self.lru:  # else the first waiting one may repurpose it
                i, tries, token = self.waiting.popleft()
                if self.waits[i] == token:
                    self.waits[i] = 0
                    self._attempt(i, t, tries, front=True)
                    return
        elif kind == _READY:
            self.starting -= 1
            if b:  # a VM start worker is free again
                self.vm_free.append(b - 1)
            while self.waiting:  # the first waiting invocations take the free slots
                i, tries, token = self.waiting.popleft()
                if self.waits[i] != token:
                    continue
                self.waits[i] = 0
                if not self._attempt(i, t, tries, front=True):
                    break
        elif kind == _RETRY:
            self._attempt(a, t, b)
        elif self.sb_epoch[a] == b and a in self.lru:  # an expiry still current
            self._take_idle(a)
            self._release(a)
            self.expiries += 1
            self._mark(t)

    def run(self, wall: float) -> ServerlessRun:
        heap, arrival = self.heap, self.arrival
        for i in range(len(arrival)):
            t = arrival[i]
            while heap and heap[0][0] <= t:
                te, _, kind, a, b = heapq.heappop(heap)
                self._event(te, kind, a, b)
            self._attempt(i, t, 0)
        while heap:
            te, _, kind, a, b = heapq.heappop(heap)
            self._event(te, kind, a, b)
        for i in np.flatnonzero(self.waits).tolist():  # cannot happen: starts free their slots
            self.rejections[i] = "never started: no start slot freed"
        return ServerlessRun(
            functions=self.functions, trace=self.trace, path=_ro(self.path),
            restore=_ro(self.restore), sandbox=_ro(self.sandbox), queue_s=_ro(self.queue),
            start_s=_ro(self.start), exec_s=_ro(self.exec_), rejections=self.rejections,
            creations=self.creations, repurposes=self.repurposes, evictions=self.evictions,
            expiries=self.expiries, cleanses=self.cleanses, prestarted=self.prestarted,
            cap_mb=self.cap,
            timeline_s=_ro(np.frombuffer(self.t_line, dtype=np.float64)),
            charged_mb=_ro(np.frombuffer(self.c_line, dtype=np.float64)),
            memory_mb=_ro(np.frombuffer(self.m_line, dtype=np.float64)),
            wall_s=time.perf_counter() - wall)


def _view(f: int, t: float, functions: Functions, idle: np.ndarray, pooled: int,
          charged: float, cap: float, starting: int) -> SandboxView:
    """A :class:`SandboxView` from the platform's own (already valid) state, without the
    checks a user-built view runs; ``idle`` is a read-only snapshot."""
    snap = idle.copy()
    snap.flags.writeable = False
    view = object.__new__(SandboxView)
    for name, value in (("function", f), ("now_s", t), ("functions", functions),
                        ("idle", snap), ("pooled", pooled), ("memory_mb", charged),
                        ("cap_mb", cap), ("starting", starting)):
        object.__setattr__(view, name, value)
    return view


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.flags.writeable = False
    return a

