"""RetroInfer (serving.md §5.4, serving-deeper.md §3): the index partitions the tokens, the zones
rank and partition the clusters, the estimate is a Jensen lower bound, the exactness limits, the
cache's conservation and capacity, LRU never beats Belady, and named errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract.retrieval import (
    CacheView,
    InvalidZones,
    RetrievalView,
    WaveIndex,
    Zones,
    cluster_count,
    cluster_masses,
    validate_zones,
    zone_attention,
)
from schedlab.policies import CACHE_POLICIES, ZONE_POLICIES
from schedlab.policies.retroinfer import build_wave_index, lru_victims, retroinfer_zones
from schedlab.sim import replay_cache
from schedlab.solvers import solve_cache_replacement, verify_cache_schedule
from schedlab.testing import check_cache_policy, check_zone_policy, retrieval_views

PROPS = settings(max_examples=80, deadline=None, database=None, derandomize=True)


@pytest.mark.parametrize("name", sorted(ZONE_POLICIES))
def test_zone_policies_keep_the_contract(name: str) -> None:
    check_zone_policy(name, max_examples=60)


@pytest.mark.parametrize("name", sorted(CACHE_POLICIES))
def test_cache_policies_keep_the_contract(name: str) -> None:
    check_cache_policy(name, max_examples=60)


@settings(max_examples=25, deadline=None, database=None, derandomize=True)
@given(st.integers(1, 700), st.integers(1, 6), st.integers(2, 16), st.integers(32, 256),
       st.integers(0, 5))
def test_index_partitions_tokens_and_keeps_means_and_sums(n: int, d: int, c: int, seg: int,
                                                          sink: int) -> None:
    rng = np.random.default_rng(n)
    keys, vals = rng.normal(size=(n, d)), rng.normal(size=(n, 3))
    idx = build_wave_index(keys, vals, cluster_tokens=c, segment_tokens=seg, sink_tokens=sink,
                           local_tokens=8, iterations=3)
    of = idx.cluster_of
    assert (of[: min(sink, n)] == -1).all() and (of[max(min(sink, n), n - 8):] == -1).all()
    assert idx.sizes.sum() + idx.steady_tokens().shape[0] == n
    for i in range(idx.n_clusters):
        members = of == i
        assert members.sum() == idx.sizes[i]
        if members.any():
            assert np.allclose(idx.centroids[i], keys[members].mean(axis=0))
            assert np.allclose(idx.value_sums[i], vals[members].sum(axis=0))
    m, segs = cluster_count(max(n - min(sink, n) - 8, 0), cluster_tokens=c, segment_tokens=seg)
    assert idx.n_clusters == m and (m == 0 or m % np.lcm(8, segs) == 0)


@PROPS
@given(retrieval_views(), st.floats(0.01, 1.0), st.floats(0.0, 1.0))
def test_zones_rank_and_count(view: RetrievalView, rb: float, eb: float) -> None:
    z = retroinfer_zones(view, retrieval_budget=rb, estimation_budget=eb)
    validate_zones(view, z)
    idx = view.index
    score = idx.centroids @ view.query
    dropped = np.setdiff1d(np.flatnonzero(idx.sizes > 0), np.union1d(z.retrieval, z.estimation))
    if z.estimation.shape[0]:
        assert score[z.retrieval].min() >= score[z.estimation].max()
    later = np.union1d(z.estimation, dropped) if z.estimation.shape[0] == 0 else dropped
    if later.shape[0] and z.retrieval.shape[0]:
        top = score[z.estimation].min() if z.estimation.shape[0] else score[z.retrieval].min()
        assert top >= score[later].max()
    m = idx.n_clusters
    if m:
        nprobe = max(round(m * rb), 1)
        assert z.retrieval.shape[0] == min(nprobe, int((idx.sizes > 0).sum()))
        assert z.retrieval.shape[0] + z.estimation.shape[0] <= m


@PROPS
@given(retrieval_views())
def test_estimate_is_a_jensen_lower_bound(view: RetrievalView) -> None:
    rng = np.random.default_rng(7)
    n = view.index.cluster_of.shape[0]
    keys = rng.normal(size=(n, view.query.shape[0]))
    idx = WaveIndex.from_assignment(keys, np.zeros((n, 1)), view.index.cluster_of)
    exact, est = cluster_masses(RetrievalView(query=view.query, index=idx), keys)
    assert (est <= exact * (1 + 1e-9) + 1e-300).all()
    single = idx.sizes == 1
    assert np.allclose(est[single], exact[single])


@PROPS
@given(st.integers(1, 120), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_exactness_limits_and_normalisation(n: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys, vals = rng.normal(size=(n, d)), rng.normal(size=(n, 2))
    q = rng.normal(size=d)
    logits = keys @ q / np.sqrt(d)
    w = np.exp(logits - logits.max())
    full = (w / w.sum()) @ vals
    idx = build_wave_index(keys, vals, cluster_tokens=4, sink_tokens=1, local_tokens=2)
    view = RetrievalView(query=q, index=idx)
    everything = retroinfer_zones(view, retrieval_budget=1.0)  # retrieve every cluster
    assert np.allclose(zone_attention(view, keys, vals, everything), full)
    unit = np.ones((n, 1))  # values of 1 (value sums: the sizes): the weights must sum to 1
    one_view = RetrievalView(query=q, index=WaveIndex.from_assignment(keys, unit, idx.cluster_of))
    assert np.allclose(zone_attention(one_view, keys, unit, retroinfer_zones(one_view)), 1.0)
    each = WaveIndex.from_assignment(keys, vals, np.arange(n))  # clusters of one token
    est_all = Zones(retrieval=np.array([0]), estimation=np.arange(1, n))
    assert np.allclose(zone_attention(RetrievalView(query=q, index=each), keys, vals, est_all),
                       full)


def _random_trace(rng: np.random.Generator, steps: int, ids: int, per: int) -> list:
    return [rng.choice(ids, size=min(per, ids), replace=False) for _ in range(steps)]


@PROPS
@given(st.integers(1, 40), st.integers(2, 30), st.integers(1, 6), st.integers(0, 12),
       st.integers(0, 2**31 - 1))
def test_cache_runs_conserve_and_never_beat_belady(steps: int, ids: int, per: int, cap: int,
                                                   seed: int) -> None:
    trace = _random_trace(np.random.default_rng(seed), steps, ids, per)
    best = solve_cache_replacement(trace, cap)
    assert verify_cache_schedule(trace, cap, best.schedule) == best.objective
    for name in CACHE_POLICIES:
        run = replay_cache(trace, cap, name)
        assert (run.hits + run.misses == [len(r) for r in trace]).all()
        assert all(r.shape[0] <= cap for r in run.resident)
        assert verify_cache_schedule(trace, cap, run.resident) == run.misses.sum()
        assert run.misses.sum() >= best.objective


@settings(max_examples=30, deadline=None, database=None, derandomize=True)
@given(st.integers(1, 6), st.integers(2, 5), st.integers(1, 2), st.integers(0, 3),
       st.integers(0, 2**31 - 1))
def test_belady_is_the_brute_force_optimum(steps: int, ids: int, per: int, cap: int,
                                           seed: int) -> None:
    """Dynamic programming over every resident set."""
    trace = _random_trace(np.random.default_rng(seed), steps, ids, per)
    states = {frozenset(): 0}
    for req in trace:
        nxt: dict[frozenset, int] = {}
        for held, cost in states.items():
            miss = cost + sum(1 for c in req.tolist() if c not in held)
            pool = sorted(held | set(req.tolist()))
            for k in range(min(cap, len(pool)) + 1):
                for keep in itertools.combinations(pool, k):
                    f = frozenset(keep)
                    nxt[f] = min(nxt.get(f, miss), miss)
        states = nxt
    assert solve_cache_replacement(trace, cap).objective == min(states.values())


def test_lru_evicts_the_least_recent_and_reports_a_bad_policy() -> None:
    v = CacheView(step=3, capacity=2, resident=[5, 6], last_used=[1, 2], admitted=[0, 0],
                  requested=[7], admitting=[7])
    assert lru_victims(v).tolist() == [5]
    with pytest.raises(ValueError, match="at step 1: wrong count"):
        replay_cache([np.array([1, 2]), np.array([3])], 1, lambda view: np.zeros(0, int))


@pytest.mark.parametrize(("build", "match"), [
    (lambda: WaveIndex(centroids=np.zeros((2, 1)), sizes=[1, 0], value_sums=np.zeros((2, 1)),
                       cluster_of=[0, 0]), "sizes must count"),
    (lambda: WaveIndex(centroids=np.zeros((1, 1)), sizes=[1], value_sums=np.zeros((1, 1)),
                       cluster_of=[3]), "cluster_of must hold"),
    (lambda: WaveIndex.from_assignment([[np.nan]], [[0.0]], [0]), "finite"),
    (lambda: RetrievalView(query=[1.0, 2.0],
                           index=WaveIndex.from_assignment([[0.0]], [[0.0]], [0])),
     "query has 2 dimensions"),
    (lambda: Zones(retrieval=np.array([0.5]), estimation=np.array([], int)), "cluster ids"),
    (lambda: replay_cache([np.array([-1])], 2), r"trace\[0\]"),
    (lambda: replay_cache([np.array([1, 1])], 2), "twice"),
    (lambda: replay_cache([np.array([1])], -1), "'capacity'"),
    (lambda: solve_cache_replacement([np.array([1.5])], 1), r"trace\[0\]"),
    (lambda: build_wave_index(np.zeros((0, 2)), np.zeros((0, 2))), "'keys' and 'values'"),
    (lambda: retroinfer_zones(RetrievalView(query=[1.0], index=WaveIndex.from_assignment(
        [[0.0]], [[0.0]], [0])), retrieval_budget=0.0), "'retrieval_budget'"),
    (lambda: verify_cache_schedule([np.array([1])], 1, [np.array([1, 2])]), "holds 2 clusters"),
    (lambda: replay_cache(5, 2), "sequence of arrays"),
    (lambda: WaveIndex(centroids=np.zeros((1, 1)), sizes=[2.7], value_sums=np.zeros((1, 1)),
                       cluster_of=[0, 0]), "must hold integers"),
    (lambda: CacheView(step=1, capacity=None, resident=[], last_used=[], admitted=[],
                       requested=[], admitting=[]), "capacity must be an int"),
    (lambda: CacheView(step=1, capacity=3, resident=[1, 1], last_used=[0, 0], admitted=[0, 0],
                       requested=[], admitting=[]), "twice"),
    (lambda: CacheView(step=1, capacity=3, resident=[1], last_used=[0], admitted=[0],
                       requested=[2], admitting=[5]), "the step's misses"),
    (lambda: zone_attention(RetrievalView(query=[1.0], index=WaveIndex.from_assignment(
        [[0.0]] * 2, [[0.0]] * 2, [0, 0])), np.zeros((3, 1)), np.zeros((2, 1)),
        Zones(retrieval=np.array([0]), estimation=np.array([], int))), "one row per token"),
])
def test_bad_input_names_the_field(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_validate_zones_rules() -> None:
    idx = WaveIndex.from_assignment([[0.0]] * 3, [[0.0]] * 3, [0, 1, 2])
    v = RetrievalView(query=[1.0], index=idx)
    for zones, rule in ((Zones(retrieval=np.array([3]), estimation=np.array([], int)),
                         "out of range"),
                        (Zones(retrieval=np.array([0, 0]), estimation=np.array([], int)),
                         "repeated cluster"),
                        (Zones(retrieval=np.array([], int), estimation=np.array([1])),
                         "nothing retrieved")):
        with pytest.raises(InvalidZones, match=rule):
            validate_zones(v, zones)
    holed = WaveIndex.from_assignment([[0.0]] * 2, [[0.0]] * 2, [1, 1], n_clusters=3)
    with pytest.raises(InvalidZones, match="nothing retrieved"):  # only an empty cluster
        validate_zones(RetrievalView(query=[1.0], index=holed),
                       Zones(retrieval=np.array([0]), estimation=np.array([], int)))
