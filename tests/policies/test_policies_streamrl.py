"""Rollout dispatch policies and StreamRL's pipeline, balancing and elastic rules: the
invariants of the digest (rollout-anns-serverless.md §2.7) as property tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract.dispatch import Dispatch, DispatchView, InvalidDispatch, validate_dispatch
from schedlab.contract.placement import DecodeStepModel
from schedlab.policies import DISPATCHES, get_dispatch
from schedlab.policies.rollout import group_round_robin, groups_of, lpt_dispatch, random_dispatch
from schedlab.policies.streamrl import (
    balance_cross_dc,
    balance_stages,
    dynamic_batches,
    elastic_scale_up,
    pool_latency_s,
    rl_pipeline,
    skew_aware_dispatch,
)
from schedlab.testing import check_dispatch, dispatch_views

FAST = settings(max_examples=60, deadline=None, database=None)


@pytest.mark.parametrize("name", sorted(DISPATCHES))
def test_check_dispatch_every_registered_policy(name):
    check_dispatch(name, max_examples=40)


@pytest.mark.parametrize("params", [{"combine": "max"}, {"group_level": False},
                                    {"alpha": 1.0}, {"alpha": 0.05, "long_quantile": 99.0}])
def test_check_dispatch_skew_aware_variants(params):
    check_dispatch("skew-aware", max_examples=30, **params)


def test_unknown_dispatch_lists_close_matches():
    with pytest.raises(ValueError, match="skew-aware"):
        get_dispatch("skew-awar")


# ------------------------------------------------------------------ the contract
def test_validate_dispatch_rules():
    v = DispatchView.from_columns(input_tokens=[1, 1, 1], n_instances=2)
    ok = Dispatch(instance=np.array([0, 1, 1]), order=np.array([2, 0, 1]))
    validate_dispatch(v, ok)
    for bad, rule in (
        (Dispatch(instance=np.array([0, 1]), order=np.array([0, 1])), "wrong length"),
        (Dispatch(instance=np.array([0, -1, 1]), order=np.array([0, 1, 2])), "out of range"),
        (Dispatch(instance=np.array([0, 1, 1]), order=np.array([0, 0, 2])), "permutation"),
        (Dispatch(instance=np.array([0, 1, 1]), order=np.array([0, 1, 2]), long_instances=3),
         "long pool"),
        (Dispatch(instance=np.array([0, 1, 1]), order=np.array([0, 1, 2]),
                  est_makespan_s=-1.0), "estimate"),
    ):
        with pytest.raises(InvalidDispatch, match=rule):
            validate_dispatch(v, bad)


def test_dispatch_view_bad_input_names_the_field():
    with pytest.raises(ValueError, match="output_tokens_pred"):
        DispatchView.from_columns(input_tokens=[1, 2], n_instances=1,
                                  output_tokens_pred=[1.0, math.nan])
    with pytest.raises(ValueError, match="group_id"):
        DispatchView.from_columns(input_tokens=[1, 2], n_instances=1, group_id=[0])
    with pytest.raises(ValueError, match="n_instances"):
        DispatchView.from_columns(input_tokens=[1], n_instances=0)
    with pytest.raises(ValueError, match=r"Dispatch\.instance"):
        Dispatch(instance=np.array([0.5]), order=np.array([0]))


# ------------------------------------------------------------------ baselines
@FAST
@given(dispatch_views())
def test_group_round_robin_deals_prompts_in_turn(view):
    d = group_round_robin(view)
    _, g = groups_of(view)
    assert np.array_equal(d.instance, g % view.n_instances)
    assert np.array_equal(d.order, np.arange(view.n))


@FAST
@given(dispatch_views(), st.integers(0, 100))
def test_random_keeps_groups_together_and_is_seeded(view, seed):
    d = random_dispatch(view, seed=seed)
    for gid in np.unique(view.group_id):
        assert np.unique(d.instance[view.group_id == gid]).shape[0] == 1
    assert np.array_equal(d.instance, random_dispatch(view, seed=seed).instance)


def test_random_seeds_differ():
    v = DispatchView.from_columns(input_tokens=[1] * 50, n_instances=8)
    assert not np.array_equal(random_dispatch(v, seed=0).instance,
                              random_dispatch(v, seed=1).instance)


@FAST
@given(dispatch_views(), st.booleans())
def test_lpt_order_and_greedy_choice(view, group_level):
    d = lpt_dispatch(view, group_level=group_level)
    pred = view.output_tokens_pred
    for i in range(view.n_instances):
        assert (np.diff(pred[d.admission_order(i)]) <= 0).all()
    # replay: each item went to an instance of least load at its turn
    if group_level:
        _, g = groups_of(view)
    else:
        g = np.arange(view.n)
    work = np.bincount(g, weights=pred)
    inst = np.zeros(work.shape[0], dtype=np.int64)
    inst[g] = d.instance
    load = np.zeros(view.n_instances)
    for j in np.argsort(-work, kind="stable"):
        assert load[inst[j]] == load.min()
        load[inst[j]] += work[j]


def _lpt_makespan(work, m):
    load = np.zeros(m)
    for w in sorted(work, reverse=True):
        load[np.argmin(load)] += w
    return load.max()


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=8), st.integers(1, 3))
def test_lpt_within_graham_bound_of_brute_force(work, m):
    """Graham's LPT bound, 4/3 - 1/(3m), against the exact optimum (brute force)."""
    best = math.inf
    for code in range(m ** len(work)):
        load = np.zeros(m)
        c = code
        for w in work:
            load[c % m] += w
            c //= m
        best = min(best, load.max())
    v = DispatchView.from_columns(input_tokens=[1] * len(work), n_instances=m,
                                  output_tokens_pred=np.array(work, dtype=float))
    d = lpt_dispatch(v, group_level=False)
    got = np.bincount(d.instance, weights=np.array(work, dtype=float), minlength=m).max()
    assert got == _lpt_makespan(work, m)
    assert got <= (4 / 3 - 1 / (3 * m)) * best + 1e-9


# ------------------------------------------------------------------ skew-aware (Algorithm 2)
def _scores(view, group_level):
    if group_level:
        _, g = groups_of(view)
        size = np.bincount(g)
        return np.bincount(g, weights=view.output_tokens_pred) / size, g, size
    return view.output_tokens_pred, np.arange(view.n), np.ones(view.n, dtype=np.int64)


@FAST
@given(dispatch_views(), st.floats(0.01, 1.0), st.sampled_from(["sum", "max"]), st.booleans())
def test_skew_aware_invariants(view, alpha, combine, group_level):
    d = skew_aware_dispatch(view, alpha=alpha, combine=combine, group_level=group_level)
    validate_dispatch(view, d)
    score, g, size = _scores(view, group_level)
    k = view.n_instances
    inst = np.zeros(score.shape[0], dtype=np.int64)
    inst[g] = d.instance
    for gid in range(score.shape[0]):  # a prompt's samples share its instance
        assert (d.instance[g == gid] == inst[gid]).all()
    long = inst < d.long_instances
    n_long = math.ceil(alpha * score.shape[0])
    if d.long_instances:
        assert long.sum() == n_long
        # the long pool outranks the regular pool
        assert score[long].min() >= score[~long].max()
        # the split is the best of every split, by the same latency model (brute force)
        dist = view.history_tokens if view.history_tokens.shape[0] else view.output_tokens_pred
        lengths = (float(np.percentile(dist, 90)), float(np.percentile(dist, 50)))
        samples = (int(size[long].sum()), int(size[~long].sum()))
        kw = dict(max_batch_size=view.max_batch_size, kv_capacity_tokens=view.kv_capacity_tokens,
                  prompt_tokens=float(view.input_tokens.mean()))
        totals = []
        for n_l in range(1, k):
            parts = (pool_latency_s(view.decode_step, samples[0], lengths[0], n_l, **kw),
                     pool_latency_s(view.decode_step, samples[1], lengths[1], k - n_l, **kw))
            totals.append(sum(parts) if combine == "sum" else max(parts))
        assert d.est_makespan_s == pytest.approx(min(totals))
        assert d.long_instances == 1 + int(np.argmin(totals))
    else:
        assert k == 1 or n_long == score.shape[0]
    for i in range(k):  # longest predicted first within every instance
        assert (np.diff(view.output_tokens_pred[d.admission_order(i)]) <= 0).all()


@FAST
@given(st.lists(st.floats(1.0, 1e5), min_size=2, max_size=30, unique=True),
       st.integers(1, 6), st.randoms(use_true_random=False))
def test_skew_aware_ignores_input_order_with_distinct_scores(pred, k, rnd):
    n = len(pred)
    perm = list(range(n))
    rnd.shuffle(perm)
    perm = np.array(perm)
    a = DispatchView.from_columns(input_tokens=[100] * n, n_instances=k, output_tokens_pred=pred,
                                  max_batch_size=4)
    b = DispatchView.from_columns(input_tokens=[100] * n, n_instances=k,
                                  output_tokens_pred=np.array(pred)[perm], max_batch_size=4)
    da, db = skew_aware_dispatch(a), skew_aware_dispatch(b)
    assert np.array_equal(da.instance[perm], db.instance)
    assert da.long_instances == db.long_instances


def test_skew_aware_isolates_the_long_tail():
    """Fig. 6-left: the long samples go to a small-batch pool of their own."""
    pred = [100.0] * 90 + [20_000.0] * 10
    v = DispatchView.from_columns(input_tokens=[100] * 100, n_instances=8,
                                  output_tokens_pred=pred, max_batch_size=64,
                                  decode_step=DecodeStepModel(base_s=0.008, per_request_s=1e-4))
    d = skew_aware_dispatch(v, alpha=0.1)
    assert 1 <= d.long_instances < 8
    assert (d.instance[90:] < d.long_instances).all()
    assert (d.instance[:90] >= d.long_instances).all()


def test_skew_aware_bad_parameters_name_the_field():
    v = DispatchView.from_columns(input_tokens=[1], n_instances=2)
    for params, field in (({"alpha": 0.0}, "alpha"), ({"alpha": 1.5}, "alpha"),
                          ({"combine": "mean"}, "combine"),
                          ({"long_quantile": 101.0}, "long_quantile"),
                          ({"group_level": 1}, "group_level")):
        with pytest.raises(ValueError, match=field):
            skew_aware_dispatch(v, **params)


def test_pool_latency_is_equation_2():
    m = DecodeStepModel(base_s=0.01, per_request_s=0.001)
    kw = dict(max_batch_size=8, kv_capacity_tokens=10**9, prompt_tokens=0.0)
    # 40 samples on 2 instances: M = 20, BS = 8, 3 rounds of PTL(8) x L
    assert pool_latency_s(m, 40, 100.0, 2, **kw) == pytest.approx(0.018 * 100 * 3)
    assert pool_latency_s(m, 0, 100.0, 2, **kw) == 0.0
    # the KV holds 4 samples of 1,000 tokens: BS = 4, 5 rounds
    kw["kv_capacity_tokens"] = 4000
    assert pool_latency_s(m, 40, 1000.0, 2, **kw) == pytest.approx(0.014 * 1000 * 5)


# ------------------------------------------------------------------ stream generation
@FAST
@given(st.lists(st.tuples(st.floats(0.0, 100.0), st.floats(0.0, 5.0)), min_size=1,
                max_size=30), st.integers(1, 8), st.floats(0.0, 50.0))
def test_dynamic_batches_never_take_a_sample_early(pairs, min_batch, start):
    ready = np.array([p[0] for p in pairs])
    cost = np.array([p[1] for p in pairs])
    out = dynamic_batches(ready, cost, min_batch=min_batch, start_s=start)
    b, s, e = out["batch"], out["start_s"], out["end_s"]
    assert sorted(set(b.tolist())) == list(range(s.shape[0]))  # every batch used
    for j in range(s.shape[0]):
        members = b == j
        assert ready[members].max() <= s[j]  # nothing before it is ready
        assert e[j] == pytest.approx(s[j] + cost[members].sum())
        if j:
            assert s[j] >= e[j - 1]  # one batch at a time
    assert s[0] >= start
    assert e[-1] >= ready.max() + cost[ready == ready.max()].min() - 1e-9


@FAST
@given(st.lists(st.tuples(st.floats(0.0, 100.0), st.floats(0.0, 5.0)), min_size=1,
                max_size=20), st.floats(0.0, 10.0), st.integers(2, 6))
def test_rl_pipeline_invariants(pairs, weight, iterations):
    done = np.array([p[0] for p in pairs])
    cost = np.array([p[1] for p in pairs])
    modes = {
        "colocated": dict(colocated=True, stream=False),
        "sync": dict(stream=False),
        "sync-stream": dict(stream=True),
        "async": dict(stream=True, staleness=1),
    }
    out = {m: rl_pipeline(done, cost, iterations=iterations, weight_s=weight, **kw)
           for m, kw in modes.items()}
    for m, o in out.items():
        k = np.arange(iterations)
        stale = 1 if m == "async" else 0
        assert ((k - o["version"]) <= stale).all() and (o["version"] <= k).all()
        assert (o["train_end_s"] >= o["gen_start_s"] + done.max() - 1e-9).all()
        if stale == 0:  # the optimizer step comes before the next generation starts
            assert (o["train_end_s"][:-1] <= o["gen_start_s"][1:] + 1e-9).all()
    colo = out["colocated"]
    assert (colo["gen_start_s"][1:] >= colo["train_end_s"][:-1] - 1e-9).all()
    eps = 1e-6
    assert out["sync-stream"]["iteration_s"] <= out["sync"]["iteration_s"] + eps
    assert out["async"]["iteration_s"] <= out["sync-stream"]["iteration_s"] + eps


def test_rl_pipeline_bad_input():
    with pytest.raises(ValueError, match="train_s"):
        rl_pipeline([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="staleness"):
        rl_pipeline([1.0], [1.0], staleness=2)
    with pytest.raises(ValueError, match="colocated"):
        rl_pipeline([1.0], [1.0], colocated=True, staleness=1)
    with pytest.raises(ValueError, match="completion_s"):
        rl_pipeline([-1.0], [1.0])


# ------------------------------------------------------------------ stage balancing, elasticity
@FAST
@given(st.dictionaries(st.sampled_from([8, 16, 24, 32, 40]), st.floats(1.0, 100.0), min_size=1),
       st.dictionaries(st.sampled_from([8, 16, 24, 32, 40]), st.floats(1.0, 100.0), min_size=1),
       st.integers(16, 80))
def test_balance_stages_is_the_best_feasible_split(gen, train, n):
    fits = [(x, y) for x in gen for y in train if x + y <= n]
    if not fits:
        with pytest.raises(ValueError, match="no split"):
            balance_stages(gen, train, n)
        return
    x, y, t = balance_stages(gen, train, n)
    assert x + y <= n and t == max(gen[x], train[y])
    assert t == min(max(gen[a], train[b]) for a, b in fits)


def test_balance_cross_dc_shrinks_the_faster_stage():
    gen = {8: 30.0, 16: 20.0, 24: 16.0, 32: 14.0}
    train = {8: 15.0, 16: 12.0}
    assert balance_cross_dc(gen, train, 32, 16) == (32, 8)  # training faster: 8 GPUs match
    assert balance_cross_dc(gen, {16: 40.0}, 32, 16) == (8, 16)  # generation faster
    with pytest.raises(ValueError, match="full allocation"):
        balance_cross_dc(gen, train, 64, 16)


@given(st.floats(0.0, 100.0), st.floats(0.0, 100.0), st.floats(0.0, 50.0))
def test_elastic_fires_iff_gap_reaches_saving(gen, train, saving):
    assert elastic_scale_up(gen, train, saving) == (saving > 0 and gen - train >= saving)


def test_check_dispatch_catches_broken_policies():
    def out_of_range(view, /):
        return Dispatch(instance=np.full(view.n, view.n_instances), order=np.arange(view.n))

    rng = np.random.default_rng()

    def unseeded(view, /):
        return Dispatch(instance=rng.integers(0, view.n_instances, view.n),
                        order=rng.permutation(view.n))

    def no_answer(view, /):
        return None

    for fn, rule in ((out_of_range, "instance out of range"), (unseeded, "not deterministic"),
                     (no_answer, "malformed answer")):
        with pytest.raises(AssertionError, match=rule):
            check_dispatch(fn, max_examples=40)
