"""Graph-ANNS searches priced on a processor, one query at a time and under load (AverSearch,
arXiv 2504.20461; issue 18).

A search policy (:data:`schedlab.policies.registry.ANN_SEARCHES`) runs the real search on the
real graph; this module prices what it did with :class:`~schedlab.contract.anns.SearchCosts`
from :func:`schedlab.costmodel.cpu.search_costs`:

- the **sequential** search: the entry's distance, then each expansion and its distances in
  turn;
- a **fork-join** search: the entry, then per round the slowest worker, a fork and a join, and
  the merge of every worker's queue;
- the **asynchronous** search prices itself as it runs (its decisions depend on time).

:func:`search_latencies_s` prices a fork-join trace under many cost settings at once (the
threads of a sweep); :func:`anns_table` runs queries through each system and thread count and
reports, per point, the latency of a query alone on the socket and, with ``cores`` shared by
``cores // T`` concurrent queries of ``T`` threads each, the loaded latency and throughput, the
work and its redundant ratio against the sequential search, recall@k, the effective bandwidth
(the sequential search's bytes per query times the throughput: AverSearch's ``PMB * (1 - RR)``)
and the efficiency against the work-span bound of the sequential search's expansion DAG.

>>> from schedlab.costmodel.cpu import search_costs
>>> from schedlab.datasets import build_graph, digits_vectors
>>> from schedlab.policies.anns import fork_join_search
>>> v = digits_vectors()
>>> g = build_graph(v.base, degree=16)
>>> tr = fork_join_search(g, v.base, v.queries[0], threads=4, beam_width=32)
>>> alone = search_costs("xeon-8380", dim=64, degree=16, threads=4)
>>> loaded = search_costs("xeon-8380", dim=64, degree=16, threads=4, active_threads=40)
>>> a, b = search_latencies_s(tr, [alone, loaded], beam_width=32)
>>> bool(b > a)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from schedlab.contract.anns import AsyncTrace, ForkJoinTrace, SearchCosts, SearchTrace
from schedlab.costmodel.cpu import Processor, get_processor, search_costs, vector_bytes
from schedlab.datasets.vector_graph import Graph
from schedlab.datasets.vectors import VectorSet
from schedlab.errors import check_instance, check_positive_int
from schedlab.policies.registry import get_ann_search
from schedlab.solvers.expansion_dag import ExpansionDag, work_span_bound

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["anns_table", "search_latencies_s", "search_latency_s", "sequential_bound_s",
           "sequential_dag"]


def _costs_array(costs: SearchCosts | Sequence[SearchCosts], where: str) -> np.ndarray:
    """Cost settings as columns: expansion, distance, insert, barrier, merge entry."""
    many = [costs] if isinstance(costs, SearchCosts) else list(costs)
    for c in many:
        check_instance(c, SearchCosts, "costs", where)
    return np.array([[c.expansion_s, c.distance_s, c.insert_s, c.barrier_s, c.merge_entry_s]
                     for c in many]).reshape(-1, 5)


def search_latencies_s(trace: SearchTrace | ForkJoinTrace,
                       costs: SearchCosts | Sequence[SearchCosts], *,
                       beam_width: int) -> np.ndarray:
    """The latency of a sequential or fork-join ``trace`` (see the module docstring) under
    each of ``costs``, vectorised over the cost settings: one matrix product per trace.
    ``beam_width`` is the length of each queue a fork-join merge reads."""
    where = "search_latencies_s"
    c = _costs_array(costs, where)
    width = check_positive_int(beam_width, "beam_width", where)
    exp_s, dist_s, ins_s, bar_s, merge_s = c.T
    if isinstance(trace, ForkJoinTrace):
        s = trace.search
        first = exp_s + s.found[0] * (dist_s + ins_s)
        workers = trace.round_expansions.shape[1]
        # per round and worker: expansions and computations, priced by every setting at once
        per = (trace.round_expansions[:, :, None] * exp_s
               + trace.round_computations[:, :, None] * (dist_s + ins_s))
        rounds = per.max(axis=1).sum(axis=0)
        sync = trace.rounds * (bar_s + (workers * width * merge_s if workers > 1 else 0.0))
        return dist_s + first + rounds + sync
    check_instance(trace, SearchTrace, "trace", where)
    return dist_s + trace.expansions * exp_s + int(trace.found.sum()) * (dist_s + ins_s)


def search_latency_s(trace: SearchTrace | ForkJoinTrace | AsyncTrace, costs: SearchCosts, *,
                     beam_width: int) -> float:
    """One trace's latency under one cost setting (an asynchronous trace carries its own)."""
    if isinstance(trace, AsyncTrace):
        return trace.latency_s
    return float(search_latencies_s(trace, costs, beam_width=beam_width)[0])


def sequential_dag(trace: SearchTrace, costs: SearchCosts, threads: int) -> ExpansionDag:
    """The task DAG of the sequential ``trace`` on ``threads`` threads priced by ``costs``: a
    node per distance computation (``distance_s + insert_s``; the entry's first) and per
    expansion (``expansion_s``); an expansion follows the distance of its vertex, a distance
    the expansion that found its vertex. Any parallel run of this search's work respects it."""
    check_instance(trace, SearchTrace, "trace", "sequential_dag")
    n_exp = trace.expansions
    n = trace.work + n_exp
    durations = np.full(n, costs.distance_s + costs.insert_s)
    parents = np.empty(n, dtype=np.int64)
    node_of = {int(trace.computed[0]): 0}  # vertex -> its distance node
    parents[0] = -1
    durations[0] = costs.distance_s  # the entry's distance is computed before any queue exists
    pos, c = 1, 1
    computed = trace.computed.tolist()
    for v, f in zip(trace.expanded.tolist(), trace.found.tolist(), strict=True):
        me = pos
        durations[me] = costs.expansion_s
        parents[me] = node_of[v]
        for u in computed[c:c + f]:
            pos += 1
            parents[pos] = me
            node_of[u] = pos
        pos += 1
        c += f
    return ExpansionDag(durations_s=durations, parents=parents, workers=threads)


def sequential_bound_s(trace: SearchTrace, costs: SearchCosts, threads: int) -> float:
    """The work-span bound (:func:`schedlab.solvers.expansion_dag.work_span_bound`) of the
    sequential ``trace``'s task DAG (:func:`sequential_dag`) on ``threads`` threads: no
    schedule of that search's work finishes sooner. With one thread it is the sequential
    search's latency."""
    return work_span_bound(sequential_dag(trace, costs, threads))


def _sharing(fn: Callable[..., Any], traces: list[Any] | None, graph: Graph, base: np.ndarray,
             queries: np.ndarray, kwargs: dict[str, Any], cpu: Processor, dim: int, width: int,
             concurrent: int) -> tuple[list[float], list[Any], SearchCosts]:
    """Latencies of ``concurrent`` copies of each query sharing the socket: the threads
    streaming vectors at a time (``concurrent`` times a query's distance time over its
    latency) share its bandwidth, found by fixed-point iteration from every thread streaming
    (at most four rounds). A search runs again each round unless ``traces`` holds its
    time-independent traces, which are priced again. Returns the latencies, the traces and the
    costs of the last round."""
    threads = kwargs["threads"]
    streaming = concurrent * threads
    runs: list[Any] = [] if traces is None else traces
    for _ in range(4):
        costs = search_costs(cpu, dim=dim, degree=graph.degree, threads=threads,
                             active_threads=streaming)
        if not runs or isinstance(runs[0], AsyncTrace):
            runs = [fn(graph, base, q, costs=costs, **kwargs) for q in queries]
        lat = [search_latency_s(tr, costs, beam_width=width) for tr in runs]
        work = float(np.mean([tr.search.work for tr in runs]))
        busy = concurrent * work * costs.distance_s / float(np.mean(lat))
        now = min(concurrent * threads, max(1, round(busy)))
        if now == streaming:
            break
        streaming = now
    return lat, runs, costs


def _recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.isin(truth, ids).sum()) / truth.shape[0]


def anns_table(graph: Graph, vectors: VectorSet, *,
               systems: Sequence[str | Callable[..., Any]] = ("sequential", "fork-join",
                                                                "aversearch"),
               threads: Sequence[int] = (1, 2, 4, 8, 16, 32), beam_width: int = 64, k: int = 10,
               processor: str | Processor = "xeon-8380", cores: int | None = None,
               n_queries: int = 100,
               params: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Each system of ``systems`` (:data:`~schedlab.policies.registry.ANN_SEARCHES` names or
    callables) at each thread count of ``threads`` on the first ``n_queries`` queries of
    ``vectors`` (see the module docstring for the columns); the ``sequential`` system runs at
    one thread only. ``cores`` (default: the processor's) are shared under load by
    ``cores // T`` queries; ``params`` maps a system's name to keyword arguments for it.

    >>> from schedlab.datasets import build_graph, digits_vectors
    >>> v = digits_vectors()
    >>> g = build_graph(v.base, degree=16)
    >>> t = anns_table(g, v, threads=(1, 8), n_queries=5)
    >>> t[["system", "threads"]].values.tolist()
    [['sequential', 1], ['fork-join', 1], ['fork-join', 8], ['aversearch', 1], ['aversearch', 8]]
    >>> bool((t.efficiency <= 1 + 1e-9).all())
    True
    """
    import pandas as pd

    where = "anns_table"
    check_instance(graph, Graph, "graph", where)
    check_instance(vectors, VectorSet, "vectors", where)
    cpu = get_processor(processor)
    n_cores = cpu.cores if cores is None else check_positive_int(cores, "cores", where)
    if n_cores > cpu.cores:
        raise ValueError(f"The 'cores' parameter of {where} must be at most the {cpu.cores} "
                         f"cores of {cpu.name}. Got {n_cores}.")
    ts = [check_positive_int(t, "threads", where) for t in threads]
    if any(t > n_cores for t in ts):
        raise ValueError(f"The 'threads' parameter of {where} must be at most cores={n_cores}. "
                         f"Got {max(ts)}.")
    nq = min(check_positive_int(n_queries, "n_queries", where), vectors.queries.shape[0])
    width = check_positive_int(beam_width, "beam_width", where)
    queries = vectors.queries[:nq]
    truth = vectors.ground_truth(k)[:nq]
    seq = [get_ann_search("sequential")(graph, vectors.base, q, threads=1, beam_width=width,
                                          k=k) for q in queries]
    seq_work = float(np.mean([t.work for t in seq]))
    read_bytes = vector_bytes(vectors.dim)
    extra = dict(params or {})
    rows = []
    for system in systems:
        fn = get_ann_search(system)
        name = system if isinstance(system, str) else fn.__name__
        for t in ([1] if name == "sequential" else ts):
            concurrent = max(1, n_cores // t)
            kwargs = dict(threads=t, beam_width=width, k=k, **extra.get(name, {}))
            lat, traces, alone = _sharing(fn, None, graph, vectors.base, queries, kwargs, cpu,
                                          vectors.dim, width, 1)
            lat_loaded = lat if concurrent == 1 else _sharing(
                fn, traces, graph, vectors.base, queries, kwargs, cpu, vectors.dim, width,
                concurrent)[0]
            searches = [tr.search for tr in traces]
            work = [s.work for s in searches]
            rounds = [tr.rounds if isinstance(tr, ForkJoinTrace) else math.nan for tr in traces]
            recall = [_recall(s.ids, truth[i]) for i, s in enumerate(searches)]
            bound = [sequential_bound_s(seq[i], alone, t) for i in range(nq)]
            mean_loaded = float(np.mean(lat_loaded))
            qps = concurrent / mean_loaded
            rows.append({
                "system": name, "threads": t, "queries": nq,
                "latency_us": float(np.mean(lat)) * 1e6,
                "p99_latency_us": float(np.quantile(lat, 0.99)) * 1e6,
                "loaded_latency_us": mean_loaded * 1e6, "concurrent": concurrent, "qps": qps,
                "work": float(np.mean(work)), "redundant_ratio": 1 - seq_work / np.mean(work),
                "recall": float(np.mean(recall)), "rounds": float(np.mean(rounds)),
                "effective_gbs": qps * seq_work * read_bytes / 1e9,
                "bound_us": float(np.mean(bound)) * 1e6,
                "efficiency": float(np.mean(bound)) / float(np.mean(lat)),
            })
    return pd.DataFrame(rows)
