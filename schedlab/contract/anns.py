"""The graph-ANNS contract: what one step of a graph search costs, and the traces a search
leaves (AverSearch, arXiv 2504.20461; issue 18).

A parallel graph search is a schedule of two kinds of step: an *expansion* (pop the nearest
candidate, read its neighbour list, test-and-set its neighbours in the visited set) and a
*distance computation* (read a vertex's vector, compute its distance to the query, insert it
into a queue). Fork-join designs add a *barrier* and a *merge* per round. :class:`SearchCosts`
holds the seconds each takes on one thread while ``active_threads`` threads share the memory
system; :func:`schedlab.costmodel.cpu.search_costs` derives them from a processor's datasheet,
and the asynchronous search (:func:`schedlab.policies.aversearch.async_search`) and the
fork-join costing (:mod:`schedlab.sim.anns`) read them. A search answers with a trace:
:class:`SearchTrace` (what it expanded and computed), :class:`ForkJoinTrace` (plus its rounds),
:class:`AsyncTrace` (plus the time it took). They live here so that the policies (which may not
load the cost model), the cost model and the simulator speak one record.

>>> c = SearchCosts(expansion_s=2e-7, distance_s=1e-7, insert_s=1e-8, barrier_s=1e-6,
...                 merge_entry_s=2e-9, active_threads=8)
>>> round(c.expansion_time_s(found=10) * 1e9)   # ns: one expansion that computed 10
1300
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["AsyncTrace", "ForkJoinTrace", "SearchCosts", "SearchTrace"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchCosts:
    """Seconds per step of a graph search on one thread (see the module docstring).

    - ``expansion_s``: pop a candidate and read its neighbour list (a dependent DRAM access);
    - ``distance_s``: one neighbour's vector read and distance, at the thread's share of the
      memory bandwidth;
    - ``insert_s``: one candidate's insertion into a sorted queue (cache resident);
    - ``barrier_s``: one fork-join round's fork and join across its threads;
    - ``merge_entry_s``: one queue entry of a fork-join merge;
    - ``handoff_s``: a value written by one core and read by another (a cache line's transfer):
      what an asynchronous design pays to pass a vertex to a calculator and its distance back;
    - ``active_threads``: the threads sharing the memory system when these were derived (for
      the record: the costs already hold the share).
    """

    expansion_s: float
    distance_s: float
    insert_s: float
    barrier_s: float
    merge_entry_s: float
    handoff_s: float = 0.0
    active_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("expansion_s", "distance_s", "insert_s", "barrier_s", "merge_entry_s",
                     "handoff_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or value < 0:
                raise ValueError(f"The '{name}' parameter of SearchCosts must be a finite "
                                 f"number >= 0. Got {value!r}.")
            object.__setattr__(self, name, float(value))
        if self.expansion_s <= 0 or self.distance_s <= 0:
            raise ValueError("SearchCosts needs expansion_s > 0 and distance_s > 0. Got "
                             f"{self.expansion_s!r} and {self.distance_s!r}.")
        t = self.active_threads
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ValueError(f"The 'active_threads' parameter of SearchCosts must be a positive "
                             f"int. Got {t!r}.")

    def expansion_time_s(self, found: int | float) -> float:
        """One expansion that computed ``found`` distances, on one thread: the pop and the
        neighbour list, then each distance and its insertion."""
        return self.expansion_s + found * (self.distance_s + self.insert_s)


@dataclass(frozen=True, slots=True)
class SearchTrace:
    """One query's search: ``ids`` and squared ``distances`` of the ``k`` results (nearest
    first, ties by id); ``expanded`` the vertices expanded, in order, with ``parents`` (the
    index of the expansion whose distance computations found each one; -1 for the entry), their
    hop depth ``hops`` (the entry is 0; a vertex is one more than its parent) and ``found`` (the
    distances each expansion computed); ``computed`` every vertex whose distance was computed,
    in order (the entry first). ``parents`` and ``found`` are the expansion DAG a parallel
    schedule must respect (:mod:`schedlab.solvers.expansion_dag`)."""

    ids: np.ndarray
    distances: np.ndarray
    expanded: np.ndarray
    parents: np.ndarray
    hops: np.ndarray
    found: np.ndarray
    computed: np.ndarray

    @property
    def search(self) -> SearchTrace:
        """The trace itself, so that every trace (:class:`ForkJoinTrace` and
        :class:`AsyncTrace` hold one) answers ``.search``."""
        return self

    @property
    def work(self) -> int:
        """Distance computations (each reads one vertex's vector and neighbour list)."""
        return int(self.computed.shape[0])

    @property
    def expansions(self) -> int:
        return int(self.expanded.shape[0])

    @property
    def span(self) -> int:
        """The deepest expansion's hop depth plus one: the expansions that must follow one
        another whatever the parallelism (each depends on a distance the one before
        computed)."""
        return int(self.hops.max()) + 1 if self.hops.shape[0] else 0


@dataclass(frozen=True, slots=True)
class ForkJoinTrace:
    """A fork-join search (:func:`schedlab.policies.anns.fork_join_search`): the
    :class:`SearchTrace` of the whole query and, per round and worker, the expansions and
    distance computations (``rounds x T``); a barrier and a merge end every round. Its
    redundant work is what it computes beyond the sequential search's."""

    search: SearchTrace
    round_expansions: np.ndarray
    round_computations: np.ndarray

    @property
    def rounds(self) -> int:
        return int(self.round_expansions.shape[0])


@dataclass(frozen=True, slots=True)
class AsyncTrace:
    """An asynchronous search (:func:`schedlab.policies.aversearch.async_search`): the
    :class:`SearchTrace` (expansions in the order they started, at ``expansion_start_s``), the
    ``latency_s`` from the query's arrival to its last step, the role split, the balancer
    passes that moved candidates, the busy seconds of each role, and the L-threshold's values
    as it tightened
    (``thresholds``, non-increasing)."""

    search: SearchTrace
    expansion_start_s: np.ndarray
    latency_s: float
    maintainers: int
    calculators: int
    balancer: bool
    balances: int
    maintainer_busy_s: float
    calculator_busy_s: float
    thresholds: np.ndarray
