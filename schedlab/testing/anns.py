"""Property checks of graph-ANNS searches, ours or a researcher's (AverSearch, issue 18).

:func:`search_problems` generates small problems (random vectors, their proximity graph, a
query, a beam width, a thread count and step costs); :func:`check_ann_search` runs a search
(a name of :data:`schedlab.policies.ANN_SEARCHES` or any callable with its signature) on them
and checks the digest's invariants that any correct search keeps:

- it answers a :class:`~schedlab.contract.anns.SearchTrace`, :class:`ForkJoinTrace` or
  :class:`AsyncTrace` whose expansions are consistent (each found by an earlier one, the
  distances each computed summing to the work);
- its ``k`` results are distinct, sorted by true distance, each computed, and no distance was
  computed twice (an atomic visited set);
- with a beam covering the graph, the results are exact;
- with one thread it expands exactly what the sequential search expands (pass
  ``sequential_at_one=False`` for a search that does not promise this);
- an asynchronous search's L-threshold never increases and its roles' busy time fits in
  ``threads * latency``;
- it leaves its inputs untouched and answers equal inputs equally.

>>> check_ann_search("aversearch", max_examples=5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedlab.contract.anns import AsyncTrace, ForkJoinTrace, SearchCosts, SearchTrace
from schedlab.datasets.vector_graph import build_graph
from schedlab.errors import check_positive_int
from schedlab.policies.anns import beam_search
from schedlab.policies.registry import get_ann_search

__all__ = ["check_ann_search", "search_problems"]


@st.composite
def search_problems(draw: st.DrawFn, *, max_vectors: int = 120,
                    threads: tuple[int, ...] = (1, 2, 4, 8, 16)) -> dict[str, Any]:
    """A small search problem: ``base`` vectors (8 to ``max_vectors``, 2 to 12 dimensions,
    clustered or not), its ``graph`` (degree 3 to 10), a ``query``, ``beam_width`` and ``k``,
    one of ``threads`` and random positive step ``costs``.

    >>> from hypothesis import find
    >>> p = find(search_problems(), lambda p: p["threads"] > 1)
    >>> sorted(p)
    ['base', 'beam_width', 'costs', 'graph', 'k', 'query', 'threads']
    """
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(8, max_vectors))
    dim = draw(st.integers(2, 12))
    if draw(st.booleans()):
        centres = rng.normal(0, 4, (draw(st.integers(1, 5)), dim))
        base = centres[rng.integers(0, centres.shape[0], n)] + rng.normal(0, 1, (n, dim))
    else:
        base = rng.normal(0, 1, (n, dim))
    base = base.astype(np.float32)
    graph = build_graph(base, degree=draw(st.integers(3, 10)), alpha=draw(
        st.sampled_from((1.0, 1.2))))
    k = draw(st.integers(1, min(10, n)))
    ms = st.floats(1e-9, 1e-6, allow_nan=False)
    costs = SearchCosts(expansion_s=draw(ms), distance_s=draw(ms), insert_s=draw(ms) / 10,
                        barrier_s=draw(ms), merge_entry_s=draw(ms) / 100,
                        handoff_s=draw(ms) / 10)
    return {"graph": graph, "base": base,
            "query": rng.normal(0, 2, dim).astype(np.float32),
            "beam_width": draw(st.integers(k, n + 5)), "k": k,
            "threads": draw(st.sampled_from(threads)), "costs": costs}


def _fail(rule: str, detail: str) -> None:
    raise AssertionError(f"check_ann_search: {rule}: {detail}")


def check_ann_search(search: str | Callable[..., Any], *, max_examples: int = 30,
                     threads: tuple[int, ...] | None = None,
                     problems: st.SearchStrategy | None = None, sequential_at_one: bool = True,
                     **params: Any) -> None:
    """Check a graph search on :func:`search_problems` with thread counts drawn from
    ``threads`` (default 1 to 16; only 1 for the registered ``"sequential"`` search, which
    runs one query per thread), or on ``problems``, against the invariants of the module
    docstring; ``params`` are passed to it. Raises ``AssertionError`` naming the rule broken,
    with hypothesis's smallest failing problem."""
    where = "check_ann_search"
    fn = get_ann_search(search)
    n_examples = check_positive_int(max_examples, "max_examples", where)
    if threads is None:
        threads = (1,) if search == "sequential" else (1, 2, 4, 8, 16)
    counts = tuple(check_positive_int(t, "threads", where) for t in threads)
    if not counts:
        raise ValueError(f"The 'threads' parameter of {where} must name at least one count.")

    @settings(max_examples=n_examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
              print_blob=False)
    @given(problems if problems is not None else search_problems(threads=counts))
    def run(p: dict[str, Any]) -> None:
        _check_one(fn, p, sequential_at_one, params)

    run()


def _check_one(fn: Callable[..., Any], p: dict[str, Any], sequential_at_one: bool,
               params: dict[str, Any]) -> None:
    g, base, q = p["graph"], p["base"], p["query"]
    base0, q0 = base.copy(), q.copy()
    kwargs = dict(threads=p["threads"], costs=p["costs"], beam_width=p["beam_width"], k=p["k"],
                  **params)
    tr = fn(g, base, q, **kwargs)
    if not isinstance(tr, (SearchTrace, ForkJoinTrace, AsyncTrace)):
        _fail("malformed answer", f"expected a SearchTrace, ForkJoinTrace or AsyncTrace, got "
                                  f"{type(tr).__name__}")
    if not (np.array_equal(base, base0) and np.array_equal(q, q0)):
        _fail("not pure", "the search changed its base vectors or its query")
    s = tr.search
    ids = np.asarray(s.ids)
    if ids.shape[0] != p["k"] or np.unique(ids).shape[0] != ids.shape[0]:
        _fail("results", f"expected {p['k']} distinct ids, got {ids.tolist()}")
    true = ((base[ids].astype(np.float64) - q.astype(np.float64)) ** 2).sum(axis=1)
    if not np.allclose(true, s.distances, rtol=1e-9, atol=1e-9) or \
            (np.diff(s.distances) < 0).any():
        _fail("results", "distances not the true ones in ascending order")
    if not np.isin(ids, s.computed).all():
        _fail("results", "an id was returned without its distance computed")
    if np.unique(s.computed).shape[0] != s.computed.shape[0]:
        _fail("duplicate computation", "a vertex's distance was computed twice")
    m = s.expanded.shape[0]
    if m and (s.parents[0] != -1 or (s.parents[1:] >= np.arange(1, m)).any()
              or int(s.found.sum()) + 1 != s.work):
        _fail("trace", "each expansion must be found by an earlier one and the distances "
                       "each computed must sum to the work")
    if p["beam_width"] >= g.n and bool(g.reachable().all()):
        every = np.sort(((base.astype(np.float64) - q.astype(np.float64)) ** 2).sum(axis=1))
        if not np.allclose(s.distances, every[: p["k"]], rtol=1e-9, atol=1e-9):
            _fail("exact search", "a beam covering the graph must return the exact nearest")
    if isinstance(tr, AsyncTrace):
        if (np.diff(tr.thresholds) > 0).any():
            _fail("threshold", "the L-threshold increased")
        if tr.maintainer_busy_s + tr.calculator_busy_s > p["threads"] * tr.latency_s * (
                1 + 1e-9):
            _fail("busy time", "the roles were busy longer than the threads exist")
    if not np.array_equal(s.computed, fn(g, base, q, **kwargs).search.computed):
        _fail("not deterministic", "equal inputs gave different searches")
    if sequential_at_one and p["threads"] == 1:
        seq = beam_search(g, base, q, beam_width=p["beam_width"], k=p["k"])
        if not np.array_equal(seq.expanded, s.expanded):
            _fail("one thread", "with one thread the search must expand what the sequential "
                                "search expands")
