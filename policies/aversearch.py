"""AverSearch's asynchronous intra-query parallel graph search, as a pure function that runs the
search in simulated time (Luo et al., arXiv 2504.20461 v2, §1 and the abstract; issue 18).

The fork-join model (:func:`schedlab.policies.anns.fork_join_search`) makes every round wait for
its slowest worker and lets workers expand candidates a global queue would have pruned.
AverSearch removes the rounds: the threads of one query take three roles that never wait for one
another [paper, via its abstract and a third-party review; the body was not reachable]:

- **sub-queue maintainers** each keep a sorted sub-queue of candidates; a free maintainer pops
  its nearest candidate that is still under the **L-threshold**, reads its neighbour list,
  claims the unvisited neighbours in an atomic visited set (so no distance is computed twice)
  and hands them to the calculators (a core-to-core hand-off each way); it runs ahead of its
  calculators by at most the distances that keep them busy through its next expansion (without
  this flow limit one maintainer and one calculator nearly doubled the sequential work);
- **distance calculators** take the claimed vertices first come, first served, compute their
  distances into a shared array and never wait; a result under the L-threshold joins the
  sub-queue of the maintainer that claimed it, which pays its insertion at its next pop;
- one **global balancer** scans every sub-queue each ``balance_period_s`` and, when a maintainer
  has no candidate under the threshold while another has two or more, deals all of them out
  again, nearest first, in turn.

The **L-threshold** is the ``L``-th smallest distance computed so far (ties by vertex id): a
candidate above it would have left a sequential search's ``L``-long list, so it is pruned, and
the threshold never increases. The search ends when no candidate is under the threshold, no
distance is pending and every maintainer is idle; the answer is the ``k`` nearest computed.

[recon] Which candidates the balancer moves and when, the exact (not sampled) threshold, the
flow limit, the role split of :func:`async_roles`, and charging insertions to the owner: the
paper's body, which would settle them, could not be read (see the README). With one thread the
maintainer computes its neighbours' distances itself and the search is exactly
:func:`~schedlab.policies.anns.beam_search` (tested).

>>> from schedlab.contract.anns import SearchCosts
>>> from schedlab.datasets import build_graph, digits_vectors
>>> v = digits_vectors()
>>> g = build_graph(v.base, degree=16)
>>> costs = SearchCosts(expansion_s=2.3e-7, distance_s=4e-8, insert_s=1e-8, barrier_s=0.0,
...                     merge_entry_s=2e-9)
>>> one = async_search(g, v.base, v.queries[0], threads=1, costs=costs, beam_width=32)
>>> eight = async_search(g, v.base, v.queries[0], threads=8, costs=costs, beam_width=32)
>>> eight.latency_s < one.latency_s, eight.maintainers, eight.calculators
(True, 4, 3)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np

from schedlab.contract.anns import AsyncTrace, SearchCosts, SearchTrace
from schedlab.datasets.vector_graph import Graph
from schedlab.errors import check_instance, check_positive_float, check_positive_int
from schedlab.policies.anns import _check

__all__ = ["AsyncTrace", "async_roles", "async_search"]


def async_roles(threads: int, calculators_per_maintainer: float = 2.0) -> tuple[int, int, bool]:
    """The split of ``threads`` into ``(maintainers, calculators, balancer)`` [recon]: one
    thread does everything; otherwise one maintainer per ``1 + calculators_per_maintainer``
    threads (at least one), a balancer once there are two maintainers, the rest calculators.
    :func:`async_search` sets the ratio from the costs: an expansion's neighbours' distances
    over the expansion itself, so that maintainers and calculators keep pace.

    >>> [async_roles(t) for t in (1, 2, 8, 16, 64)]
    [(1, 0, False), (1, 1, False), (3, 4, True), (5, 10, True), (21, 42, True)]
    """
    where = "async_roles"
    t = check_positive_int(threads, "threads", where)
    ratio = check_positive_float(calculators_per_maintainer, "calculators_per_maintainer",
                                 where)
    if t == 1:
        return 1, 0, False
    m = max(1, round(t / (1 + ratio)))
    if m >= 2 and t - m - 1 < 1:
        m = 1
    balancer = m >= 2
    return m, t - m - int(balancer), balancer


def async_search(graph: Graph, base: np.ndarray, query: np.ndarray, *, threads: int,
                 costs: SearchCosts, beam_width: int = 64, k: int = 10,
                 maintainers: int | None = None,
                 balance_period_s: float | None = None) -> AsyncTrace:
    """AverSearch's asynchronous search of ``query`` on ``threads`` threads priced by ``costs``
    (see the module docstring). ``maintainers`` overrides :func:`async_roles`' split (the rest,
    less a balancer when there are two maintainers or more, are calculators);
    ``balance_period_s`` defaults to one scan of ``beam_width`` entries plus one expansion's
    latency.

    Invariants (tests): one thread is the sequential search; no distance is computed twice;
    results distinct, sorted and true; the threshold never increases; at the end no candidate
    under it is unexpanded; every role's busy time fits in ``threads * latency_s``.
    """
    where = "async_search"
    t = check_positive_int(threads, "threads", where)
    check_instance(costs, SearchCosts, "costs", where)
    x, q, width, kk = _check(graph, base, query, beam_width, k, where)
    if maintainers is None:
        fanout = graph.indices.shape[0] / max(graph.n, 1) / 3  # unvisited per expansion
        m, c, balancer = async_roles(t, max(1.0, fanout * costs.distance_s / costs.expansion_s))
    else:
        m = check_positive_int(maintainers, "maintainers", where)
        if m > t:
            raise ValueError(f"The 'maintainers' parameter of {where} must be at most "
                             f"threads={t}. Got {m}.")
        balancer = m >= 2 and t > m
        c = t - m - int(balancer)
        if m >= 2 and c < 1:
            raise ValueError(f"The 'maintainers' parameter of {where} leaves no calculator: "
                             f"{m} maintainers and a balancer need threads > {m + 1}. Got "
                             f"threads={t}.")
    period = (width * costs.merge_entry_s + costs.expansion_s if balance_period_s is None
              else check_positive_float(balance_period_s, "balance_period_s", where))
    # a maintainer runs ahead of its calculators by at most what keeps them busy through its
    # next expansion
    limit = math.ceil(c / m * (1 + costs.expansion_s / costs.distance_s)) if c else 0
    return _run(graph, x, q, width, kk, m, c, balancer, period, limit, costs)


class _Search:
    """The mutable state of one asynchronous search (local to :func:`_run`)."""

    def __init__(self, n: int, width: int, m: int) -> None:
        self.visited = np.zeros(n, dtype=bool)
        self.subq: list[list[tuple[float, int, int]]] = [[] for _ in range(m)]
        self.top: list[tuple[float, int]] = []  # the L nearest computed, as a max-heap
        self.width = width
        self.thr = (math.inf, n)
        self.thresholds: list[float] = []

    def admit(self, d: float, v: int) -> bool:
        """Count a computed distance into the L nearest; whether it is under the threshold."""
        if len(self.top) < self.width:
            heapq.heappush(self.top, (-d, -v))
        elif (d, v) < self.thr:
            heapq.heapreplace(self.top, (-d, -v))
        else:
            return False
        if len(self.top) == self.width:
            worst = self.top[0]
            self.thr = (-worst[0], -worst[1])
            self.thresholds.append(self.thr[0])
        return True

    def best(self, i: int) -> tuple[float, int, int] | None:
        """Maintainer ``i``'s nearest candidate under the threshold, popped (the rest of a
        sub-queue whose head is over the threshold is over it too: dropped)."""
        sq = self.subq[i]
        if sq and (sq[0][0], sq[0][1]) > self.thr:
            sq.clear()
        return heapq.heappop(sq) if sq else None


def _run(graph: Graph, x: np.ndarray, q: np.ndarray, width: int, k: int, m: int, c: int,
         balancer: bool, period: float, limit: int, costs: SearchCosts) -> AsyncTrace:
    indptr, indices = graph.indptr, graph.indices
    s = _Search(graph.n, width, m)
    expanded: list[int] = []
    parents: list[int] = []
    hops: list[int] = []
    found: list[int] = []
    starts: list[float] = []
    computed: list[int] = [graph.entry]
    # events: (time, kind, seq, payload); kinds in tie order: results, balancer, maintainers
    events: list[tuple[float, int, int, tuple]] = []
    seq = 0
    calc_free = [0.0] * c  # calculators' next free times (a heap): first come, first served
    idle = [True] * m
    inserts = [0] * m  # results each maintainer has to insert at its next pop
    inflight = [0] * m  # distances each maintainer claimed that are not computed yet
    busy_m = busy_c = 0.0
    balances = 0
    pending = 0  # events other than the balancer's

    def push(time: float, kind: int, payload: tuple) -> None:
        nonlocal seq, pending
        heapq.heappush(events, (time, kind, seq, payload))
        seq += 1
        pending += kind != 1

    e = graph.entry
    s.visited[e] = True
    d0 = float(((x[e] - q) ** 2).sum())
    push(costs.distance_s, 0, (d0, e, 0, -1))  # the entry's distance, by maintainer 0
    busy_m += costs.distance_s
    if balancer:
        push(period, 1, ())
    end = 0.0
    while events:
        now, kind, _, payload = heapq.heappop(events)
        if kind != 1:
            pending -= 1
            end = now
        if kind == 0:  # a distance ready: into the L nearest, and its owner's sub-queue
            d, v, owner, parent = payload
            if c:
                inflight[owner] -= 1
            if s.admit(d, v):
                heapq.heappush(s.subq[owner], (d, v, parent))
                if c:
                    inserts[owner] += 1
            if idle[owner] and s.subq[owner] and inflight[owner] <= limit:
                idle[owner] = False
                push(now, 2, (owner,))
        elif kind == 1:  # the balancer's pass
            balances += _balance(s, idle, now, push)
            push(now + period, 1, ())
        else:  # a maintainer free
            (i,) = payload
            cand = s.best(i) if inflight[i] <= limit else None
            if cand is None:
                idle[i] = True
            else:
                d, v, parent = cand
                me = len(expanded)
                expanded.append(v)
                parents.append(parent)
                hops.append(0 if parent < 0 else hops[parent] + 1)
                starts.append(now)
                nb = indices[indptr[v]:indptr[v + 1]]
                nb = nb[~s.visited[nb]]
                s.visited[nb] = True
                found.append(int(nb.shape[0]))
                computed.extend(nb.tolist())
                diff = x[nb].astype(np.float64) - q
                dist = (diff * diff).sum(axis=1).tolist()
                work = costs.expansion_s + inserts[i] * costs.insert_s
                inserts[i] = 0
                if c == 0:  # one thread: it computes and inserts the distances itself
                    work += len(dist) * (costs.distance_s + costs.insert_s)
                    for u, du in zip(nb.tolist(), dist, strict=True):
                        push(now + work, 0, (du, u, i, me))
                else:  # handed to the calculators, and each distance handed back
                    ready = now + work + costs.handoff_s
                    for u, du in zip(nb.tolist(), dist, strict=True):
                        start = max(ready, heapq.heappop(calc_free))
                        heapq.heappush(calc_free, start + costs.distance_s)
                        push(start + costs.distance_s + costs.handoff_s, 0, (du, u, i, me))
                    busy_c += len(dist) * costs.distance_s
                    inflight[i] += len(dist)
                busy_m += work
                push(now + work, 2, (i,))
        if pending == 0 and all(idle):
            break
    order = sorted((-nd, -nv) for nd, nv in s.top)[:k]
    search = SearchTrace(
        ids=np.array([v for _, v in order], dtype=np.int64),
        distances=np.array([d for d, _ in order], dtype=np.float64),
        expanded=np.array(expanded, dtype=np.int64), parents=np.array(parents, dtype=np.int64),
        hops=np.array(hops, dtype=np.int64), found=np.array(found, dtype=np.int64),
        computed=np.array(computed, dtype=np.int64))
    return AsyncTrace(search=search, expansion_start_s=np.array(starts), latency_s=end,
                      maintainers=m, calculators=c, balancer=balancer, balances=balances,
                      maintainer_busy_s=busy_m, calculator_busy_s=busy_c,
                      thresholds=np.array(s.thresholds))


def _balance(s: _Search, idle: list[bool], now: float,
             push: Callable[[float, int, tuple], None]) -> int:
    """One balancer pass: when a maintainer holds no candidate under the threshold and another
    holds two or more, deal them all out again, nearest first, in turn. Returns 1 if it moved
    candidates."""
    live = [[e for e in sq if (e[0], e[1]) <= s.thr] for sq in s.subq]
    sizes = [len(sq) for sq in live]
    if min(sizes) > 0 or max(sizes) < 2:
        return 0
    pool = sorted(e for sq in live for e in sq)
    m = len(s.subq)
    for i in range(m):
        s.subq[i] = pool[i::m]  # sorted, so already a heap
        if s.subq[i] and idle[i]:
            idle[i] = False
            push(now, 2, (i,))
    return 1
